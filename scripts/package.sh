#!/usr/bin/env bash
#
# package.sh: build cpx's Debian packages (cpx-broker, cpx-tools, libcpx1,
# libcpx-dev) from this tree with `dpkg-buildpackage -us -uc -b`, then
# lint them with lintian. The build runs in a copy of the tree under
# /tmp (the source tree gets no debian/tmp, obj-*/ or .debs), and the
# packages land in OUT (default build-deb/).
#
#   scripts/package.sh [--try-install] [OUT]
#
# --try-install (as root, on a machine you may change): also install the
# four packages with dpkg -i, check what they did (the cpx user, the
# state directory, the unit neither enabled nor started, the tools'
# versions), then purge them again.
#
# Not part of the test suite (a full build: minutes). Needs debhelper,
# lintian and the build dependencies of debian/control
# (scripts/install-deps.sh installs them all).

set -euo pipefail

TOP=$(cd -- "$(dirname -- "$0")/.." && pwd -P)
TRY_INSTALL=
if [ "${1:-}" = --try-install ]; then
	TRY_INSTALL=1
	shift
fi
OUT=${1:-$TOP/build-deb}
mkdir -p -- "$OUT"
OUT=$(cd -- "$OUT" && pwd -P)

die() {
	echo "package.sh: $*" >&2
	exit 1
}

for t in dpkg-buildpackage dh lintian dpkg-parsechangelog; do
	command -v "$t" >/dev/null ||
	    die "$t not found: run scripts/install-deps.sh"
done

# One version: project(VERSION) in CMakeLists.txt, which debian/changelog
# must repeat (a native package: no Debian revision).
want=$(sed -n 's/^project(cpx VERSION \([0-9.]*\).*/\1/p' "$TOP/CMakeLists.txt")
have=$(dpkg-parsechangelog -l "$TOP/debian/changelog" -S Version)
[ "$want" = "$have" ] ||
    die "debian/changelog is at $have, CMakeLists.txt at $want: add a" \
	"changelog entry (dch -v $want)"

WORK=$(mktemp -d /tmp/pkg-build.XXXXXX)
trap 'rm -rf -- "$WORK"' EXIT
SRC=$WORK/cpx-$want
mkdir -p "$SRC"
# The tree as it is now: tracked and new files, nothing ignored (build
# directories), nothing installed by npm.
(cd "$TOP" && git ls-files -z -co --exclude-standard |
    grep -zv -e '/node_modules/' -e '^debian/.*\.debhelper' |
    tar --null -T - --ignore-failed-read -cf - 2>/dev/null) |
    tar -C "$SRC" -xf -

echo "package.sh: building cpx $want in $SRC"
(cd "$SRC" && DEB_BUILD_OPTIONS="parallel=2 ${DEB_BUILD_OPTIONS:-}" \
    dpkg-buildpackage -us -uc -b) >"$WORK/build.log" 2>&1 || {
	tail -40 "$WORK/build.log" >&2
	cp "$WORK/build.log" "$OUT/build.log"
	die "dpkg-buildpackage failed; whole log in $OUT/build.log"
}
cp "$WORK/build.log" "$OUT/build.log"
arch=$(dpkg --print-architecture)
changes=$WORK/cpx_${want}_$arch.changes
debs=()
for p in cpx-broker cpx-tools libcpx1 libcpx-dev; do
	d=$WORK/${p}_${want}_$arch.deb
	[ -f "$d" ] || die "no $p package was built"
	cp "$d" "$OUT/"
	debs+=("$OUT/${d##*/}")
done
# The debug symbol packages too, which the .changes lists.
cp "$changes" "$WORK"/*.buildinfo "$WORK"/*-dbgsym_*.deb "$OUT/" \
    2>/dev/null || true
echo "package.sh: packages in $OUT:"
ls -l "${debs[@]}"

echo "package.sh: lintian"
# Every tag down to info (I:) and pedantic (P:), with its explanation.
lintian --info --display-info --pedantic --tag-display-limit 0 "$changes" \
    2>&1 | tee "$OUT/lintian.txt" || true
if grep -q '^E: ' "$OUT/lintian.txt"; then
	die "lintian reports errors (E:); see $OUT/lintian.txt"
fi

if [ -n "$TRY_INSTALL" ]; then
	[ "$(id -u)" = 0 ] || die "--try-install needs root"
	! dpkg-query -W cpx-broker >/dev/null 2>&1 ||
	    die "cpx-broker is installed already: not touching it"
	getent passwd cpx >/dev/null &&
	    die "a user cpx exists already: not touching it"
	purge() {
		dpkg --purge cpx-broker cpx-tools libcpx-dev libcpx1 \
		    >/dev/null 2>&1 || true
	}
	trap 'purge; rm -rf -- "$WORK"' EXIT
	echo "package.sh: dpkg -i"
	dpkg -i "${debs[@]}"
	getent passwd cpx >/dev/null || die "no user cpx after install"
	[ "$(stat -c %U:%a /var/lib/cpx)" = cpx:700 ] ||
	    die "/var/lib/cpx: $(stat -c %U:%a /var/lib/cpx), want cpx:700"
	[ -d /var/lib/cpx/audit ] || die "no /var/lib/cpx/audit"
	if [ -f /lib/systemd/system/cpx-broker.service ]; then
		st=$(systemctl is-enabled cpx-broker 2>/dev/null || true)
		[ "$st" != enabled ] || die "cpx-broker.service was enabled"
		! systemctl is-active -q cpx-broker 2>/dev/null ||
		    die "cpx-broker.service was started"
		echo "package.sh: unit installed, $st, not running"
	fi
	for t in cpx cpx-audit cpx-pki /usr/sbin/cpx-broker; do
		"$t" --version
	done
	[ "$(pkg-config --modversion cpx)" = "$want" ] ||
	    die "pkg-config cpx: not $want"
	echo "package.sh: dpkg --purge"
	purge
	trap 'rm -rf -- "$WORK"' EXIT
	! getent passwd cpx >/dev/null || die "user cpx left after purge"
	[ ! -d /var/lib/cpx ] || die "/var/lib/cpx left after purge"
	echo "package.sh: install and purge OK"
fi
