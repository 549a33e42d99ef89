# tests/lib/common.sh - sourced by every integration test.
#
# Gives each test a fresh temp dir ($TS_TMP) and kills every process it
# registered with ts_bg_track, on success and on failure (trap).  Tests run
# in parallel, so nothing here uses a fixed path or port.
set -euo pipefail

: "${TS_BIN:?TS_BIN must name the build directory}"
: "${TS_SRC:?TS_SRC must name the source directory}"
TS_CLIENT=${TS_CLIENT:-$TS_BIN/client/tokensign}
TS_AGENT=${TS_AGENT:-$TS_BIN/agent/tokensign-agent}
TS_SHARED=${TS_SHARED:-$TS_SRC/../shared}
TS_TMP=$(mktemp -d "${TMPDIR:-/tmp}/tokensign-test.XXXXXX")
TS_PIDS=()
TS_CLEANUP_HOOKS=()
TS_CHECKS=0

ts_cleanup() {
	local rc=$? pid hook
	for hook in "${TS_CLEANUP_HOOKS[@]}"; do
		eval "$hook" || true
	done
	for pid in "${TS_PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${TS_PIDS[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	if [ $rc -ne 0 ] && [ -n "${TS_KEEP_TMP:-}" ]; then
		echo "test failed; kept $TS_TMP" >&2
	else
		rm -rf "$TS_TMP"
	fi
	exit $rc
}
trap ts_cleanup EXIT
trap 'exit 130' INT TERM

# ts_bg_track PID: kill PID when the test ends.
ts_bg_track() { TS_PIDS+=("$1"); }
# ts_on_exit 'command': run a command when the test ends.
ts_on_exit() { TS_CLEANUP_HOOKS+=("$1"); }

ts_log() { echo "# $*" >&2; }
ts_fail() { echo "FAIL: $*" >&2; exit 1; }
ts_pass() { echo "ok: $*" >&2; TS_CHECKS=$((TS_CHECKS + 1)); }

# ts_free_port: print a TCP port on 127.0.0.1 that nothing listens on.
ts_free_port() {
	python3 - <<'PY'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
}

# ts_wait_for CMD...: retry CMD for up to ${TS_WAIT:-10} seconds.
ts_wait_for() {
	local deadline=$((SECONDS + ${TS_WAIT:-10}))
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -lt $deadline ] || return 1
		sleep 0.05
	done
}

# ts_now_ms: the wall clock in milliseconds.
ts_now_ms() { echo $(($(date +%s%N) / 1000000)); }

# ts_poll_ms TIMEOUT_MS PATTERN CMD...: runs CMD every 20 ms until its
# output matches PATTERN (ERE); prints the milliseconds that took, or CMD's
# last output and returns 1 after TIMEOUT_MS.
ts_poll_ms() {
	local limit=$1 pat=$2 t0 out
	shift 2
	t0=$(ts_now_ms)
	while :; do
		out=$("$@" 2>&1 || true)
		grep -Eq -- "$pat" <<<"$out" && { echo $(($(ts_now_ms) - t0)); return 0; }
		[ $(($(ts_now_ms) - t0)) -lt "$limit" ] || { echo "$out"; return 1; }
		sleep 0.02
	done
}

# ts_expect_fail DESC EXPECTED_RC PATTERN CMD...: CMD must exit with
# EXPECTED_RC ("nonzero" for any failure) and print PATTERN (ERE) on
# stderr or stdout.
ts_expect_fail() {
	local desc=$1 want=$2 pat=$3 rc=0 out
	shift 3
	out=$("$@" 2>&1) || rc=$?
	if [ "$want" = nonzero ]; then
		[ $rc -ne 0 ] || ts_fail "$desc: expected failure, got success: $out"
	else
		[ $rc -eq "$want" ] || ts_fail "$desc: expected exit $want, got $rc: $out"
	fi
	# a here-string, not a pipe: grep -q exiting early would make echo
	# fail under pipefail
	grep -Eq -- "$pat" <<<"$out" ||
	    ts_fail "$desc: output lacks /$pat/: $out"
	ts_pass "$desc"
}

# ts_done: print the plain summary line; a test that checked nothing fails.
ts_done() {
	[ "$TS_CHECKS" -gt 0 ] || ts_fail "test made no checks"
	echo "$TS_CHECKS passed, 0 failed"
}
