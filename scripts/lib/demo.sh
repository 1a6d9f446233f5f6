# scripts/lib/demo.sh: what the demo scripts share (sourced by
# scripts/demo.sh and scripts/pg-network.sh; POSIX sh). The caller sets
# top (the source tree) before sourcing it, and broker (the cpx-broker
# binary) before broker_start.
# shellcheck shell=sh disable=SC2154
#
#   step TEXT...                a bold "== TEXT" heading
#   run_cmd CMD...              show the command as typed, then run it
#   wait_for FILE PATTERN N [S] until N lines of FILE match, at most S s
#   broker_start NAME INI LOG PIDFILE
#                               start cpx-broker (stderr appended to LOG),
#                               wait until it listens
#   pki_issue_broker PKI NAME   a broker certificate PKI/NAME.pem/.key
#                               (CN=NAME) from the PKI's CA

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# run_cmd CMD...: show the command (quoted as typed, paths under the tree
# shortened), then run it.
run_cmd() {
	line='$'
	for a in "$@"; do
		case "$a" in
		*[[:space:]]*) line="$line '$a'" ;;
		*) line="$line $a" ;;
		esac
	done
	printf '%s\n' "$line" | sed "s|$top/build[^/ ]*/client/||g;
	    s|$top/build[^/ ]*/broker/||g; s|$top/||g"
	"$@"
}

# wait_for FILE PATTERN COUNT [SECONDS]: until COUNT lines match, at most
# SECONDS (default 15). Returns 1, saying so, on time-out.
wait_for() {
	i=0
	lim=$(( ${4:-15} * 10 ))
	while :; do
		# (a file not written yet: grep -c prints nothing, counted 0)
		n=$(grep -c -- "$2" "$1" 2>/dev/null || true)
		[ "${n:-0}" -lt "$3" ] || return 0
		i=$((i + 1))
		if [ $i -gt "$lim" ]; then
			echo "demo: timed out waiting for $3 line(s) '$2' in" \
			    "$1" >&2
			return 1
		fi
		sleep 0.1
	done
}

# broker_start NAME INI LOG PIDFILE: start build/broker/cpx-broker -c INI
# in the background, its stderr appended to LOG, its pid in PIDFILE, and
# wait (at most 15 s) until it logs "listening on". On failure print its
# log and return 1. Needs $broker (the binary).
broker_start() {
	n0=$(grep -c "listening on" "$3" 2>/dev/null || true)
	"$broker" -c "$2" 2>>"$3" &
	echo $! >"$4"
	i=0
	while :; do
		n=$(grep -c "listening on" "$3" 2>/dev/null || true)
		[ "${n:-0}" -le "${n0:-0}" ] || return 0
		if ! kill -0 "$(cat "$4")" 2>/dev/null; then
			echo "demo: broker $1 did not start; its log" \
			    "($3) ends:" >&2
			tail -n 20 "$3" | sed 's/^/    /' >&2
			rm -f "$4"
			return 1
		fi
		i=$((i + 1))
		if [ $i -gt 150 ]; then
			echo "demo: broker $1 not listening after 15 s" \
			    "(its log: $3)" >&2
			return 1
		fi
		sleep 0.1
	done
}

# pki_issue_broker PKI NAME: another broker certificate of the network CA
# made by certs/cpx-pki init PKI (its CA database and openssl.cnf, so
# cpx-pki revoke works on it too), CN=NAME, the same subjectAltName as the
# PKI's broker (localhost, 127.0.0.1), serverAuth and clientAuth; key mode
# 0600. Kept if PKI/NAME.pem exists.
pki_issue_broker() {
	[ -f "$1/$2.pem" ] && return 0
	[ -f "$1/db/openssl.cnf" ] || {
		echo "demo: $1/db/openssl.cnf missing: run" \
		    "certs/cpx-pki init $1 first" >&2
		return 1
	}
	(umask 077 &&
	    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
	    -out "$1/$2.key" 2>/dev/null) || return 1
	CPX_PKI_DIR=$1 CPX_PKI_SAN="DNS:localhost,IP:127.0.0.1" \
	    openssl req -new -config "$1/db/openssl.cnf" -key "$1/$2.key" \
	    -subj "/CN=$2" -out "$1/$2.csr" || return 1
	CPX_PKI_DIR=$1 CPX_PKI_SAN="DNS:localhost,IP:127.0.0.1" \
	    openssl ca -batch -notext -config "$1/db/openssl.cnf" \
	    -extensions v3_broker -in "$1/$2.csr" -out "$1/$2.pem" \
	    2>"$1/$2.err" || {
		cat "$1/$2.err" >&2
		rm -f "$1/$2.csr" "$1/$2.err" "$1/$2.pem"
		return 1
	}
	rm -f "$1/$2.csr" "$1/$2.err"
}
