#!/bin/sh
# fuzz.sh [SECONDS]: build every libFuzzer harness (fuzz/fuzz_*.c) with
# clang and run each for SECONDS (default 30) on a copy of its seed corpus
# (fuzz/corpus/<name>/). Prints the executions each harness ran; exits
# non-zero on any crash, leak or sanitizer report.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-30}
dir="$top/build-fuzz"
CC=clang cmake -S "$top" -B "$dir" -DCMAKE_BUILD_TYPE=Debug -DCPX_FUZZ=ON \
	-DCPX_TESTS=OFF >/dev/null
cmake --build "$dir" -j"$(nproc)" >/dev/null
status=0
for src in "$top"/fuzz/fuzz_*.c; do
	name=$(basename "$src" .c)
	corpus_name=${name#fuzz_}
	work="$dir/corpus-$corpus_name"
	rm -rf "$work"
	mkdir -p "$work"
	if [ -d "$top/fuzz/corpus/$corpus_name" ]; then
		cp -r "$top/fuzz/corpus/$corpus_name/." "$work/"
	fi
	log="$dir/$name.log"
	if (cd "$dir" && "./fuzz/$name" -max_total_time="$secs" \
	    -rss_limit_mb=2048 -print_final_stats=1 "$work" >"$log" 2>&1); then
		runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" |
		    grep -o '[0-9]*$' || echo "?")
		echo "fuzz: $name: $runs executions in ${secs}s, no finding"
	else
		echo "fuzz: $name FAILED; last lines of $log:" >&2
		tail -40 "$log" >&2
		status=1
	fi
done
exit $status
