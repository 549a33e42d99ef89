#!/bin/bash
# Issue 6 through the fault-injecting shim (tests/shim) over SoftHSM: token
# removal mid-load (every request answered within 1 s with "token ...
# (serial ...) is not present — insert it", STATUS and the key list show
# it absent), reinsertion (signing resumes, no agent restart), dropped
# sessions and a logout under our feet (reopened, logged in again from the
# PIN file and from a held env PIN, retried once), a rejected PIN never
# tried again.
. "$TS_SRC/tests/lib/common.sh"
. "$TS_SRC/tests/lib/softhsm.sh"
. "$TS_SRC/tests/lib/shim.sh"
. "$TS_SRC/tests/lib/agent.sh"
ts_softhsm_setup p256
ts_shim_setup
cd "$TS_TMP"
C=$TS_CLIENT
dig=$(printf '%064x' 7)
sign() { "$C" agent sign --key "${1:-p256}" --digest "$dig" >/dev/null; }
NP='is not present — insert it'

TS_MODULE=$TS_SHIM ts_agent_start --module-allow "$TS_SHIM_ALLOW"
pid0=$TS_AGENT_PID
serial=$("$C" pkcs11 tokens --module "$TS_SHIM" --allow-module "$TS_SHIM_ALLOW" 2>/dev/null |
    awk "/token 'ts-main' serial/ { print \$NF; exit }")
[ -n "$serial" ] || ts_fail "no serial for ts-main"

sign || ts_fail "baseline sign through the shim"
ts_pass "baseline: agent signs through the shim"

# --- removal mid-load: in-flight and new requests fail fast and clearly
ts_shim_set '[token ts-main]' sign_delay_ms=3000
for i in 1 2 3 4; do
	( t0=$(ts_now_ms) rc=0; "$C" agent sign --key p256 --digest "$dig" \
	    >/dev/null 2>"err.$i" || rc=$?; echo "$rc $(($(ts_now_ms) - t0))" > "rc.$i" ) &
	ts_bg_track $!
done
sleep 0.5
t0=$(ts_now_ms)
ts_shim_set '[token ts-main]' sign_delay_ms=3000 present=0
ts_wait_for sh -c 'ls rc.1 rc.2 rc.3 rc.4 >/dev/null 2>&1' ||
    ts_fail "in-flight requests not answered"
t1=$(ts_now_ms)
for i in 1 2 3 4; do
	read -r rc _ < "rc.$i"
	[ "$rc" != 0 ] || ts_fail "in-flight request $i succeeded after removal"
	grep -q "token ts-main (serial .*) $NP" "err.$i" ||
	    ts_fail "in-flight request $i: $(cat "err.$i")"
done
[ $((t1 - t0)) -lt 1000 ] || ts_fail "in-flight answers took $((t1 - t0)) ms"
ts_pass "4 in-flight signatures answered '$NP' $((t1 - t0)) ms after removal"
t0=$(ts_now_ms)
ts_expect_fail "sign with the token out" 14 "token ts-main .serial $serial. $NP" sign
t1=$(ts_now_ms)
[ $((t1 - t0)) -lt 1000 ] || ts_fail "removed-token error took $((t1 - t0)) ms"
ts_pass "new request on the absent token fails in $((t1 - t0)) ms"
ts_wait_for sh -c "'$C' agent status | grep -q 'ts-main absent'" ||
    ts_fail "STATUS does not show the token absent: $("$C" agent status)"
"$C" keys 2>/dev/null | grep -q 'token absent' ||
    ts_fail "key list does not show the key absent: $("$C" keys 2>&1)"
ts_pass "STATUS and the key list show the token absent"

# --- reinsertion: signing resumes, same agent process
logins=$(ts_shim_stat C_Login)
ts_shim_set
t0=$(ts_now_ms)
ts_wait_for sh -c "'$C' agent status | grep -q 'ts-main present, logged in'" ||
    ts_fail "STATUS does not show the token back: $("$C" agent status)"
t1=$(ts_now_ms)
sign || ts_fail "sign after reinsertion: $(tail -5 "$TS_TMP/agent.log")"
[ "$TS_AGENT_PID" = "$pid0" ] && kill -0 "$pid0" || ts_fail "agent restarted"
[ "$(ts_shim_stat C_Login)" -gt "$logins" ] || ts_fail "no new C_Login"
grep -q 'sessions reopened, logged in again' agent.log ||
    ts_fail "no re-login logged"
ts_pass "reinsertion seen in $((t1 - t0)) ms; logged in again from the PIN file; signing resumes"

# --- sessions closed by the device: reopened, retried once
ts_shim_set '[token ts-main]' close_sessions=1
sign || ts_fail "sign after the sessions were closed: $(tail -3 agent.log)"
ts_pass "closed sessions: reopened and retried"
ts_shim_set '[token ts-main]' close_sessions=1 closed_rv=CKR_SESSION_CLOSED close_sessions=2
sign || ts_fail "sign after CKR_SESSION_CLOSED"
ts_pass "CKR_SESSION_CLOSED: reopened and retried"

# --- logged out mid-operation (card reset): logged in again, retried once
n=0
for at in C_SignInit C_Sign; do
	n=$((n + 1))
	ts_shim_set '[token ts-main]' "not_logged_in=$n" "not_logged_in_at=$at"
	sign || ts_fail "sign after a logout at $at: $(tail -3 agent.log)"
done
ts_pass "CKR_USER_NOT_LOGGED_IN at C_SignInit and C_Sign: logged in again, retried"

# --- removal reported as CKR_TOKEN_NOT_PRESENT with a fast-failing call
ts_shim_set '[token ts-main]' fail.C_Sign=CKR_DEVICE_REMOVED
ts_expect_fail "device removed mid-sign" 14 "$NP" sign
ts_shim_set
sign || ts_fail "sign after a transient CKR_DEVICE_REMOVED"
ts_pass "CKR_DEVICE_REMOVED mid-sign: clear error, then recovery"

# --- retried once, never more: a fault that persists fails after one retry
before=$(ts_shim_stat C_SignInit)
ts_shim_set '[token ts-main]' fail.C_SignInit=CKR_SESSION_HANDLE_INVALID
ts_expect_fail "persistent session error" 14 'session' sign
after=$(ts_shim_stat C_SignInit)
[ $((after - before)) = 2 ] || ts_fail "C_SignInit called $((after - before)) times, want 2"
ts_shim_set
ts_pass "a persistent CKR_SESSION_HANDLE_INVALID is retried exactly once"

# --- a rejected PIN is never tried again
cp "$TS_PIN_FILE" pin.good
echo 999999 > "$TS_PIN_FILE"
before=$(ts_shim_stat C_Login)
ts_shim_set '[token ts-main]' not_logged_in=9
ts_expect_fail "wrong PIN file after a logout" 13 'needs unlock' sign
mid=$(ts_shim_stat C_Login)
[ $((mid - before)) = 1 ] || ts_fail "C_Login called $((mid - before)) times, want 1"
ts_expect_fail "no second try with the rejected PIN" 13 'needs unlock' sign
[ "$(ts_shim_stat C_Login)" = "$mid" ] || ts_fail "rejected PIN tried again"
cp pin.good "$TS_PIN_FILE"
"$C" agent unlock --passphrase-file pin.good >/dev/null || ts_fail "unlock with the PIN"
sign || ts_fail "sign after unlock"
ts_pass "wrong PIN: one C_Login, never retried; UNLOCK recovers"
ts_agent_stop

# --- env PIN: held in locked memory, used again after a reinsertion
sock=$TS_TMP/env.sock
TS_TEST_PIN=$TS_PIN "$TS_AGENT" -D -a "$sock" --module "$TS_SHIM" \
    --module-allow "$TS_SHIM_ALLOW" --pin-env TS_TEST_PIN \
    >/dev/null 2>>"$TS_TMP/agent-env.log" &
pid=$!
ts_bg_track $pid
export TOKENSIGN_AUTH_SOCK=$sock
ts_wait_for "$C" agent status || ts_fail "env agent start"
sign || ts_fail "sign with env PIN"
ts_shim_set '[token ts-main]' present=0
ts_expect_fail "env agent: token out" 14 "$NP" sign
ts_shim_set
ts_wait_for sign || ts_fail "env agent: no signing after reinsertion: $(tail -3 agent-env.log)"
ts_shim_set '[token ts-main]' not_logged_in=20
sign || ts_fail "env agent: sign after a logout"
ts_pass "env PIN: logged in again after reinsertion and a logout"
kill -TERM $pid
wait $pid || ts_fail "env agent exit status"
ts_pass "agent exits cleanly with watcher threads"

# --- reinsert_login unlock: a token that was out is not logged in from the
# PIN file when it comes back; it waits for UNLOCK with the PIN
printf 'reinsert_login unlock\n' > unlock.conf
chmod 600 unlock.conf
TS_AGENT_SOCK=$TS_TMP/unlock.sock TS_MODULE=$TS_SHIM ts_agent_start \
    --module-allow "$TS_SHIM_ALLOW" --config "$TS_TMP/unlock.conf"
sign || ts_fail "reinsert_login unlock: sign before the removal"
ts_shim_set '[token ts-main]' present=0
ts_wait_for sh -c "'$C' agent status | grep -q '^token: ts-main absent'" ||
    ts_fail "reinsert_login unlock: removal not seen"
before=$(ts_shim_stat C_Login)
ts_shim_set
ts_wait_for grep -q 'token "ts-main" (serial .*) is back: waiting for unlock' agent.log ||
    ts_fail "reinsert_login unlock: no waiting line: $(tail -3 agent.log)"
"$C" agent status | grep -q '^state: unlocked, needs unlock' ||
    ts_fail "reinsert_login unlock: STATUS: $("$C" agent status)"
ts_expect_fail "reinsert_login unlock: sign before UNLOCK" 13 'needs unlock' sign
[ "$(ts_shim_stat C_Login)" = "$before" ] ||
    ts_fail "reinsert_login unlock: logged in from the PIN file after reinsertion"
"$C" agent unlock --passphrase-file "$TS_PIN_FILE" >/dev/null ||
    ts_fail "reinsert_login unlock: unlock with the PIN"
sign || ts_fail "reinsert_login unlock: sign after UNLOCK"
# dropped sessions without a removal still log in from the file by themselves
ts_shim_set '[token ts-main]' not_logged_in=20
sign || ts_fail "reinsert_login unlock: a logout without a removal needs no UNLOCK"
ts_shim_set
ts_pass "reinsert_login unlock: back in, no login from the PIN file; UNLOCK with the PIN resumes signing"
ts_agent_stop
ts_done
