#!/bin/sh
# install-deps.sh: install the Debian 12 packages cpx needs to build, test,
# fuzz and benchmark. Safe to run again; does nothing if all are present.
set -eu

PKGS="build-essential cmake pkg-config git ca-certificates openssl
libssl-dev libzmq3-dev libprotobuf-c-dev protobuf-c-compiler
libjansson-dev libinih-dev libcmocka-dev clang libclang-rt-14-dev
procps libsystemd-dev libmicrohttpd-dev systemd help2man man-db groff-base
strace curl debhelper lintian chromium
postgresql-15 libpq-dev nats-server libnats-dev"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
	    grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
# Node and npm for the console's front-end packages: Debian's, unless
# another build of Node (which carries its own npm) is installed already.
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"
# The console's npm packages (pinned by console/web/package-lock.json).
console_deps() {
	"$(dirname "$0")/console-deps.sh"
}
if [ -z "$missing" ]; then
	echo "install-deps: all packages present"
	console_deps
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	echo "install-deps: missing:$missing; run as root (or with sudo)" >&2
	exit 1
fi
echo "install-deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
console_deps
