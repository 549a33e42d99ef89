#!/bin/bash
# pcscd + vsmartcard driving a shim token: the shim's slot carries the
# virtual reader's name, and the virtual card going in and out makes the
# PKCS#11 token appear and vanish too (slot events, removal errors), the way
# a YubiKey behaves through a smart-card module.  This is the set-up the
# agent's watcher tests use (docs/internals/shim.md).
. "$TS_SRC/tests/lib/common.sh"
. "$TS_SRC/tests/lib/softhsm.sh"
. "$TS_SRC/tests/lib/shim.sh"
. "$TS_SRC/tests/lib/pcsc.sh"
ts_pcsc_setup
ts_softhsm_setup p256
ts_shim_setup
ts_pcsc_bridge_shim ts-main

expect() { # DESC PATTERN LINE
	grep -Eq -- "$2" <<<"$3" || ts_fail "$1: got '$3', want /$2/"
	ts_pass "$1"
}
# Polls the probe until LINE matches; prints the time taken in ms.
probe_until() { # CMD PATTERN TIMEOUT_MS
	ts_poll_ms "$3" "$2" ts_probe "$1"
}

# ts_probe_start needs the token present to find its slot.
ts_pcsc_bridged_card_in
ts_probe_start ts-main
expect "slot named after the reader" 'present=1 .*desc="Virtual PCD 00 00"' \
    "$(ts_probe slotinfo)"
expect "open" '^open CKR_OK' "$(ts_probe open)"
expect "login" '^login CKR_OK' "$(ts_probe login)"
expect "sign with the card in" '^sign CKR_OK' "$(ts_probe sign p256)"
ts_probe waitnb >/dev/null || true # drop the start-up event, if any

for i in 1 2; do
	ts_pcsc_card_remove
	ms=$(probe_until 'sign p256' '^sign CKR_DEVICE_REMOVED' 1000) ||
	    ts_fail "removal $i: signing still works: $ms"
	ts_pass "removal $i: sign fails with CKR_DEVICE_REMOVED after $ms ms"
	expect "removal $i: slot empty" 'present=0 .*desc="Virtual PCD 00 00"' \
	    "$(ts_probe slotinfo)"
	expect "removal $i: slot event" '^waitnb CKR_OK slot=ours' "$(ts_probe waitnb)"
	expect "removal $i: open refused" '^open CKR_TOKEN_NOT_PRESENT' "$(ts_probe open)"

	ts_probe_send wait
	t0=$(ts_now_ms)
	ts_pcsc_card_insert
	line=$(ts_probe_reply 5) || ts_fail "insertion $i: no slot event"
	d=$(( $(ts_now_ms) - t0 ))
	expect "insertion $i: blocking wait wakes" '^wait CKR_OK slot=ours' "$line"
	# From starting vicc, Python's start-up included (see pcsc.sh);
	# test_pcsc_harness times detection from vicc's connection.
	[ "$d" -lt 5000 ] || ts_fail "insertion $i: event after $d ms"
	ts_pass "insertion $i: event $d ms after starting vicc"
	expect "insertion $i: reopen" '^open CKR_OK' "$(ts_probe open)"
	expect "insertion $i: login" '^login CKR_OK' "$(ts_probe login)"
	expect "insertion $i: signing resumes" '^sign CKR_OK' "$(ts_probe sign p256)"
done

# Other faults still come from the test's own control file.
ts_shim_set sign_delay_ms=300
line=$(ts_probe sign p256)
expect "touch delay alongside the bridge" '^sign CKR_OK' "$line"
[ "$(echo "$line" | sed 's/.*ms=\([0-9]*\).*/\1/')" -ge 300 ] ||
    ts_fail "delay lost: $line"
ts_pass "delay applied"
ts_probe_stop
ts_done
