#!/bin/sh
# test.sh: the whole cpx test suite, as CI runs it (.ci/run calls this).
#   1. installs the Debian packages if any is missing,
#   2. builds and runs every ctest test,
#   3. builds again with AddressSanitizer + UndefinedBehaviorSanitizer
#      (LeakSanitizer on) and runs every test again (the publish storms of
#      test_admission with 6,000 publishes instead of 21,000: the
#      sanitizers slow the broker about fourfold),
#   4. runs each libFuzzer harness for a bounded time (CPX_FUZZ_SECONDS,
#      default 30) over its seed corpus; any crash, leak or sanitizer
#      report fails the run.
# Set CPX_TEST_QUICK=1 to run step 2 only.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/install-deps.sh"

echo "== build and test (RelWithDebInfo)"
"$top/scripts/build.sh" "$top/build"
(cd "$top/build" && ctest --output-on-failure -j2 --timeout 600)

[ "${CPX_TEST_QUICK:-0}" = 1 ] && exit 0

echo "== build and test with ASan + UBSan + LSan"
"$top/scripts/build.sh" "$top/build-asan" -DCMAKE_BUILD_TYPE=Debug \
	-DCPX_SANITIZE=ON
(cd "$top/build-asan" &&
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	CPX_TEST_STORM=6000 \
	ctest --output-on-failure -j2 --timeout 900)

if [ -f "$top/fuzz/CMakeLists.txt" ] && ls "$top"/fuzz/fuzz_*.c >/dev/null 2>&1; then
	echo "== fuzz (${CPX_FUZZ_SECONDS:-30} s per harness)"
	"$top/scripts/fuzz.sh" "${CPX_FUZZ_SECONDS:-30}"
fi
echo "test.sh: all passed"
