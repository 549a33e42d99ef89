#!/bin/bash
# Issue 6's touch notice and touch_timeout for a client over mutual TLS
# (issue 5): the loop alone writes a TLS session, so the worker's PROGRESS
# and the deadline's FAILURE reach it through the loop; both must come, in
# order, before (or instead of) the reply, as on the Unix socket
# (test_hw_touch.sh).  Through the fault-injecting shim over SoftHSM.
. "$TS_SRC/tests/lib/common.sh"
. "$TS_SRC/tests/lib/softhsm.sh"
. "$TS_SRC/tests/lib/shim.sh"
. "$TS_SRC/tests/lib/pki.sh"
. "$TS_SRC/tests/lib/agent.sh"
command -v script >/dev/null || { echo "skip: script(1) not installed"; exit 77; }
ts_softhsm_setup p256
ts_shim_setup
ts_pki_setup
cd "$TS_TMP"
dig=$(printf '%064x' 9)
port=$(ts_free_port)
ts_policy_runner_a policy.json true
printf 'touch_timeout p256 2\n' >agent.conf
chmod 600 agent.conf
TS_MODULE=$TS_SHIM ts_tls_agent_start agent "$port" policy.json \
    --module-allow "$TS_SHIM_ALLOW" --config "$TS_TMP/agent.conf"
agent_pid=$TS_TLS_AGENT_PID

# The client's TLS settings in the environment: script(1) passes it on.
export TOKENSIGN_AUTH_SOCK= TOKENSIGN_AGENT="tls://127.0.0.1:$port" \
    TOKENSIGN_TLS_CERT="$TS_PKI/runner-a.pem" \
    TOKENSIGN_TLS_KEY="$TS_PKI/runner-a.key" \
    TOKENSIGN_TLS_CA="$TS_PKI/ca.pem" TOKENSIGN_TLS_CONFIG=/dev/null
C=$TS_CLIENT
"$C" public-key --key p256 >p256.pem || ts_fail "public key over TLS"
# on a terminal: script(1) gives the client a pty; its output is the pty's
tty_sign() {
	rm -f sig.der
	script -q -e -c "'$C' agent sign --key p256 --digest $dig -o '$TS_TMP/sig.der'" /dev/null
}
sig_ok() {
	printf '%s' "$dig" | xxd -r -p >dig.bin
	openssl pkeyutl -verify -pubin -inkey p256.pem -in dig.bin \
	    -sigfile sig.der >/dev/null 2>&1
}

# --- quick signature over TLS: no notice, a valid signature
out=$(tty_sign 2>&1) || ts_fail "quick sign over TLS on a tty: $out"
grep -q 'Touch your' <<<"$out" && ts_fail "notice for a quick signature: $out"
sig_ok || ts_fail "quick TLS signature does not verify"
ts_pass "quick signature over mTLS: no notice, signature verifies"

# --- slow signature (1.2 s 'touch'): the notice, then the signature
ts_shim_set '[token ts-main]' sign_delay_ms=1200
out=$(tty_sign 2>&1) || ts_fail "slow sign over TLS on a tty: $out"
grep -q 'Touch your ts-main to sign …' <<<"$out" || ts_fail "no touch notice over TLS: $out"
sig_ok || ts_fail "the signature after the TLS notice does not verify"
ts_pass "slow signature over mTLS: 'Touch your ts-main to sign …', then a valid signature"
"$C" agent sign --key p256 --digest "$dig" -o sig.der 2>notty.err ||
    ts_fail "slow sign over TLS without a terminal: $(cat notty.err)"
grep -q 'Touch your' notty.err && ts_fail "notice printed to a non-terminal"
sig_ok || ts_fail "slow TLS signature without a terminal does not verify"
ts_pass "no terminal: the notice is skipped, the signature comes"

# --- touch timeout (2 s for p256): the distinct error over TLS too
ts_shim_set '[token ts-main]' sign_delay_ms=6000
t0=$(ts_now_ms)
ts_expect_fail "no touch within touch_timeout over TLS" 14 'touch timed out' \
    "$C" agent sign --key p256 --digest "$dig"
t1=$(ts_now_ms)
[ $((t1 - t0)) -ge 1900 ] && [ $((t1 - t0)) -lt 4500 ] ||
    ts_fail "TLS touch timeout after $((t1 - t0)) ms, want about 2000"
ts_pass "touch_timeout over mTLS: 'touch timed out' after $((t1 - t0)) ms"
ts_shim_set
ts_wait_for "$C" agent sign --key p256 --digest "$dig" -o sig.der ||
    ts_fail "no signature over TLS after the touch timeout"
sig_ok || ts_fail "TLS signature after the timeout does not verify"
ts_pass "the next TLS signature works and verifies"

# --- the agent is still healthy and stops cleanly
# audited when the token's call comes back (the shim let it go above)
ts_wait_for grep -q '"error":"touch timed out"' agent.audit ||
    ts_fail "touch timeout not audited: $(tail -3 agent.audit)"
"$C" audit verify agent.audit >/dev/null || ts_fail "audit chain"
kill -TERM "$agent_pid"
wait "$agent_pid" || ts_fail "agent exit status $?: $(tail -5 agent.log)"
ts_pass "touch timeout audited, chain verifies; agent exits 0"
ts_done
