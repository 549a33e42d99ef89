# tests/lib/agent.sh - start tokensign-agent on a socket in $TS_TMP.
#
# ts_agent_start [AGENT OPTIONS...]: runs the agent in the foreground (-D)
# on $TS_TMP/agent.sock with the SoftHSM module and PIN file (call
# ts_softhsm_setup first), waits until it answers, and exports
# TOKENSIGN_AUTH_SOCK and TS_AGENT_PID.  Its stderr goes to
# $TS_TMP/agent.log.  ts_agent_stop sends SIGTERM and waits.
# ts_token_status_ms TOKEN PATTERN [LIMIT_MS] polls the agent's STATUS line
# of TOKEN until it matches; ts_tls_agent_start adds an mTLS listener;
# ts_policy_runner_a writes a
# policy for the test PKI's runner-a and local clients; ts_payload prints
# a simple-signing payload.

# ts_payload REF DIGESTHEX: print a cosign simple-signing payload.
ts_payload() {
	printf '{"critical":{"identity":{"docker-reference":"%s"},"image":{"docker-manifest-digest":"sha256:%s"},"type":"cosign container image signature"},"optional":null}' "$1" "$2"
}

ts_agent_start() {
	local sock=${TS_AGENT_SOCK:-$TS_TMP/agent.sock}
	rm -f "$sock"
	"$TS_AGENT" -D -a "$sock" --module "$TS_MODULE" \
	    --pin-source "$TS_PIN_FILE" "$@" \
	    >"$TS_TMP/agent.out" 2>>"$TS_TMP/agent.log" &
	TS_AGENT_PID=$!
	ts_bg_track "$TS_AGENT_PID"
	export TOKENSIGN_AUTH_SOCK=$sock TS_AGENT_PID
	TS_WAIT=${TS_WAIT:-30} ts_wait_for "$TS_CLIENT" agent status ||
	    { cat "$TS_TMP/agent.log" >&2; ts_fail "agent did not start"; }
}

# ts_tls_agent_start NAME PORT POLICY [AGENT OPTIONS...]: an agent on
# $TS_TMP/NAME.sock and on tls://127.0.0.1:PORT with the test PKI's server
# certificate and CA (pki.sh: ts_pki_setup first) and the JSON policy
# POLICY; audit log $TS_TMP/NAME.audit, stderr $TS_TMP/NAME.log.  Waits
# until the port accepts and sets TS_TLS_AGENT_PID.
ts_tls_agent_start() {
	local name=$1 port=$2 policy=$3
	shift 3
	"$TS_AGENT" -D -a "$TS_TMP/$name.sock" --module "$TS_MODULE" \
	    --pin-source "$TS_PIN_FILE" --audit "$TS_TMP/$name.audit" \
	    --listen "tls://127.0.0.1:$port" --tls-cert "$TS_PKI/server.pem" \
	    --tls-key "$TS_PKI/server.key" --client-ca "$TS_PKI/ca.pem" \
	    --policy "$policy" "$@" >/dev/null 2>"$TS_TMP/$name.log" &
	TS_TLS_AGENT_PID=$!
	ts_bg_track "$TS_TLS_AGENT_PID"
	ts_wait_for bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" ||
	    ts_fail "agent $name did not listen: $(cat "$TS_TMP/$name.log")"
}

ts_agent_stop() {
	kill -TERM "$TS_AGENT_PID" 2>/dev/null || true
	wait "$TS_AGENT_PID" 2>/dev/null || true
}

# ts_policy_runner_a FILE [RAW_DIGEST]: a policy letting runner-a (TLS, by
# CN) and every local Unix client sign any repository with any key;
# RAW_DIGEST true also lets runner-a sign raw digests.
ts_policy_runner_a() {
	cat >"$1" <<EOF
{"version": 1, "rules": [
 {"name": "ci", "match": {"tls_cn": "runner-a"}, "keys": "*",
  "repositories": "**", "raw_digest": ${2:-false}},
 {"name": "local", "match": {"transport": "unix"}, "keys": "*",
  "repositories": "**"}
]}
EOF
}

# ts_token_status_ms TOKEN PATTERN [LIMIT_MS]: polls STATUS until TOKEN's
# line ("token: TOKEN ...") matches PATTERN (ERE); prints the milliseconds
# (ts_poll_ms; 3 s at most by default), or the last line and returns 1.
ts_token_status_ms() {
	ts_poll_ms "${3:-3000}" "$2" _ts_token_status_line "$1"
}
_ts_token_status_line() { "$TS_CLIENT" agent status | grep "^token: $1 "; }
