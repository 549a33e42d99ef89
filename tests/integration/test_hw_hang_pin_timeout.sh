#!/bin/bash
# Issue 6, "a module that hangs must not freeze the agent", with the PIN
# timeout (-t) on: when the timeout ends the login of a token whose module
# has stopped answering, the C_Logout must not run on the event loop (it
# used to, under the keystore lock: STATUS, other tokens' signatures and
# SIGTERM all waited for the hung module).  Through the fault-injecting
# shim: ts-main hangs, the 2 s PIN timeout passes, and the agent still
# answers STATUS, signs with ts-second (logging in again from the PIN
# file) and, once ts-main answers again, signs with it too.  Then ts-main
# hangs for good with a signature in flight: SIGTERM still ends the agent
# (socket removed, exit 1, the token named) instead of waiting for ever.
. "$TS_SRC/tests/lib/common.sh"
. "$TS_SRC/tests/lib/softhsm.sh"
. "$TS_SRC/tests/lib/shim.sh"
. "$TS_SRC/tests/lib/agent.sh"
ts_softhsm_setup p256
ts_shim_setup
cd "$TS_TMP"
C=$TS_CLIENT
dig=$(printf '%064x' 3)
sign() { timeout 20 "$C" agent sign --key "$1" --digest "$dig" >/dev/null; }

TS_MODULE=$TS_SHIM ts_agent_start --module-allow "$TS_SHIM_ALLOW" -t 2
sign p256 || ts_fail "sign with ts-main"
sign p256-b || ts_fail "sign with ts-second"
ts_pass "agent with a 2 s PIN timeout signs on both tokens"

ts_shim_set '[token ts-main]' hang=1
# past the PIN timeout of both tokens, as the agent logs it
TS_WAIT=15 ts_wait_for grep -q 'token "ts-second": PIN timeout, logged out' agent.log ||
    ts_fail "no PIN timeout for ts-second: $(tail -5 agent.log)"
grep -q 'token "ts-main": PIN timeout, logged out' agent.log ||
    ts_fail "no PIN timeout for the hung ts-main: $(tail -5 agent.log)"
t0=$(ts_now_ms)
out=$(timeout 10 "$C" agent status) || ts_fail "STATUS while ts-main hangs after its PIN timeout"
t1=$(ts_now_ms)
[ $((t1 - t0)) -lt 2000 ] || ts_fail "STATUS took $((t1 - t0)) ms behind the hung module"
grep -q '^token: ts-second present, logged out' <<<"$out" ||
    ts_fail "ts-second not logged out by the PIN timeout: $out"
t0=$(ts_now_ms)
sign p256-b || ts_fail "ts-second after its PIN timeout, ts-main hung"
t1=$(ts_now_ms)
[ $((t1 - t0)) -lt 2000 ] || ts_fail "ts-second's signature took $((t1 - t0)) ms behind the hung module"
ts_pass "ts-main hung at its PIN timeout: STATUS and ts-second (logged in again from the file) answer in $((t1 - t0)) ms"

ts_shim_set
ts_wait_for sign p256 || ts_fail "ts-main does not sign once it answers again"
ts_pass "ts-main answers again: logged in from the PIN file, signs"

# --- SIGTERM while ts-main hangs for good with a signature in flight: the
# agent gives in-flight requests its 5 s grace and the module 2 s more, then
# removes its socket and exits 1 rather than wait for ever
ts_shim_set '[token ts-main]' hang=1
timeout 30 "$C" agent sign --key p256 --digest "$dig" >/dev/null 2>&1 &
ts_bg_track $!
sleep 0.5
t0=$(ts_now_ms)
kill -TERM "$TS_AGENT_PID"
rc=0
wait "$TS_AGENT_PID" || rc=$?
t1=$(ts_now_ms)
[ $rc = 1 ] || ts_fail "agent exit status $rc with a hung module, want 1: $(tail -5 agent.log)"
[ $((t1 - t0)) -lt 15000 ] || ts_fail "SIGTERM took $((t1 - t0)) ms with a hung module"
[ ! -e "$TOKENSIGN_AUTH_SOCK" ] || ts_fail "socket left behind"
grep -q 'token "ts-main" (serial .*) is not answering: a call to its module has been running for' agent.log ||
    ts_fail "no 'not answering' line: $(tail -5 agent.log)"
grep -q 'exiting without waiting for them; the token(s) above are not logged out' agent.log ||
    ts_fail "no abandon line: $(tail -5 agent.log)"
ts_shim_set
ts_pass "SIGTERM with ts-main hung: socket removed, exit 1 after $((t1 - t0)) ms, the token named"
ts_done
