#!/bin/bash
# A TLS server key on a slow token (issue 5: "TLS handshakes must not block
# other connections"): through the fault-injecting shim, every signature
# of ts-second, which holds the TLS key p256-b, takes 3 s (a network HSM's
# queue, a token waiting for a touch).  While one client's handshake waits
# for that signature:
#   - a new Unix-socket client connects and signs with ts-main's key at
#     once (before, the whole event loop waited inside the handshake);
#   - the slow client's handshake then completes and it signs (verified);
#   - SIGTERM with a handshake still waiting on the token: the agent
#     drops it and exits 0 once the token answers.
. "$TS_SRC/tests/lib/common.sh"
. "$TS_SRC/tests/lib/softhsm.sh"
. "$TS_SRC/tests/lib/shim.sh"
. "$TS_SRC/tests/lib/pki.sh"
. "$TS_SRC/tests/lib/agent.sh"
[ -x "$TS_AGENT" ] || { echo "no agent binary"; exit 77; }
ts_softhsm_setup p256
ts_shim_setup
ts_pki_setup
cd "$TS_TMP"
P=$TS_PKI
ts_softhsm_pubkey p256-b p256b.pub ts-second
ts_pki_issue_for p256b.pub "$P/tok.pem" 0x7101
ts_policy_runner_a policy.json
ts_payload registry.example.com/a/app "$(printf '%064d' 7)" >p.json
dig=$(printf '%064x' 5)
port=$(ts_free_port)
export TOKENSIGN_AUTH_SOCK=$TS_TMP/agent.sock
"$TS_AGENT" -D -a "$TOKENSIGN_AUTH_SOCK" --module "$TS_SHIM" \
    --module-allow "$TS_SHIM_ALLOW" --pin-source "$TS_PIN_FILE" \
    --listen "tls://127.0.0.1:$port" --tls-cert "$P/tok.pem" \
    --tls-key 'pkcs11:token=ts-second;object=p256-b' \
    --client-ca "$P/ca.pem" --policy "$TS_TMP/policy.json" \
    >/dev/null 2>agent.log &
agent_pid=$!
ts_bg_track $agent_pid
ts_wait_for grep -q "listening on $TOKENSIGN_AUTH_SOCK" agent.log ||
    ts_fail "agent did not start: $(cat agent.log)"
tls_sign() { # tls_sign OUT: sign p.json over mTLS as runner-a
	TOKENSIGN_AUTH_SOCK= TOKENSIGN_AGENT="tls://127.0.0.1:$port" \
	    TOKENSIGN_TLS_CERT="$P/runner-a.pem" TOKENSIGN_TLS_KEY="$P/runner-a.key" \
	    TOKENSIGN_TLS_CA="$P/ca.pem" TOKENSIGN_TLS_CONFIG=/dev/null \
	    timeout 30 "$TS_CLIENT" agent sign --key p256 --payload p.json -o "$1"
}
"$TS_CLIENT" public-key --key p256 -o p256.pem || ts_fail "public key"
sig_ok() {
	openssl dgst -sha256 -verify p256.pem -signature "$1" p.json >/dev/null ||
	    ts_fail "signature $1 does not verify"
}
tls_sign quick.sig || ts_fail "sign over mTLS: $(tail -5 agent.log)"
sig_ok quick.sig
ts_pass "mTLS with the TLS key on the (shimmed) token: signs, verifies"

# --- a 3 s token signature in one handshake; the loop keeps serving
ts_shim_set '[token ts-second]' sign_delay_ms=3000
base=$(ts_shim_stat C_Sign)
t0=$(ts_now_ms)
tls_sign slow.sig 2>slow.err &
slow=$!
ts_bg_track $slow
in_sign() { [ "$(ts_shim_stat C_Sign)" -gt "$base" ]; }
ts_wait_for in_sign ||
    ts_fail "the slow handshake did not reach the token"
t1=$(ts_now_ms)
"$TS_CLIENT" agent sign --key p256 --digest "$dig" -o unix.sig ||
    ts_fail "Unix client during the slow handshake"
"$TS_CLIENT" agent status >/dev/null || ts_fail "status during the slow handshake"
t2=$(ts_now_ms)
[ $((t2 - t1)) -lt 1500 ] ||
    ts_fail "a Unix client waited $((t2 - t1)) ms behind a token-signed handshake"
wait $slow || ts_fail "slow mTLS client: $(cat slow.err)"
t3=$(ts_now_ms)
sig_ok slow.sig
[ $((t3 - t0)) -ge 2800 ] || ts_fail "the handshake took only $((t3 - t0)) ms: not delayed?"
ts_pass "while a handshake waited $((t3 - t0)) ms on the token, a Unix client connected and signed in $((t2 - t1)) ms"

# --- SIGTERM with a handshake still waiting on the token
base=$(ts_shim_stat C_Sign)
tls_sign never.sig 2>never.err &
pending=$!
ts_bg_track $pending
ts_wait_for in_sign ||
    ts_fail "the second slow handshake did not reach the token"
kill -TERM $agent_pid
rc=0
wait $agent_pid || rc=$?
[ $rc = 0 ] || ts_fail "agent exit status $rc after SIGTERM mid-handshake: $(tail -5 agent.log)"
! grep -q Sanitizer agent.log || ts_fail "sanitizer report: $(cat agent.log)"
wait $pending && ts_fail "the client whose handshake the agent dropped succeeded"
[ ! -e "$TOKENSIGN_AUTH_SOCK" ] || ts_fail "socket left behind"
ts_pass "SIGTERM mid-handshake: the agent exits 0 after the token answers; socket removed"
ts_done
