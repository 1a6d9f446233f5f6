#!/bin/bash
# bench/run.sh: the cpx benchmark, one command (see BENCHMARKS.md).
#
# Builds cpx-broker and cpx-bench, makes a fresh development PKI and audit
# directory under a temporary directory, starts the broker on 127.0.0.1,
# runs workloads W1-W5, then W1 and W2 against Mosquitto (installed from
# Debian if missing) and against a 3-server NATS JetStream cluster
# (Debian's nats-server; cpx-bench built with libnats), then W1 and W2 on
# two cpx brokers sharing a PostgreSQL 15 log (scripts/pg-cluster.sh), on
# a primary alone and on a primary with a synchronous standby, measures
# the ECDSA P-256 verify limit with openssl speed, and prints the tables.
# Loopback only; every step is bounded.
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
#   FLOOR            1: W2 again with the broker's audit log on tmpfs
#                    (/dev/shm: fsync returns at once), the path without
#                    the disk, to measure the disk's share [1]
#   ONLY             latency: W1 ingest, W2 (and TRACE, BASELINE) and
#                    Mosquitto's W2 only;
#                    jetstream: the single cpx broker's W1 and W2 rows and
#                    JetStream's; pg: the same cpx rows and the
#                    PostgreSQL rows; replicated: both [all]
#   JS               0: no JetStream rows [1]
#   PG               0: no PostgreSQL rows [1]
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
TRACE_SET=${TRACE:-}
TRACE=${TRACE:-1}
FLOOR=${FLOOR:-1}
BASELINE=${BASELINE:-}
ONLY=${ONLY:-}
KEEP=${KEEP:-0}
JS=${JS:-1}
PG=${PG:-1}
PORT=17443
MPORT=18883
# Two brokers on one PostgreSQL log; JetStream's clients and routes.
PGPORT_A=17451
PGPORT_B=17452
JPORT=14222
JRPORT=16222
case "$ONLY" in
"" | latency) CLASSIC=1 ;;
jetstream | pg | replicated) CLASSIC=0 ;;
*) echo "run.sh: ONLY=$ONLY is not latency, jetstream, pg or replicated" >&2
	exit 2 ;;
esac
# The replicated rows only, unless asked: no trace build, no profile.
if [ "$CLASSIC" = 0 ]; then
	TRACE=${TRACE_SET:-0}
	PROFILE=0
	[ "$ONLY" = pg ] && JS=0
	[ "$ONLY" = jetstream ] && PG=0
fi
[ "$ONLY" = latency ] && { JS=0; PG=0; }

WORK=$(mktemp -d /tmp/cpx-bench.XXXXXX)
RES=$WORK/results
: >"$RES"
BPID=
MPID=
JPIDS=
PGA=
PGB=
PGDIRS=
SHMDIR=
T_START=$(date +%s)
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)

say() { printf '== %s\n' "$*" >&2; }

cleanup() {
	local p d
	[ -n "$BPID" ] && kill "$BPID" 2>/dev/null && wait "$BPID" 2>/dev/null
	[ -n "$MPID" ] && kill "$MPID" 2>/dev/null && wait "$MPID" 2>/dev/null
	for p in $PGA $PGB ${JPIDS//,/ }; do
		kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	for d in $PGDIRS; do
		"$ROOT/scripts/pg-cluster.sh" stop "$d" --rm >/dev/null 2>&1
	done
	[ -n "$SHMDIR" ] && rm -rf "$SHMDIR"
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
if [ "$JS" = 1 ]; then
	command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] ||
	    need="$need nats-server"
	pkg-config --exists libnats 2>/dev/null || need="$need libnats-dev"
fi
if [ -n "$need" ]; then
	say "installing$need"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2
	apt-get install -y -qq $need >&2
fi
MOSQUITTO=$(command -v mosquitto || echo /usr/sbin/mosquitto)
NATS=$(command -v nats-server || echo /usr/sbin/nats-server)

say "building in $BUILD"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCPX_TESTS=OFF -DCPX_BENCH=ON >"$WORK/cmake.log" 2>&1 ||
    { cat "$WORK/cmake.log" >&2; exit 1; }
cmake --build "$BUILD" -j"$(nproc)" --target cpx-broker cpx-bench \
    >>"$WORK/cmake.log" 2>&1 || { tail -40 "$WORK/cmake.log" >&2; exit 1; }
BROKER=$BUILD/broker/cpx-broker
BENCH=$BUILD/bench/cpx-bench
# The JetStream peer is built only when libnats was found.
if [ "$JS" = 1 ] && ! grep -q "cpx-bench: NATS JetStream peer" \
    "$WORK/cmake.log"; then
	say "cpx-bench built without libnats: no JetStream rows"
	JS=0
fi
if [ "$PG" = 1 ] && [ ! -x "${PGBIN:-/usr/lib/postgresql/15/bin}/initdb" ]; then
	say "PostgreSQL 15 not installed (postgresql-15): no PostgreSQL rows"
	PG=0
fi
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

# write_ini INI PORT STORE [CERT]: a broker configuration listening on
# PORT, STORE its store lines (audit_dir, or store = postgresql and its
# DSN), CERT the name of its certificate in the PKI [broker].
write_ini() {
	local cert=${4:-broker}
	cat >"$1" <<EOF
[broker]
listen = tcp://127.0.0.1:$2
ca = $PKI/ca.pem
cert = $PKI/$cert.pem
key = $PKI/$cert.key
crl = $PKI/crl.pem
policy = $ROOT/broker/policy.example.ini
$3
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
	write_ini "$WORK/broker.ini" "$PORT" "audit_dir = $1"
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

# launch NAME INI: start a broker on INI, logging to $WORK/NAME.log, and
# wait until it listens; its pid in LPID.
launch() {
	local i
	: >"$WORK/$1.log"
	(ulimit -n "$(ulimit -Hn)"; exec "$BROKER" -c "$2") \
	    2>>"$WORK/$1.log" &
	LPID=$!
	for i in $(seq 1 600); do
		grep -q "listening on" "$WORK/$1.log" && return 0
		kill -0 "$LPID" 2>/dev/null ||
		    { say "broker $1 did not start:"; cat "$WORK/$1.log" >&2;
		    LPID=; return 1; }
		sleep 0.1
	done
	say "broker $1 not listening after 60 s (its log: $WORK/$1.log)"
	return 1
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
# Four publishers, no subscriber: beside JetStream's and the two brokers'.
if [ "$JS" = 1 ] || [ "$PG" = 1 ]; then
	bench_reps ingest4 w1 -t cpx -e "$EP" -b "$BPID" -P 4 -S 0 \
	    -d "$W1_SECONDS"
fi
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
# The same broker with its audit log in memory: every fsync returns at
# once, so W2 there is cpx's path without the disk (a measurement of the
# disk's share only: nothing acknowledged on tmpfs survives a reboot).
if [ "$FLOOR" = 1 ] && { [ -z "$ONLY" ] || [ "$ONLY" = latency ]; } &&
    [ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ]; then
	SHMDIR=$(mktemp -d /dev/shm/cpx-bench-floor.XXXXXX)
	stop_broker
	start_broker "$SHMDIR/audit"
	bench fw2 w2 -t cpx -e "$EP" -b "$BPID" -P 1 -S 10 \
	    -d "$W2_SECONDS" -r "$W2_RATE"
	stop_broker
	rm -rf "$SHMDIR"
	SHMDIR=
	start_broker "$WORK/audit"
fi

if [ -z "$ONLY" ] && [ "$PROFILE" = 1 ] &&
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

if [ -z "$ONLY" ]; then
bench w4 w4 -e "$EP" -b "$BPID" -c "$W4_SESSIONS"
bench w5 w5 -e "$EP" -b "$BPID" -n "$W5_ALERTS"
fi
echo "broker.log_bytes $(stat -c %s "$WORK/broker.log")" >>"$RES"
stop_broker

# W3: a log written offline through the broker's audit API, then replayed.
if [ -z "$ONLY" ]; then
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

if [ "$CLASSIC" = 1 ]; then
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
fi

# --- NATS JetStream ----------------------------------------------------------

# Three nats-server processes on loopback in one cluster (routes between
# them, plain TCP on loopback as PostgreSQL's replication is below), each
# with JetStream and its file store in the work directory (on disk), mutual
# TLS for clients with the same CA and certificates as cpx; one stream of
# three replicas over alerts.> (cpx-bench jsinit). The file store is as
# JetStream ships it: written through the page cache, fsynced every two
# minutes; nats-server 2.9 (Debian 12) has no setting to fsync each message
# (sync_interval came with 2.10), so an ack means "in the memory of two of
# three servers", not on a disk.
if [ "$JS" = 1 ]; then
	say "NATS JetStream: 3 servers on 127.0.0.1:$JPORT-$((JPORT + 2))"
	mkdir -p "$WORK/js"
	routes='' JEPS=''
	for i in 1 2 3; do
		routes="$routes${routes:+, }nats-route://127.0.0.1:$((JRPORT + i - 1))"
		JEPS="$JEPS${JEPS:+,}tls://127.0.0.1:$((JPORT + i - 1))"
	done
	for i in 1 2 3; do
		mkdir -p "$WORK/js/n$i"
		cat >"$WORK/js/n$i.conf" <<EOF
# Written by bench/run.sh.
server_name: n$i
listen: 127.0.0.1:$((JPORT + i - 1))
tls {
	cert_file: "$PKI/broker.pem"
	key_file: "$PKI/broker.key"
	ca_file: "$PKI/ca.pem"
	verify: true
	timeout: 5
}
jetstream {
	store_dir: "$WORK/js/n$i"
	max_file_store: 16G
	max_memory_store: 512M
}
cluster {
	name: cpxbench
	listen: 127.0.0.1:$((JRPORT + i - 1))
	routes: [ $routes ]
}
EOF
		"$NATS" -c "$WORK/js/n$i.conf" 2>"$WORK/js/n$i.log" &
		JPIDS="$JPIDS${JPIDS:+,}$!"
	done
	if "$BENCH" jsinit -k "$PKI" -e "$JEPS" >"$WORK/jsinit.out" \
	    2>"$WORK/jsinit.err"; then
		put js "$WORK/jsinit.out"
		bench_reps jingest w1 -t js -e "$JEPS" -b "$JPIDS" -P 1 -S 0 \
		    -d "$W1_SECONDS"
		bench_reps jingest4 w1 -t js -e "$JEPS" -b "$JPIDS" -P 4 -S 0 \
		    -d "$W1_SECONDS"
		bench_reps jw1p1 w1 -t js -e "$JEPS" -b "$JPIDS" -P 1 -S 10 \
		    -d "$W1_SECONDS"
		bench_reps jw1p4 w1 -t js -e "$JEPS" -b "$JPIDS" -P 4 -S 10 \
		    -d "$W1_SECONDS"
		bench jw2 w2 -t js -e "$JEPS" -b "$JPIDS" -P 1 -S 10 \
		    -d "$W2_SECONDS" -r "$W2_RATE"
		# Each publish awaited (js_Publish), offered at W2's rate:
		# the rate one synchronous publisher reaches, beside cpx W5.
		bench jw2s w2 -t js -s -e "$JEPS" -b "$JPIDS" -P 1 -S 10 \
		    -d "$W2_SECONDS" -r "$W2_RATE"
	else
		say "JetStream: the stream could not be created (no rows):"
		cat "$WORK/jsinit.err" "$WORK/js/n1.log" | tail -20 >&2
	fi
	for p in ${JPIDS//,/ }; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	JPIDS=
	echo "js.store_bytes $(du -sb "$WORK/js" | cut -f1)" >>"$RES"
	rm -rf "$WORK/js"
fi

# --- two cpx brokers on PostgreSQL ------------------------------------------

# pg_rows NAME [--standby]: a PostgreSQL 15 primary (with a synchronous
# streaming standby) from scripts/pg-cluster.sh, brokers A and B (their own
# certificates) on its DSN, publishers split between them (publisher k on
# broker k mod 2) and subscribers on both (subscriber k on broker k mod 2);
# W1 and W2 as for the single broker, results under NAME.*. The broker
# CPU is A's and B's; PostgreSQL's own is NAME.pg_cpu_s over all of them.
pg_rows() {
	local name=$1 sb='' dir dsn eps pids pg0 pg1
	[ "${2:-}" = --standby ] && sb="--standby 0"
	dir=$(mktemp -d /tmp/cpx-bench-pg.XXXXXX)
	PGDIRS="$PGDIRS $dir"
	say "$name: PostgreSQL in $dir: pg-cluster.sh start $dir 0 $sb --dev"
	# shellcheck disable=SC2086
	if ! "$ROOT/scripts/pg-cluster.sh" start "$dir" 0 $sb --dev \
	    >"$WORK/$name.pg.log" 2>&1; then
		say "$name: PostgreSQL did not start (no rows):"
		tail -20 "$WORK/$name.pg.log" >&2
		return 0
	fi
	dsn=$("$ROOT/scripts/pg-cluster.sh" dsn "$dir")
	# settings as PostgreSQL reports them, for the table
	"$ROOT/scripts/pg-cluster.sh" sql "$dir" "SELECT name || ' ' || setting FROM pg_settings WHERE name IN ('synchronous_commit', 'synchronous_standby_names', 'fsync', 'wal_sync_method', 'shared_buffers', 'max_connections') ORDER BY name" 2>/dev/null |
	    awk -v n="$name" 'NF { print n ".pg." $1, ($2 == "" ? "-" : $2) }' \
	    >>"$RES" || true
	write_ini "$WORK/$name-a.ini" "$PGPORT_A" "store = postgresql
store_dsn = $dsn"
	write_ini "$WORK/$name-b.ini" "$PGPORT_B" "store = postgresql
store_dsn = $dsn" cpx-broker-b
	if ! launch "$name-a" "$WORK/$name-a.ini"; then
		return 0
	fi
	PGA=$LPID
	if ! launch "$name-b" "$WORK/$name-b.ini"; then
		kill "$PGA" 2>/dev/null || true
		wait "$PGA" 2>/dev/null || true
		PGA=
		return 0
	fi
	PGB=$LPID
	eps=tcp://127.0.0.1:$PGPORT_A,tcp://127.0.0.1:$PGPORT_B
	pids=$PGA,$PGB
	pg0=$(pg_cpu "$dir")
	bench_reps "$name.ingest" w1 -t cpx -e "$eps" -b "$pids" -P 1 -S 0 \
	    -d "$W1_SECONDS"
	bench_reps "$name.ingest4" w1 -t cpx -e "$eps" -b "$pids" -P 4 -S 0 \
	    -d "$W1_SECONDS"
	bench_reps "$name.w1p1" w1 -t cpx -e "$eps" -b "$pids" -P 1 -S 10 \
	    -d "$W1_SECONDS"
	bench_reps "$name.w1p4" w1 -t cpx -e "$eps" -b "$pids" -P 4 -S 10 \
	    -d "$W1_SECONDS"
	bench "$name.w2" w2 -t cpx -e "$eps" -b "$pids" -P 1 -S 10 \
	    -d "$W2_SECONDS" -r "$W2_RATE"
	pg1=$(pg_cpu "$dir")
	echo "$name.pg_cpu_s $(awk -v a="$pg0" -v b="$pg1" \
	    'BEGIN { printf "%.1f", b - a }')" >>"$RES"
	echo "$name.records $("$ROOT/scripts/pg-cluster.sh" sql "$dir" \
	    "SELECT count(*) FROM cpx_records" 2>/dev/null | head -1)" >>"$RES"
	for p in $PGA $PGB; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	PGA='' PGB=''
	grep -i -E 'error|fatal|refus' "$WORK/$name-a.log" "$WORK/$name-b.log" |
	    sort | uniq -c | sort -rn | head -5 >&2 || true
	"$ROOT/scripts/pg-cluster.sh" stop "$dir" --rm >/dev/null 2>&1 || true
	PGDIRS=${PGDIRS/ $dir/}
}

# pg_cpu DIR: CPU seconds used so far by the PostgreSQL servers of DIR
# and their processes (WAL writer, sender and receiver, the brokers'
# backends while connected); other clusters on the machine aside.
pg_cpu() {
	local hz p m
	hz=$(getconf CLK_TCK)
	for m in $(head -qn 1 "$1"/*/postmaster.pid 2>/dev/null); do
		echo "$m"
		pgrep -P "$m"
	done | while read -r p; do
		awk '{ sub(/^[^)]*\) /, ""); print $12 + $13 }' \
		    "/proc/$p/stat" 2>/dev/null
	done | awk -v hz="$hz" '{ s += $1 } END { printf "%.2f", s / hz }'
}

if [ "$PG" = 1 ]; then
	# Broker B signs its checkpoints with its own certificate.
	# shellcheck source=scripts/lib/demo.sh
	. "$ROOT/scripts/lib/demo.sh"
	if pki_issue_broker "$PKI" cpx-broker-b >&2; then
		pg_rows pgp
		pg_rows pgs --standby
	else
		say "no certificate for broker B: no PostgreSQL rows"
	fi
fi

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
NATSV=$( ("$NATS" --version 2>/dev/null || true) | sed 's/.*v//')
PGV=$("${PGBIN:-/usr/lib/postgresql/15/bin}/postgres" --version 2>/dev/null |
    awk '{ print $3 }')
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

# row WORKLOAD CPX MOSQUITTO CPX/MOSQUITTO [JETSTREAM CPX/JETSTREAM]
row() {
	printf '| %s | %s | %s | %s | %s | %s |\n' "$1" "$2" "$3" "$4" \
	    "${5:-}" "${6:-}"
}
ratio() { div "$1" "$2" "%.2f"; }
# w2_rows KEY LABEL: W2 publish-to-delivery p50, p99, p99.9 of the run
# saved as KEY, beside Mosquitto's.
w2_rows() {
	local q
	for q in p50 p99 p999; do
		row "W2 publish-to-delivery $q (ms), $2" \
		    "$(get "$1.delivery_ms.$q")" "$(get mw2.delivery_ms.$q)" \
		    "$(ratio "$(get "$1.delivery_ms.$q")" "$(get mw2.delivery_ms.$q)")"
	done
}

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
[ "$JS" = 1 ] && echo "| NATS JetStream | nats-server $NATSV, libnats $(pkg-config --modversion libnats 2>/dev/null) (Debian); 3 servers, stream R3, file store |"
[ "$PG" = 1 ] && echo "| PostgreSQL | $PGV (Debian) |"
echo "| cpx | $GITREV$DIRTY, RelWithDebInfo |"
echo "| date | $(date -u +%Y-%m-%dT%H:%MZ) |"
echo "| load average at start (other work on the machine) | $LOAD0 |"
echo
echo "### Results"
echo
echo "| workload | cpx | Mosquitto | cpx / Mosquitto | JetStream | cpx / JetStream |"
echo "|---|---|---|---|---|---|"
row "W1 ingest only (1 publisher, no subscriber): accepted alerts/s (min-max of $REPS)" \
    "$(get ingest.accepted_per_s) ($(get ingest.range))" "" "" \
    "$(get jingest.accepted_per_s) ($(get jingest.range))" \
    "$(ratio "$(get ingest.accepted_per_s)" "$(get jingest.accepted_per_s)")"
row "W1 ingest only: broker CPU s per 1,000 alerts" \
    "$(get ingest.broker_cpu_s_per_1000)" "" "" \
    "$(get jingest.broker_cpu_s_per_1000)" \
    "$(ratio "$(get ingest.broker_cpu_s_per_1000)" "$(get jingest.broker_cpu_s_per_1000)")"
row "W1 ingest only, 4 publishers: accepted alerts/s (min-max of $REPS)" \
    "$(get ingest4.accepted_per_s) ($(get ingest4.range))" "" "" \
    "$(get jingest4.accepted_per_s) ($(get jingest4.range))" \
    "$(ratio "$(get ingest4.accepted_per_s)" "$(get jingest4.accepted_per_s)")"
for p in 1 4; do
	row "W1 $p publisher(s), 10 subscribers: accepted alerts/s, median of $REPS (min-max)" \
	    "$(get w1p$p.accepted_per_s) ($(get w1p$p.range))" \
	    "$(get mw1p$p.accepted_per_s) ($(get mw1p$p.range))" \
	    "$(ratio "$(get w1p$p.accepted_per_s)" "$(get mw1p$p.accepted_per_s)")" \
	    "$(get jw1p$p.accepted_per_s) ($(get jw1p$p.range))" \
	    "$(ratio "$(get w1p$p.accepted_per_s)" "$(get jw1p$p.accepted_per_s)")"
	row "W1 $p publisher(s): deliveries/s (verified by subscribers)" \
	    "$(get w1p$p.deliveries_per_s)" "$(get mw1p$p.deliveries_per_s)" \
	    "$(ratio "$(get w1p$p.deliveries_per_s)" "$(get mw1p$p.deliveries_per_s)")" \
	    "$(get jw1p$p.deliveries_per_s)" \
	    "$(ratio "$(get w1p$p.deliveries_per_s)" "$(get jw1p$p.deliveries_per_s)")"
	row "W1 $p publisher(s): broker CPU s per 1,000 alerts" \
	    "$(get w1p$p.broker_cpu_s_per_1000)" \
	    "$(get mw1p$p.broker_cpu_s_per_1000)" \
	    "$(ratio "$(get w1p$p.broker_cpu_s_per_1000)" "$(get mw1p$p.broker_cpu_s_per_1000)")" \
	    "$(get jw1p$p.broker_cpu_s_per_1000)" \
	    "$(ratio "$(get w1p$p.broker_cpu_s_per_1000)" "$(get jw1p$p.broker_cpu_s_per_1000)")"
	row "W1 $p publisher(s): CPU busy (cores): broker; benchmark clients" \
	    "$(get w1p$p.broker_cpu_util); $(div "$(get w1p$p.bench_cpu_s)" "$(get w1p$p.wall_s)")" \
	    "$(get mw1p$p.broker_cpu_util); $(div "$(get mw1p$p.bench_cpu_s)" "$(get mw1p$p.wall_s)")" "" \
	    "$(get jw1p$p.broker_cpu_util); $(div "$(get jw1p$p.bench_cpu_s)" "$(get jw1p$p.wall_s)")" ""
	row "W1 $p publisher(s): alerts / deliveries (missing, refused)" \
	    "$(get w1p$p.accepted) / $(get w1p$p.deliveries) ($(get w1p$p.missing_deliveries), $(get w1p$p.refused))" \
	    "$(get mw1p$p.accepted) / $(get mw1p$p.deliveries) ($(get mw1p$p.missing_deliveries), $(get mw1p$p.refused))" "" \
	    "$(get jw1p$p.accepted) / $(get jw1p$p.deliveries) ($(get jw1p$p.missing_deliveries), $(get jw1p$p.refused))" ""
done
for q in p50 p99 p999 max; do
	row "W2 $W2_RATE alerts/s for ${W2_SECONDS} s: publish-to-delivery $q (ms)" \
	    "$(get w2.delivery_ms.$q)" "$(get mw2.delivery_ms.$q)" \
	    "$(ratio "$(get w2.delivery_ms.$q)" "$(get mw2.delivery_ms.$q)")" \
	    "$(get jw2.delivery_ms.$q)" \
	    "$(ratio "$(get w2.delivery_ms.$q)" "$(get jw2.delivery_ms.$q)")"
done
for q in p50 p99 p999 max; do
	row "W2 publish-to-acknowledgement $q (ms)" \
	    "$(get w2.ack_ms.$q)" "$(get mw2.ack_ms.$q)" \
	    "$(ratio "$(get w2.ack_ms.$q)" "$(get mw2.ack_ms.$q)")" \
	    "$(get jw2.ack_ms.$q)" \
	    "$(ratio "$(get w2.ack_ms.$q)" "$(get jw2.ack_ms.$q)")"
done
if [ -n "$BASELINE" ]; then
	w2_rows bw2 "broker of $BASELINE (same clients, same run)"
	row "W1 ingest only, broker of $BASELINE: accepted alerts/s (min-max of $REPS)" \
	    "$(get bingest.accepted_per_s) ($(get bingest.range))" "" ""
fi
if [ "$(get fw2.delivery_ms.p50)" != - ]; then
	w2_rows fw2 "audit log on tmpfs (no disk: for the floor only)"
	row "W2 the disk's share of publish-to-delivery p50 / p99 / p99.9 (ms): on disk minus on tmpfs" \
	    "$(awk -v a="$(get w2.delivery_ms.p50)" -v b="$(get fw2.delivery_ms.p50)" \
	        -v c="$(get w2.delivery_ms.p99)" -v d="$(get fw2.delivery_ms.p99)" \
	        -v e="$(get w2.delivery_ms.p999)" -v f="$(get fw2.delivery_ms.p999)" \
	        'BEGIN { printf "%.2f / %.2f / %.2f", a - b, c - d, e - f }')" "" ""
fi
row "W2 latency samples: deliveries / acks" \
    "$(get w2.delivery_ms.n) / $(get w2.ack_ms.n)" \
    "$(get mw2.delivery_ms.n) / $(get mw2.ack_ms.n)" "" \
    "$(get jw2.delivery_ms.n) / $(get jw2.ack_ms.n)" ""
row "W2 broker CPU busy (cores)" "$(get w2.broker_cpu_util)" \
    "$(get mw2.broker_cpu_util)" "" "$(get jw2.broker_cpu_util)" ""
if [ "$JS" = 1 ]; then
	row "W2 JetStream, each publish awaited (js_Publish) at $W2_RATE/s offered: achieved alerts/s; ack p50 / p99 (ms); cpx W5 (cpx_publish, each awaited) beside it" \
	    "W5: $(get w5.accepted_per_s); $(get w5.call_ms.p50) / $(get w5.call_ms.p99)" "" "" \
	    "$(get jw2s.accepted_per_s); $(get jw2s.ack_ms.p50) / $(get jw2s.ack_ms.p99)" ""
fi
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
# What one accepted alert costs in CPU, and so the fraction of the limit
# these costs allow: the verification's share of all the CPU an alert
# takes (1 / verify/s over the CPU per alert), on cores shared with the
# signing publisher as here, and for a broker alone on its cores.
row "W1 ingest only: CPU per alert (µs): broker; publisher (signs, sends)" \
    "$(awk -v b="$(get ingest.broker_cpu_s_per_1000)" \
        -v c="$(get ingest.bench_cpu_s)" -v n="$(get ingest.accepted)" \
        'BEGIN { if (b == "-" || n + 0 == 0) print "-"; else
        printf "%.0f; %.0f", b * 1000, c / n * 1e6 }')" "" ""
row "W1 ingest only: fraction of the limit these costs allow: cores shared with the publisher; broker alone" \
    "$(awk -v v="$VERIFY" -v b="$(get ingest.broker_cpu_s_per_1000)" \
        -v c="$(get ingest.bench_cpu_s)" -v n="$(get ingest.accepted)" \
        -v k="$CORES" -v p="$(nproc)" \
        'BEGIN { if (b == "-" || n + 0 == 0 || v + 0 == 0) print "-"; else {
        b /= 1000; c /= n;
        f1 = p / ((b + c) * v * k); if (f1 > 1) f1 = 1;
        printf "%.3f; %.3f", f1, 1 / (v * b) } }')" "" ""
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
if [ "$JS" = 1 ]; then
echo "JetStream acknowledges a publish once a majority of the stream's three"
echo "replicas hold it; its file store fsyncs every 2 minutes (nats-server"
echo "$NATSV has no per-message sync setting), so the ack is in memory on two"
echo "servers, not on a disk."
fi
echo "Total run time: $(( $(date +%s) - T_START )) s."
} >"$WORK/table.md"

# The replicated configurations side by side, and the targets of issue 10.
if [ "$PG" = 1 ] || [ "$JS" = 1 ]; then
	# prow WORKLOAD KEY [FMT]: KEY of the file store, pgp, pgs, JetStream.
	prow() {
		printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$1" \
		    "$(get "$2")" "$(get "pgp.$2")" "$(get "pgs.$2")" \
		    "$(get "j$2")" "$(ratio "$(get "pgs.$2")" "$(get "$2")")" \
		    "$(ratio "$(get "$2")" "$(get "j$2")")"
	}
	{
	echo
	echo "### Replicated: two cpx brokers on PostgreSQL, NATS JetStream"
	echo
	echo "Two brokers (A, B) on one PostgreSQL 15 log (scripts/pg-cluster.sh,"
	echo "synchronous_commit = on): publisher k on broker k mod 2, subscriber"
	echo "k on broker k mod 2, so deliveries cross brokers through"
	echo "LISTEN/NOTIFY and a read by seq. \"Standby\": the primary waits for"
	echo "a synchronous streaming standby on every commit. JetStream: 3"
	echo "nats-server processes, stream R3, publisher k and subscriber k on"
	echo "server k mod 3. Broker CPU: both cpx brokers (PostgreSQL apart,"
	echo "below), all three nats-servers. Same clients, same run."
	echo
	echo "| workload | cpx, 1 broker, file store | cpx, 2 brokers, PG primary | cpx, 2 brokers, PG primary + sync standby | JetStream, 3 servers, R3 | 2 brokers + standby / 1 broker | 1 broker / JetStream |"
	echo "|---|---|---|---|---|---|---|"
	prow "W1 ingest, 1 publisher, no subscriber: accepted alerts/s (median of $REPS)" ingest.accepted_per_s
	prow "W1 ingest, 4 publishers, no subscriber: accepted alerts/s" ingest4.accepted_per_s
	prow "W1 ingest, 1 publisher: broker CPU s per 1,000 alerts" ingest.broker_cpu_s_per_1000
	for p in 1 4; do
		prow "W1 $p publisher(s), 10 subscribers: accepted alerts/s" w1p$p.accepted_per_s
		prow "W1 $p publisher(s): deliveries/s (verified)" w1p$p.deliveries_per_s
		prow "W1 $p publisher(s): missing deliveries" w1p$p.missing_deliveries
		prow "W1 $p publisher(s): refused or unanswered publishes" w1p$p.refused
	done
	for q in p50 p99 p999 max; do
		prow "W2 $W2_RATE alerts/s, 1 publisher: publish-to-delivery $q (ms)" w2.delivery_ms.$q
	done
	for q in p50 p99 max; do
		prow "W2 publish-to-acknowledgement $q (ms)" w2.ack_ms.$q
	done
	prow "W2 broker CPU busy (cores)" w2.broker_cpu_util
	echo "| PostgreSQL CPU s over all its rows (servers, WAL, backends) | | $(get pgp.pg_cpu_s) | $(get pgs.pg_cpu_s) | | | |"
	echo "| records in the shared log at the end | | $(get pgp.records) | $(get pgs.records) | | | |"
	echo "| PostgreSQL settings (synchronous_commit; synchronous_standby_names; wal_sync_method) | | $(get pgp.pg.synchronous_commit); $(get pgp.pg.synchronous_standby_names); $(get pgp.pg.wal_sync_method) | $(get pgs.pg.synchronous_commit); $(get pgs.pg.synchronous_standby_names); $(get pgs.pg.wal_sync_method) | | | |"
	echo
	echo "#### Targets (issue 10, this machine)"
	echo
	# verdict A OP B: met / NOT met, or "not measured".
	verdict() {
		awk -v a="$1" -v b="$3" -v op="$2" 'BEGIN {
			if (a == "-" || b == "-" || a == "" || b == "") {
				print "not measured"; exit }
			ok = (op == "<") ? (a + 0 < b + 0) : (a + 0 >= b + 0)
			print ok ? "met" : "NOT met" }'
	}
	third=$(awk -v a="$(get ingest.accepted_per_s)" 'BEGIN {
	    if (a == "-") print "-"; else printf "%.1f", a / 3 }')
	third4=$(awk -v a="$(get ingest4.accepted_per_s)" 'BEGIN {
	    if (a == "-") print "-"; else printf "%.1f", a / 3 }')
	echo "| target | figure | verdict |"
	echo "|---|---|---|"
	echo "| W2 p99 publish-to-delivery < 5 ms, two brokers, primary + sync standby | $(get pgs.w2.delivery_ms.p99) ms (ack p99 $(get pgs.w2.ack_ms.p99) ms) | $(verdict "$(get pgs.w2.delivery_ms.p99)" "<" 5) |"
	echo "| W1 ingest, two brokers on PG (standby) >= 1/3 of the file store's, 1 publisher | $(get pgs.ingest.accepted_per_s) vs $third | $(verdict "$(get pgs.ingest.accepted_per_s)" ">=" "$third") |"
	echo "| the same, 4 publishers (2 per broker) | $(get pgs.ingest4.accepted_per_s) vs $third4 | $(verdict "$(get pgs.ingest4.accepted_per_s)" ">=" "$third4") |"
	echo "| the same on the primary alone, 1 / 4 publishers | $(get pgp.ingest.accepted_per_s) / $(get pgp.ingest4.accepted_per_s) | $(verdict "$(get pgp.ingest.accepted_per_s)" ">=" "$third") / $(verdict "$(get pgp.ingest4.accepted_per_s)" ">=" "$third4") |"
	echo "| single-broker ingest >= JetStream's, 1 publisher | $(get ingest.accepted_per_s) vs $(get jingest.accepted_per_s) | $(verdict "$(get ingest.accepted_per_s)" ">=" "$(get jingest.accepted_per_s)") |"
	echo "| the same, 4 publishers | $(get ingest4.accepted_per_s) vs $(get jingest4.accepted_per_s) | $(verdict "$(get ingest4.accepted_per_s)" ">=" "$(get jingest4.accepted_per_s)") |"
	echo
	echo "Load average at start: $LOAD0; at the end: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine)."
	} >>"$WORK/table.md"
fi

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
