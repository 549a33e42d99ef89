#!/bin/bash
# The SoftHSM harness itself: both tokens exist with every key type, and
# every public key exports as SPKI that openssl reads.
. "$TS_SRC/tests/lib/common.sh"
. "$TS_SRC/tests/lib/softhsm.sh"
ts_softhsm_setup
out=$(ts_p11tool --list-token-slots 2>&1)
grep -q 'ts-main' <<<"$out" || ts_fail "ts-main missing: $out"
grep -q 'ts-second' <<<"$out" || ts_fail "ts-second missing: $out"
ts_pass "two tokens"
for k in p256 p384 rsa2048 rsa3072 ed25519 p256-aa; do
	ts_softhsm_pubkey "$k" "$TS_TMP/$k.pem"
	openssl pkey -pubin -in "$TS_TMP/$k.pem" -noout -text >/dev/null ||
	    ts_fail "$k: openssl cannot read the public key"
	ts_pass "key $k exported"
done
objs=$(ts_p11tool --token-label ts-main --login --pin "$TS_PIN" -O 2>&1)
grep -q 'always authenticate' <<<"$objs" ||
    ts_fail "p256-aa lacks CKA_ALWAYS_AUTHENTICATE"
ts_pass "always-authenticate key"
[ "$(stat -c %a "$TS_PIN_FILE")" = 600 ] || ts_fail "PIN file mode"
ts_pass "PIN file private"
ts_done
