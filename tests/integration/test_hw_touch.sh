#!/bin/bash
# Issue 6 through the fault-injecting shim: a slow signature (a token
# waiting for a touch) makes the agent send PROGRESS and the client print
# "Touch your <token> to sign ..." on a terminal (only there); the per-key
# touch_timeout ends the wait with the distinct "touch timed out"; a hung
# token does not stop another token's keys from signing and is reported as
# not responding; a token whose presence answers are slow while its
# signatures come back is not.
. "$TS_SRC/tests/lib/common.sh"
. "$TS_SRC/tests/lib/softhsm.sh"
. "$TS_SRC/tests/lib/shim.sh"
command -v script >/dev/null || { echo "skip: script(1) not installed"; exit 77; }
ts_softhsm_setup p256
ts_shim_setup
cd "$TS_TMP"
C=$TS_CLIENT
dig=$(printf '%064x' 7)
export TOKENSIGN_AUTH_SOCK=$TS_TMP/a.sock
printf 'touch_timeout p256 2\n' > agent.conf
chmod 600 agent.conf
"$TS_AGENT" -D -a "$TOKENSIGN_AUTH_SOCK" --module "$TS_SHIM" \
    --module-allow "$TS_SHIM_ALLOW" --pin-source "$TS_PIN_FILE" \
    --config "$TS_TMP/agent.conf" >/dev/null 2>agent.log &
pid=$!
ts_bg_track $pid
ts_wait_for "$C" agent status || ts_fail "agent start: $(cat agent.log)"
# on a terminal: script(1) gives the client a pty; its output is the pty's
tty_sign() {
	script -q -e -c "'$C' agent sign --key ${1:-p256} --digest $dig -o '$TS_TMP/sig.out'" /dev/null
}

# --- quick signature: no notice
out=$(tty_sign 2>&1) || ts_fail "quick sign on a tty: $out"
grep -q 'Touch your' <<<"$out" && ts_fail "notice for a quick signature: $out"
ts_pass "quick signature: no touch notice"

# --- slow signature (1.2 s 'touch'): the notice, then the signature
ts_shim_set '[token ts-main]' sign_delay_ms=1200
out=$(tty_sign 2>&1) || ts_fail "slow sign on a tty: $out"
grep -q 'Touch your ts-main to sign …' <<<"$out" || ts_fail "no touch notice: $out"
[ -s sig.out ] || ts_fail "no signature after the notice"
ts_pass "slow signature on a terminal: 'Touch your ts-main to sign …', then the signature"
"$C" agent sign --key p256 --digest "$dig" >/dev/null 2>notty.err ||
    ts_fail "slow sign without a terminal: $(cat notty.err)"
grep -q 'Touch your' notty.err && ts_fail "notice printed to a non-terminal"
ts_pass "no terminal: the notice is skipped, the signature comes"

# --- a hung token: the other token's key keeps signing
ts_shim_set '[token ts-main]' hang=1
hung=()
for i in 1 2 3; do
	"$C" agent sign --key p256 --digest "$dig" >/dev/null 2>"hung.$i" &
	hung+=($!)
	ts_bg_track $!
done
sleep 0.5
t0=$(ts_now_ms)
"$C" agent sign --key p256-b --digest "$dig" >/dev/null 2>other.err ||
    ts_fail "ts-second's key while ts-main hangs: $(cat other.err)"
t1=$(ts_now_ms)
[ $((t1 - t0)) -lt 1000 ] || ts_fail "ts-second waited $((t1 - t0)) ms behind the hung token"
ts_pass "ts-main hung with 3 signatures in flight: ts-second signs in $((t1 - t0)) ms"
sleep 2.2
t0=$(ts_now_ms)
ts_expect_fail "sign on the hung token" 14 'ts-main .serial .*. is not responding' \
    "$C" agent sign --key p256 --digest "$dig"
t1=$(ts_now_ms)
[ $((t1 - t0)) -lt 1000 ] || ts_fail "unresponsive error took $((t1 - t0)) ms"
"$C" agent sign --key p256-b --digest "$dig" >/dev/null || ts_fail "ts-second after the deadline"
ts_pass "past the deadline ts-main is reported not responding in $((t1 - t0)) ms; ts-second still signs"
ts_shim_set
ts_wait_for "$C" agent sign --key p256 --digest "$dig" ||
    ts_fail "ts-main does not sign after it answers again"
ts_pass "ts-main signs again once the module answers"
# The 3 released signatures must be done before the next control file.
# Their clients gave up at p256's 2 s touch deadline, but the workers stay
# in the module until the shim, polling its control file, lets them go; a
# worker that polls only after the next file appears takes that file's
# 6 s "touch" too, and 3 in flight with none done for 2 s is what the
# agent calls hung.  A closed connection counts until its job is back.
for p in "${hung[@]}"; do wait "$p" 2>/dev/null || true; done
settled() {
	[ "$("$C" agent status --json |
	    python3 -c 'import json,sys; print(json.load(sys.stdin)["connections"])')" = 1 ]
}
ts_wait_for settled || ts_fail "the released hung signatures did not finish"
# --- touch timeout (2 s for p256): distinct error, then signing again
ts_shim_set '[token ts-main]' sign_delay_ms=6000
t0=$(ts_now_ms)
ts_expect_fail "no touch within touch_timeout" 14 'touch timed out' \
    "$C" agent sign --key p256 --digest "$dig"
t1=$(ts_now_ms)
[ $((t1 - t0)) -ge 1900 ] && [ $((t1 - t0)) -lt 4500 ] ||
    ts_fail "touch timeout after $((t1 - t0)) ms, want about 2000"
ts_shim_set
"$C" agent sign --key p256 --digest "$dig" >/dev/null || ts_fail "sign after a touch timeout"
ts_pass "touch_timeout: 'touch timed out' after $((t1 - t0)) ms; the next signature works"

# --- slow presence answers while signatures flow: not "not responding".
# A module busy signing can keep the watcher's C_GetSlotInfo/
# C_GetTokenInfo waiting on its locks for seconds; signatures coming back
# show it answers (the 2 s deadline used to fail every request then).
B=$TS_BIN/bench/agentbench
[ -x "$B" ] || ts_fail "agentbench not built"
ts_shim_set '[token ts-main]' info_delay_ms=3500
before=$(wc -l < agent.log)
out=$("$B" -c 2 -s 5 -k p256 "$TOKENSIGN_AUTH_SOCK" 2>&1) ||
    ts_fail "signing while presence checks take 3.5 s: $out"
grep -q ' errors 0 ' <<<"$out" || ts_fail "errors while presence checks were slow: $out"
n=$(sed -n 's/.* sigs \([0-9]*\) errors.*/\1/p' <<<"$out")
[ "${n:-0}" -gt 0 ] || ts_fail "no signatures: $out"
tail -n +$((before + 1)) agent.log > slow-info.log
! grep -q 'not responding' slow-info.log || ts_fail "reported not responding: $(grep 'not responding' slow-info.log)"
ts_shim_set
ts_pass "presence checks taking 3.5 s while $n signatures came back in 5 s: no 'not responding'"

kill -TERM $pid
rc=0
wait $pid || rc=$?
[ $rc = 0 ] || ts_fail "agent exit status $rc: $(tail -5 agent.log)"
ts_done
