#!/bin/bash
# A cosign-style signature made through sigstore-kms-tokensign for a real
# image's payload verifies with tokensign's strict verifier, offline
# (--payload/--signature/--digest) and after upload to a real registry with
# `tokensign attach signature` (`tokensign verify IMAGE`).  The payload is
# the one `tokensign sign` builds (cosign's byte layout); the plugin is
# driven with cosign 2.x's argv/stdin shape (whole payload, no digest).
. "$TS_SRC/tests/lib/common.sh"
. "$TS_SRC/tests/lib/softhsm.sh"
. "$TS_SRC/tests/lib/registry.sh"
. "$TS_SRC/tests/lib/oci-image.sh"
command -v skopeo >/dev/null || { echo "SKIP: no skopeo"; exit 77; } # ts_image
ts_registry_have || { echo "SKIP: no docker-registry"; exit 77; }
PLUGIN=${TS_KMS_PLUGIN:-$TS_BIN/client/sigstore-kms-tokensign}
export TOKENSIGN_SETTLE_MS=${TOKENSIGN_SETTLE_MS:-50}

ts_softhsm_setup
ts_registry_start
R=$TS_REGISTRY
sock=$TS_TMP/agent.sock
"$TS_AGENT" -D -a "$sock" --module "$TS_MODULE" --pin-source "$TS_PIN_FILE" \
    > "$TS_TMP/agent.out" 2>&1 &
ts_bg_track $!
ts_wait_for test -S "$sock" || ts_fail "agent did not start: $(cat "$TS_TMP/agent.out")"
export TOKENSIGN_AUTH_SOCK=$sock

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
    -out "$TS_TMP/throwaway.key" 2>/dev/null
ts_image "$R/demo/app:v1" app1
D=$(ts_manifest_digest "$R/demo/app:v1")

kms_sign() { # KEY PAYLOAD -> base64 signature on stdout
	"$PLUGIN" v1 "{\"methodName\":\"signMessage\",\"signMessage\":{\"signOptions\":{\"rpcOptions\":{\"keyVersion\":\"\",\"remoteVerification\":false},\"messageOptions\":{\"digest\":null}}},\"initOptions\":{\"protocolVersion\":\"v1\",\"keyResourceID\":\"tokensign://$1\",\"hashFunc\":5}}" \
	    < "$2" | python3 -c '
import json, sys
d = json.load(sys.stdin)
if "errorMessage" in d:
    sys.exit("plugin: " + d["errorMessage"])
print(d["signMessage"]["signature"])'
}

for k in p256 ed25519 rsa2048; do
	ts_softhsm_pubkey "$k" "$TS_TMP/$k.pem"
	# the payload cosign would build for this image: tokensign sign builds
	# the same bytes (its own signature, by a throw-away file key, is
	# discarded: only the payload is used)
	"$TS_CLIENT" sign --key "file:$TS_TMP/throwaway.key" --upload=false --output-payload "$TS_TMP/$k.payload" \
	    "$R/demo/app@$D" > /dev/null 2> "$TS_TMP/sign.err" || ts_fail "$k: tokensign sign --upload=false: $(cat "$TS_TMP/sign.err")"
	kms_sign "$k" "$TS_TMP/$k.payload" > "$TS_TMP/$k.sig" || ts_fail "$k: plugin signMessage"
	"$TS_CLIENT" verify --key "$TS_TMP/$k.pem" --identity "$R/demo/app" \
	    --payload "$TS_TMP/$k.payload" --signature "$TS_TMP/$k.sig" --digest "$D" \
	    > /dev/null 2> "$TS_TMP/verify.err" ||
	    ts_fail "$k: tokensign verify (offline): $(cat "$TS_TMP/verify.err")"
	ts_pass "$k: plugin signature verifies with tokensign verify --payload"
	# a different key does not verify it
	other=p256; [ "$k" = p256 ] && other=rsa2048
	ts_softhsm_pubkey "$other" "$TS_TMP/other.pem"
	if "$TS_CLIENT" verify --key "$TS_TMP/other.pem" --identity "$R/demo/app" \
	    --payload "$TS_TMP/$k.payload" --signature "$TS_TMP/$k.sig" --digest "$D" \
	    > /dev/null 2>&1; then
		ts_fail "$k: verified with the wrong key"
	fi
	# attach it to the image in the registry: the PEM key for two of
	# them, the agent's key reference for the third
	kopt=$TS_TMP/$k.pem; [ "$k" = rsa2048 ] && kopt=rsa2048
	"$TS_CLIENT" attach signature --key "$kopt" --payload "$TS_TMP/$k.payload" \
	    --signature "$TS_TMP/$k.sig" "$R/demo/app:v1" \
	    > /dev/null 2> "$TS_TMP/attach.err" ||
	    ts_fail "$k: tokensign attach signature: $(cat "$TS_TMP/attach.err")"
	grep -q "signature attached" "$TS_TMP/attach.err" ||
	    ts_fail "$k: attach: $(cat "$TS_TMP/attach.err")"
	ts_pass "$k: plugin signature attached (--key $(basename "$kopt"))"
done
# attaching the same signature again adds nothing
"$TS_CLIENT" attach signature --payload "$TS_TMP/p256.payload" \
    --signature "$TS_TMP/p256.sig" "$R/demo/app@$D" > /dev/null 2> "$TS_TMP/attach.err" ||
    ts_fail "re-attach: $(cat "$TS_TMP/attach.err")"
grep -q "already present" "$TS_TMP/attach.err" || ts_fail "re-attach: $(cat "$TS_TMP/attach.err")"
[ "$(ts_sig_layers "$R/demo/app" "$D" | wc -l)" = 3 ] ||
    ts_fail "re-attach changed the layer count: $(ts_sig_layers "$R/demo/app" "$D")"
ts_pass "attaching the same signature twice stores it once"

for k in p256 ed25519 rsa2048; do
	"$TS_CLIENT" verify --key "$TS_TMP/$k.pem" "$R/demo/app:v1" \
	    > /dev/null 2> "$TS_TMP/verify.err" ||
	    ts_fail "$k: tokensign verify IMAGE: $(cat "$TS_TMP/verify.err")"
	grep -q "1 of 3 signatures verified" "$TS_TMP/verify.err" ||
	    ts_fail "$k: summary: $(cat "$TS_TMP/verify.err")"
	ts_pass "$k: plugin signature verifies from the registry (tokensign verify IMAGE)"
done
# `tokensign agent sign --payload` (base64 on stdout) then attach with the
# agent's key reference; a wrong agent key is refused and writes nothing
ts_image "$R/demo/app2:v1" app2
D2=$(ts_manifest_digest "$R/demo/app2:v1")
"$TS_CLIENT" sign --key "file:$TS_TMP/throwaway.key" --upload=false --output-payload "$TS_TMP/a2.payload" \
    "$R/demo/app2@$D2" > /dev/null 2>&1 || ts_fail "app2: payload"
"$TS_CLIENT" agent sign --key p256 --payload "$TS_TMP/a2.payload" > "$TS_TMP/a2.sig" ||
    ts_fail "agent sign --payload"
ts_expect_fail "agent-signed payload refused with another agent key" 11 \
    "does not verify with the agent's key ed25519" \
    "$TS_CLIENT" attach signature --key ed25519 --payload "$TS_TMP/a2.payload" \
    --signature "$TS_TMP/a2.sig" "$R/demo/app2:v1"
ts_manifest_get "$R/demo/app2:sha256-${D2#sha256:}.sig" > /dev/null 2>&1 &&
    ts_fail "the refused attach wrote app2's .sig"
"$TS_CLIENT" attach signature --key p256 --payload "$TS_TMP/a2.payload" \
    --signature "$TS_TMP/a2.sig" "$R/demo/app2:v1" 2> "$TS_TMP/attach.err" ||
    ts_fail "attach agent signature: $(cat "$TS_TMP/attach.err")"
ts_check_sigs "$R/demo/app2" "$D2" "$TS_TMP/p256.pem" 1
ts_pass "tokensign agent sign --payload + attach --key KEYREF: stored, openssl verifies"

# and independently: openssl over the stored payload bytes (P-256, DER)
base64 -d "$TS_TMP/p256.sig" > "$TS_TMP/p256.sig.der"
openssl dgst -sha256 -verify "$TS_TMP/p256.pem" -signature "$TS_TMP/p256.sig.der" \
    "$TS_TMP/p256.payload" > /dev/null || ts_fail "openssl: p256 signature"
ts_pass "openssl verifies the P-256 plugin signature over the payload bytes"
ts_done
