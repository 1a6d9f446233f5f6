#!/bin/sh
# build.sh [DIR] [cmake args...]: configure and build cpx into DIR
# (default build/) with the tests. Used by demo.sh and test.sh.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-"$top/build"}
[ $# -gt 0 ] && shift
cmake -S "$top" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
cmake --build "$dir" -j"$(nproc)"
