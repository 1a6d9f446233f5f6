#!/bin/sh
# pg-network.sh: several brokers on one PostgreSQL log, on this machine,
# without containers (docs/postgresql.md). Starts a PostgreSQL 15 primary
# and a synchronous streaming standby on loopback (scripts/pg-cluster.sh),
# creates the schema with cpx-audit init-db, runs brokers A and B on the
# same DSN with national nodes publishing and subscribing through both,
# kills broker A (kill -9) during a storm, has a witness cosign, kills the
# primary (kill -9) and promotes the standby, publishes again, witnesses
# again through the other broker, and verifies the log: through the
# database and exported to segment files, offline. Prints what happens
# at each step, and stops with the reason at the first that fails.
#
# Run after the README's first command (scripts/demo.sh: packages, build),
# as root or as a user. Everything is under pg-run/; every process it
# started is stopped when it ends, on failure and on Ctrl-C too.
# Environment: CPX_BUILD_DIR (default build/); CPX_PGNET_PORT (broker A's
# port, default 7451; B's is the next, their metrics 20 above);
# CPX_PGNET_PG_PORT (the primary's, the standby's is the next; default:
# free ports); CPX_PGNET_STORM (alerts in the storm, default 300);
# CPX_PGNET_BUILD=0 (do not run scripts/build.sh first).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/lib/demo.sh"
run="$top/pg-run"
build=${CPX_BUILD_DIR:-"$top/build"}
base=${CPX_PGNET_PORT:-7451}
port_a=$base
port_b=$((base + 1))
mport_a=$((base + 20))
mport_b=$((base + 21))
# PostgreSQL: free ports picked by pg-cluster.sh unless given.
pg1=${CPX_PGNET_PG_PORT:-0}
pg2=0
[ "$pg1" = 0 ] || pg2=$((pg1 + 1))
storm=${CPX_PGNET_STORM:-300}
ep_a="tcp://127.0.0.1:$port_a"
ep_b="tcp://127.0.0.1:$port_b"
pgc="$top/scripts/pg-cluster.sh"
pgbin=${PGBIN:-/usr/lib/postgresql/15/bin}
db="$run/db"
pids=""
db_started=0

fail() {
	echo "pg-network: $*" >&2
	exit 1
}

cleanup() {
	rc=$?
	trap - EXIT INT TERM
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	for b in a b; do
		if [ -f "$run/broker-$b.pid" ]; then
			kill "$(cat "$run/broker-$b.pid")" 2>/dev/null || true
			rm -f "$run/broker-$b.pid"
		fi
	done
	# PostgreSQL's data goes once all went well; after a failure it
	# stays, with its logs (pg-run/db/primary.log, standby.log).
	rm_db=--rm
	[ "$rc" -eq 0 ] || rm_db=""
	if [ "$db_started" = 1 ]; then
		sh "$pgc" stop "$db" $rm_db >/dev/null 2>&1 ||
		    echo "pg-network: 'scripts/pg-cluster.sh stop $db'" \
		    "failed: look for postgres processes under $db" >&2
	fi
	if [ "$rc" -ne 0 ]; then
		echo "pg-network: FAILED (exit $rc). Logs: pg-run/broker-a.log," \
		    "pg-run/broker-b.log, pg-run/*.err; PostgreSQL's in" \
		    "pg-run/db/*.log (its servers are stopped)" >&2
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ -x "$pgbin/initdb" ] || {
	echo "== PostgreSQL 15 is not installed: scripts/install-deps.sh"
	"$top/scripts/install-deps.sh"
}
[ -f "$pgc" ] || fail "scripts/pg-cluster.sh is missing from this tree"
if [ "${CPX_PGNET_BUILD:-1}" != 0 ]; then
	echo "== building ($build)"
	"$top/scripts/build.sh" "$build" ||
	    fail "the build failed (above); CPX_PGNET_BUILD=0 runs the binaries already in $build"
fi
cpx="$build/client/cpx"
audit="$build/broker/cpx-audit"
broker="$build/broker/cpx-broker"
for c in "$cpx" "$audit" "$broker"; do
	[ -x "$c" ] || fail "$c is missing: build first (scripts/build.sh $build)"
done
export CPX_PKI="$run/pki"

# Leftovers of an earlier run that was killed hard: stop them first.
for b in a b; do
	if [ -f "$run/broker-$b.pid" ]; then
		kill "$(cat "$run/broker-$b.pid")" 2>/dev/null || true
	fi
done
if [ -d "$db" ]; then
	sh "$pgc" stop "$db" >/dev/null 2>&1 || true
fi
rm -rf "$run/db" "$run/export" "$run"/*.log "$run"/*.out "$run"/*.err \
    "$run"/*.jsonl "$run"/*.state "$run"/*.pid "$run"/*.witness*
mkdir -p "$run"

# bare: broker log lines without their time stamp and program name
bare() { sed 's/^[^ ]* cpx-broker\[[a-z]*\] //'; }
# count FILE PATTERN: lines of FILE matching PATTERN (0 if none or no file)
count() {
	n=$(grep -c -- "$2" "$1" 2>/dev/null || true)
	echo "${n:-0}"
}
# seqs FILE: the first "seq" of each JSON line of FILE, one a line
seqs() {
	awk 'match($0, /"seq":[0-9]+/) {
	    print substr($0, RSTART + 6, RLENGTH - 6) }' "$1"
}
# in_order FILE: every seq once, rising; prints the count
in_order() {
	seqs "$1" | awk 'NR > 1 && $1 <= prev { bad = 1 } { prev = $1 }
	    END { if (bad) { print "NOT IN ORDER"; exit 1 } print NR }'
}

step "A development PKI: the network CA, two brokers (A: CN=cpx-broker, B: CN=cpx-broker-b), one node per country"
"$top/certs/cpx-pki" init "$run/pki" | tail -n 2
pki_issue_broker "$run/pki" cpx-broker-b ||
    fail "could not issue broker B's certificate (above)"
for c in broker cpx-broker-b; do
	openssl x509 -in "$run/pki/$c.pem" -noout -subject -ext subjectAltName |
	    tr '\n' ' ' | sed 's/X509v3 Subject Alternative Name: *//'
	echo
done

step "PostgreSQL 15: a primary and a synchronous streaming standby on loopback (scripts/pg-cluster.sh)"
db_started=1
run_cmd sh "$pgc" start "$db" "$pg1" --standby "$pg2" ||
    fail "PostgreSQL did not start (above)"
run_cmd sh "$pgc" status "$db"
# The operator's DSN names its password file (passfile=); the brokers'
# does not: broker.ini gives it as store_passfile.
dsn_admin=$(sh "$pgc" dsn "$db" cpx_admin) ||
    fail "scripts/pg-cluster.sh dsn $db cpx_admin failed"
dsn=$(sh "$pgc" dsn "$db" cpx_broker --no-passfile) ||
    fail "scripts/pg-cluster.sh dsn $db cpx_broker failed"
passfile="$db/pgpass"
[ -f "$passfile" ] || fail "no password file $passfile from pg-cluster.sh"
echo "The brokers' DSN (the password is in pg-run/db/pgpass, mode 0600, never in a config or a log):"
echo "    $dsn"

step "The schema, created by its owner (cpx_admin); the brokers' role cpx_broker gets only what it needs"
run_cmd "$audit" init-db --dsn "$dsn_admin" --grant cpx_broker ||
    fail "cpx-audit init-db failed (above)"
echo "What cpx_broker may do (no UPDATE or DELETE on cpx_records: the log is append-only by the database's own rights):"
sh "$pgc" sql "$db" "SELECT table_name || ': ' ||
    string_agg(privilege_type, ', ' ORDER BY privilege_type)
    FROM information_schema.role_table_grants
    WHERE grantee = 'cpx_broker' GROUP BY table_name
    ORDER BY table_name" | sed 's/^/    /' ||
    fail "could not read the grants (scripts/pg-cluster.sh sql)"
echo "As cpx_broker, removing a record or rewriting one:"
for q in "DELETE FROM cpx_records WHERE seq = 1" \
    "UPDATE cpx_records SET record = '' WHERE seq = 1"; do
	if "$pgbin/psql" "$dsn passfile=$passfile" -X -q -c "$q" \
	    >"$run/psql.out" 2>&1; then
		fail "cpx_broker may run '$q': its rights are too wide"
	fi
	echo "    $q: $(head -n 1 "$run/psql.out")"
done
rm -f "$run/psql.out"

step "Brokers A ($ep_a) and B ($ep_b) on the same database"
cp "$top/broker/policy.example.ini" "$run/policy.ini"
cat >>"$run/policy.ini" <<INI

; pg-network.sh: Croatia witnesses the shared log (docs/witness.md)
[node hr-ncp]
country = HR
rights = publish subscribe witness
INI
for b in a b; do
	if [ $b = a ]; then
		port=$port_a mport=$mport_a cert=broker
	else
		port=$port_b mport=$mport_b cert=cpx-broker-b
	fi
	cat >"$run/broker-$b.ini" <<INI
[broker]
listen = tcp://127.0.0.1:$port
ca = pki/ca.pem
cert = pki/$cert.pem
key = pki/$cert.key
crl = pki/crl.pem
policy = policy.ini
metrics_listen = 127.0.0.1:$mport
store = postgresql
store_dsn = $dsn
store_passfile = $passfile
INI
	run_cmd "$broker" -n -c "$run/broker-$b.ini" ||
	    fail "broker $b's configuration was refused (above)"
	broker_start "$b" "$run/broker-$b.ini" "$run/broker-$b.log" \
	    "$run/broker-$b.pid" || exit 1
	grep -e 'audit store' -e 'record(s) checked' -e 'listening on' \
	    "$run/broker-$b.log" | bare | sed "s/^/broker $b: /"
done

step "Subscribers: Croatia on A, Serbia on B, each given both brokers (--broker A,B / B,A) and a state file"
"$cpx" subscribe --broker "$ep_a,$ep_b" --node hr-ncp --from SI,BA --json \
    --state-file "$run/hr.state" --timeout 600 \
    >"$run/hr.jsonl" 2>"$run/hr.err" &
pids="$pids $!"
"$cpx" subscribe --broker "$ep_b,$ep_a" --node rs-ncp --from SI,BA --json \
    --state-file "$run/rs.state" --timeout 600 \
    >"$run/rs.jsonl" 2>"$run/rs.err" &
pids="$pids $!"
wait_for "$run/broker-a.log" "HR/hr-ncp: subscribed" 1 ||
    fail "Croatia did not subscribe on A (pg-run/hr.err)"
wait_for "$run/broker-b.log" "RS/rs-ncp: subscribed" 1 ||
    fail "Serbia did not subscribe on B (pg-run/rs.err)"
echo "(HR subscribed on A, RS on B)"
expect=0

step "Slovenia publishes on A, Bosnia and Herzegovina on B: both subscribers get both alerts"
run_cmd "$cpx" publish --broker "$ep_a" --node si-ncp --id pg-demo-si-1 \
    --category vehicle --severity high \
    --summary "Grey Renault Trafic, 9 persons hidden, left Ljubljana for the Italian border" ||
    fail "publishing on broker A failed (pg-run/broker-a.log)"
run_cmd "$cpx" publish --broker "$ep_b" --node ba-ncp --id pg-demo-ba-1 \
    --category network --severity medium \
    --summary "Facilitators in Velika Kladusa taking bookings for the Croatian border" ||
    fail "publishing on broker B failed (pg-run/broker-b.log)"
expect=2
wait_for "$run/hr.jsonl" '"verified":true' $expect ||
    fail "Croatia (on A) did not get both alerts: is A notified of B's commits?"
wait_for "$run/rs.jsonl" '"verified":true' $expect ||
    fail "Serbia (on B) did not get both alerts: is B notified of A's commits?"
echo "Croatia (on A) got seqs $(seqs "$run/hr.jsonl" | tr '\n' ' ')and Serbia (on B) $(seqs "$run/rs.jsonl" | tr '\n' ' ')"

step "The same alert id again, on the other broker, with other bytes: refused, whichever broker took it first"
if run_cmd "$cpx" publish --broker "$ep_b" --node si-ncp --id pg-demo-si-1 \
    --category vehicle --severity low --summary "another alert, same id"; then
	fail "broker B accepted an id broker A had taken"
fi

step "A storm: Slovenia sends $storm alerts through A while Bosnia and Herzegovina sends $storm through B; broker A is killed (kill -9) in the middle"
i=1
: >"$run/si-storm.jsonl"
: >"$run/ba-storm.jsonl"
while [ $i -le "$storm" ]; do
	echo "{\"id\":\"si-storm-$i\",\"category\":\"route\",\"severity\":\"low\",\"summary\":\"storm $i from SI\"}" >>"$run/si-storm.jsonl"
	echo "{\"id\":\"ba-storm-$i\",\"category\":\"route\",\"severity\":\"low\",\"summary\":\"storm $i from BA\"}" >>"$run/ba-storm.jsonl"
	i=$((i + 1))
done
"$cpx" publish --broker "$ep_a,$ep_b" --node si-ncp --stdin --json \
    --timeout 60 <"$run/si-storm.jsonl" >"$run/si-storm.out" \
    2>"$run/si-storm.err" &
si_pub=$!
"$cpx" publish --broker "$ep_b,$ep_a" --node ba-ncp --stdin --json \
    --timeout 60 <"$run/ba-storm.jsonl" >"$run/ba-storm.out" \
    2>"$run/ba-storm.err" &
ba_pub=$!
pids="$pids $si_pub $ba_pub"
wait_for "$run/si-storm.out" '"accepted"' $((storm / 5)) 60 ||
    fail "the storm through A did not start (pg-run/si-storm.err)"
kill -KILL "$(cat "$run/broker-a.pid")"
rm -f "$run/broker-a.pid"
echo "kill -9 broker A after $(count "$run/si-storm.out" '"accepted"') of Slovenia's alerts were acknowledged"
wait "$si_pub" || fail "Slovenia's publisher did not finish on B (pg-run/si-storm.err)"
wait "$ba_pub" || fail "Bosnia and Herzegovina's publisher failed (pg-run/ba-storm.err)"
grep -h "connected again\|moving to\|failover" "$run/si-storm.err" "$run/hr.err" 2>/dev/null |
    head -n 4 | sed 's/^/    /' || true
si_acked=$(count "$run/si-storm.out" '"accepted"')
ba_acked=$(count "$run/ba-storm.out" '"accepted"')
si_dup=$(count "$run/si-storm.out" '"duplicate":true')
echo "Slovenia: $si_acked/$storm acknowledged (of which $si_dup sent again to B after A had committed them: B answered with A's seq)"
echo "Bosnia and Herzegovina: $ba_acked/$storm acknowledged"
if [ "$si_acked" -ne "$storm" ] || [ "$ba_acked" -ne "$storm" ]; then
	fail "not every alert of the storm was acknowledged"
fi
expect=$((expect + 2 * storm))
wait_for "$run/hr.jsonl" '"verified":true' $expect 60 ||
    fail "Croatia (moved from A to B) did not get every alert: $(count "$run/hr.jsonl" '"verified":true') of $expect"
wait_for "$run/rs.jsonl" '"verified":true' $expect 60 ||
    fail "Serbia (on B) did not get every alert: $(count "$run/rs.jsonl" '"verified":true') of $expect"
hr_n=$(in_order "$run/hr.jsonl") || fail "Croatia's alerts are not in seq order, or repeated"
rs_n=$(in_order "$run/rs.jsonl") || fail "Serbia's alerts are not in seq order, or repeated"
echo "Croatia got $hr_n alerts, Serbia $rs_n, each once, in seq order (expected $expect)"

step "A witness: Croatia checks the shared log through broker B and cosigns B's checkpoint"
witness_round() {
	out=$(run_cmd "$cpx" witness --broker "$1" --node hr-ncp --once \
	    --state-file "$run/hr.witness" 2>&1) || {
		printf '%s\n' "$out"
		fail "the witness round through $1 failed (above)"
	}
	# (hashes shortened for the screen)
	printf '%s\n' "$out" | sed 's/hash \([0-9a-f]\{12\}\)[0-9a-f]*/hash \1.../'
}
witness_round "$ep_b"

step "The database primary killed (kill -9): broker B refuses publishes with 'storage' and keeps its sessions"
run_cmd sh "$pgc" kill-primary "$db" || fail "scripts/pg-cluster.sh kill-primary failed"
# Nothing can be committed now: the standby is read-only until promoted.
if out=$(run_cmd "$cpx" publish --broker "$ep_b" --node si-ncp \
    --id pg-demo-si-down --category route --severity low \
    --summary "while the primary is down" --timeout 20 2>&1); then
	printf '%s\n' "$out"
	fail "broker B acknowledged an alert with no primary to commit it to"
fi
printf '%s\n' "$out" | cut -c 1-200
case "$out" in
*"refused (storage)"*) ;;
*) fail "the publish was not refused with storage (above)" ;;
esac
echo "Broker B's log:"
grep 'audit: postgresql' "$run/broker-b.log" | tail -n 3 | bare |
    cut -c 1-200 | sed 's/^/    /'
if command -v curl >/dev/null 2>&1; then
	echo "Its sessions stay open (metrics on 127.0.0.1:$mport_b):"
	curl -s "http://127.0.0.1:$mport_b/metrics" |
	    grep -e '^cpx_sessions{' -e '^cpx_commit_failures_total' |
	    sed 's/^/    /'
	echo "    /healthz: $(curl -s "http://127.0.0.1:$mport_b/healthz" |
	    cut -c 1-160)"
fi

step "The standby promoted (as an operator or Patroni would): the brokers find the new primary by themselves"
run_cmd sh "$pgc" promote "$db" || fail "scripts/pg-cluster.sh promote failed"
run_cmd sh "$pgc" status "$db" || true
echo "Broker A restarts on the promoted database (nothing to recover on its own disk):"
broker_start a "$run/broker-a.ini" "$run/broker-a.log" "$run/broker-a.pid" ||
    exit 1
grep 'record(s) checked' "$run/broker-a.log" | tail -n 1 | bare |
    sed 's/^/broker a: /'
i=0
until "$cpx" publish --broker "$ep_b" --node si-ncp --id pg-demo-si-2 \
    --category crossing --severity critical --crossing "Obrezje - Bregana" \
    --summary "Group of 20 expected to cross on foot tonight near Bregana" \
    --timeout 10 >"$run/after.out" 2>"$run/after.err"; do
	i=$((i + 1))
	[ $i -lt 12 ] || fail "broker B did not accept again after the promotion (pg-run/after.err, pg-run/broker-b.log)"
	sleep 1
done
echo "on B: $(cat "$run/after.out")"
run_cmd "$cpx" publish --broker "$ep_a" --node ba-ncp --id pg-demo-ba-2 \
    --category document --severity high \
    --summary "Forged Slovenian residence permits offered in Bihac" ||
    fail "broker A did not accept after the promotion (pg-run/broker-a.log)"
t0=$(date +%s%N)
expect=$((expect + 2))
wait_for "$run/hr.jsonl" '"verified":true' $expect 90 ||
    fail "Croatia did not get the alerts published after the failover"
wait_for "$run/rs.jsonl" '"verified":true' $expect 90 ||
    fail "Serbia did not get the alerts published after the failover"
ms=$((($(date +%s%N) - t0) / 1000000))
echo "Broker A's alert reached Croatia and Serbia (both on B now) ${ms} ms after A acknowledged it."
if [ "$ms" -gt 5000 ]; then
	echo "(slow: B learns of A's commits by LISTEN/NOTIFY, and its notification connection was still reconnecting after the failover; pg-run/broker-b.log: 'listening for other brokers' commits again')"
fi
hr_n=$(in_order "$run/hr.jsonl") || fail "Croatia's alerts are not in seq order, or repeated"
rs_n=$(in_order "$run/rs.jsonl") || fail "Serbia's alerts are not in seq order, or repeated"
echo "Croatia has $hr_n alerts, Serbia $rs_n: all $expect, each once, in seq order, across both failovers."

step "The witness again, through broker A this time: A's newest checkpoint must extend the one of B it cosigned"
witness_round "$ep_a"

step "Stop the brokers (SIGTERM: each writes its signed checkpoint) and the subscribers"
for p in $pids; do kill "$p" 2>/dev/null || true; done
pids=""
for b in a b; do
	p=$(cat "$run/broker-$b.pid")
	kill "$p"
	i=0
	while kill -0 "$p" 2>/dev/null; do
		i=$((i + 1))
		[ $i -le 300 ] || fail "broker $b did not stop within 30 s of SIGTERM (pg-run/broker-$b.log)"
		sleep 0.1
	done
	rm -f "$run/broker-$b.pid"
	tail -n 1 "$run/broker-$b.log" | bare | sed "s/^/broker $b: /"
done

step "Verify the shared log in the database: the chain across the failover, every alert, both brokers' checkpoints"
run_cmd "$audit" verify --dsn "$dsn_admin" --ca "$run/pki/ca.pem" \
    --crl "$run/pki/crl.pem" --broker-cert "$run/pki/broker.pem" \
    --broker-cert "$run/pki/cpx-broker-b.pem" ||
    fail "cpx-audit verify --dsn failed (above)"

step "Export it to segment files and verify them offline, without the database"
run_cmd "$audit" export --dsn "$dsn_admin" "$run/export" ||
    fail "cpx-audit export failed (above)"
run_cmd "$audit" verify --multi-broker --ca "$run/pki/ca.pem" \
    --crl "$run/pki/crl.pem" --broker-cert "$run/pki/broker.pem" \
    --broker-cert "$run/pki/cpx-broker-b.pem" "$run/export" ||
    fail "the exported log does not verify (above)"
ids=$("$audit" dump "$run/export" | grep -c '"kind":"alert-accepted"' || true)
echo "Alerts in the log: $ids (expected $expect: each once)"
[ "$ids" -eq "$expect" ] || fail "the log holds $ids alerts, not $expect"

step "Done. Files are in pg-run/ (broker logs pg-run/broker-a.log and broker-b.log)"
