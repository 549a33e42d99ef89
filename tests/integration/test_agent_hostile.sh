#!/bin/bash
# Hostile clients: oversize, zero, truncated, trailing, unknown type,
# garbage, slowloris, a client that never reads, 1000 idle connections
# over a connection cap, while a well-behaved client signs throughout
# (agent_hostile.py).  The agent must stay up and keep a sane size.
. "$TS_SRC/tests/lib/common.sh"
. "$TS_SRC/tests/lib/softhsm.sh"
. "$TS_SRC/tests/lib/agent.sh"
ts_softhsm_setup p256
cat > "$TS_TMP/agent.conf" <<CONF
max_connections 512
frame_timeout 2
write_timeout 2
CONF
ts_agent_start --config "$TS_TMP/agent.conf"
out=$(python3 "$TS_SRC/tests/integration/agent_hostile.py" \
    "$TOKENSIGN_AUTH_SOCK" p256 512 2) || ts_fail "hostile clients: see above"
n=$(echo "$out" | awk '/^CHECKS/ {print $2}')
TS_CHECKS=$((TS_CHECKS + n))
kill -0 "$TS_AGENT_PID" || ts_fail "agent died"
"$TS_CLIENT" agent sign --key p256 --digest "$(printf '%064x' 1)" >/dev/null ||
    ts_fail "agent cannot sign after the attacks"
ts_pass "agent alive and signing after all attacks"
rss=$(awk '/VmRSS/ {print $2}' "/proc/$TS_AGENT_PID/status")
if ! grep -q __asan_init "$TS_AGENT"; then # ASan's shadow memory is big
	[ "$rss" -lt 65536 ] || ts_fail "agent RSS $rss kB after the attacks"
fi
ts_pass "agent RSS ${rss} kB after the attacks"
ts_agent_stop
ts_done
