#!/bin/bash
# bench/console.sh: the node console under a flood (BENCHMARKS.md, "Node
# console at 1,000 alerts/s"). Builds cpx-broker, cpx-console and
# cpx-bench (RelWithDebInfo, -DCPX_BENCH=ON), then runs bench/console.mjs:
# a broker, the console for HR's node, headless Chromium signed in on the
# live feed, and cpx-bench's open-loop publisher (SI) at RATE alerts/s for
# DURATION seconds. Prints "R key value" lines and a summary: publish -> alert
# event in the page and -> row in the DOM (p50/p99/max), alerts shown vs
# published, the console's CPU, the page's JS heap and DOM size at the
# start and the end. Loopback only; needs Debian's chromium and
# console/web/node_modules (scripts/install-deps.sh installs both).
#
# Environment (defaults in brackets):
#   BUILD     build directory [/tmp/cpx-bench-console-build]
#   RATE      alerts per second [1000]
#   DURATION  publishing time, seconds [20]
#   TAB       the page's tab while publishing [feed]; "status" leaves
#             the feed undrawn, to see what drawing costs
#   CPX_KEEP  1: keep the work directory [0]
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-/tmp/cpx-bench-console-build}
export RATE=${RATE:-1000} DURATION=${DURATION:-20}

cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	-DCPX_BENCH=ON -DCPX_TESTS=OFF >/dev/null
cmake --build "$BUILD" -j2 --target cpx-broker cpx-console cpx-bench \
	>/dev/null
CPX_SOURCE_DIR="$ROOT" CPX_BINARY_DIR="$BUILD" exec node "$ROOT/bench/console.mjs"
