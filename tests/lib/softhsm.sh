# tests/lib/softhsm.sh - SoftHSM2 tokens in the test's temp dir.
#
# ts_softhsm_setup creates, under $TS_TMP/softhsm, with a private
# SOFTHSM2_CONF:
#   token "ts-main"   (user PIN $TS_PIN): keys, each a key pair with the
#       same CKA_LABEL and CKA_ID on both halves:
#         p256     id 01  EC P-256
#         p384     id 02  EC P-384
#         rsa2048  id 03  RSA 2048
#         rsa3072  id 04  RSA 3072
#         ed25519  id 05  Ed25519 (CKK_EC_EDWARDS)
#         p256-aa  id 06  EC P-256 with CKA_ALWAYS_AUTHENTICATE
#   token "ts-second" (same PIN): p256-b id 11 EC P-256
# and exports SOFTHSM2_CONF, TS_MODULE, TS_PIN, TS_PIN_FILE (mode 0600).
# SoftHSM 2.6.1 fails when processes initialise one token at the same
# moment, so every step here runs one after another.

# SoftHSM's own leaks, for a sanitizer build run by hand (ctest sets it too)
case ${LSAN_OPTIONS:-} in
*lsan-softhsm.supp*) ;;
*) export LSAN_OPTIONS=${LSAN_OPTIONS:+$LSAN_OPTIONS:}suppressions=$TS_SRC/tests/lib/lsan-softhsm.supp ;;
esac
TS_MODULE=${TS_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
TS_PIN=123456
TS_SO_PIN=12345678

ts_p11tool() {
	pkcs11-tool --module "$TS_MODULE" "$@"
}

ts_softhsm_keygen() { # token type label id [extra...]
	local token=$1 type=$2 label=$3 id=$4
	shift 4
	ts_p11tool --token-label "$token" --login --pin "$TS_PIN" \
	    --keypairgen --key-type "$type" --label "$label" --id "$id" "$@" \
	    >/dev/null 2>&1 || ts_fail "softhsm: cannot create key $label ($type)"
}

ts_softhsm_setup() {
	local dir=$TS_TMP/softhsm
	mkdir -p "$dir/tokens"
	cat > "$dir/softhsm2.conf" <<CONF
directories.tokendir = $dir/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF
	export SOFTHSM2_CONF=$dir/softhsm2.conf TS_MODULE TS_PIN
	softhsm2-util --init-token --free --label ts-main --pin "$TS_PIN" \
	    --so-pin "$TS_SO_PIN" >/dev/null || ts_fail "softhsm: init ts-main"
	softhsm2-util --init-token --free --label ts-second --pin "$TS_PIN" \
	    --so-pin "$TS_SO_PIN" >/dev/null || ts_fail "softhsm: init ts-second"
	if [ "${1:-all}" = p256 ]; then
		ts_softhsm_keygen ts-main EC:prime256v1 p256 01
	else
		ts_softhsm_keygen ts-main EC:prime256v1 p256 01
		ts_softhsm_keygen ts-main EC:secp384r1 p384 02
		ts_softhsm_keygen ts-main rsa:2048 rsa2048 03
		ts_softhsm_keygen ts-main rsa:3072 rsa3072 04
		ts_softhsm_keygen ts-main EC:edwards25519 ed25519 05
		ts_softhsm_keygen ts-main EC:prime256v1 p256-aa 06 --always-auth
	fi
	ts_softhsm_keygen ts-second EC:prime256v1 p256-b 11
	export TS_PIN_FILE=$dir/pin
	( umask 077; printf '%s' "$TS_PIN" > "$TS_PIN_FILE" )
}

# ts_softhsm_pubkey LABEL OUT.pem [TOKEN]: export a public key as PEM with
# GnuTLS p11tool, a PKCS#11 stack independent of ours (OpenSC 0.23's
# pkcs11-tool cannot export P-384 or Ed25519 public keys).
ts_softhsm_pubkey() {
	local label=$1 out=$2 token=${3:-ts-main}
	GNUTLS_PIN=$TS_PIN p11tool --provider "$TS_MODULE" --login --export-pubkey \
	    "pkcs11:token=$token;object=$label;type=public" >"$out" 2>/dev/null ||
	    ts_fail "softhsm: cannot read public key $label"
	openssl pkey -pubin -in "$out" -noout 2>/dev/null ||
	    ts_fail "softhsm: public key $label is not SPKI"
}
