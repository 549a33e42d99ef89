#!/bin/bash
# Scale-out (issue 5): two agents on one SoftHSM token behind Debian's
# HAProxy in TCP mode, health-checked with their own mutual-TLS identity.
# During a load run one agent is killed with SIGKILL; the load still
# finishes with every payload signed (connect failures are redispatched by
# HAProxy, a request cut mid-flight is retried once by the client), every
# signature verifies, and the killed agent's audit file ends with a whole
# line and its chain verifies.
. "$TS_SRC/tests/lib/common.sh"
. "$TS_SRC/tests/lib/softhsm.sh"
. "$TS_SRC/tests/lib/pki.sh"
. "$TS_SRC/tests/lib/agent.sh"
. "$TS_SRC/tests/lib/haproxy.sh"
[ -x "$TS_AGENT" ] || { echo "no agent binary"; exit 77; }
ts_softhsm_setup p256
ts_pki_setup
P=$TS_PKI
ts_pki_client haproxy-health haproxy-health
cat "$P/haproxy-health.pem" "$P/haproxy-health.key" >"$P/health-crt.pem"

cat >"$TS_TMP/policy.json" <<'EOF'
{"version": 1, "rules": [
 {"name": "healthcheck", "match": {"tls_cn": "haproxy-health"}},
 {"name": "ci", "match": {"tls_uri": "spiffe://ci.example/runner-a"},
  "keys": "*", "repositories": "registry.example.com/**"},
 {"name": "local", "match": {"transport": "unix"}, "keys": "*"}
]}
EOF

start_agent() { # start_agent NAME PORT
	ts_tls_agent_start "$1" "$2" "$TS_TMP/policy.json" --crl "$P/crl.pem"
}
pa=$(ts_free_port)
pb=$(ts_free_port)
start_agent a "$pa"
pid_a=$TS_TLS_AGENT_PID
start_agent b "$pb"
TS_HAPROXY_CHECK="check check-ssl verify required ca-file $P/ca.pem crt $P/health-crt.pem inter 300ms fall 2 rise 2" \
    ts_haproxy_start "127.0.0.1:$pa" "127.0.0.1:$pb"
ts_haproxy_wait_state b0 up || ts_fail "agent a not healthy"
ts_haproxy_wait_state b1 up || ts_fail "agent b not healthy"
grep -q 'cn=haproxy-health' "$TS_TMP/a.audit" 2>/dev/null &&
    ts_fail "a successful health check must not write audit lines"
ts_pass "both agents healthy behind HAProxy (mTLS health checks)"

export TOKENSIGN_AUTH_SOCK= TOKENSIGN_TLS_CONFIG=/dev/null
export TOKENSIGN_AGENT="tls://localhost:$TS_HAPROXY_PORT"
export TOKENSIGN_TLS_CERT=$P/runner-a.pem TOKENSIGN_TLS_KEY=$P/runner-a.key
export TOKENSIGN_TLS_CA=$P/ca.pem
key=$("$TS_CLIENT" keys | awk '$4 == "p256" { print $1 }')
[ -n "$key" ] || ts_fail "no key through HAProxy"
TOKENSIGN_AGENT= TOKENSIGN_AUTH_SOCK=$TS_TMP/b.sock "$TS_CLIENT" public-key \
    --key "$key" -o "$TS_TMP/key.pem"

clients=6
per=25
load() { # load N: per payloads, one connection each
	local i f rc
	for i in $(seq 1 $per); do
		f=$TS_TMP/load/p$1-$i.json
		printf '{"critical":{"identity":{"docker-reference":"registry.example.com/app%s"},"image":{"docker-manifest-digest":"sha256:%064d"},"type":"cosign container image signature"},"optional":null}' \
		    "$1" "$i" >"$f"
		rc=0
		timeout 60 "$TS_CLIENT" agent sign --key "$key" --payload "$f" \
		    -o "$f.sig" 2>>"$TS_TMP/load/err$1" || rc=$?
		[ $rc -eq 0 ] || echo "FAILED $f (exit $rc)" >>"$TS_TMP/load/err$1"
	done
}
mkdir -p "$TS_TMP/load"
pids=()
for c in $(seq 1 $clients); do
	load "$c" &
	pids+=($!)
done
# kill agent a once the load is under way
ts_wait_for bash -c "[ \$(ls $TS_TMP/load/*.sig 2>/dev/null | wc -l) -ge 20 ]" ||
    ts_fail "load did not start"
kill -KILL "$pid_a"
ts_pass "agent a killed (SIGKILL) during the load"
for p in "${pids[@]}"; do
	wait "$p" || true
done
failed=$(cat "$TS_TMP"/load/err* 2>/dev/null | grep -c FAILED || true)
[ "$failed" -eq 0 ] || ts_fail "$failed signatures failed: $(cat "$TS_TMP"/load/err*)"
n=$(ls "$TS_TMP"/load/*.sig | wc -l)
[ "$n" -eq $((clients * per)) ] || ts_fail "$n signatures, wanted $((clients * per))"
for s in "$TS_TMP"/load/*.sig; do
	openssl dgst -sha256 -verify "$TS_TMP/key.pem" -signature "$s" \
	    "${s%.sig}" >/dev/null || ts_fail "bad signature $s"
done
ts_pass "all $n payloads signed and verified despite the killed agent"
grep -q 'cn=runner-a' "$TS_TMP/a.audit" || ts_fail "agent a never served"
grep -q 'cn=runner-a' "$TS_TMP/b.audit" || ts_fail "agent b never served"
ts_pass "both agents served part of the load"
ts_haproxy_wait_state b0 down || ts_fail "HAProxy did not mark a down"
ts_pass "HAProxy marked the killed agent down"

# the killed agent's audit log: whole last line, chain intact
[ "$(tail -c 1 "$TS_TMP/a.audit" | od -An -c | tr -d ' ')" = '\n' ] ||
    ts_fail "last audit line of the killed agent is cut"
tail -n 1 "$TS_TMP/a.audit" | python3 -c 'import json,sys; json.load(sys.stdin)' ||
    ts_fail "last audit line is not JSON"
"$TS_CLIENT" audit verify "$TS_TMP/a.audit" >/dev/null ||
    ts_fail "killed agent's audit chain broken"
"$TS_CLIENT" audit verify "$TS_TMP/b.audit" >/dev/null ||
    ts_fail "agent b's audit chain broken"
ts_pass "killed agent's audit file intact, both chains verify"
ts_done
