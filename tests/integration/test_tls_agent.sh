#!/bin/bash
# The agent over mutual TLS (issue 5), end to end: a real agent on SoftHSM
# with --listen tls://, certificates from tests/lib/pki.sh, a policy file,
# and the real client with TOKENSIGN_AGENT=tls://.
#   - mTLS happy path: list keys, sign an allowed payload (verified with
#     openssl against the key's public key);
#   - refused during the handshake: no client cert, another CA, expired,
#     revoked (CRL); an unknown identity is refused at connect (default
#     deny); each audited with its reason;
#   - policy: other repository, raw digest for a TLS client, missing
#     required annotation, rate limit (N+1th refused);
#   - SIGHUP: a new CRL and a new policy change the outcome, also on a
#     connection held open across the reload;
#   - the audit chain verifies.
. "$TS_SRC/tests/lib/common.sh"
. "$TS_SRC/tests/lib/softhsm.sh"
. "$TS_SRC/tests/lib/pki.sh"
. "$TS_SRC/tests/lib/agent.sh"
[ -x "$TS_AGENT" ] || { echo "no agent binary"; exit 77; }
ts_softhsm_setup p256
ts_pki_setup
P=$TS_PKI
ts_pki_client runner-c runner-c # valid, but no policy rule names it
ts_pki_client runner-d runner-d # keeps one connection across SIGHUP

port=$(ts_free_port)
policy=$TS_TMP/policy.json
cat >"$policy" <<'EOF'
{"version": 1, "rules": [
 {"name": "team-a", "match": {"tls_uri": "spiffe://ci.example/runner-a"},
  "keys": "*", "repositories": "registry.example.com/team-a/*",
  "required_annotations": "ci-run-id", "rate_per_minute": 4},
 {"name": "team-b", "match": {"tls_cn": "runner-b"},
  "keys": "*", "repositories": "**", "raw_digest": true},
 {"name": "team-d", "match": {"tls_uri": "spiffe://ci.example/runner-d"},
  "keys": "*", "repositories": "registry.example.com/team-d/*"},
 {"name": "local", "match": {"transport": "unix"}, "keys": "*",
  "repositories": "**"}
]}
EOF
ts_tls_agent_start agent "$port" "$policy" --crl "$P/crl.pem"
agent_pid=$TS_TLS_AGENT_PID
audit=$TS_TMP/agent.audit

as() { # as NAME CMD...: run the client with NAME's certificate
	local who=$1
	shift
	TOKENSIGN_AUTH_SOCK= TOKENSIGN_AGENT="tls://127.0.0.1:$port" \
	    TOKENSIGN_TLS_CERT="$P/$who.pem" TOKENSIGN_TLS_KEY="$P/$who.key" \
	    TOKENSIGN_TLS_CA="$P/ca.pem" TOKENSIGN_TLS_CONFIG=/dev/null \
	    timeout 30 "$TS_CLIENT" "$@"
}
payload() { # payload FILE REF [ci-run-id]
	local opt=null
	[ -z "${3:-}" ] || opt="{\"ci-run-id\":\"$3\"}"
	printf '{"critical":{"identity":{"docker-reference":"%s"},"image":{"docker-manifest-digest":"sha256:%s"},"type":"cosign container image signature"},"optional":%s}' \
	    "$2" "$(printf '%064d' 7)" "$opt" >"$1"
}
# not grep -q: it may exit before the first grep has written all it found
audit_has() { grep -F -- "$1" "$audit" | grep -F -- "$2" >/dev/null; }

# --- bad command lines are refused before anything starts
ts_expect_fail "--listen without --policy" 2 'needs --tls-cert, --tls-key, --client-ca and --policy' \
    "$TS_AGENT" -D -a "$TS_TMP/x.sock" --module "$TS_MODULE" \
    --listen tls://127.0.0.1:1 --tls-cert "$P/server.pem" \
    --tls-key "$P/server.key" --client-ca "$P/ca.pem"
ts_expect_fail "bad --listen" 1 'expected tls://ADDR:PORT' \
    "$TS_AGENT" -D -a "$TS_TMP/x.sock" --module "$TS_MODULE" \
    --listen tls://127.0.0.1 --tls-cert "$P/server.pem" \
    --tls-key "$P/server.key" --client-ca "$P/ca.pem" --policy "$policy"
ts_expect_fail "key not matching the certificate" 2 'matching the certificate' \
    "$TS_AGENT" -D -a "$TS_TMP/x.sock" --module "$TS_MODULE" \
    --listen tls://127.0.0.1:1 --tls-cert "$P/server.pem" \
    --tls-key "$P/runner-a.key" --client-ca "$P/ca.pem" --policy "$policy"
ts_expect_fail "bad policy file" 2 'unknown field' \
    "$TS_AGENT" -D -a "$TS_TMP/x.sock" --module "$TS_MODULE" \
    --policy <(echo '{"version": 1, "rules": [{"name": "a", "match": {"uid": 1}, "kyes": "*"}]}')
[ ! -e "$TS_TMP/x.sock" ] || ts_fail "a refused start left its socket"

# --- happy path
out=$(as runner-a keys) || ts_fail "keys over mTLS: $out"
key=$(echo "$out" | awk '$4 == "p256" { print $1 }')
[ -n "$key" ] || ts_fail "no p256 key listed: $out"
ts_pass "keys listed over mutual TLS"
payload "$TS_TMP/ok.json" registry.example.com/team-a/app run-1
as runner-a agent sign --key "$key" --payload "$TS_TMP/ok.json" \
    -o "$TS_TMP/ok.sig" || ts_fail "allowed payload not signed"
TOKENSIGN_AUTH_SOCK=$TS_TMP/agent.sock "$TS_CLIENT" public-key --key "$key" \
    -o "$TS_TMP/key.pem"
openssl dgst -sha256 -verify "$TS_TMP/key.pem" -signature "$TS_TMP/ok.sig" \
    "$TS_TMP/ok.json" >/dev/null || ts_fail "signature does not verify"
audit_has '"sign-payload"' 'cn=runner-a' ||
    ts_fail "sign not audited with the TLS identity"
ts_pass "allowed repository signed over mTLS, verified with openssl, audited"

out=$(TOKENSIGN_AUTH_SOCK= TOKENSIGN_AGENT= TOKENSIGN_TLS_CONFIG=/dev/null \
    "$TS_CLIENT" --agent "tls://localhost:$port" --tls-cert "$P/runner-b.pem" \
    --tls-key "$P/runner-b.key" --tls-ca "$P/ca.pem" keys) ||
    ts_fail "--agent/--tls-* options: $out"
grep -q "$key" <<<"$out" || ts_fail "--agent: $out"
ts_pass "--agent tls://localhost:PORT with --tls-cert/--tls-key/--tls-ca"

# pipelined requests in one TLS write: answered in order, none stuck
# inside the TLS layer
out=$(timeout 20 python3 - "$port" "$P" <<'PY' 2>&1
import socket, ssl, struct, sys
port, pki = sys.argv[1:3]
def frame(t, body):
    return struct.pack(">IB", len(body) + 1, t) + body
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.load_verify_locations(pki + "/ca.pem")
ctx.load_cert_chain(pki + "/runner-a.pem", pki + "/runner-a.key")
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(port))),
                    server_hostname="127.0.0.1")
s.sendall(frame(100, struct.pack(">I", 1) + struct.pack(">I", 4) + b"pipe")
          + frame(101, b"") * 5)
s.settimeout(10)
types = []
buf = b""
while len(types) < 6:
    buf += s.recv(65536)
    while len(buf) >= 4 and len(buf) >= 4 + struct.unpack(">I", buf[:4])[0]:
        n = struct.unpack(">I", buf[:4])[0]
        types.append(buf[4])
        buf = buf[4 + n:]
print(" ".join(map(str, types)))
PY
) || ts_fail "pipelined requests: $out"
[ "$out" = "120 123 123 123 123 123" ] || ts_fail "pipelined replies: $out"
ts_pass "6 pipelined requests in one TLS write all answered in order"

# --- handshake refusals, each with its reason in the audit log
ts_expect_fail "expired cert" nonzero 'refused our client certificate' \
    as expired keys
ts_expect_fail "revoked cert" nonzero 'refused our client certificate' \
    as revoked keys
ts_expect_fail "cert from another CA" nonzero \
    'refused our client certificate' as foreign keys
out=$( { echo; sleep 0.5; } | timeout 10 openssl s_client -quiet \
    -connect "127.0.0.1:$port" -CAfile "$P/ca.pem" 2>&1) || true
grep -q 'certificate required' <<<"$out" ||
    ts_fail "no-cert client not refused: $out"
ts_pass "client without a certificate refused (certificate required)"
ts_expect_fail "identity without a rule" nonzero 'peer not allowed' as runner-c keys
sleep 0.3
audit_has '"expired: ' 'certificate has expired' || ts_fail "audit: expired"
audit_has '"revoked: ' 'certificate revoked' || ts_fail "audit: revoked"
audit_has '"untrusted: ' 'unable to get local issuer' ||
    ts_fail "audit: untrusted"
audit_has '"no-cert: ' 'no certificate' || ts_fail "audit: no-cert"
audit_has 'default-deny' 'cn=runner-c' || ts_fail "audit: default-deny"
ts_pass "each handshake refusal audited with a distinct reason"

# --- policy decisions
payload "$TS_TMP/other.json" registry.example.com/team-b/app run-2
ts_expect_fail "other repository" nonzero 'team-a.*not allowed' \
    as runner-a agent sign --key "$key" --payload "$TS_TMP/other.json" \
    -o "$TS_TMP/x.sig"
ts_expect_fail "raw digest for a TLS client" nonzero 'raw digest' \
    as runner-a agent sign --key "$key" --digest "$(printf '%064d' 1)" \
    -o "$TS_TMP/x.sig"
payload "$TS_TMP/noann.json" registry.example.com/team-a/app
ts_expect_fail "missing annotation" nonzero 'required annotation.*ci-run-id' \
    as runner-a agent sign --key "$key" --payload "$TS_TMP/noann.json" \
    -o "$TS_TMP/x.sig"
[ ! -e "$TS_TMP/x.sig" ] || ts_fail "a refused request wrote a signature"
as runner-b agent sign --key "$key" --digest "$(printf '%064d' 1)" \
    -o "$TS_TMP/b.sig" || ts_fail "runner-b raw digest (allowed) failed"
ts_pass "team-b rule allows raw digests"
audit_has 'team-b/app' 'not allowed' || ts_fail "audit: repository denial"
# rate: 4 per minute, one already spent by the happy path
for i in 2 3 4; do
	as runner-a agent sign --key "$key" --payload "$TS_TMP/ok.json" \
	    -o "$TS_TMP/r$i.sig" || ts_fail "signature $i of 4 refused"
done
ts_expect_fail "rate limit: 5th in the minute" nonzero 'rate limit of 4' \
    as runner-a agent sign --key "$key" --payload "$TS_TMP/ok.json" \
    -o "$TS_TMP/r5.sig"

# --- SIGHUP: new CRL revokes runner-b, new policy lets runner-a sign team-b
# and runner-d sign team-e: runner-d asks before and after the reload on
# one TLS connection that stays open.
payload "$TS_TMP/e.json" registry.example.com/team-e/app
python3 - "$port" "$P" "$key" "$TS_TMP/e.json" "$TS_TMP/hup-done" \
    >"$TS_TMP/held.log" 2>&1 <<'PY' &
import os, socket, ssl, struct, sys, time
port, pki, key, pfile, flag = sys.argv[1:6]
def frame(t, body):
    return struct.pack(">IB", len(body) + 1, t) + body
def sstr(b):
    return struct.pack(">I", len(b)) + b
def reply(s):
    hdr = b""
    while len(hdr) < 4:
        hdr += s.recv(4 - len(hdr))
    n = struct.unpack(">I", hdr)[0]
    body = b""
    while len(body) < n:
        body += s.recv(n - len(body))
    return body[0], body[1:]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.load_verify_locations(pki + "/ca.pem")
ctx.load_cert_chain(pki + "/runner-d.pem", pki + "/runner-d.key")
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(port))),
                    server_hostname="localhost")
sign = frame(102, sstr(key.encode()) + sstr(open(pfile, "rb").read()) +
             struct.pack(">I", 0))
s.sendall(frame(100, struct.pack(">I", 1) + sstr(b"held")))
print("hello", reply(s)[0], flush=True)
s.sendall(sign)
print("before", reply(s)[0], flush=True)
while not os.path.exists(flag):
    time.sleep(0.05)
s.sendall(sign)
print("after", reply(s)[0], flush=True)
PY
held=$!
ts_bg_track $held
ts_wait_for grep -q '^before' "$TS_TMP/held.log" ||
    ts_fail "held connection: $(cat "$TS_TMP/held.log")"
grep -q '^before 122' "$TS_TMP/held.log" ||
    ts_fail "team-e allowed before the reload: $(cat "$TS_TMP/held.log")"
openssl ca -batch -config "$P/ca/ca.cnf" -revoke "$P/runner-b.pem" 2>/dev/null
ts_pki_crl
sed -i -e 's|"registry.example.com/team-a/\*"|["registry.example.com/team-a/*", "registry.example.com/team-b/*"]|' \
    -e 's|"registry.example.com/team-d/\*"|["registry.example.com/team-d/*", "registry.example.com/team-e/*"]|' \
    "$policy"
kill -HUP $agent_pid
ts_wait_for grep -q 'TLS certificates and CRL reloaded' "$TS_TMP/agent.log" ||
    ts_fail "no reload: $(cat "$TS_TMP/agent.log")"
ts_expect_fail "runner-b revoked after reload" nonzero \
    'refused our client certificate' as runner-b keys
ts_expect_fail "rate window survives the reload" nonzero 'rate limit' \
    as runner-a agent sign --key "$key" --payload "$TS_TMP/other.json" \
    -o "$TS_TMP/y.sig"
grep -q 'policy reloaded: 4 rules' "$TS_TMP/agent.log" ||
    ts_fail "policy not reloaded"
ts_pass "SIGHUP reloaded the CRL and the policy"
touch "$TS_TMP/hup-done"
wait $held || ts_fail "held connection: $(cat "$TS_TMP/held.log")"
grep -q '^after 124' "$TS_TMP/held.log" ||
    ts_fail "reload did not change the outcome on the held connection: $(cat "$TS_TMP/held.log")"
ts_pass "SIGHUP changed the outcome on a connection held open (refused, then signed)"
# a broken policy on reload keeps the old one
echo '{"version": 1, "rules": [{"name": "x"}]}' >"$policy"
kill -HUP $agent_pid
ts_wait_for grep -q 'keeping the old policy' "$TS_TMP/agent.log" ||
    ts_fail "bad policy not reported"
out=$(as runner-a keys) || ts_fail "agent unusable after a bad reload: $out"
ts_pass "a bad policy on reload is refused and the old one kept"

# --- the Unix socket is governed by the same file ("local" rule)
TOKENSIGN_AGENT= TOKENSIGN_AUTH_SOCK=$TS_TMP/agent.sock "$TS_CLIENT" agent \
    sign --key "$key" --payload "$TS_TMP/other.json" -o "$TS_TMP/u.sig" ||
    ts_fail "local rule did not allow the Unix client"
ts_pass "Unix socket client signs under the local rule"

"$TS_CLIENT" audit verify "$audit" >/dev/null ||
    ts_fail "audit chain broken: $("$TS_CLIENT" audit verify "$audit" 2>&1)"
ts_pass "audit chain verifies"
ts_done
