#!/bin/bash
# Issue 6 with pcscd + vsmartcard: the agent's PC/SC watcher (agent/readers.c)
# sees the virtual card go out and in, and STATUS follows for the token
# whose slot is named after that reader (the shim's slot description is the
# reader name and its presence follows the card: ts_pcsc_bridge_shim).
# Presence polling is off (presence_poll_ms 0) and the shim has no slot
# events (slot_events=0), so only the reader watcher can notice.
# Serialised with the other test_pcsc_* tests.
. "$TS_SRC/tests/lib/common.sh"
. "$TS_SRC/tests/lib/softhsm.sh"
. "$TS_SRC/tests/lib/shim.sh"
. "$TS_SRC/tests/lib/agent.sh"
. "$TS_SRC/tests/lib/pcsc.sh"
ts_pcsc_setup
ts_softhsm_setup p256
ts_shim_setup
ts_pcsc_bridge_shim ts-main
cd "$TS_TMP"
C=$TS_CLIENT
dig=$(printf '%064x' 7)
sign() { "$C" agent sign --key p256 --digest "$dig" >/dev/null; }

ts_pcsc_agent_start
sign || ts_fail "sign with the card in"
ts_pass "agent serves the shim token in the '$TS_PCSC_READER' slot"

for i in 1 2; do
	ts_pcsc_card_remove
	ts_pcsc_wait_card absent 3000 >/dev/null || ts_fail "removal $i: card still in"
	ms=$(ts_token_status_ms ts-main 'absent') || ts_fail "removal $i: STATUS still says: $ms"
	[ "$ms" -lt 1000 ] || ts_fail "removal $i: STATUS after $ms ms"
	ts_pass "removal $i: STATUS shows ts-main absent $ms ms after pcscd saw it"
	grep -q "reader \"$TS_PCSC_READER\": card removed" agent.log ||
	    ts_fail "watcher did not log the removal"
	ts_expect_fail "removal $i: sign" 14 'ts-main .serial .*. is not present — insert it' sign

	ts_pcsc_card_insert
	ts_pcsc_wait_card present 3000 >/dev/null || ts_fail "insertion $i: no card"
	ms=$(ts_token_status_ms ts-main 'present, logged in') || ts_fail "insertion $i: STATUS still says: $ms"
	[ "$ms" -lt 1000 ] || ts_fail "insertion $i: STATUS after $ms ms"
	ts_pass "insertion $i: STATUS shows ts-main present, logged in $ms ms after pcscd saw it"
	sign || ts_fail "insertion $i: sign"
	ts_pass "insertion $i: signing resumes (same agent, pid $TS_AGENT_PID)"
done
grep -q "reader \"$TS_PCSC_READER\": card inserted" agent.log ||
    ts_fail "watcher did not log the insertion"
ts_agent_stop
ts_done
