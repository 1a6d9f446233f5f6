#!/bin/sh
# test_systemd.sh: systemd/cpx-broker.service is a unit systemd accepts
# and stays hardened. systemd-analyze verify checks it against a scratch
# root holding the built cpx-broker at the unit's path and the host's
# stock units (it prints nothing when all is well: any output is a
# failure), and systemd-analyze security --offline rates its exposure,
# which must stay at or under $MAX_EXPOSURE (of 10). Both run offline: no
# systemd as PID 1 is needed. Skipped (77) only if systemd-analyze is
# absent.
#
# usage: test_systemd.sh SOURCE_DIR CPX_BROKER
set -u

MAX_EXPOSURE=2.0
src=$1
broker=$2
unit=$src/systemd/cpx-broker.service

if ! command -v systemd-analyze >/dev/null 2>&1; then
	echo "SKIP: systemd-analyze not installed (apt-get install systemd)"
	exit 77
fi
[ -f "$unit" ] || { echo "FAIL: $unit missing"; exit 1; }
[ -x "$broker" ] || { echo "FAIL: $broker is not built"; exit 1; }

root=$(mktemp -d /tmp/cpx-test-systemd.XXXXXX) || exit 1
trap 'rm -rf "$root"' EXIT
fail=0

# What the unit must say (the directives an operator relies on).
for want in '^Type=notify$' '^ExecStartPre=/usr/sbin/cpx-broker -n ' \
    '^ExecReload=/bin/kill -HUP \$MAINPID$' '^User=cpx$' \
    '^StateDirectory=cpx$' '^LimitNOFILE=' '^CapabilityBoundingSet=$' \
    '^NoNewPrivileges=yes$' '^ProtectSystem=strict$' \
    '^SystemCallFilter=@system-service$' '^MemoryDenyWriteExecute=yes$' \
    '^PrivateTmp=yes$' '^ProtectHome=yes$' '^RestrictAddressFamilies='; do
	if ! grep -q "$want" "$unit"; then
		echo "FAIL: $unit has no line matching $want"
		fail=1
	fi
done
# The example configuration's audit log is in the unit's StateDirectory.
if ! grep -q '^audit_dir = /var/lib/cpx/' "$src/broker/broker.example.ini"
then
	echo "FAIL: broker.example.ini: audit_dir is not under /var/lib/cpx"
	fail=1
fi

# A root with the programs the unit runs and the units it refers to.
mkdir -p "$root/usr/sbin" "$root/bin" "$root/etc/systemd/system" \
    "$root/usr/lib/systemd" || exit 1
cp "$broker" "$root/usr/sbin/cpx-broker" && cp /bin/kill "$root/bin/kill" &&
    cp "$unit" "$root/etc/systemd/system/" &&
    cp -R /usr/lib/systemd/system "$root/usr/lib/systemd/" || exit 1

out=$(systemd-analyze verify --man=no --root="$root" \
    /etc/systemd/system/cpx-broker.service 2>&1)
rc=$?
if [ $rc -ne 0 ] || [ -n "$out" ]; then
	echo "FAIL: systemd-analyze verify (exit $rc):"
	echo "$out"
	fail=1
else
	echo "ok: systemd-analyze verify: no complaint"
fi

max=$(echo "$MAX_EXPOSURE" | awk '{ printf "%d", $1 * 10 }')
out=$(systemd-analyze security --offline=true --threshold="$max" \
    --root="$root" cpx-broker.service 2>&1)
rc=$?
score=$(echo "$out" | sed -n 's/.*Overall exposure level for cpx-broker.service: \([0-9.]*\).*/\1/p')
if [ -z "$score" ]; then
	echo "FAIL: systemd-analyze security gave no exposure level:"
	echo "$out"
	fail=1
elif [ $rc -ne 0 ]; then
	echo "FAIL: exposure $score is over $MAX_EXPOSURE; what is exposed:"
	echo "$out" | grep '✗'
	fail=1
else
	echo "ok: exposure level $score (at most $MAX_EXPOSURE)"
fi
exit $fail
