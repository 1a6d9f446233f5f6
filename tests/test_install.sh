#!/usr/bin/env bash
#
# test_install.sh: the operators' package, as installed. `cmake --install`
# of the suite's build tree into a temporary prefix, then, from that
# prefix alone:
#   - the layout (programs, libcpx.so.N and its soname, header, cpx.pc,
#     example configurations, man pages, the systemd unit if there is one);
#   - every tool's --version prints "NAME VERSION" of project(VERSION);
#   - libcpx.so exports only cpx_ symbols (nm -D), no protobuf-c cpx__;
#   - cpx.h includes nothing of cpx's but cpx_version.h;
#   - every man page renders with `man -l` without a groff warning;
#   - the installed cpx-pki makes a PKI, the installed cpx-broker runs on
#     it, the installed cpx publishes and another node receives;
#   - tests/package_hello.c, built with `pkg-config --cflags --libs cpx`
#     only, connects, subscribes, publishes and gets its alert back
#     verified through the installed libcpx.
#
# Environment (tests/package.cmake): CPX_SOURCE_DIR, CPX_BINARY_DIR,
# CPX_VERSION, CPX_SOVERSION, CPX_TEST_CC, CPX_TEST_CFLAGS,
# CPX_SYSTEMD_UNITDIR.

set -euo pipefail

: "${CPX_SOURCE_DIR:?}" "${CPX_BINARY_DIR:?}" "${CPX_VERSION:?}"
: "${CPX_SOVERSION:?}"
CC=${CPX_TEST_CC:-cc}
T=$(mktemp -d /tmp/cpx-test-install.XXXXXX)
P=$T/prefix
BROKER_PID=

cleanup() {
	local rc=$?
	if [ -n "$BROKER_PID" ]; then
		kill -TERM "$BROKER_PID" 2>/dev/null || true
		wait "$BROKER_PID" 2>/dev/null || true
	fi
	if [ "$rc" -eq 0 ]; then
		rm -rf -- "$T"
	else
		echo "test_install: FAILED; files kept in $T" >&2
	fi
	exit "$rc"
}
trap cleanup EXIT

fail() {
	echo "test_install: FAIL: $*" >&2
	exit 1
}

step() {
	echo "== $*"
}

step "cmake --install into $P"
cmake --install "$CPX_BINARY_DIR" --prefix "$P" >"$T/install.log" 2>&1 ||
    { cat "$T/install.log" >&2; fail "cmake --install"; }

# The library directory as configured (lib, or lib/<triplet> for /usr).
LIBDIR=$(dirname "$(find "$P" -name "libcpx.so.$CPX_SOVERSION" | head -1)")
[ -d "$LIBDIR" ] || fail "no libcpx.so.$CPX_SOVERSION installed"

step "layout"
for f in sbin/cpx-broker bin/cpx bin/cpx-audit bin/cpx-pki; do
	[ -x "$P/$f" ] || fail "$f not installed as a program"
done
for f in include/cpx.h include/cpx_version.h \
    share/doc/cpx/examples/broker.example.ini \
    share/doc/cpx/examples/policy.example.ini \
    share/man/man1/cpx.1 share/man/man1/cpx-audit.1 \
    share/man/man1/cpx-pki.1 share/man/man8/cpx-broker.8 \
    share/man/man5/cpx-broker.ini.5 share/man/man5/cpx-policy.5 \
    share/man/man3/libcpx.3; do
	[ -f "$P/$f" ] || fail "$f not installed"
done
[ -L "$LIBDIR/libcpx.so" ] || fail "no libcpx.so development link"
[ -f "$LIBDIR/pkgconfig/cpx.pc" ] || fail "no cpx.pc"
for u in "$CPX_SOURCE_DIR"/systemd/*.service; do
	[ -f "$u" ] || continue
	case $CPX_SYSTEMD_UNITDIR in
	/*) ;;	# absolute: outside the prefix (a package build)
	*) [ -f "$P/$CPX_SYSTEMD_UNITDIR/${u##*/}" ] ||
	    fail "${u##*/} not installed in $CPX_SYSTEMD_UNITDIR" ;;
	esac
done
# Nothing internal: no static library, no internal header. (Pipes end
# in files or in a reader that reads all: under pipefail a grep -q that
# stops early fails the command before it.)
find "$P" -name '*.a' -o -name 'cpx_client.h' -o -name '*.pb-c.h' \
    >"$T/internal"
[ ! -s "$T/internal" ] || fail "internal files installed: $(cat "$T/internal")"

step "--version"
for t in bin/cpx bin/cpx-audit bin/cpx-pki sbin/cpx-broker; do
	want="${t##*/} $CPX_VERSION"
	got=$("$P/$t" --version) || fail "$t --version: exit $?"
	[ "$got" = "$want" ] || fail "$t --version: '$got', want '$want'"
done
# A newcomer's cpx-broker --help leads to the installed example config.
"$P/sbin/cpx-broker" --help >"$T/help" 2>&1 || fail "cpx-broker --help: exit $?"
grep "/share/doc/cpx/examples/broker.example.ini\$" "$T/help" >/dev/null ||
    fail "cpx-broker --help does not name the installed example config"
grep -q "^#define CPX_VERSION[[:space:]]*\"$CPX_VERSION\"" \
    "$P/include/cpx_version.h" || fail "cpx_version.h: not $CPX_VERSION"

step "libcpx.so: soname and exported symbols"
so=$(readelf -d "$LIBDIR/libcpx.so.$CPX_SOVERSION" |
    sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$so" = "libcpx.so.$CPX_SOVERSION" ] || fail "soname '$so'"
nm -D --defined-only "$LIBDIR/libcpx.so.$CPX_SOVERSION" |
    awk '$2 ~ /^[A-Za-z]$/ { sub(/@.*/, "", $3); print $3 }' |
    sort >"$T/symbols"
n=$(wc -l <"$T/symbols")
[ "$n" -ge 20 ] || fail "only $n symbols exported"
bad=$(grep -v '^cpx_' "$T/symbols" | grep -v '^LIBCPX_' || true)
[ -z "$bad" ] || fail "exported without the cpx_ prefix: $(echo $bad)"
bad=$(grep '^cpx__' "$T/symbols" || true)
[ -z "$bad" ] || fail "protobuf-c symbols exported: $(echo $bad | head -c 300)"
for s in cpx_version cpx_set_log_callback cpx_client_new cpx_client_run \
    cpx_publish_json cpx_subscribe_to cpx_replay_start cpx_event_json; do
	grep -qx "$s" "$T/symbols" || fail "$s not exported"
done
# Internal API of the same prefix stays inside.
for s in cpx_publish cpx_subscribe cpx_client_welcome identity_from_cert; do
	if grep -qx "$s" "$T/symbols"; then
		fail "internal $s exported"
	fi
done
echo "$n symbols, all cpx_"

step "cpx.h includes nothing internal"
inc=$(grep -h '^#[[:space:]]*include' "$P/include/cpx.h" |
    grep -v -e '<stddef.h>' -e '<stdint.h>' -e '"cpx_version.h"' || true)
[ -z "$inc" ] || fail "cpx.h includes: $inc"

step "man -l"
for page in "$P"/share/man/man*/*; do
	MANWIDTH=80 man --warnings -l "$page" >"$T/man.out" 2>"$T/man.err" ||
	    fail "man -l $page: exit $?"
	[ ! -s "$T/man.err" ] || fail "man -l $page: $(head -5 "$T/man.err")"
	grep -q '^NAME' "$T/man.out" || fail "man -l $page: no NAME"
done
man_has() {
	MANWIDTH=80 man -l "$P/share/man/$1" >"$T/man.out" 2>/dev/null
	grep -q -- "$2" "$T/man.out" || fail "$1 does not say $2"
}
man_has man1/cpx.1 --state-file			# cpx subscribe --help
man_has man5/cpx-broker.ini.5 max_sessions_per_node	# the example's keys
man_has man3/libcpx.3 cpx_subscribe_to			# cpx.h

step "installed cpx-pki, cpx-broker, cpx"
"$P/bin/cpx-pki" init "$T/pki" >"$T/pki.log" 2>&1 ||
    { cat "$T/pki.log" >&2; fail "cpx-pki init"; }
# A free port: bind-and-release is racy, so the broker's own start is the
# test: retry with another port if it could not listen.
for try in 1 2 3 4 5; do
	port=$((20000 + (RANDOM % 20000)))
	mkdir -p "$T/audit"
	cat >"$T/broker.ini" <<EOF
[broker]
listen = tcp://127.0.0.1:$port
ca = pki/ca.pem
cert = pki/broker.pem
key = pki/broker.key
crl = pki/crl.pem
policy = prefix/share/doc/cpx/examples/policy.example.ini
audit_dir = audit
metrics_listen = 127.0.0.1:0
EOF
	"$P/sbin/cpx-broker" -n -c "$T/broker.ini" >"$T/check.log" 2>&1 ||
	    { cat "$T/check.log" >&2; fail "cpx-broker -n"; }
	"$P/sbin/cpx-broker" -c "$T/broker.ini" >"$T/broker.log" 2>&1 &
	BROKER_PID=$!
	up=
	for _ in $(seq 1 100); do
		if grep -q "listening on" "$T/broker.log"; then
			up=1
			break
		fi
		kill -0 "$BROKER_PID" 2>/dev/null || break
		sleep 0.1
	done
	[ -n "$up" ] && break
	wait "$BROKER_PID" 2>/dev/null || true
	BROKER_PID=
done
[ -n "$up" ] || { cat "$T/broker.log" >&2; fail "broker did not start"; }
grep -q "cpx-broker $CPX_VERSION listening on" "$T/broker.log" ||
    fail "broker start line without its version"

export CPX_BROKER=tcp://127.0.0.1:$port CPX_PKI=$T/pki
"$P/bin/cpx" whoami --node si-ncp >"$T/whoami" 2>&1 ||
    { cat "$T/whoami" >&2; fail "cpx whoami"; }
grep -q "(cpx $CPX_VERSION)" "$T/whoami" ||
    fail "cpx whoami does not show the broker's version: $(cat "$T/whoami")"
"$P/bin/cpx" publish --node si-ncp --category vehicle --severity high \
    --handling network --summary "from the installed tree" \
    >"$T/pub" 2>&1 || { cat "$T/pub" >&2; fail "cpx publish"; }
"$P/bin/cpx" subscribe --node hr-ncp --after 0 --count 1 --timeout 20 \
    --json >"$T/sub" 2>"$T/sub.err" ||
    { cat "$T/sub.err" >&2; fail "cpx subscribe"; }
grep -q '"summary":"from the installed tree"' "$T/sub" ||
    fail "hr-ncp did not receive the alert: $(cat "$T/sub")"
grep -q '"verified":true' "$T/sub" || fail "alert not verified"

step "a program built with pkg-config --cflags --libs cpx"
export PKG_CONFIG_PATH=$LIBDIR/pkgconfig
[ "$(pkg-config --modversion cpx)" = "$CPX_VERSION" ] ||
    fail "cpx.pc version $(pkg-config --modversion cpx)"
# shellcheck disable=SC2046,SC2086
"$CC" -std=c11 -Wall -Wextra -Werror $CPX_TEST_CFLAGS -D_POSIX_C_SOURCE=200809L \
    -o "$T/package_hello" "$CPX_SOURCE_DIR/tests/package_hello.c" \
    $(pkg-config --cflags --libs cpx) 2>"$T/cc.err" ||
    { cat "$T/cc.err" >&2; fail "cannot build against the installed libcpx"; }
LD_LIBRARY_PATH=$LIBDIR "$T/package_hello" "$CPX_BROKER" "$T/pki" si-ncp \
    >"$T/hello" 2>"$T/hello.err" ||
    { cat "$T/hello" "$T/hello.err" >&2; fail "package_hello"; }
# Its log lines went to its callback, none to stderr.
[ ! -s "$T/hello.err" ] || fail "library wrote to stderr: $(cat "$T/hello.err")"
grep -q '"verified":true' "$T/hello" || fail "package_hello: $(cat "$T/hello")"
# The binary uses the installed library, not one of the build tree.
# (Through a file: grep -q stopping early would fail ldd under pipefail.)
LD_LIBRARY_PATH=$LIBDIR ldd "$T/package_hello" >"$T/ldd"
grep -q "$LIBDIR/libcpx.so" "$T/ldd" ||
    fail "package_hello is not linked to $LIBDIR/libcpx.so"
cat "$T/hello"

step "broker stops cleanly"
kill -TERM "$BROKER_PID"
wait "$BROKER_PID" || fail "broker exit status $?"
BROKER_PID=
echo "test_install: OK"
