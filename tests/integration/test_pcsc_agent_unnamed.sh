#!/bin/bash
# Issue 6 with pcscd + vsmartcard, for a module whose slot is not named
# after the reader (TS_PCSC_BRIDGE_DESC): the reader watcher's event names
# no token's slot, so the agent checks every token; the shim token that
# follows the virtual card still shows absent and present again in STATUS
# within a second.  Presence polling and the shim's slot events are off,
# so only the reader watcher can notice (test_pcsc_agent.sh covers the
# named slot).  Serialised with the other test_pcsc_* tests.
. "$TS_SRC/tests/lib/common.sh"
. "$TS_SRC/tests/lib/softhsm.sh"
. "$TS_SRC/tests/lib/shim.sh"
. "$TS_SRC/tests/lib/agent.sh"
. "$TS_SRC/tests/lib/pcsc.sh"
ts_pcsc_setup
ts_softhsm_setup p256
ts_shim_setup
export TS_PCSC_BRIDGE_DESC="Vendor token slot 0"
ts_pcsc_bridge_shim ts-main
cd "$TS_TMP"
C=$TS_CLIENT
dig=$(printf '%064x' 7)
sign() { "$C" agent sign --key p256 --digest "$dig" >/dev/null; }

ts_pcsc_agent_start -d
sign || ts_fail "sign with the card in"
ts_pass "agent serves the shim token in a slot named '$TS_PCSC_BRIDGE_DESC'"

ts_pcsc_card_remove
ts_pcsc_wait_card absent 3000 >/dev/null || ts_fail "removal: card still in"
ms=$(ts_token_status_ms ts-main 'absent') || ts_fail "removal: STATUS still says: $ms"
[ "$ms" -lt 1000 ] || ts_fail "removal: STATUS after $ms ms"
grep -q "reader \"$TS_PCSC_READER\" (card out) names no token's slot: checking every token" \
    agent.log || ts_fail "no fallback to every token on removal: $(tail -5 agent.log)"
ts_expect_fail "removal: sign" 14 'ts-main .serial .*. is not present — insert it' sign
ts_pass "removal: STATUS shows ts-main absent $ms ms after pcscd saw it (no slot named after the reader)"

ts_pcsc_card_insert
ts_pcsc_wait_card present 3000 >/dev/null || ts_fail "insertion: no card"
ms=$(ts_token_status_ms ts-main 'present, logged in') || ts_fail "insertion: STATUS still says: $ms"
[ "$ms" -lt 1000 ] || ts_fail "insertion: STATUS after $ms ms"
sign || ts_fail "insertion: sign"
ts_pass "insertion: STATUS shows ts-main present, logged in $ms ms after pcscd saw it; signing resumes"
ts_agent_stop
ts_done
