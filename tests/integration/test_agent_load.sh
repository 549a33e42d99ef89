#!/bin/bash
# 64 clients x 1000 signatures at once through one agent: 0 errors, every
# signature verified with OpenSSL (bench/agentbench -V).  Also a mixed run
# of payload batches.  TS_LOAD_COUNT scales it down for slow builds.
. "$TS_SRC/tests/lib/common.sh"
. "$TS_SRC/tests/lib/softhsm.sh"
. "$TS_SRC/tests/lib/agent.sh"
B=$TS_BIN/bench/agentbench
[ -x "$B" ] || ts_fail "agentbench not built"
ts_softhsm_setup p256
n=${TS_LOAD_COUNT:-1000}
ts_agent_start --audit "$TS_TMP/audit.log"
out=$("$B" -c 64 -n "$n" -V -k p256 "$TOKENSIGN_AUTH_SOCK") ||
    ts_fail "load: $out"
grep -q "sigs $((64 * n)) errors 0" <<<"$out" || ts_fail "load: $out"
ts_pass "64 clients x $n digest signatures, 0 errors, all verified ($out)"
out=$("$B" -c 8 -n 400 -b 20 -p -V -k p256 "$TOKENSIGN_AUTH_SOCK") ||
    ts_fail "batch load: $out"
grep -q "errors 0" <<<"$out" || ts_fail "batch load: $out"
ts_pass "8 clients x 400 payloads in batches of 20, 0 errors ($out)"
"$TS_CLIENT" agent status | grep -q '^errors: 0' || ts_fail "agent counted errors"
lines=$(wc -l < "$TS_TMP/audit.log")
[ "$lines" = $((64 * n + 3200)) ] || ts_fail "audit has $lines lines"
"$TS_CLIENT" audit verify "$TS_TMP/audit.log" >/dev/null || ts_fail "audit chain"
ts_pass "audit: one line per signature ($lines), chain intact under concurrency"
ts_agent_stop

# One worker, and a client that signs back to back, so the worker waits
# on its connection between requests (agent/worker.c lingers): a second
# client must still get its turn, not wait for the first to stop.
ts_agent_start --workers 1
"$B" -c 1 -s 4 -k p256 "$TOKENSIGN_AUTH_SOCK" >"$TS_TMP/a.out" &
apid=$!
sleep 0.5
b=$("$B" -c 1 -s 2 -k p256 "$TOKENSIGN_AUTH_SOCK") || ts_fail "second client: $b"
wait "$apid" || ts_fail "first client: $(cat "$TS_TMP/a.out")"
a=$(cat "$TS_TMP/a.out")
bn=$(echo "$b" | sed -n 's/.* sigs \([0-9]*\) errors 0 .*/\1/p')
an=$(echo "$a" | sed -n 's/.* sigs \([0-9]*\) errors 0 .*/\1/p')
[ -n "$an" ] && [ -n "$bn" ] || ts_fail "errors: first: $a; second: $b"
# Fair shares would be about a third of the first's count; starving
# would be 0 or 1.
[ "$bn" -ge 50 ] && [ "$bn" -ge $((an / 20)) ] ||
    ts_fail "second client starved: $bn signatures beside $an"
ts_pass "one worker, two busy clients: $an and $bn signatures, 0 errors"
ts_agent_stop
ts_done
