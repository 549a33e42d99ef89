# tests/lib/agent.sh - start tokensign-agent on a socket in $TS_TMP.
#
# ts_agent_start [AGENT OPTIONS...]: runs the agent in the foreground (-D)
# on $TS_TMP/agent.sock with the SoftHSM module and PIN file (call
# ts_softhsm_setup first), waits until it answers, and exports
# TOKENSIGN_AUTH_SOCK and TS_AGENT_PID.  Its stderr goes to
# $TS_TMP/agent.log.  ts_agent_stop sends SIGTERM and waits.

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

ts_agent_stop() {
	kill -TERM "$TS_AGENT_PID" 2>/dev/null || true
	wait "$TS_AGENT_PID" 2>/dev/null || true
}
