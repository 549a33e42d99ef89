#!/bin/bash
# Issue 6: presence through C_WaitForSlotEvent where the module has slot
# events (the shim does), and the periodic C_GetSlotInfo check where it has
# not (slot_events = 0).  With presence_poll_ms 0 only slot events can tell
# the agent; with the default interval the poll does.
. "$TS_SRC/tests/lib/common.sh"
. "$TS_SRC/tests/lib/softhsm.sh"
. "$TS_SRC/tests/lib/shim.sh"
. "$TS_SRC/tests/lib/agent.sh"
ts_softhsm_setup p256
ts_shim_setup
cd "$TS_TMP"
C=$TS_CLIENT
printf 'presence_poll_ms 0\npcsc_watch no\n' > events.conf
chmod 600 events.conf

# --- slot events only
TS_MODULE=$TS_SHIM ts_agent_start --module-allow "$TS_SHIM_ALLOW" --config "$TS_TMP/events.conf"
ts_shim_set '[token ts-main]' present=0
ms=$(ts_token_status_ms ts-main absent 3000) || ts_fail "slot event: removal not seen: $ms"
[ "$ms" -lt 1000 ] || ts_fail "removal seen after $ms ms"
ts_pass "C_WaitForSlotEvent: removal in STATUS after $ms ms (polling off)"
ts_shim_set
ms=$(ts_token_status_ms ts-main 'present, logged in' 3000) || ts_fail "slot event: reinsertion not seen: $ms"
[ "$ms" -lt 1000 ] || ts_fail "reinsertion seen after $ms ms"
ts_pass "C_WaitForSlotEvent: reinsertion, logged in again, after $ms ms"
ts_agent_stop

# --- a module without slot events and polling off: nothing notices...
ts_shim_set slot_events=0
TS_MODULE=$TS_SHIM ts_agent_start --module-allow "$TS_SHIM_ALLOW" --config "$TS_TMP/events.conf"
ts_shim_set slot_events=0 '[token ts-main]' present=0
sleep 1
"$C" agent status | grep -q '^token: ts-main present' ||
    ts_fail "presence changed without events or polling: $("$C" agent status)"
# ...until a request looks (and fails fast)
ts_expect_fail "sign on the removed token" 14 'is not present — insert it' \
    "$C" agent sign --key p256 --digest "$(printf '%064x' 7)"
ts_pass "no slot events, no polling: only a request notices the removal"
ts_agent_stop

# --- without slot events the periodic check finds it
ts_shim_set slot_events=0
TS_MODULE=$TS_SHIM ts_agent_start --module-allow "$TS_SHIM_ALLOW"
ts_shim_set slot_events=0 '[token ts-main]' present=0
ms=$(ts_token_status_ms ts-main absent 3000) || ts_fail "poll: removal not seen: $ms"
[ "$ms" -lt 1000 ] || ts_fail "poll: removal seen after $ms ms"
ts_pass "periodic C_GetSlotInfo (250 ms): removal in STATUS after $ms ms"
ts_shim_set slot_events=0
ms=$(ts_token_status_ms ts-main 'present, logged in' 3000) || ts_fail "poll: reinsertion not seen: $ms"
ts_pass "periodic check: reinsertion, logged in again, after $ms ms"
ts_agent_stop
ts_done
