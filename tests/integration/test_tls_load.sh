#!/bin/bash
# Load over mutual TLS (issue 5): 200 concurrent persistent mTLS clients x
# 200 signatures each (TS_TLS_LOAD="CLIENTS COUNT" to change) through one
# agent on SoftHSM: 0 errors, every decision audited.  No timing asserts
# (figures live in bench/tlsbench.sh).  The sanitizer build runs it too.
. "$TS_SRC/tests/lib/common.sh"
. "$TS_SRC/tests/lib/softhsm.sh"
. "$TS_SRC/tests/lib/pki.sh"
. "$TS_SRC/tests/lib/agent.sh"
[ -x "$TS_AGENT" ] || { echo "no agent binary"; exit 77; }
[ -x "$TS_BIN/bench/tlsbench" ] || { echo "no tlsbench"; exit 77; }
read -r clients count <<<"${TS_TLS_LOAD:-200 200}"
ts_softhsm_setup p256
ts_pki_setup
P=$TS_PKI
port=$(ts_free_port)
cat >"$TS_TMP/policy.json" <<'POL'
{"version": 1, "rules": [
 {"name": "ci", "match": {"tls_uri": "spiffe://ci.example/runner-a"},
  "keys": "*", "repositories": "registry.example.com/**"},
 {"name": "local", "match": {"transport": "unix"}, "keys": "*"}]}
POL
ts_tls_agent_start agent "$port" "$TS_TMP/policy.json" --crl "$P/crl.pem"
agent_pid=$TS_TLS_AGENT_PID
audit=$TS_TMP/agent.audit
key=$(TOKENSIGN_AGENT= TOKENSIGN_AUTH_SOCK=$TS_TMP/agent.sock "$TS_CLIENT" keys |
    awk '$4 == "p256" { print $1 }')
printf '{"critical":{"identity":{"docker-reference":"registry.example.com/load"},"image":{"docker-manifest-digest":"sha256:%064d"},"type":"cosign container image signature"},"optional":null}' 9 \
    >"$TS_TMP/p.json"
out=$(TOKENSIGN_TLS_CERT=$P/runner-a.pem TOKENSIGN_TLS_KEY=$P/runner-a.key \
    TOKENSIGN_TLS_CA=$P/ca.pem TOKENSIGN_TLS_CONFIG=/dev/null \
    "$TS_BIN/bench/tlsbench" -t "tls://127.0.0.1:$port" -k "$key" \
    -p "$TS_TMP/p.json" -c "$clients" -n "$count" 2>&1) ||
    ts_fail "load had errors: $out"
echo "# $out" >&2
ts_pass "$clients mTLS clients x $count signatures, 0 errors"
n=$(grep -c '"sign-payload"' "$audit")
[ "$n" -eq $((clients * count)) ] || ts_fail "$n audit lines, wanted $((clients * count))"
kill -0 $agent_pid || ts_fail "agent died"
TOKENSIGN_AGENT= "$TS_CLIENT" audit verify "$audit" >/dev/null || ts_fail "audit chain"
ts_pass "every signature audited, chain verifies"
ts_done
