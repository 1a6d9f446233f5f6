#!/bin/sh
# h2m-commands.sh: a help2man include file with the --help of each of
# cpx's commands, taken from the program itself (the commands listed
# under "Commands:" in `cpx --help`), so cpx(1) documents every option
# and cannot drift from it.
#
#   h2m-commands.sh PATH/TO/cpx OUT.h2m
set -eu
cpx=$1
out=$2
exec >"$out.tmp"
cmds=$("$cpx" --help | awk '/^Commands:/ { on = 1; next }
    on && /^$/ { exit }
    on && /^  [a-z]/ { print $1 }')
[ -n "$cmds" ] || { echo "$0: no commands in '$cpx --help'" >&2; exit 1; }
echo "[COMMANDS IN DETAIL]"
for c in $cmds; do
	echo ".SS \"cpx $c\""
	echo ".nf"
	"$cpx" "$c" --help | sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"
	echo ".fi"
done
mv -f "$out.tmp" "$out"
