#!/bin/bash
# bench/run.sh: the cpx benchmark, one command (see BENCHMARKS.md).
#
# Builds cpx-broker and cpx-bench, makes a fresh development PKI and audit
# directory under a temporary directory, starts the broker on 127.0.0.1,
# runs workloads W1-W4, then W1 and W2 against Mosquitto (installed from
# Debian if missing), measures the ECDSA P-256 verify limit with openssl
# speed, and prints one table. Loopback only; every step is bounded.
#
# Environment (defaults in brackets):
#   BUILD            build directory [/tmp/cpx-bench-build]
#   W1_SECONDS       publishing time of each W1 run [10]
#   REPS             runs of each W1 configuration, median kept [3]
#   W2_SECONDS, W2_RATE   [20, 1000]
#   W3_RECORDS       audit log size for the replay [1000000]
#   W4_SESSIONS      [1000]
#   W5_ALERTS        alerts published one at a time, each awaited [5000]
#   PROFILE          1: perf profile of the broker under W1 [1]
#   TRACE            1: W2 again on a CPX_TRACE build, with the stage
#                    breakdown of its latency [1]
#   BASELINE         a git revision: its broker is built too, and W1
#                    ingest and W2 run against it in the same run [none]
#   ONLY             latency: W1 ingest, W2 (and TRACE, BASELINE) and
#                    Mosquitto's W2 only [all]
#   DEPS             0: do not run scripts/install-deps.sh first [1]
#   KEEP             1: keep the work directory [0]
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-/tmp/cpx-bench-build}
W1_SECONDS=${W1_SECONDS:-10}
REPS=${REPS:-3}
W2_SECONDS=${W2_SECONDS:-20}
W2_RATE=${W2_RATE:-1000}
W3_RECORDS=${W3_RECORDS:-1000000}
W4_SESSIONS=${W4_SESSIONS:-1000}
W5_ALERTS=${W5_ALERTS:-5000}
PROFILE=${PROFILE:-1}
TRACE=${TRACE:-1}
BASELINE=${BASELINE:-}
ONLY=${ONLY:-}
KEEP=${KEEP:-0}
PORT=17443
MPORT=18883

WORK=$(mktemp -d /tmp/cpx-bench.XXXXXX)
RES=$WORK/results
: >"$RES"
BPID=
MPID=
T_START=$(date +%s)
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)

say() { printf '== %s\n' "$*" >&2; }

cleanup() {
	[ -n "$BPID" ] && kill "$BPID" 2>/dev/null && wait "$BPID" 2>/dev/null
	[ -n "$MPID" ] && kill "$MPID" 2>/dev/null && wait "$MPID" 2>/dev/null
	if [ "$KEEP" = 1 ]; then
		say "work directory kept: $WORK"
	else
		rm -rf "$WORK"
	fi
	return 0
}
trap cleanup EXIT

# --- dependencies and build --------------------------------------------

[ "${DEPS:-1}" = 0 ] || "$ROOT/scripts/install-deps.sh" >&2
need=
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] ||
    need="$need mosquitto"
pkg-config --exists libmosquitto 2>/dev/null || need="$need libmosquitto-dev"
if [ -n "$need" ]; then
	say "installing$need"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2
	apt-get install -y -qq $need >&2
fi
MOSQUITTO=$(command -v mosquitto || echo /usr/sbin/mosquitto)

say "building in $BUILD"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCPX_TESTS=OFF -DCPX_BENCH=ON >"$WORK/cmake.log" 2>&1 ||
    { cat "$WORK/cmake.log" >&2; exit 1; }
cmake --build "$BUILD" -j"$(nproc)" --target cpx-broker cpx-bench \
    >>"$WORK/cmake.log" 2>&1 || { tail -40 "$WORK/cmake.log" >&2; exit 1; }
BROKER=$BUILD/broker/cpx-broker
BENCH=$BUILD/bench/cpx-bench
# The stage breakdown needs the stamps compiled in (lib/trace.h): a second
# build, so that every other figure comes from the broker as shipped.
if [ "$TRACE" = 1 ]; then
	say "building with CPX_TRACE in $BUILD-trace"
	cmake -S "$ROOT" -B "$BUILD-trace" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	    -DCPX_TESTS=OFF -DCPX_BENCH=ON -DCPX_MAN=OFF -DCPX_TRACE=ON \
	    >>"$WORK/cmake.log" 2>&1 &&
	    cmake --build "$BUILD-trace" -j"$(nproc)" --target cpx-broker \
	    cpx-bench >>"$WORK/cmake.log" 2>&1 ||
	    { tail -40 "$WORK/cmake.log" >&2; exit 1; }
fi
# The broker of another revision, for before/after in the same run.
if [ -n "$BASELINE" ]; then
	say "building the broker of $BASELINE in $BUILD-baseline"
	rm -rf "$BUILD-baseline"
	mkdir -p "$BUILD-baseline/src"
	git -C "$ROOT" archive "$BASELINE" | tar -x -C "$BUILD-baseline/src"
	cmake -S "$BUILD-baseline/src" -B "$BUILD-baseline" \
	    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCPX_TESTS=OFF -DCPX_MAN=OFF \
	    >>"$WORK/cmake.log" 2>&1 &&
	    cmake --build "$BUILD-baseline" -j"$(nproc)" --target cpx-broker \
	    >>"$WORK/cmake.log" 2>&1 ||
	    { tail -40 "$WORK/cmake.log" >&2; exit 1; }
fi

say "development PKI in $WORK/pki"
"$ROOT/certs/cpx-pki" init "$WORK/pki" >"$WORK/pki.log" 2>&1
PKI=$WORK/pki

# --- helpers -------------------------------------------------------------

# put PREFIX FILE: append FILE's "R key value" lines as "PREFIX.key value".
put() { sed -n "s/^R /$1./p" "$2" >>"$RES"; }
get() { awk -v k="$1" '$1 == k { v = $2 } END { print (v == "" ? "-" : v) }' "$RES"; }
# div A B [fmt]: A / B, or "-".
div() { awk -v a="$1" -v b="$2" -v f="${3:-%.2f}" 'BEGIN {
	if (a == "-" || b == "-" || b + 0 == 0) print "-"; else printf f "\n", a / b }'; }

# bench NAME ARGS...: run cpx-bench (or $BENCH_BIN), keep its results
# under NAME.
bench() {
	local name=$1
	shift
	say "$name: cpx-bench $*"
	if ! "${BENCH_BIN:-$BENCH}" "$@" -k "$PKI" >"$WORK/$name.out" \
	    2>"$WORK/$name.err"; then
		say "$name FAILED (see below)"
		tail -20 "$WORK/$name.err" >&2
	fi
	grep -v '^R ' "$WORK/$name.err" | sort | uniq -c | head -5 >&2 || true
	put "$name" "$WORK/$name.out"
}

# bench_reps NAME ARGS...: run a W1 configuration REPS times; keep, as
# NAME.*, every figure of the run with the median accepted alerts/s (so
# the figures of one row come from one run) and the spread as NAME.range.
bench_reps() {
	local name=$1 i med
	shift
	for i in $(seq 1 "$REPS"); do
		bench "$name.r$i" "$@"
	done
	med=$(for i in $(seq 1 "$REPS"); do
		echo "$i $(get "$name.r$i.accepted_per_s")"
	done | sort -k2 -g | awk '{ r[NR] = $1 } END { print r[int((NR + 1) / 2)] }')
	sed -n "s/^$name\.r$med\./$name./p" "$RES" >"$WORK/med.tmp"
	cat "$WORK/med.tmp" >>"$RES"
	for i in $(seq 1 "$REPS"); do get "$name.r$i.accepted_per_s"; done |
	    sort -g | awk -v n="$name" '{ v[NR] = $1 }
	    END { printf "%s.range %.0f-%.0f\n", n, v[1], v[NR] }' >>"$RES"
}

write_ini() {
	cat >"$WORK/broker.ini" <<EOF
[broker]
listen = tcp://127.0.0.1:$PORT
ca = $PKI/ca.pem
cert = $PKI/broker.pem
key = $PKI/broker.key
crl = $PKI/crl.pem
policy = $ROOT/broker/policy.example.ini
audit_dir = $1
log_level = info
; Side by side with other brokers: a free metrics port.
metrics_listen = 127.0.0.1:0
; No per-node rate limit: the benchmark measures the broker's capacity.
publish_rate = 0
max_sessions = 2000
; Every benchmark node connects from 127.0.0.1, and W4 opens 1,000
; sessions at once with few certificates: the per-address and per-node
; limits are for the open network, not for this.
connect_rate = 0
max_handshakes = 2000
max_handshakes_per_address = 2000
max_sessions_per_node = 2000
EOF
}

# start_broker AUDIT_DIR [BINARY]: start and wait for "listening"; sets
# BPID and STARTUP_S (time until it listens).
start_broker() {
	local bin=${2:-$BROKER}
	write_ini "$1"
	# A baseline from before the metrics endpoint does not know the key.
	[ "$bin" = "$BUILD-baseline/broker/cpx-broker" ] &&
	    sed -i '/^metrics_listen/d' "$WORK/broker.ini"
	: >"$WORK/broker.log"
	local t0 i
	t0=$(date +%s.%N)
	(ulimit -n "$(ulimit -Hn)"; exec "$bin" -c "$WORK/broker.ini") \
	    2>>"$WORK/broker.log" &
	BPID=$!
	for i in $(seq 1 1200); do
		grep -q "listening on" "$WORK/broker.log" && break
		kill -0 "$BPID" 2>/dev/null ||
		    { cat "$WORK/broker.log" >&2; exit 1; }
		sleep 0.1
	done
	STARTUP_S=$(awk -v a="$t0" -v b="$(date +%s.%N)" \
	    'BEGIN { printf "%.2f", b - a }')
}

stop_broker() {
	kill "$BPID"
	wait "$BPID" 2>/dev/null || true
	BPID=
}

# --- cpx -----------------------------------------------------------------

start_broker "$WORK/audit"
EP=tcp://127.0.0.1:$PORT
echo "broker.threads $(awk '/^Threads:/ { print $2 }' /proc/$BPID/status)" \
    >>"$RES"

# tasks_cpu: "tid name cpu_ticks" for each broker thread.
tasks_cpu() {
	local t
	for t in /proc/$BPID/task/*; do
		awk -v tid="${t##*/}" '{ sub(/^[^)]*\) /, ""); print tid, $12 + $13 }' \
		    "$t/stat" 2>/dev/null | while read -r id ticks; do
			echo "$id $(tr ' ' _ <"$t/comm") $ticks"
		done
	done
}
tasks_cpu >"$WORK/tasks0"
TI0=$(date +%s.%N)
bench_reps ingest w1 -t cpx -e "$EP" -b "$BPID" -P 1 -S 0 -d "$W1_SECONDS"
tasks_cpu >"$WORK/tasks1"
TIWALL=$(awk -v a="$TI0" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
# Threads of the broker busy >10% during the ingest run, ZMQ's I/O threads
# aside: the cores the broker verifies on (capped at nproc below).
HZ=$(getconf CLK_TCK)
BUSY=$(awk -v hz="$HZ" -v wall="$TIWALL" '
	NR == FNR { t0[$1] = $3; next }
	$2 !~ /^ZMQbg/ && ($3 - t0[$1]) / hz > 0.1 * wall { n++ }
	END { print n + 0 }' "$WORK/tasks0" "$WORK/tasks1")
echo "broker.busy_threads $BUSY" >>"$RES"
awk -v hz="$HZ" 'NR == FNR { t0[$1] = $3; next }
	{ printf "%s %s %.2f\n", $1, $2, ($3 - t0[$1]) / hz }' \
	"$WORK/tasks0" "$WORK/tasks1" >"$WORK/tasks.ingest"
if [ "$ONLY" != latency ]; then
bench_reps w1p1 w1 -t cpx -e "$EP" -b "$BPID" -P 1 -S 10 -d "$W1_SECONDS"
bench_reps w1p4 w1 -t cpx -e "$EP" -b "$BPID" -P 4 -S 10 -d "$W1_SECONDS"
fi
bench w2 w2 -t cpx -e "$EP" -b "$BPID" -P 1 -S 10 -d "$W2_SECONDS" \
    -r "$W2_RATE"

# W2 on the CPX_TRACE build: where the time goes (its own broker, so the
# stamps cost nothing in the figures above).
if [ "$TRACE" = 1 ]; then
	stop_broker
	start_broker "$WORK/audit-trace" "$BUILD-trace/broker/cpx-broker"
	BENCH_BIN=$BUILD-trace/bench/cpx-bench bench w2t w2 -t cpx -e "$EP" \
	    -b "$BPID" -P 1 -S 10 -d "$W2_SECONDS" -r "$W2_RATE"
	stop_broker
	start_broker "$WORK/audit"
fi
# The baseline revision's broker, same clients, same run.
if [ -n "$BASELINE" ]; then
	stop_broker
	start_broker "$WORK/audit-baseline" "$BUILD-baseline/broker/cpx-broker"
	bench_reps bingest w1 -t cpx -e "$EP" -b "$BPID" -P 1 -S 0 \
	    -d "$W1_SECONDS"
	bench bw2 w2 -t cpx -e "$EP" -b "$BPID" -P 1 -S 10 \
	    -d "$W2_SECONDS" -r "$W2_RATE"
	stop_broker
	start_broker "$WORK/audit"
fi

if [ "$ONLY" != latency ] && [ "$PROFILE" = 1 ] &&
    command -v perf >/dev/null 2>&1; then
	say "profile: perf record (DWARF call graphs) of the broker under W1"
	perf record -F 499 --call-graph dwarf,16384 -p "$BPID" \
	    -o "$WORK/perf.data" -- sleep 6 >"$WORK/perf.log" 2>&1 &
	PERFPID=$!
	bench prof w1 -t cpx -e "$EP" -b "$BPID" -P 1 -S 10 -d 8
	wait "$PERFPID" || true
	# Self time by function, then inclusive time (callers included):
	# libcrypto is stripped, so its internals show as addresses and the
	# inclusive view says which of our calls they belong to.
	perf report -i "$WORK/perf.data" --no-children --sort dso,sym \
	    --percent-limit 1 --stdio -g none 2>/dev/null |
	    grep -v '^#' | grep -v '^$' | head -25 >"$WORK/perf.self.txt" ||
	    true
	perf report -i "$WORK/perf.data" --children --sort sym \
	    --percent-limit 2.5 --stdio -g none 2>/dev/null |
	    grep -v '^#' | grep -v '^$' | grep -v ' 0x0000' |
	    head -45 >"$WORK/perf.children.txt" || true
fi

if [ "$ONLY" != latency ]; then
bench w4 w4 -e "$EP" -b "$BPID" -c "$W4_SESSIONS"
bench w5 w5 -e "$EP" -b "$BPID" -n "$W5_ALERTS"
fi
echo "broker.log_bytes $(stat -c %s "$WORK/broker.log")" >>"$RES"
stop_broker

# W3: a log written offline through the broker's audit API, then replayed.
if [ "$ONLY" != latency ]; then
bench w3gen w3gen -a "$WORK/audit3" -n "$W3_RECORDS"
echo "w3.log_bytes $(du -sb "$WORK/audit3" | cut -f1)" >>"$RES"
start_broker "$WORK/audit3"
echo "w3.startup_s $STARTUP_S" >>"$RES"
bench w3 w3 -e "$EP" -b "$BPID" -d 400
# The broker's own streaming rate: a reader that verifies nothing.
bench w3raw w3raw -e "$EP" -b "$BPID"
stop_broker
fi

# --- Mosquitto -------------------------------------------------------------

mkdir -p "$WORK/mosq"
"$BENCH" mosqconf -k "$PKI" -o "$WORK/mosq" -m "$MPORT"
"$MOSQUITTO" -c "$WORK/mosq/mosquitto.conf" 2>"$WORK/mosq/log" &
MPID=$!
for i in $(seq 1 100); do
	(exec 3<>/dev/tcp/127.0.0.1/$MPORT) 2>/dev/null && break
	kill -0 "$MPID" 2>/dev/null || { cat "$WORK/mosq/log" >&2; exit 1; }
	sleep 0.1
done
if [ "$ONLY" != latency ]; then
bench_reps mw1p1 w1 -t mosq -m "$MPORT" -b "$MPID" -P 1 -S 10 -d "$W1_SECONDS"
bench_reps mw1p4 w1 -t mosq -m "$MPORT" -b "$MPID" -P 4 -S 10 -d "$W1_SECONDS"
fi
bench mw2 w2 -t mosq -m "$MPORT" -b "$MPID" -P 1 -S 10 -d "$W2_SECONDS" \
    -r "$W2_RATE"
kill "$MPID"
wait "$MPID" 2>/dev/null || true
MPID=

# --- the physical limits --------------------------------------------------

# What one synchronous write costs on the disk the audit log is on: the
# floor of any fsync before acknowledging.
say "dd oflag=dsync: 1000 synchronous 512-byte writes"
T0=$(date +%s.%N)
dd if=/dev/zero of="$WORK/dsync.tmp" bs=512 count=1000 oflag=dsync \
    2>/dev/null || true
echo "dsync_ms $(awk -v a="$T0" -v b="$(date +%s.%N)" \
    'BEGIN { printf "%.3f", (b - a) }')" >>"$RES"
rm -f "$WORK/dsync.tmp"

say "openssl speed ecdsap256 (one core)"
VERIFY=$(openssl speed -seconds 3 ecdsap256 2>/dev/null |
    awk '/nistp256/ { print $NF }' | tail -1)
SIGN=$(openssl speed -seconds 1 ecdsap256 2>/dev/null |
    awk '/nistp256/ { print $(NF-1) }' | tail -1)

# --- the table -----------------------------------------------------------

CPU=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
KERNEL=$(uname -r)
OSREL=$(. /etc/os-release && echo "$PRETTY_NAME")
OSSL=$(openssl version | awk '{ print $2 }')
ZMQV=$(pkg-config --modversion libzmq)
PBCV=$(pkg-config --modversion libprotobuf-c)
MOSQV=$( ("$MOSQUITTO" -h 2>/dev/null || true) |
    awk '/version/ { print $3; exit }')
GITREV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "?")
NDIRTY=$(git -C "$ROOT" status --porcelain 2>/dev/null | wc -l || true)
DIRTY=
[ "${NDIRTY:-0}" -gt 0 ] && DIRTY=" + $NDIRTY uncommitted path(s)"
CORES=$(get broker.busy_threads)
[ "$CORES" = - ] || [ "$CORES" -lt 1 ] && CORES=1
[ "$CORES" -gt "$(nproc)" ] && CORES=$(nproc)
LIMIT=$(awk -v v="$VERIFY" -v c="$CORES" 'BEGIN { printf "%.0f", v * c }')

row() { printf '| %s | %s | %s | %s |\n' "$1" "$2" "$3" "$4"; }
ratio() { div "$1" "$2" "%.2f"; }

{
echo "### Machine"
echo
echo "| fact | value |"
echo "|---|---|"
echo "| nproc | $(nproc) |"
echo "| CPU | $CPU |"
echo "| memory | $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) |"
echo "| OS, kernel | $OSREL, $KERNEL |"
echo "| OpenSSL | $OSSL |"
echo "| libzmq, protobuf-c | $ZMQV, $PBCV |"
echo "| Mosquitto | $MOSQV (Debian) |"
echo "| cpx | $GITREV$DIRTY, RelWithDebInfo |"
echo "| date | $(date -u +%Y-%m-%dT%H:%MZ) |"
echo "| load average at start (other work on the machine) | $LOAD0 |"
echo
echo "### Results"
echo
echo "| workload | cpx | Mosquitto | cpx / Mosquitto |"
echo "|---|---|---|---|"
row "W1 ingest only (1 publisher, no subscriber): accepted alerts/s (min-max of $REPS)" \
    "$(get ingest.accepted_per_s) ($(get ingest.range))" "" ""
row "W1 ingest only: broker CPU s per 1,000 alerts" \
    "$(get ingest.broker_cpu_s_per_1000)" "" ""
for p in 1 4; do
	row "W1 $p publisher(s), 10 subscribers: accepted alerts/s, median of $REPS (min-max)" \
	    "$(get w1p$p.accepted_per_s) ($(get w1p$p.range))" \
	    "$(get mw1p$p.accepted_per_s) ($(get mw1p$p.range))" \
	    "$(ratio "$(get w1p$p.accepted_per_s)" "$(get mw1p$p.accepted_per_s)")"
	row "W1 $p publisher(s): deliveries/s (verified by subscribers)" \
	    "$(get w1p$p.deliveries_per_s)" "$(get mw1p$p.deliveries_per_s)" \
	    "$(ratio "$(get w1p$p.deliveries_per_s)" "$(get mw1p$p.deliveries_per_s)")"
	row "W1 $p publisher(s): broker CPU s per 1,000 alerts" \
	    "$(get w1p$p.broker_cpu_s_per_1000)" \
	    "$(get mw1p$p.broker_cpu_s_per_1000)" \
	    "$(ratio "$(get w1p$p.broker_cpu_s_per_1000)" "$(get mw1p$p.broker_cpu_s_per_1000)")"
	row "W1 $p publisher(s): CPU busy (cores): broker; benchmark clients" \
	    "$(get w1p$p.broker_cpu_util); $(div "$(get w1p$p.bench_cpu_s)" "$(get w1p$p.wall_s)")" \
	    "$(get mw1p$p.broker_cpu_util); $(div "$(get mw1p$p.bench_cpu_s)" "$(get mw1p$p.wall_s)")" ""
	row "W1 $p publisher(s): alerts / deliveries (missing, refused)" \
	    "$(get w1p$p.accepted) / $(get w1p$p.deliveries) ($(get w1p$p.missing_deliveries), $(get w1p$p.refused))" \
	    "$(get mw1p$p.accepted) / $(get mw1p$p.deliveries) ($(get mw1p$p.missing_deliveries), $(get mw1p$p.refused))" ""
done
for q in p50 p99 p999 max; do
	row "W2 $W2_RATE alerts/s for ${W2_SECONDS} s: publish-to-delivery $q (ms)" \
	    "$(get w2.delivery_ms.$q)" "$(get mw2.delivery_ms.$q)" \
	    "$(ratio "$(get w2.delivery_ms.$q)" "$(get mw2.delivery_ms.$q)")"
done
for q in p50 p99 p999 max; do
	row "W2 publish-to-acknowledgement $q (ms)" \
	    "$(get w2.ack_ms.$q)" "$(get mw2.ack_ms.$q)" \
	    "$(ratio "$(get w2.ack_ms.$q)" "$(get mw2.ack_ms.$q)")"
done
if [ -n "$BASELINE" ]; then
	for q in p50 p99 p999; do
		row "W2 publish-to-delivery $q (ms), broker of $BASELINE (same clients, same run)" \
		    "$(get bw2.delivery_ms.$q)" "$(get mw2.delivery_ms.$q)" \
		    "$(ratio "$(get bw2.delivery_ms.$q)" "$(get mw2.delivery_ms.$q)")"
	done
	row "W1 ingest only, broker of $BASELINE: accepted alerts/s (min-max of $REPS)" \
	    "$(get bingest.accepted_per_s) ($(get bingest.range))" "" ""
fi
row "W2 latency samples: deliveries / acks" \
    "$(get w2.delivery_ms.n) / $(get w2.ack_ms.n)" \
    "$(get mw2.delivery_ms.n) / $(get mw2.ack_ms.n)" ""
row "W2 broker CPU busy (cores)" "$(get w2.broker_cpu_util)" \
    "$(get mw2.broker_cpu_util)" ""
row "W3 audit log written offline (audit API, signed by si-ncp): records, s" \
    "$(get w3gen.records), $(get w3gen.gen_s) s ($(awk -v b="$(get w3.log_bytes)" 'BEGIN { printf "%.0f MiB", b / 1048576 }'))" "" ""
row "W3 broker start-up on that log (chain check, dedup index), s" \
    "$(get w3.startup_s)" "" ""
row "W3 replay of all records to one node: records, s" \
    "$(get w3.replayed), $(get w3.replay_s) s" "" ""
row "W3 replay: records/s (each verified by the node)" \
    "$(get w3.replay_per_s)" "" ""
row "W3 replay: broker CPU s, busy (cores)" \
    "$(get w3.broker_cpu_s), $(get w3.broker_cpu_util)" "" ""
row "W3 broker streaming alone (reader decodes, verifies nothing): records/s" \
    "$(get w3raw.raw_replay_per_s) ($(get w3raw.raw_replayed) in $(get w3raw.raw_replay_s) s, broker CPU $(get w3raw.raw_broker_cpu_s) s)" "" ""
row "W4 $W4_SESSIONS nodes connect + mutual TLS + Welcome: s" \
    "$(get w4.connect_s) ($(get w4.sessions_ok) ok, $(get w4.sessions_failed) failed)" "" ""
row "W4 sessions/s; broker CPU ms per session" \
    "$(get w4.connect_per_s); $(get w4.broker_cpu_ms_per_session)" "" ""
row "W4 broker RSS: before, with $W4_SESSIONS idle sessions (KiB)" \
    "$(get w4.rss_before_kib), $(get w4.rss_idle_kib) ($(get w4.rss_per_session_kib) KiB/session)" "" ""
row "W5 one session, $W5_ALERTS blocking publishes (cpx_publish, each awaits its ack): acknowledged alerts/s" \
    "$(get w5.accepted_per_s) ($(get w5.accepted) in $(get w5.wall_s) s)" "" ""
row "W5 per-call latency p50 / p99 / max (ms)" \
    "$(get w5.call_ms.p50) / $(get w5.call_ms.p99) / $(get w5.call_ms.max)" "" ""
row "Limit: openssl speed ECDSA P-256 verify/s, 1 core" "$VERIFY" "" ""
row "Limit: x cores the broker uses ($CORES: threads busy >10% under ingest, ZMQ I/O aside, at most nproc; $(get broker.threads) threads in all)" \
    "$LIMIT" "" ""
row "W1 ingest only: accepted alerts/s as a fraction of the limit" \
    "$(div "$(get ingest.accepted_per_s)" "$LIMIT" "%.3f")" "" ""
row "W1 1 publisher: accepted alerts/s as a fraction of the limit" \
    "$(div "$(get w1p1.accepted_per_s)" "$LIMIT" "%.3f")" \
    "$(div "$(get mw1p1.accepted_per_s)" "$LIMIT" "%.3f")" ""
row "W1 4 publishers: accepted alerts/s as a fraction of the limit" \
    "$(div "$(get w1p4.accepted_per_s)" "$LIMIT" "%.3f")" \
    "$(div "$(get mw1p4.accepted_per_s)" "$LIMIT" "%.3f")" ""
row "(openssl speed ECDSA P-256 sign/s, 1 core)" "$SIGN" "" ""
row "(dd oflag=dsync, one synchronous 512-byte write, ms)" \
    "$(get dsync_ms)" "" ""
echo
echo "Durability: cpx fsyncs the audit log before every acknowledgement and"
echo "delivery (group commit per loop turn); Mosquitto has persistence on but"
echo "writes its database periodically (autosave), never fsyncs per message."
echo "Total run time: $(( $(date +%s) - T_START )) s."
} >"$WORK/table.md"

# The stage breakdown of W2 (CPX_TRACE build): p50 / p99 of each stage.
if [ "$(get w2t.trace.delivery.n)" != - ]; then
	stage() {
		printf '| %s | %s / %s | %s / %s |\n' "$2" \
		    "$(get w2t.trace.delivery.$1.p50)" \
		    "$(get w2t.trace.delivery.$1.p99)" \
		    "$(get w2t.trace.ack.$1.p50)" "$(get w2t.trace.ack.$1.p99)"
	}
	{
	echo
	echo "### W2: where the time goes (CPX_TRACE build, $(get w2t.trace.delivery.n) deliveries, $(get w2t.trace.ack.n) acks)"
	echo
	echo "Microseconds, p50 / p99 of each stage on its own (percentiles"
	echo "do not add up). Whole: publish-to-delivery p50 / p99 of this run"
	echo "$(get w2t.delivery_ms.p50) / $(get w2t.delivery_ms.p99) ms."
	echo
	echo "| stage | delivery p50 / p99 | ack p50 / p99 |"
	echo "|---|---|---|"
	stage sign "publisher signs and queues (client)"
	stage to_broker "to the broker: ZeroMQ I/O threads, TCP, TLS, decode"
	stage admit "admission (rights, rate)"
	stage verifier_wait "wait for a verifier"
	stage verify "verify (ECDSA P-256, signer cached)"
	stage result_wait "result back to the network thread"
	stage append "decide and append to the audit batch"
	stage commit_wait "wait for the commit"
	stage fsync "commit: write + fsync (records, high-water mark)"
	stage queue "queue the Ack / Delivery"
	stage to_node "send: flush, ZeroMQ I/O threads, TCP, TLS, decode"
	stage node_verify "subscriber verifies"
	stage total "whole (publisher before signing to handed over)"
	} >>"$WORK/table.md"
fi

if [ -s "$WORK/perf.self.txt" ]; then
	{
	echo
	echo "### Broker profile under W1, 1 publisher, 10 subscribers"
	echo
	echo "perf record -F 499 --call-graph dwarf, 6 s; self time:"
	echo
	echo '```'
	cat "$WORK/perf.self.txt"
	echo '```'
	echo
	echo "Inclusive time (children), main thread and ZMQ I/O thread:"
	echo
	echo '```'
	cat "$WORK/perf.children.txt"
	echo '```'
	} >>"$WORK/table.md"
fi
cat "$WORK/table.md"
cp "$WORK/table.md" "$BUILD/bench-table.md"
[ -f "$WORK/perf.children.txt" ] && cp "$WORK/perf.children.txt" \
    "$BUILD/bench-perf-children.txt"
cp "$RES" "$BUILD/bench-results.txt"
say "table also in $BUILD/bench-table.md, raw figures in $BUILD/bench-results.txt"
