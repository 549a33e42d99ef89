#!/bin/bash
# The pcscd + vsmartcard harness (tests/lib/pcsc.sh): a virtual card put in
# and taken out of the virtual reader is seen through libpcsclite's
# SCardGetStatusChange (the call the agent's watcher blocks in) within 1 s,
# three times over, and only in the reader it went into.
. "$TS_SRC/tests/lib/common.sh"
. "$TS_SRC/tests/lib/pcsc.sh"
ts_pcsc_setup
ts_log "pcscd mode $TS_PCSC_MODE, vpcd port $TS_VPCD_PORT"

readers=$("$TS_PCSC_WAIT" readers)
grep -qx "empty $TS_PCSC_READER" <<<"$readers" ||
    ts_fail "reader not listed empty: $readers"
ts_pass "reader '$TS_PCSC_READER' listed, no card"
ts_expect_fail "no card yet: waiting for one times out" 1 '^timeout' \
    "$TS_PCSC_WAIT" card present 300 "$TS_PCSC_READER"

ev=$TS_TMP/events
"$TS_PCSC_WAIT" watch 60000 > "$ev" 2>&1 &
ts_bg_track $!
ts_wait_for grep -q ' ready$' "$ev" || ts_fail "watcher did not start: $(cat "$ev")"

# event_at KIND N: epoch-ms of the N-th KIND event for our reader.
event_at() {
	grep " $1 $TS_PCSC_READER\$" "$ev" | sed -n "${2}p" | cut -d' ' -f1
}
have_event() { [ -n "$(event_at "$1" "$2")" ]; }

# Insertion is timed from vicc's connection to vpcd (the card going in):
# the Python start-up before it is vicc's, not PC/SC's, and on a loaded
# machine alone can take over a second.  Removal is timed from stopping
# vicc.
worst_in=0 worst_out=0
for i in 1 2 3; do
	t_start=$(ts_now_ms)
	ts_pcsc_card_insert
	TS_WAIT=10 ts_wait_for ts_pcsc_card_connected "$i" ||
	    ts_fail "vicc did not connect: $(cat "$TS_TMP/pcsc/vicc.log")"
	t0=$(ts_now_ms)
	TS_WAIT=5 ts_wait_for have_event card-inserted "$i" ||
	    ts_fail "insert $i not seen: $(cat "$ev")"
	t_ev=$(event_at card-inserted "$i")
	d=$((t_ev - t0))
	[ "$d" -lt 1000 ] || ts_fail "insert $i seen $d ms after vicc connected"
	[ "$d" -gt "$worst_in" ] && worst_in=$d
	ts_pass "insert $i seen $d ms after vicc connected ($((t_ev - t_start)) ms after starting it)"
	line=$(ts_pcsc_wait_card present 1000) || ts_fail "card not present"
	ts_pass "card present in $TS_PCSC_READER ($line)"

	t0=$(ts_now_ms)
	ts_pcsc_card_remove
	TS_WAIT=5 ts_wait_for have_event card-removed "$i" ||
	    ts_fail "removal $i not seen: $(cat "$ev")"
	d=$(( $(event_at card-removed "$i") - t0 ))
	[ "$d" -lt 1000 ] || ts_fail "removal $i seen after $d ms"
	[ "$d" -gt "$worst_out" ] && worst_out=$d
	ts_pass "removal $i seen after $d ms"
	ts_pcsc_wait_card absent 1000 >/dev/null || ts_fail "card still present"
done
ts_log "worst: insert $worst_in ms, removal $worst_out ms"

# The other vpcd reader never had a card.
! grep -q "card-inserted Virtual PCD 00 01" "$ev" ||
    ts_fail "a card showed up in the wrong reader: $(cat "$ev")"
ts_pass "no event on the other virtual reader"
ts_done
