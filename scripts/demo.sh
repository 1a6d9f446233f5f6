#!/bin/sh
# demo.sh: the README's first command. Installs the Debian packages, builds
# cpx, creates a development PKI and runs a small network on this machine:
# a broker and national nodes publishing, subscribing to different feeds,
# being refused, and replaying and verifying the audit log.
# Everything is written under demo-run/ (broker log: demo-run/broker.log).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
# step, run_cmd, wait_for (shared with scripts/pg-network.sh)
. "$top/scripts/lib/demo.sh"
run="$top/demo-run"
port=${CPX_DEMO_PORT:-7443}
metrics_port=${CPX_DEMO_METRICS_PORT:-9464}

"$top/scripts/install-deps.sh"
echo "== building (build/)"
"$top/scripts/build.sh" "$top/build"

cpx="$top/build/client/cpx"
audit="$top/build/broker/cpx-audit"
export CPX_BROKER="tcp://127.0.0.1:$port" CPX_PKI="$run/pki"
pids=""

cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	if [ -f "$run/broker.pid" ]; then
		kill "$(cat "$run/broker.pid")" 2>/dev/null || true
		rm -f "$run/broker.pid"
	fi
}
trap cleanup EXIT INT TERM

mkdir -p "$run"
if [ -f "$run/broker.pid" ]; then
	kill "$(cat "$run/broker.pid")" 2>/dev/null || true
	rm -f "$run/broker.pid"
fi
rm -rf "$run/audit" "$run"/*.out "$run"/*.jsonl "$run/broker.log" "$run/witness"

step "A development PKI: network CA, broker, one node per country (keys 0600)"
"$top/certs/cpx-pki" init "$run/pki" | tail -n 3
ls "$run/pki/nodes" | sed -n 's/\.pem$//p' | tr '\n' ' '; echo

step "The broker on $CPX_BROKER (policy: broker/policy.example.ini, plus the witness right for HR, RS and AT)"
cp "$top/broker/policy.example.ini" "$run/policy.ini"
for cc in HR RS AT; do
	lc=$(echo "$cc" | tr '[:upper:]' '[:lower:]')
	cat >>"$run/policy.ini" <<INI

; demo.sh: $cc witnesses the broker's log (docs/witness.md)
[node $lc-ncp]
country = $cc
rights = publish subscribe witness
INI
done
cat >"$run/broker.ini" <<INI
[broker]
listen = tcp://127.0.0.1:$port
ca = pki/ca.pem
cert = pki/broker.pem
key = pki/broker.key
crl = pki/crl.pem
policy = policy.ini
audit_dir = audit
metrics_listen = 127.0.0.1:$metrics_port
INI
"$top/build/broker/cpx-broker" -c "$run/broker.ini" 2>"$run/broker.log" &
echo $! >"$run/broker.pid"
i=0
until grep -q "listening on" "$run/broker.log"; do
	if ! kill -0 "$(cat "$run/broker.pid")" 2>/dev/null; then
		echo "demo: the broker did not start; its log says:" >&2
		cat "$run/broker.log" >&2
		echo "(another program on port $port or $metrics_port? set" \
		    "CPX_DEMO_PORT or CPX_DEMO_METRICS_PORT)" >&2
		rm -f "$run/broker.pid"
		exit 1
	fi
	i=$((i + 1))
	[ $i -le 150 ] || { echo "demo: broker not listening after 15 s" >&2; exit 1; }
	sleep 0.1
done
grep "listening on" "$run/broker.log" | cut -c 25-

step "The node console of Croatia (cpx-console) for its officers"
console_port=${CPX_DEMO_CONSOLE_PORT:-8080}
rm -f "$run/console-users"
echo "demo-officer-2026" | "$top/build/console/cpx-console" user add demo \
	--users "$run/console-users" --cost 12 >/dev/null
"$top/build/console/cpx-console" --node hr-ncp --users "$run/console-users" \
	--listen "127.0.0.1:$console_port" --web "$top/console/web" \
	--regions western-balkans,eu-neighbours >"$run/console.out" \
	2>"$run/console.log" &
pids="$pids $!"
if wait_for "$run/console.out" "http://" 1; then
	echo "Console: $(sed -n 's/^cpx-console: //p' "$run/console.out")" \
	    "(development sign-in: demo / demo-officer-2026; log: demo-run/console.log)"
else
	echo "(the console did not start: see demo-run/console.log;" \
	    "CPX_DEMO_CONSOLE_PORT picks another port)"
fi

step "Subscribers: Croatia follows Slovenia's feed; Serbia follows the Western Balkans regional feed plus high-severity alerts from Slovenia"
run_cmd "$cpx" whoami --node hr-ncp
"$cpx" subscribe --node hr-ncp --from SI --json --timeout 120 \
	>"$run/hr.jsonl" 2>"$run/hr.err" &
pids="$pids $!"
"$cpx" subscribe --node rs-ncp --region western-balkans --or --from SI \
	--min-severity high --timeout 120 >"$run/rs.out" 2>"$run/rs.err" &
pids="$pids $!"
wait_for "$run/broker.log" "HR/hr-ncp: subscribed" 1
wait_for "$run/broker.log" "RS/rs-ncp: subscribed" 1
echo "(both subscribed)"

step "Alerts"
echo "A1: Slovenia, whole network, vehicle, high   -> HR yes, RS yes"
run_cmd "$cpx" publish --node si-ncp --category vehicle --severity high \
	--summary "Grey Renault Trafic, 9 persons hidden, left Ljubljana for the Italian border" \
	--vehicle "LJ-KX-441:SI:grey Renault Trafic" --route "Ljubljana,Postojna,Fernetici"
echo "A2: Slovenia, restricted to western-balkans  -> HR no (not a recipient), RS yes"
run_cmd "$cpx" publish --node si-ncp --file "$top/client/examples/vehicle-si-to-western-balkans.json"
echo "A3: Slovenia, named-only to HR, critical      -> HR yes, RS no (not named, whatever it subscribes to)"
run_cmd "$cpx" publish --node si-ncp --category crossing --severity critical \
	--handling named-only --to HR --crossing "Obrezje - Bregana" \
	--summary "Group of 20 expected to cross on foot tonight near Bregana" --persons 20
echo "A4: Bosnia and Herzegovina, restricted to eu-neighbours and RS -> HR no (not from SI), RS yes"
run_cmd "$cpx" publish --node ba-ncp --category network --severity medium \
	--handling restricted --to eu-neighbours,RS \
	--summary "Facilitators in Velika Kladusa taking bookings for the Croatian border"
echo "A5: Serbia, named-only to HR and SI           -> HR no (not from SI), RS no (not a recipient)"
run_cmd "$cpx" publish --node rs-ncp --file "$top/client/examples/named-only-rs-to-hr-si.json"

step "Refusals, each with its reason"
echo "Slovenia's node publishing an alert that claims to come from Croatia (spoofed origin):"
run_cmd "$cpx" publish --node si-ncp --file "$top/client/examples/crossing-hr-network.json" || true
echo "A recipient that is neither a country nor a region of the policy:"
run_cmd "$cpx" publish --node si-ncp --category route --severity low --to atlantis \
	--summary "test" || true
echo "A node whose certificate is revoked (cpx-pki revoke + SIGHUP to the broker):"
[ -f "$run/pki/nodes/si-demo.pem" ] || "$top/certs/cpx-pki" issue "$run/pki" SI si-demo >/dev/null
"$top/certs/cpx-pki" revoke "$run/pki" si-demo >/dev/null
kill -HUP "$(cat "$run/broker.pid")"
wait_for "$run/broker.log" "SIGHUP" 1
run_cmd "$cpx" publish --node si-demo --category route --severity low \
	--summary "from a revoked node" || true

step "What each subscriber received"
wait_for "$run/hr.jsonl" '"verified":true' 2
wait_for "$run/rs.out" '^#' 3
echo "-- Croatia (JSON lines, one per alert):"
cut -c 1-220 "$run/hr.jsonl" | sed 's/$/.../'
echo "-- Serbia (human-readable):"
cat "$run/rs.out"
# Nothing more than expected arrives: replay as each node and count.
hr=$(grep -c '"verified":true' "$run/hr.jsonl")
rs=$(grep -c '^#' "$run/rs.out")
echo "Croatia received $hr alert(s) (expected 2), Serbia $rs (expected 3)"

step "Replay: Slovenia (audit right) reads the history, vehicle alerts only"
run_cmd "$cpx" replay --node si-ncp --from-seq 1 --category vehicle
step "Replay of every record kind (sessions, refusals, alerts), as JSON"
run_cmd "$cpx" replay --node si-ncp --all-kinds --json 2>&1 | cut -c 1-150 |
	head -n 12

step "Witnesses: Croatia, Serbia and Austria check that the broker's signed log only grows, and cosign it"
echo "Each fetches the newest signed checkpoint and a digest of every record (no content), recomputes the hash chain and countersigns:"
mkdir -p "$run/witness"
for n in hr-ncp rs-ncp at-ncp; do
	# (hashes shortened for the screen; an alarm or failure stops the demo)
	out=$(run_cmd "$cpx" witness --node "$n" --once \
	    --state-file "$run/witness/$n.state") || {
		printf '%s\n' "$out"
		echo "demo: the witness round of $n failed (above; the broker's log: demo-run/broker.log)" >&2
		exit 1
	}
	printf '%s\n' "$out" | sed 's/hash \([0-9a-f]\{12\}\)[0-9a-f]*/hash \1.../'
done

if [ -t 0 ] && [ -s "$run/console.out" ]; then
	printf '\nThe console is at %s (sign in as demo / demo-officer-2026).\n' \
	    "$(sed -n 's/^cpx-console: //p' "$run/console.out")"
	printf 'Press Enter to stop the broker and the console... '
	read -r _ || true
fi
step "Stop the broker (SIGTERM: drain, signed checkpoint) and verify the log offline"
for p in $pids; do kill "$p" 2>/dev/null || true; done
pids=""
kill "$(cat "$run/broker.pid")"
while kill -0 "$(cat "$run/broker.pid")" 2>/dev/null; do sleep 0.1; done
rm -f "$run/broker.pid"
tail -n 2 "$run/broker.log" | cut -c 25-
echo "Verify the chain, every signature and checkpoint, and that a majority of the 3 witnesses (2) cosigned:"
run_cmd "$audit" verify --ca "$run/pki/ca.pem" --crl "$run/pki/crl.pem" \
    --broker-cert "$run/pki/broker.pem" --require-witnesses 2 "$run/audit"

if [ "$hr" -ne 2 ] || [ "$rs" -ne 3 ]; then
	echo "demo: unexpected deliveries (see $run)" >&2
	exit 1
fi
step "Done. Files are in demo-run/; the broker log is demo-run/broker.log"
