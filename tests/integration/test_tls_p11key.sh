#!/bin/bash
# The agent's TLS server key on the SoftHSM token (issue 5, --tls-key
# pkcs11:...): real SoftHSM, real TLS, the real client and openssl s_client.
#   - a server certificate is issued by the test CA for the public key of
#     p256-b on token ts-second (exported independently with p11tool);
#   - the agent signs its handshakes with the token key: a client signs
#     over mTLS, s_client sees that certificate and an ECDSA handshake
#     signature, and every handshake is a token signature;
#   - the same with the key kept out of the agent's key table (--key):
#     the direct path through the pkcs11/ layer;
#   - SIGHUP with a new certificate for the same token key: the new one is
#     served; with a certificate for another key: refused, old one kept;
#   - refused at start-up with a clear error: URI matching no key, token
#     key not matching the certificate, malformed URI, an RSA token key.
. "$TS_SRC/tests/lib/common.sh"
. "$TS_SRC/tests/lib/softhsm.sh"
. "$TS_SRC/tests/lib/pki.sh"
. "$TS_SRC/tests/lib/agent.sh"
[ -x "$TS_AGENT" ] || { echo "no agent binary"; exit 77; }
ts_softhsm_setup p256
ts_pki_setup
P=$TS_PKI
TOKURI='pkcs11:token=ts-second;object=p256-b'

ts_softhsm_pubkey p256-b "$TS_TMP/p256b.pub" ts-second
ts_pki_issue_for "$TS_TMP/p256b.pub" "$P/tok1.pem" 0x7001
ts_pki_issue_for "$TS_TMP/p256b.pub" "$P/tok2.pem" 0x7002
cmp <(openssl x509 -in "$P/tok1.pem" -noout -pubkey) "$TS_TMP/p256b.pub" ||
    ts_fail "certificate does not carry the token's public key"
openssl verify -CAfile "$P/ca.pem" "$P/tok1.pem" >/dev/null ||
    ts_fail "token certificate does not verify"
ts_pass "server certificate issued for the token key (x509 -force_pubkey)"

policy=$TS_TMP/policy.json
ts_policy_runner_a "$policy"

port=
agent_pid=
# start_agent LOG EXTRA...: an agent whose TLS key is $TOKURI.
start_agent() {
	local log=$1
	shift
	port=$(ts_free_port)
	rm -f "$TS_TMP/agent.sock"
	"$TS_AGENT" -D -a "$TS_TMP/agent.sock" --module "$TS_MODULE" \
	    --pin-source "$TS_PIN_FILE" --listen "tls://127.0.0.1:$port" \
	    --tls-cert "$P/cur.pem" --tls-key "$TOKURI" \
	    --client-ca "$P/ca.pem" --policy "$policy" "$@" \
	    >/dev/null 2>"$log" &
	agent_pid=$!
	ts_bg_track $agent_pid
	# the port accepts from before the tokens are open: wait for ready
	ts_wait_for grep -q "listening on $TS_TMP/agent.sock" "$log" ||
	    ts_fail "agent did not start: $(cat "$log")"
}
stop_agent() { # stop_agent LOG: SIGTERM, a clean exit, no sanitizer report
	local rc=0
	kill "$agent_pid"
	wait "$agent_pid" || rc=$?
	[ $rc -eq 0 ] || ts_fail "agent exited with $rc: $(tail -30 "$1")"
	! grep -q 'Sanitizer' "$1" || ts_fail "sanitizer report: $(cat "$1")"
}
as() { # as NAME CMD...: the client with NAME's certificate
	local who=$1
	shift
	TOKENSIGN_AUTH_SOCK= TOKENSIGN_AGENT="tls://127.0.0.1:$port" \
	    TOKENSIGN_TLS_CERT="$P/$who.pem" TOKENSIGN_TLS_KEY="$P/$who.key" \
	    TOKENSIGN_TLS_CA="$P/ca.pem" TOKENSIGN_TLS_CONFIG=/dev/null \
	    timeout 30 "$TS_CLIENT" "$@"
}
sclient() { # sclient: one s_client handshake with runner-a's certificate
	{ sleep 0.3; } | timeout 10 openssl s_client -connect "127.0.0.1:$port" \
	    -CAfile "$P/ca.pem" -verify_return_error -verify_ip 127.0.0.1 \
	    -cert "$P/runner-a.pem" -key "$P/runner-a.key" 2>&1
}
serial_seen() { # the serial of the certificate s_client received
	sclient | openssl x509 -noout -serial 2>/dev/null
}
ts_payload registry.example.com/a/app "$(printf '%064d' 7)" >"$TS_TMP/p.json"

# sign_over_tls: list keys, sign with ts-main's p256 over mTLS, verify.
sign_over_tls() {
	local out key
	out=$(as runner-a keys) || ts_fail "keys over mTLS: $out"
	key=$(echo "$out" | awk '$4 == "p256" { print $1 }')
	[ -n "$key" ] || ts_fail "no p256 key listed: $out"
	as runner-a agent sign --key "$key" --payload "$TS_TMP/p.json" \
	    -o "$TS_TMP/p.sig" || ts_fail "sign over mTLS failed"
	TOKENSIGN_AUTH_SOCK=$TS_TMP/agent.sock "$TS_CLIENT" public-key \
	    --key "$key" -o "$TS_TMP/key.pem"
	openssl dgst -sha256 -verify "$TS_TMP/key.pem" \
	    -signature "$TS_TMP/p.sig" "$TS_TMP/p.json" >/dev/null ||
	    ts_fail "signature does not verify"
	rm -f "$TS_TMP/key.pem" "$TS_TMP/p.sig"
}

# --- happy path: the key is in the agent's key table
cp "$P/tok1.pem" "$P/cur.pem"
start_agent "$TS_TMP/agent1.log"
grep -q 'TLS server key on the token: pkcs11:.*token=ts-second' \
    "$TS_TMP/agent1.log" || ts_fail "no token key log: $(cat "$TS_TMP/agent1.log")"
sign_over_tls
ts_pass "client signs over mTLS; the agent's handshakes signed on the token"

# The TLS key leaves the key table clients see: a client that could sign
# digests with it could sign a CertificateVerify as the agent.
grep -Eq 'TLS server key pkcs11:[^ ]*token=ts-second[^ ]* \(key id [0-9a-f]+\) is withheld from clients' \
    "$TS_TMP/agent1.log" || ts_fail "no withheld log: $(cat "$TS_TMP/agent1.log")"
keys=$(TOKENSIGN_AUTH_SOCK=$TS_TMP/agent.sock "$TS_CLIENT" keys) ||
    ts_fail "keys over the Unix socket: $keys"
grep -q ' p256 ' <<<"$keys" || ts_fail "p256 missing from: $keys"
! grep -q 'p256-b' <<<"$keys" || ts_fail "the TLS key is listed: $keys"
dig=$(printf 'x' | sha256sum | cut -d' ' -f1)
for ref in p256-b "$TOKURI"; do
	TOKENSIGN_AUTH_SOCK=$TS_TMP/agent.sock ts_expect_fail \
	    "raw digest with the TLS key ($ref)" 14 'key not found' \
	    "$TS_CLIENT" agent sign --key "$ref" --digest "$dig"
	ts_expect_fail "payload over mTLS with the TLS key ($ref)" 14 \
	    'key not found' as runner-a agent sign --key "$ref" \
	    --payload "$TS_TMP/p.json" -o "$TS_TMP/no.sig"
done
[ ! -e "$TS_TMP/no.sig" ] || ts_fail "a signature file was written"
ts_pass "the TLS key is not listed and cannot be named by label or URI, locally or over mTLS"

out=$(sclient)
grep -q 'Verify return code: 0 (ok)' <<<"$out" ||
    ts_fail "s_client did not verify the server: $out"
grep -q 'Peer signature type: ECDSA' <<<"$out" ||
    ts_fail "not an ECDSA handshake signature: $out"
[ "$(openssl x509 -in "$P/tok1.pem" -noout -fingerprint -sha256)" = \
    "$(openssl x509 -noout -fingerprint -sha256 <<<"$out")" ] ||
    ts_fail "s_client saw another certificate: $out"
ts_pass "openssl s_client sees the token key's certificate, ECDSA signature"

# --- SIGHUP: a new certificate for the same token key is served
[ "$(serial_seen)" = "serial=7001" ] || ts_fail "serial before reload"
cp "$P/tok2.pem" "$P/cur.pem"
kill -HUP "$agent_pid"
ts_wait_for grep -q 'TLS certificates and CRL reloaded' "$TS_TMP/agent1.log" ||
    ts_fail "no reload: $(cat "$TS_TMP/agent1.log")"
[ "$(serial_seen)" = "serial=7002" ] ||
    ts_fail "new certificate not served after SIGHUP: $(serial_seen)"
sign_over_tls
ts_pass "SIGHUP with a new certificate for the token key: served, signing works"

# ... a certificate for another key is refused and the old one kept
cp "$P/server.pem" "$P/cur.pem"
kill -HUP "$agent_pid"
ts_wait_for grep -q 'TLS reload failed' "$TS_TMP/agent1.log" ||
    ts_fail "mismatching cert not refused on reload: $(cat "$TS_TMP/agent1.log")"
grep -q 'does not match certificate' "$TS_TMP/agent1.log" ||
    ts_fail "reload refusal unclear: $(cat "$TS_TMP/agent1.log")"
[ "$(serial_seen)" = "serial=7002" ] ||
    ts_fail "old certificate not kept after a bad reload"
sign_over_tls
ts_pass "SIGHUP with a certificate for another key: refused, old one kept"
stop_agent "$TS_TMP/agent1.log"
# 3 x (keys + sign) over mTLS + 4 s_client, each a full handshake: each
# one a token signature, none failed
n=$(sed -n 's/.*TLS key on the token: \([0-9]*\) handshake signature(s), 0 error(s).*/\1/p' \
    "$TS_TMP/agent1.log")
[ -n "$n" ] && [ "$n" -ge 10 ] ||
    ts_fail "handshakes not signed on the token: $(tail -5 "$TS_TMP/agent1.log")"
ts_pass "every handshake signed by the token ($n signatures, 0 errors)"

# --- the key kept out of the agent's key table (--key): direct path
cp "$P/tok1.pem" "$P/cur.pem"
start_agent "$TS_TMP/agent2.log" --key 'pkcs11:token=ts-main;object=p256'
out=$(as runner-a keys) || ts_fail "keys over mTLS: $out"
! grep -q p256-b <<<"$out" || ts_fail "TLS key offered to clients: $out"
sign_over_tls
grep -q 'Verify return code: 0 (ok)' <<<"$(sclient)" ||
    ts_fail "s_client (direct path)"
ts_pass "TLS key outside the agent's key table (--key): handshakes on the token"
stop_agent "$TS_TMP/agent2.log"
grep -q 'TLS key on the token: [1-9][0-9]* handshake signature(s), 0 error' \
    "$TS_TMP/agent2.log" || ts_fail "direct path: no token signatures"

# --- refused at start-up, with the reason
cp "$P/tok1.pem" "$P/cur.pem"
refuse() { # refuse DESC PATTERN KEY CERT
	ts_expect_fail "$1" 1 "$2" timeout 30 "$TS_AGENT" -D \
	    -a "$TS_TMP/x.sock" --module "$TS_MODULE" \
	    --pin-source "$TS_PIN_FILE" --listen "tls://127.0.0.1:$(ts_free_port)" \
	    --tls-cert "$4" --tls-key "$3" --client-ca "$P/ca.pem" \
	    --policy "$policy"
	[ ! -e "$TS_TMP/x.sock" ] || ts_fail "$1: socket left behind"
}
refuse "URI matching no key" 'no such key on the agent.s tokens' \
    'pkcs11:token=ts-second;object=nope' "$P/cur.pem"
refuse "URI naming an absent token" 'no such key' \
    'pkcs11:token=nope;object=p256-b' "$P/cur.pem"
refuse "token key not matching the certificate" \
    'does not match certificate .*server.pem' "$TOKURI" "$P/server.pem"
refuse "another token key than the certificate's" \
    'does not match certificate' 'pkcs11:token=ts-main;object=p256' \
    "$P/cur.pem"
refuse "malformed URI" 'tls-key' 'pkcs11:token=ts-second;;=' "$P/cur.pem"
# an RSA key on the token: TLS 1.3 would need RSA-PSS, which the token
# layer does not offer, so it is refused by name (not at first handshake)
ts_softhsm_keygen ts-second RSA:2048 rsa-b 12
refuse "RSA token key" 'is a rsa key: only ECDSA keys' \
    'pkcs11:token=ts-second;object=rsa-b' "$P/cur.pem"
ts_done
