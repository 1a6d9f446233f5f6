#!/bin/sh
# pg-cluster.sh: a throwaway PostgreSQL 15 cluster on this machine, for the
# test suite, the benchmark and the demo. A primary, and optionally a
# streaming standby the primary waits for on every commit (synchronous
# replication), listening on 127.0.0.1 only, with their data, logs and unix
# sockets all under one directory. fsync stays on: durability is what the
# tests exercise.
#
#   pg-cluster.sh start DIR [PORT] [--standby PORT2] [--dev]
#	Create DIR (which must not hold another cluster), initdb a primary in
#	DIR/primary, create database cpx owned by role cpx_admin and the
#	broker's role cpx_broker, passwords in DIR/pgpass (mode 0600), and
#	with --standby a synchronous standby in DIR/standby. PORT 0 or absent
#	picks a free port. --dev lets cpx_broker create the schema itself
#	(development); otherwise run `cpx-audit init-db --dsn ADMIN-DSN
#	--grant cpx_broker`. On a DIR that already holds a cluster, start
#	starts again what `stop` stopped (same ports, same data).
#   pg-cluster.sh stop DIR [--rm]
#	Stop every server of DIR, even one half started; --rm then removes
#	DIR. Succeeds when nothing runs (or DIR does not exist).
#   pg-cluster.sh kill-primary DIR	kill -9 the current primary (a crash)
#   pg-cluster.sh promote DIR		promote the standby to primary
#   pg-cluster.sh status DIR		one line per server
#   pg-cluster.sh dsn DIR [ROLE] [--no-passfile]
#	A libpq DSN for ROLE (default cpx_broker) over TCP, naming every server
#	with target_session_attrs=read-write when there is a standby, and
#	passfile=DIR/pgpass unless --no-passfile. ROLE postgres (superuser)
#	gives a unix-socket DSN to the current primary.
#   pg-cluster.sh sql DIR [--role ROLE] SQL
#	Run SQL on database cpx of the current primary over the unix socket
#	(default ROLE postgres, the superuser) and print the rows unaligned.
#
# The standby starts as a copy of the primary's data made while the
# primary is still stopped (a cold base backup), then streams from it.
# PG_CLUSTER_TEMPLATE=DIR keeps there a stopped cluster with the database
# and roles made, and copies it for the next cluster instead of running
# initdb again (the tests set it: initdb costs seconds on a loaded
# machine); passwords are new for each cluster.
# As root, PostgreSQL's own programs run as the `postgres` user (PostgreSQL
# refuses to run as root) and DIR is given to that user; otherwise they run
# as the caller. Binaries: $PGBIN, default /usr/lib/postgresql/15/bin.
# Exit status: 0 done, 1 failed (the message says why), 2 usage, 3 the
# PostgreSQL binaries are missing (install postgresql-15).
# POSIX sh, plus `local` (dash, bash and busybox sh have it).
set -eu

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
# Start-up and promotion wait at most this long (seconds) before failing.
WAIT=${PG_CLUSTER_WAIT:-60}
# What the caller's environment says about PostgreSQL must not redirect
# the programs run here to another server.
unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGPASSFILE PGPASSWORD \
    PGSERVICE PGSERVICEFILE PGOPTIONS PGTARGETSESSIONATTRS PGDATA \
    PGSSLMODE 2>/dev/null || true

prog=pg-cluster
say() { printf '%s: %s\n' "$prog" "$*"; }
die() { printf '%s: %s\n' "$prog" "$*" >&2; exit 1; }
usage() {
	sed -n '/^#   pg-cluster.sh/p' "$0" | sed 's/^#   /usage: /' >&2
	exit 2
}

need_bin() {
	if [ ! -x "$PGBIN/initdb" ] || [ ! -x "$PGBIN/pg_ctl" ] ||
	    [ ! -x "$PGBIN/postgres" ] || [ ! -x "$PGBIN/psql" ]; then
		printf '%s: PostgreSQL 15 binaries not found in %s; install the Debian package postgresql-15 (scripts/install-deps.sh does) or set PGBIN\n' \
		    "$prog" "$PGBIN" >&2
		exit 3
	fi
}

is_root() { [ "$(id -u)" = 0 ]; }

# as_pg CMD...: run a PostgreSQL program as the user that owns the cluster.
as_pg() {
	if is_root; then
		if command -v runuser >/dev/null 2>&1; then
			runuser -u postgres -- "$@"
		else
			setpriv --reuid=postgres --regid=postgres \
			    --init-groups -- "$@"
		fi
	else
		"$@"
	fi
}

# absdir DIR: DIR as an absolute path (DIR must exist).
absdir() { (cd "$1" && pwd -P); }

# The directory's name goes into postgresql.conf between single quotes and
# into DSNs between spaces: keep it to characters that need no quoting.
check_dir_name() {
	case "$1" in
	*[!A-Za-z0-9/._+-]*)
		die "directory '$1' has characters other than letters, digits and /._+-; choose a simpler path" ;;
	esac
	# The unix socket path DIR/.s.PGSQL.NNNNN must fit in sun_path (108).
	if [ ${#1} -gt 90 ]; then
		die "directory path $1 is ${#1} characters; the unix socket inside it needs it under 90"
	fi
}

# State kept in DIR: ports (node=port lines), current (name of the node
# that is primary), NODE.killed (crashed on purpose: never restarted).
port_of() {
	sed -n "s/^$2=//p" "$1/ports" 2>/dev/null | head -n 1
}
current_primary() {
	if [ -f "$1/current" ]; then cat "$1/current"; else echo primary; fi
}
nodes_of() {
	for n in primary standby; do
		[ -d "$1/$n" ] && echo "$n"
	done
	return 0
}

# pick_port AVOID: a TCP port nobody listens on now (the caller retries if
# someone takes it before the server binds).
listening_ports() {
	for f in /proc/net/tcp /proc/net/tcp6; do
		[ -r "$f" ] || continue
		awk 'NR > 1 && $4 == "0A" { split($2, a, ":"); print a[2] }' "$f"
	done
}
pick_port() {
	local busy i r p hex
	busy=$(listening_ports | tr '\n' ' ')
	i=0
	while [ $i -lt 200 ]; do
		r=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
		p=$((20000 + r % 40000))
		hex=$(printf '%04X' "$p")
		case " $busy " in
		*" $hex "*) ;;
		*) if [ "$p" != "$1" ]; then echo "$p"; return 0; fi ;;
		esac
		i=$((i + 1))
	done
	die "no free TCP port found on 127.0.0.1"
}

random_password() {
	od -An -N18 -tx1 /dev/urandom | tr -d ' \n'
}

# write_conf DIR NODE PORT SYNC: the settings of one server, in a file of
# their own included by postgresql.conf (rewritten on each change).
write_conf() {
	local d="$1" node="$2" port="$3" sync="$4" f pport
	f="$d/$node/cpx-cluster.conf"
	cat >"$f.tmp" <<EOF
# Written by scripts/pg-cluster.sh; rewritten on start and promote.
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$d'
cluster_name = '$node'
# Durability is what the tests exercise: every commit is fsynced, and with
# a standby named below, also written to the standby's disk first.
fsync = on
synchronous_commit = on
full_page_writes = on
synchronous_standby_names = '$sync'
wal_level = replica
max_wal_senders = 4
wal_keep_size = 128MB
hot_standby = on
# Small and quick: a throwaway cluster for tests.
shared_buffers = 16MB
max_connections = 100
autovacuum = off
huge_pages = off
logging_collector = off
log_min_messages = warning
log_line_prefix = '%m [%p] %q%u@%d '
EOF
	if [ "$node" = standby ]; then
		pport=$(port_of "$d" primary)
		cat >>"$f.tmp" <<EOF
primary_conninfo = 'host=$d port=$pport user=postgres application_name=standby'
EOF
	fi
	mv "$f.tmp" "$f"
	if is_root; then chown postgres:postgres "$f"; fi
	grep -q "^include_if_exists = 'cpx-cluster.conf'" \
	    "$d/$node/postgresql.conf" ||
	    echo "include_if_exists = 'cpx-cluster.conf'" \
	    >>"$d/$node/postgresql.conf"
}

write_hba() {
	cat >"$1/pg_hba.conf" <<EOF
# Written by scripts/pg-cluster.sh. The unix socket lives in a directory
# only the cluster's owner can enter; TCP on loopback needs a password
# (scram-sha-256), and the superuser has none, so it cannot log in by TCP.
local   all           all                      trust
local   replication   all                      trust
host    all           all       127.0.0.1/32   scram-sha-256
EOF
	if is_root; then chown postgres:postgres "$1/pg_hba.conf"; fi
}

# psql_su DIR PORT DB: run psql as the superuser over the unix socket,
# SQL on stdin, stop at the first error.
psql_su() {
	"$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$1" -p "$2" \
	    -U postgres -d "$3" -At
}

log_tail() {
	if [ -f "$1" ]; then
		echo "--- last lines of $1:" >&2
		tail -n 15 "$1" >&2
	fi
}

# node_pid DIR NODE: the postmaster's pid if it runs, else nothing.
node_pid() {
	local pidf pid
	pidf="$1/$2/postmaster.pid"
	[ -f "$pidf" ] || return 0
	pid=$(head -n 1 "$pidf" 2>/dev/null || true)
	case "$pid" in '' | *[!0-9]*) return 0 ;; esac
	if kill -0 "$pid" 2>/dev/null; then echo "$pid"; fi
	return 0
}

# kill9 PID: kill -9 a postmaster and then its children (they would exit
# on their own when they notice, but a crash takes them all at once).
kill9() {
	local kids k i
	kids=$(ps -o pid= --ppid "$1" 2>/dev/null || true)
	kill -9 "$1" 2>/dev/null || true
	for k in $kids; do kill -9 "$k" 2>/dev/null || true; done
	# Gone, or a zombie its parent has not reaped yet.
	i=0
	while [ $i -lt 100 ] && [ -r "/proc/$1/stat" ] &&
	    ! awk '{ exit $3 == "Z" ? 0 : 1 }' "/proc/$1/stat" 2>/dev/null; do
		sleep 0.05
		i=$((i + 1))
	done
}

# start_node DIR NODE: start one server and wait until it answers.
start_node() {
	local d="$1" node="$2" port i
	port=$(port_of "$d" "$node")
	if [ -n "$(node_pid "$d" "$node")" ]; then
		return 0
	fi
	if ! as_pg "$PGBIN/pg_ctl" -D "$d/$node" -l "$d/$node.log" \
	    -w -t "$WAIT" -s start >/dev/null 2>&1; then
		say "the $node server (port $port) did not start within $WAIT s" >&2
		log_tail "$d/$node.log"
		return 1
	fi
	i=0
	until "$PGBIN/pg_isready" -q -h "$d" -p "$port" -t 1; do
		i=$((i + 1))
		if [ $i -ge "$WAIT" ]; then
			say "the $node server (port $port) does not accept connections after $WAIT s" >&2
			log_tail "$d/$node.log"
			return 1
		fi
		sleep 1
	done
}

# wait_sync DIR: until the primary sees the standby as synchronous.
wait_sync() {
	local d="$1" pport i st
	pport=$(port_of "$d" primary)
	i=0
	while :; do
		st=$(echo "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby';" |
		    psql_su "$d" "$pport" cpx 2>/dev/null || true)
		[ "$st" = sync ] && return 0
		i=$((i + 1))
		if [ $i -ge $((WAIT * 10)) ]; then
			say "the standby is not streaming synchronously after $WAIT s (state '${st:-none}')" >&2
			log_tail "$d/standby.log"
			return 1
		fi
		sleep 0.1
	done
}

# A bind failure in the log means another program took the port between
# pick_port and the server's bind.
bind_failed() {
	grep -q -e 'could not bind' -e 'Address already in use' "$1" \
	    2>/dev/null
}

cmd_start() {
	[ $# -ge 1 ] || usage
	dir=$1
	shift
	port=0 sport="" dev=0
	if [ $# -ge 1 ]; then
		case "$1" in --*) ;; *) port=$1; shift ;; esac
	fi
	while [ $# -gt 0 ]; do
		case "$1" in
		--standby)
			[ $# -ge 2 ] || usage
			sport=$2
			shift 2 ;;
		--dev) dev=1; shift ;;
		*) usage ;;
		esac
	done
	for p in $port $sport; do
		case "$p" in
		'' | *[!0-9]*) die "port '$p' is not a number (0 picks a free one)" ;;
		esac
	done
	need_bin
	if is_root && ! id -u postgres >/dev/null 2>&1; then
		die "running as root needs the system user 'postgres' to run the servers (the postgresql-15 package creates it)"
	fi
	if [ -f "$dir/.pg-cluster" ]; then
		restart "$(absdir "$dir")"
		return
	fi
	if [ -d "$dir" ] && [ -n "$(ls -A "$dir")" ]; then
		die "$dir is not empty and holds no cluster of this script; give a new or empty directory"
	fi
	mkdir -p "$dir"
	dir=$(absdir "$dir")
	check_dir_name "$dir"
	chmod 0700 "$dir"
	: >"$dir/.pg-cluster"
	if is_root; then
		chown postgres:postgres "$dir"
		if ! runuser -u postgres -- test -w "$dir"; then
			die "user postgres cannot write $dir (a parent directory is closed to it); use a directory under /tmp"
		fi
	fi
	cd "$dir"
	if ! create "$dir" "$port" "$sport" "$dev"; then
		cmd_stop "$dir" >/dev/null 2>&1 || true
		die "start failed; logs and data left in $dir (remove with: $0 stop $dir --rm)"
	fi
	describe "$dir"
}

# What a template holds, with the PostgreSQL version: a change here makes
# the old template unusable (it is made again).
TEMPLATE_LAYOUT="cpx-pg-cluster template 3"

# template_ok: $PG_CLUSTER_TEMPLATE holds a template of this layout,
# made by this PostgreSQL.
template_ok() {
	local t="${PG_CLUSTER_TEMPLATE:-}" want
	[ -n "$t" ] && [ -f "$t/PG_VERSION" ] || return 1
	want="$TEMPLATE_LAYOUT $("$PGBIN/postgres" --version)"
	[ "$(cat "$t/cpx-template" 2>/dev/null)" = "$want" ]
}

# from_template DIR: DIR/primary as a copy of $PG_CLUSTER_TEMPLATE (a
# stopped cluster with roles and database already made); 1 if there is
# no usable template.
from_template() {
	local d="$1" t="${PG_CLUSTER_TEMPLATE:-}"
	template_ok || return 1
	if ! cp -a "$t" "$d/primary" 2>/dev/null; then
		rm -rf "$d/primary"
		return 1
	fi
	rm -f "$d/primary/cpx-template"
	chmod 0700 "$d/primary"
	if is_root; then chown -R postgres:postgres "$d/primary"; fi
	return 0
}

# save_template DIR: copy the stopped DIR/primary to $PG_CLUSTER_TEMPLATE,
# made aside and renamed: a parallel run sees all of it or none.
save_template() {
	local d="$1" t="${PG_CLUSTER_TEMPLATE:-}"
	[ -n "$t" ] || return 0
	# Another run made one meanwhile: keep it (it may be being copied).
	template_ok && return 0
	rm -rf "$t" "$t.tmp.$$" 2>/dev/null || true
	if cp -a "$d/primary" "$t.tmp.$$" 2>/dev/null &&
	    echo "$TEMPLATE_LAYOUT $("$PGBIN/postgres" --version)" \
	    >"$t.tmp.$$/cpx-template" &&
	    mv -T "$t.tmp.$$" "$t" 2>/dev/null; then
		return 0
	fi
	rm -rf "$t.tmp.$$"
	return 0
}

# start_server DIR NODE PORT AUTO: start DIR/NODE (primary, or standby:
# a copy of the primary streaming from it) on PORT (AUTO 1: on a bind
# failure, on another free port, not the primary's, recorded in
# DIR/ports); prints the port it runs on.
start_server() {
	local d="$1" node="$2" port="$3" auto="$4" tries=0 avoid=0
	[ "$node" = standby ] && avoid=$(port_of "$d" primary)
	while :; do
		write_conf "$d" "$node" "$port" ""
		if start_node "$d" "$node" 2>"$d/start.err"; then
			break
		fi
		tries=$((tries + 1))
		if [ "$auto" = 1 ] && [ $tries -lt 5 ] &&
		    bind_failed "$d/$node.log"; then
			port=$(pick_port "$avoid")
			if [ "$node" = primary ]; then
				echo "primary=$port" >"$d/ports"
			else
				printf 'primary=%s\nstandby=%s\n' "$avoid" \
				    "$port" >"$d/ports"
			fi
			: >"$d/$node.log"
			continue
		fi
		cat "$d/start.err" >&2
		return 1
	done
	rm -f "$d/start.err"
	echo "$port"
}

# init_primary DIR PORT AUTO: a new, stopped cluster in DIR/primary with
# database cpx and roles cpx_admin and cpx_broker (passwords not set
# yet). From the template if there is one, else by initdb, a start on
# PORT (AUTO as for start_server) and a stop (and the template is made
# from it).
init_primary() {
	local d="$1" port="$2" auto="$3"
	if from_template "$d"; then
		return 0
	fi
	rm -rf "$d/primary"
	# --no-sync: the files initdb writes are synced by the first
	# checkpoint; every commit after start is fsynced as always.
	# 1 MB WAL segments and no database "postgres": a small cluster,
	# quick to copy for the next test and for a standby.
	if ! as_pg "$PGBIN/initdb" -D "$d/primary" -U postgres \
	    --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 \
	    --locale=C --wal-segsize=1 --no-sync --no-instructions \
	    >"$d/initdb.log" 2>&1; then
		say "initdb failed" >&2
		log_tail "$d/initdb.log"
		return 1
	fi
	write_hba "$d/primary"
	port=$(start_server "$d" primary "$port" "$auto") || return 1
	# Least privilege: cpx_admin owns database cpx (and through
	# pg_database_owner its schema public); cpx_broker may connect and
	# use schema public, and gets its rights on the tables from
	# `cpx-audit init-db --grant cpx_broker` (or, with --dev, creates
	# them itself).
	psql_su "$d" "$port" postgres >/dev/null <<EOF || return 1
CREATE ROLE cpx_admin LOGIN;
CREATE ROLE cpx_broker LOGIN;
CREATE DATABASE cpx OWNER cpx_admin;
REVOKE ALL ON DATABASE cpx FROM PUBLIC;
GRANT CONNECT ON DATABASE cpx TO cpx_broker;
EOF
	psql_su "$d" "$port" cpx >/dev/null <<EOF || return 1
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO cpx_broker;
DROP DATABASE postgres;
CHECKPOINT;
EOF
	as_pg "$PGBIN/pg_ctl" -D "$d/primary" -m fast -w -t "$WAIT" -s stop \
	    >/dev/null 2>&1 || return 1
	save_template "$d"
}

create() {
	local d="$1" port="$2" sport="$3" dev="$4" auto=0 sauto=0
	local admin_pw broker_pw grant
	if [ "$port" = 0 ]; then auto=1; port=$(pick_port 0); fi
	echo "primary=$port" >"$d/ports"
	echo primary >"$d/current"
	init_primary "$d" "$port" "$auto" || return 1
	port=$(port_of "$d" primary)
	write_hba "$d/primary"
	if [ -n "$sport" ]; then
		if [ "$sport" = 0 ]; then
			sauto=1
			sport=$(pick_port "$port")
		fi
		echo "standby=$sport" >>"$d/ports"
		# The standby starts as a copy of the stopped primary (a
		# cold base backup: no checkpoint to force, nothing to
		# stream but what the primary writes from now on).
		if ! cp -a "$d/primary" "$d/standby"; then
			say "copy of the primary for the standby failed" >&2
			return 1
		fi
		as_pg touch "$d/standby/standby.signal"
	fi
	port=$(start_server "$d" primary "$port" "$auto") || return 1
	admin_pw=$(random_password)
	broker_pw=$(random_password)
	# The password file libpq reads (PGPASSFILE or passfile= in the DSN):
	# the caller's, mode 0600, created before any password is set.
	(umask 077 && : >"$d/pgpass.tmp")
	cat >"$d/pgpass.tmp" <<EOF
*:*:*:cpx_admin:$admin_pw
*:*:*:cpx_broker:$broker_pw
EOF
	mv "$d/pgpass.tmp" "$d/pgpass"
	grant=""
	if [ "$dev" = 1 ]; then
		grant="GRANT CREATE ON SCHEMA public TO cpx_broker;"
	fi
	# One transaction: one commit to wait for (before the primary
	# waits for a standby: the standby gets it by streaming).
	psql_su "$d" "$port" cpx >/dev/null <<EOF || return 1
BEGIN;
ALTER ROLE cpx_admin PASSWORD '$admin_pw';
ALTER ROLE cpx_broker PASSWORD '$broker_pw';
$grant
COMMIT;
EOF
	[ -n "$sport" ] || return 0
	start_server "$d" standby "$sport" "$sauto" >/dev/null || return 1
	# Only now does the primary wait for the standby on each commit.
	write_conf "$d" primary "$port" standby
	as_pg "$PGBIN/pg_ctl" -D "$d/primary" -s reload >/dev/null
	wait_sync "$d"
}

# restart DIR: start again the servers `stop` stopped; a server killed on
# purpose stays down (it was the old primary: starting it would make two).
restart() {
	local d="$1" n
	cd "$d"
	for n in $(nodes_of "$d"); do
		[ -f "$d/$n.killed" ] && continue
		start_node "$d" "$n" || die "start of $n failed"
	done
	describe "$d"
}

describe() {
	local n
	for n in $(nodes_of "$1"); do
		[ -f "$1/$n.killed" ] && continue
		say "$n on 127.0.0.1:$(port_of "$1" "$n") (socket in $1)"
	done
	say "dsn: $(dsn_of "$1" cpx_broker 1)"
}

cmd_stop() {
	[ $# -ge 1 ] || usage
	d=$1 rm=0
	[ $# -ge 2 ] && [ "$2" = --rm ] && rm=1
	set +e
	[ -d "$d" ] || return 0
	if [ ! -f "$d/.pg-cluster" ]; then
		say "$d holds no cluster of this script; nothing stopped" >&2
		return 0
	fi
	d=$(absdir "$d")
	cd /
	# Data about to be removed needs no shutdown checkpoint.
	mode=fast
	[ $rm = 1 ] && mode=immediate
	for n in $(nodes_of "$d"); do
		pid=$(node_pid "$d" "$n")
		[ -n "$pid" ] || continue
		if ! as_pg "$PGBIN/pg_ctl" -D "$d/$n" -m $mode -w -t 15 -s \
		    stop >/dev/null 2>&1; then
			pid=$(node_pid "$d" "$n")
			[ -n "$pid" ] && kill9 "$pid"
		fi
	done
	if [ $rm = 1 ]; then
		rm -rf "$d"
	fi
	return 0
}

cmd_kill_primary() {
	[ $# -eq 1 ] || usage
	d=$(absdir "$1")
	n=$(current_primary "$d")
	pid=$(node_pid "$d" "$n")
	[ -n "$pid" ] || die "the primary ($n) of $d is not running"
	kill9 "$pid"
	: >"$d/$n.killed"
	say "killed the primary ($n, pid $pid) with SIGKILL"
}

cmd_promote() {
	[ $# -eq 1 ] || usage
	need_bin
	d=$(absdir "$1")
	cd "$d"
	[ -d "$d/standby" ] || die "$d has no standby to promote"
	[ "$(current_primary "$d")" = standby ] &&
	    die "the standby of $d is already the primary"
	[ -n "$(node_pid "$d" standby)" ] || die "the standby of $d is not running"
	# The new primary has no standby of its own: it must not wait for one.
	write_conf "$d" standby "$(port_of "$d" standby)" ""
	if ! as_pg "$PGBIN/pg_ctl" -D "$d/standby" -w -t "$WAIT" -s \
	    promote >/dev/null 2>&1; then
		say "promotion of the standby did not finish within $WAIT s" >&2
		log_tail "$d/standby.log"
		exit 1
	fi
	as_pg "$PGBIN/pg_ctl" -D "$d/standby" -s reload >/dev/null
	echo standby >"$d/current"
	say "standby promoted: primary on 127.0.0.1:$(port_of "$d" standby)"
}

cmd_status() {
	[ $# -eq 1 ] || usage
	need_bin
	d=$(absdir "$1")
	cur=$(current_primary "$d")
	for n in $(nodes_of "$d"); do
		port=$(port_of "$d" "$n")
		# A killed server leaves its postmaster.pid behind: the marker
		# kill-primary wrote says more than the pid file.
		if [ -f "$d/$n.killed" ]; then
			state="down (killed)"
		elif [ -n "$(node_pid "$d" "$n")" ]; then
			rec=$(echo "SELECT CASE WHEN pg_is_in_recovery() THEN 'standby' ELSE 'primary' END;" |
			    psql_su "$d" "$port" cpx 2>/dev/null || echo "not answering")
			state="running, $rec"
			if [ "$rec" = primary ]; then
				sync=$(echo "SELECT string_agg(application_name || ' ' || sync_state, ', ') FROM pg_stat_replication;" |
				    psql_su "$d" "$port" cpx 2>/dev/null || true)
				[ -n "$sync" ] && state="$state, replicas: $sync"
			fi
		else
			state="stopped"
		fi
		mark=""
		[ "$n" = "$cur" ] && mark=" [current primary]"
		echo "$n 127.0.0.1:$port $state$mark"
	done
}

# dsn_of DIR ROLE PASSFILE: see `dsn` above.
dsn_of() {
	local d="$1" role="$2" pf="$3" hosts ports n s
	if [ "$role" = postgres ]; then
		echo "host=$d port=$(port_of "$d" "$(current_primary "$d")") dbname=cpx user=postgres"
		return 0
	fi
	hosts="" ports=""
	for n in $(nodes_of "$d"); do
		hosts="$hosts${hosts:+,}127.0.0.1"
		ports="$ports${ports:+,}$(port_of "$d" "$n")"
	done
	s="host=$hosts port=$ports dbname=cpx user=$role"
	[ "$pf" = 1 ] && s="$s passfile=$d/pgpass"
	case "$hosts" in
	*,*) s="$s target_session_attrs=read-write" ;;
	esac
	echo "$s"
}

cmd_dsn() {
	[ $# -ge 1 ] || usage
	d=$(absdir "$1")
	shift
	role=cpx_broker pf=1
	while [ $# -gt 0 ]; do
		case "$1" in
		--no-passfile) pf=0 ;;
		-*) usage ;;
		*) role=$1 ;;
		esac
		shift
	done
	[ -f "$d/ports" ] || die "$d holds no cluster (start it with: $0 start $d)"
	dsn_of "$d" "$role" "$pf"
}

cmd_sql() {
	[ $# -ge 2 ] || usage
	need_bin
	d=$(absdir "$1")
	shift
	role=postgres
	if [ "$1" = --role ]; then
		[ $# -ge 3 ] || usage
		role=$2
		shift 2
	fi
	port=$(port_of "$d" "$(current_primary "$d")")
	"$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$d" -p "$port" \
	    -U "$role" -d cpx -At -c "$1"
}

[ $# -ge 1 ] || usage
cmd=$1
shift
case "$cmd" in
start) cmd_start "$@" ;;
stop) cmd_stop "$@" ;;
kill-primary) cmd_kill_primary "$@" ;;
promote) cmd_promote "$@" ;;
status) cmd_status "$@" ;;
dsn) cmd_dsn "$@" ;;
sql) cmd_sql "$@" ;;
*) usage ;;
esac
