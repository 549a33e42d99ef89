#!/bin/bash
# README command 1's body (tests/lib/demo-run.sh) keeps working: it signs
# and verifies an image end to end and says so.
. "$TS_SRC/tests/lib/common.sh"
out=$(bash "$TS_SRC/tests/lib/demo-run.sh" 2>&1) || ts_fail "demo failed: $out"
grep -q '^1 of 1 signature verified' <<<"$out" || ts_fail "demo did not verify: $out"
ts_pass "demo verified its signature"
grep -q '^openssl: signature over the stored payload verifies' <<<"$out" ||
    ts_fail "demo's openssl check missing: $out"
ts_pass "demo's independent openssl check"
grep -q 'chain intact' <<<"$out" || ts_fail "demo audit chain: $out"
ts_pass "demo audit chain intact"
grep -q '^Demo complete' <<<"$out" || ts_fail "demo incomplete: $out"
ts_done
