#!/bin/bash
# The token layer against faults real tokens produce but SoftHSM never does,
# through the fault-injecting shim (tests/shim, docs/internals/shim.md) over
# a real SoftHSM token: locked PIN, last PIN try, few tries left, removed
# device and device errors mid-sign, a logout under our feet, and every
# kind of lying attribute length.
. "$TS_SRC/tests/lib/common.sh"
. "$TS_SRC/tests/lib/softhsm.sh"
. "$TS_SRC/tests/lib/shim.sh"
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}fast_unwind_on_malloc=0
ts_softhsm_setup p256
ts_shim_setup
T=$TS_CLIENT
S=$TS_SHIM
ALLOW="$(dirname "$(readlink -f "$S")")/*"
D=$(printf x | openssl dgst -sha256 -r | cut -c1-64)
URI='pkcs11:token=ts-main;object=p256'
ts_softhsm_pubkey p256 "$TS_TMP/p256.pem"
p11() { "$T" pkcs11 "$1" --module "$S" --allow-module "$ALLOW" "${@:2}"; }

# the shim itself is refused by the default allow-list (it lives in the build dir)
ts_expect_fail "shim off the default allow-list" 14 'not on the allow-list' \
    "$T" pkcs11 tokens --module "$S"
p11 sign "$URI" --digest "$D" --pin-source "$TS_PIN_FILE" --out "$TS_TMP/ok.sig" ||
    ts_fail "sign through the shim"
printf x >"$TS_TMP/x"
openssl dgst -sha256 -verify "$TS_TMP/p256.pem" -signature "$TS_TMP/ok.sig" \
    "$TS_TMP/x" >/dev/null || ts_fail "signature through the shim invalid"
ts_pass "baseline: signing through the shim verifies"

# locked PIN: refused without spending a C_Login
ts_shim_set '[token ts-main]' 'pin_flags = locked'
ts_expect_fail "locked PIN" 14 'PIN locked' \
    p11 sign "$URI" --digest "$D" --pin-source "$TS_PIN_FILE"
[ "$(ts_shim_stat C_Login)" = 0 ] || ts_fail "tried to log in with a locked PIN"
ts_pass "locked PIN: no login attempted"

# final try: refused unless --final-try, and then the one try is used once
ts_shim_set '[token ts-main]' 'pin_flags = final_try'
ts_expect_fail "final PIN try refused" 14 '1 try left' \
    p11 sign "$URI" --digest "$D" --pin-source "$TS_PIN_FILE"
[ "$(ts_shim_stat C_Login)" = 0 ] || ts_fail "spent the final PIN try"
p11 sign "$URI" --digest "$D" --pin-source "$TS_PIN_FILE" --final-try >/dev/null ||
    ts_fail "--final-try with the right PIN"
[ "$(ts_shim_stat C_Login)" = 1 ] || ts_fail "final try: not exactly one login"
ts_pass "final try: refused by default, one login with --final-try"

# wrong PIN with few tries left: distinct warning, exactly one attempt
ts_shim_set '[token ts-main]' 'pin_flags = count_low'
( umask 077; printf 000000 >"$TS_TMP/bad" )
ts_expect_fail "wrong PIN, few tries left" 14 'few PIN tries left' \
    p11 sign "$URI" --digest "$D" --pin-source "$TS_TMP/bad"
[ "$(ts_shim_stat C_Login)" = 1 ] || ts_fail "wrong PIN retried"
ts_pass "wrong PIN tried exactly once"

# (the shim's stats file holds the counters of the last process)

# the device goes away or fails during C_Sign
ts_shim_set '[token ts-main]' 'fail.C_Sign = CKR_DEVICE_REMOVED'
ts_expect_fail "device removed mid-sign" 14 'token is not present' \
    p11 sign "$URI" --digest "$D" --pin-source "$TS_PIN_FILE" --out "$TS_TMP/rm.sig"
[ ! -e "$TS_TMP/rm.sig" ] || ts_fail "removed token left an output file"
ts_shim_set '[token ts-main]' 'fail.C_Sign = CKR_DEVICE_ERROR'
ts_expect_fail "device error mid-sign" 14 'token device error' \
    p11 sign "$URI" --digest "$D" --pin-source "$TS_PIN_FILE"
ts_shim_set '[token ts-main]' 'fail.C_SignInit = CKR_MECHANISM_INVALID'
ts_expect_fail "mechanism refused" 14 'mechanism not supported' \
    p11 sign "$URI" --digest "$D" --pin-source "$TS_PIN_FILE"
# (not_logged_in is a counter that a fresh process takes as its baseline,
# so a one-shot CLI sees the error code instead)
ts_shim_set '[token ts-main]' 'fail.C_SignInit = CKR_USER_NOT_LOGGED_IN'
ts_expect_fail "logged out under our feet" 14 'not logged in' \
    p11 sign "$URI" --digest "$D" --pin-source "$TS_PIN_FILE"

# token absent: not listed; a key URI naming it says it is not present
ts_shim_set '[token ts-main]' 'present = 0'
out=$(p11 tokens) || ts_fail "tokens with an absent token"
grep -q "token 'ts-main'" <<<"$out" && ts_fail "absent token listed: $out"
grep -q "token 'ts-second'" <<<"$out" || ts_fail "other token lost: $out"
ts_expect_fail "key on an absent token" 14 'token is not present' \
    p11 sign "$URI" --digest "$D" --pin-source "$TS_PIN_FILE"
ts_pass "absent token"

# lying attribute lengths: the key is skipped, nothing crashes, the other
# token's key is untouched
for mode in huge zero unavailable overlong truncate; do
	ts_shim_set '[token ts-main]' "bogus_attr = $mode"
	rc=0
	out=$(p11 keys 2>&1) || rc=$?
	[ $rc -eq 0 ] || ts_fail "bogus_attr=$mode: keys exit $rc: $out"
	grep -q 'object=p256;' <<<"$out" && ts_fail "bogus_attr=$mode: bad key listed: $out"
	grep -q 'object=p256-b;' <<<"$out" || ts_fail "bogus_attr=$mode: good key lost: $out"
	ts_expect_fail "bogus_attr=$mode: key refused" 14 'key not found' \
	    p11 pubkey "$URI"
done
# only the EC point truncated: same answer
ts_shim_set '[token ts-main]' 'bogus_attr = truncate' 'bogus_attr_types = CKA_EC_POINT'
ts_expect_fail "truncated EC point" 14 'key not found' p11 pubkey "$URI"
ts_shim_set
p11 pubkey "$URI" >/dev/null || ts_fail "key back once the token behaves"
ts_pass "key readable again after the faults"
ts_done
