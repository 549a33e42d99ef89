#!/bin/bash
# Issue 6 PIN safety through the fault-injecting shim: the agent reads the
# token's PIN counter flags before trying a PIN from a source, says "1 try
# left", and never spends the last try (CKF_USER_PIN_FINAL_TRY) from a PIN
# file or variable unless the config says "pin_final_try allow"; a locked
# PIN is never tried; a count-low token is reported.  C_Login calls are
# counted by the shim.
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
agent() {
	exec "$TS_AGENT" -D -a "$TS_TMP/a.sock" --module "$TS_SHIM" \
	    --module-allow "$TS_SHIM_ALLOW" --pin-source "$TS_PIN_FILE" "$@"
}

# --- start-up on the final try: refused, no C_Login
ts_shim_set '[token ts-main]' pin_flags=final_try
rc=0
timeout 20 "$TS_AGENT" -D -a "$TS_TMP/a.sock" --module "$TS_SHIM" \
    --module-allow "$TS_SHIM_ALLOW" --token 'pkcs11:token=ts-main' \
    --pin-source "$TS_PIN_FILE" >/dev/null 2>start.log || rc=$?
[ "$rc" != 0 ] || ts_fail "agent started spending the last PIN try"
grep -q '1 try left' start.log || ts_fail "no '1 try left': $(cat start.log)"
[ "$(ts_shim_stat C_Login)" = 0 ] || ts_fail "C_Login called $(ts_shim_stat C_Login) times"
ts_pass "FINAL_TRY at start-up: '1 try left', agent refuses, no try spent"

# --- with the explicit config keyword the last try is spent (and works)
printf 'pin_final_try allow\n' > final.conf
chmod 600 final.conf
agent --config "$TS_TMP/final.conf" >/dev/null 2>allow.log &
pid=$!
ts_bg_track $pid
export TOKENSIGN_AUTH_SOCK=$TS_TMP/a.sock
ts_wait_for "$C" agent status || ts_fail "agent with pin_final_try allow: $(cat allow.log)"
[ "$(ts_shim_stat C_Login)" -ge 1 ] || ts_fail "no C_Login with pin_final_try allow"
grep -q '1 try left' allow.log || ts_fail "no '1 try left' warning: $(cat allow.log)"
sign || ts_fail "sign after spending the last try"
ts_pass "pin_final_try allow: warned '1 try left', logged in, signs"
kill -TERM $pid; wait $pid || ts_fail "agent exit"
printf 'pin_final_try maybe\n' > bad.conf
chmod 600 bad.conf
ts_expect_fail "bad pin_final_try value" 2 'pin_final_try is allow or refuse' \
    "$TS_AGENT" -D -a "$TS_TMP/b.sock" --module "$TS_SHIM" \
    --module-allow "$TS_SHIM_ALLOW" --pin-source "$TS_PIN_FILE" --config "$TS_TMP/bad.conf"

# --- running agent, logged out by the card, now on its final try: no try spent
ts_shim_set
agent >/dev/null 2>run.log &
pid=$!
ts_bg_track $pid
ts_wait_for "$C" agent status || ts_fail "agent start: $(cat run.log)"
sign || ts_fail "baseline sign"
before=$(ts_shim_stat C_Login)
ts_shim_set '[token ts-main]' pin_flags=final_try not_logged_in=1
ts_expect_fail "relogin on the final try" 14 'ts-main: 1 try left; not spending it' sign
sleep 0.6 # the presence watcher must not spend it either
ts_expect_fail "still refused" 14 '1 try left' sign
[ "$(ts_shim_stat C_Login)" = "$before" ] ||
    ts_fail "C_Login called $(($(ts_shim_stat C_Login) - before)) times on the final try"
ts_pass "FINAL_TRY after a logout: no C_Login, '1 try left' to the client"

# --- locked PIN: never tried
ts_shim_set '[token ts-main]' pin_flags=locked not_logged_in=1
ts_expect_fail "locked PIN" 14 'PIN is locked' sign
[ "$(ts_shim_stat C_Login)" = "$before" ] || ts_fail "C_Login with a locked PIN"
ts_pass "locked PIN: no C_Login, clear error"

# --- count low: warned, then the PIN from the file is used
# (still logged out from the final-try step)
ts_shim_set '[token ts-main]' pin_flags=count_low
sign || ts_fail "sign with count_low"
grep -q 'few PIN tries left' run.log || ts_fail "no count-low warning: $(cat run.log)"
[ "$(ts_shim_stat C_Login)" = $((before + 1)) ] || ts_fail "want exactly one C_Login"
ts_pass "COUNT_LOW: warned, one C_Login from the PIN file"
kill -TERM $pid; wait $pid || ts_fail "agent exit"
ts_done
