#!/bin/bash
# The full test suite, as CI runs it:
#   1. build with -Wall -Wextra -Werror and run `make check`
#      (unit tests + integration tests with redis-server, python3-websockets,
#      node ws);
#   2. the same suites again under AddressSanitizer + UndefinedBehaviorSanitizer;
#   3. every libFuzzer target for FUZZ_SECONDS each;
#   and once, the JavaScript client's suite (clients/js/test/run).
# Ends with "N passed, N failed".  Options: --no-deps, --no-asan, --no-fuzz.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
deps=1 asan=1 fuzz=1
for a in "$@"; do
	case $a in
	--no-deps) deps=0 ;; --no-asan) asan=0 ;; --no-fuzz) fuzz=0 ;;
	*) echo "usage: $0 [--no-deps] [--no-asan] [--no-fuzz]" >&2; exit 2 ;;
	esac
done
[ $deps -eq 0 ] || "$top/scripts/deps.sh" || exit 1
cd "$top" || exit 1
autoreconf -fi >/dev/null 2>&1 || { autoreconf -fi; exit 1; }

passed=0 failed=0 skipped=0
jobs=$(nproc 2>/dev/null || echo 2)

# Add one build's results (unit test cases and the integration summary).
tally() {
	local dir=$1 log n f e
	for log in "$dir"/tests/unit/test_*.log; do
		[ -f "$log" ] || continue
		read -r n f e < <(sed -n 's/.*Checks: \([0-9]*\), Failures: \([0-9]*\), Errors: \([0-9]*\).*/\1 \2 \3/p' "$log" | tail -1)
		if [ -z "${n:-}" ]; then
			echo "FAIL: $log printed no Check summary"; failed=$((failed + 1)); continue
		fi
		passed=$((passed + n - f - e)); failed=$((failed + f + e))
		# a sanitizer report after the summary still fails the binary
		if grep -q '^:test-result: FAIL' "${log%.log}.trs" && [ $((f + e)) -eq 0 ]; then
			echo "FAIL: $log (exit status)"; failed=$((failed + 1))
		fi
		n=
	done
	log=$dir/tests/integration/run.log
	if read -r n f s < <(sed -n 's/^integration: \([0-9]*\) passed, \([0-9]*\) failed, \([0-9]*\) skipped$/\1 \2 \3/p' "$log" 2>/dev/null | tail -1) && [ -n "$n" ]; then
		passed=$((passed + n)); failed=$((failed + f)); skipped=$((skipped + s))
	else
		echo "FAIL: integration suite printed no summary ($log)"; failed=$((failed + 1))
	fi
}

run_build() {
	local dir=$1; shift
	rm -rf "$dir"; mkdir -p "$dir"
	echo "== build in $dir $*"
	if ! (cd "$dir" && "$top/configure" -q --enable-werror "$@" && make -j"$jobs" >make.out 2>&1); then
		tail -50 "$dir/make.out"; echo "FAIL: build in $dir"; failed=$((failed + 1)); return
	fi
	echo "== make check in $dir"
	(cd "$dir" && make -j1 check >check.out 2>&1)
	grep -E '^(PASS|FAIL|ERROR|SKIP|XFAIL|XPASS):' "$dir/check.out"
	for f in "$dir"/tests/unit/test_*.log "$dir"/tests/integration/run.log; do
		[ -f "$f" ] && grep -q -E 'Failures: [1-9]|Errors: [1-9]|FAILED|ERROR|not ok|runtime error|Sanitizer' "$f" && {
			echo "---- $f"
			# name every failed case first: the tail may be another suite's output
			grep -E '^(FAILED|ERROR) |^ *not ok |:[0-9]+:[EF]:' "$f" | head -40
			tail -80 "$f"
		}
	done
	tally "$dir"
}

# The benchmark tools build, the JWT micro-benchmark verifies every token it
# times, the revocation one gets every lookup right, and the authorization
# one gets every verdict it times right
# (figures are for docs/PERFORMANCE.md, never checked here).
bench_tools() {
	local dir=$1
	echo "== benchmark tools (tests/bench)"
	if (cd "$dir" && make tests/bench/bench_auth tests/bench/bench_authz \
	    tests/bench/bench_revoke >>make.out 2>&1 &&
	    ./tests/bench/bench_auth -n 500 -r 1 >bench_auth.out 2>&1 &&
	    ./tests/bench/bench_authz -n 2000 -r 1 >bench_authz.out 2>&1 &&
	    ./tests/bench/bench_revoke -n 20000 -r 1 >bench_revoke.out 2>&1) &&
	    CFLAGS=-Werror "$top/tests/bench/build.sh" "$dir/rtbench" >"$dir/rtbench.out" 2>&1; then
		passed=$((passed + 1))
	else
		tail -20 "$dir/make.out" "$dir/bench_auth.out" "$dir/bench_authz.out" \
		    "$dir/bench_revoke.out" "$dir/rtbench.out" 2>/dev/null
		echo "FAIL: benchmark tools"; failed=$((failed + 1))
	fi
}

# The JavaScript client (clients/js): node:test against the daemon just
# built, headless Chromium pages, npm pack and a consumer install.  Once.
js_client() {
	local out=$top/build/jsclient.out n f s
	echo "== JavaScript client (clients/js)"
	REALTIMED_BIN=$top/build/src/realtimed timeout -k 10 900 "$top/clients/js/test/run" \
	    >"$out" 2>&1
	if read -r n f s < <(sed -n 's/^jsclient: \([0-9]*\) passed, \([0-9]*\) failed, \([0-9]*\) skipped$/\1 \2 \3/p' "$out" | tail -1) && [ -n "$n" ]; then
		passed=$((passed + n)); failed=$((failed + f)); skipped=$((skipped + s))
		[ "$f" -eq 0 ] || tail -80 "$out"
		tail -1 "$out"
	else
		tail -60 "$out"; echo "FAIL: the JavaScript client suite printed no summary"
		failed=$((failed + 1))
	fi
}

run_build "$top/build"
[ -f "$top/build/src/realtimed" ] && bench_tools "$top/build"
[ -f "$top/build/src/realtimed" ] && js_client
if [ $asan -eq 1 ]; then
	san="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined"
	ASAN_OPTIONS=detect_leaks=1:quarantine_size_mb=32 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 REALTIMED_SANITIZED=1 \
	    run_build "$top/build-asan" CFLAGS="$san" LDFLAGS="-fsanitize=address,undefined"
fi
if [ $fuzz -eq 1 ]; then
	echo "== fuzzers"
	"$top/tests/fuzz/run" "$top/build-fuzz" | tee "$top/build-fuzz.out"
	read -r n f < <(sed -n 's/^fuzz: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$top/build-fuzz.out")
	passed=$((passed + ${n:-0})); failed=$((failed + ${f:-1}))
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
