#!/bin/bash
# tokensign attach signature against a real docker-registry: a detached
# signature (tokensign sign --upload=false with file keys) is appended to
# the image's .sig with sign's machinery, verifies with tokensign verify and
# openssl, is not duplicated; and every refusal (payload for another image,
# a signature the --key does not verify, a garbage payload, bad base64,
# missing arguments) exits non-zero with a clear message and writes nothing.
. "$TS_SRC/tests/lib/common.sh"
. "$TS_SRC/tests/lib/registry.sh"
. "$TS_SRC/tests/lib/oci-image.sh"
command -v skopeo >/dev/null || { echo "SKIP: no skopeo"; exit 77; }
ts_registry_have || { echo "SKIP: no docker-registry"; exit 77; }
export TOKENSIGN_SETTLE_MS=${TOKENSIGN_SETTLE_MS:-50}

ts_registry_start
R=$TS_REGISTRY
mkkey() { # NAME ALG...
	local n=$1
	shift
	openssl genpkey "$@" -out "$TS_TMP/$n.key" 2>/dev/null
	openssl pkey -in "$TS_TMP/$n.key" -pubout -out "$TS_TMP/$n.pub"
}
mkkey p256 -algorithm EC -pkeyopt ec_paramgen_curve:P-256
mkkey ed -algorithm ED25519

ts_image "$R/demo/app:v1" app1
ts_image "$R/demo/other:v1" other1
D=$(ts_manifest_digest "$R/demo/app:v1")
DO=$(ts_manifest_digest "$R/demo/other:v1")
detached() { # KEY IMAGE OUTBASE
	"$TS_CLIENT" sign --key "file:$TS_TMP/$1.key" --upload=false \
	    --output-payload "$TS_TMP/$3.payload" --output-signature "$TS_TMP/$3.sig" \
	    "$2" 2>"$TS_TMP/err" || ts_fail "sign --upload=false: $(cat "$TS_TMP/err")"
}
# sig_status REPO DIGEST: HTTP status of the .sig manifest
sig_status() {
	curl -s -o /dev/null -w '%{http_code}' \
	    -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
	    "http://$R/v2/$1/manifests/sha256-${2#sha256:}.sig"
}
blob_status() { curl -s -o /dev/null -w '%{http_code}' -I "http://$R/v2/$1/blobs/$2"; }
payload_digest() { echo "sha256:$(sha256sum < "$1" | sed 's/ .*//')"; }

detached p256 "$R/demo/app@$D" app
detached p256 "$R/demo/other@$DO" other
detached ed "$R/demo/app@$D" ed

# --- refusals first, while nothing is stored ---------------------------
ts_expect_fail "payload for another image's digest refused" 11 \
    "payload names $DO.*refusing" \
    "$TS_CLIENT" attach signature --payload "$TS_TMP/other.payload" \
    --signature "$TS_TMP/other.sig" "$R/demo/app:v1"
ts_expect_fail "signature that --key does not verify refused" 11 \
    "does not verify with .*ed.pub.*nothing attached" \
    "$TS_CLIENT" attach signature --key "$TS_TMP/ed.pub" \
    --payload "$TS_TMP/app.payload" --signature "$TS_TMP/app.sig" "$R/demo/app@$D"
# a signature over other bytes by the right key is refused too
ts_expect_fail "signature of another payload refused" 11 "does not verify" \
    "$TS_CLIENT" attach signature --key "$TS_TMP/p256.pub" \
    --payload "$TS_TMP/app.payload" --signature "$TS_TMP/other.sig" "$R/demo/app@$D"
printf '{"critical":{"identity":{"docker-reference":"x"}},"garbage":' > "$TS_TMP/garbage.payload"
ts_expect_fail "garbage payload refused" 11 "not a valid simple-signing payload" \
    "$TS_CLIENT" attach signature --payload "$TS_TMP/garbage.payload" \
    --signature "$TS_TMP/app.sig" "$R/demo/app@$D"
# a payload with an unknown critical field (containers/image refuses it)
python3 - "$TS_TMP/app.payload" "$TS_TMP/extra.payload" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["critical"]["extra"] = 1
open(sys.argv[2], "w").write(json.dumps(d))
PY
ts_expect_fail "payload with an unknown critical field refused" 11 \
    "not a valid simple-signing payload" \
    "$TS_CLIENT" attach signature --payload "$TS_TMP/extra.payload" \
    --signature "$TS_TMP/app.sig" "$R/demo/app@$D"
printf 'not*base64!\n' > "$TS_TMP/bad.sig"
ts_expect_fail "corrupted base64 signature refused" 2 "not standard base64" \
    "$TS_CLIENT" attach signature --payload "$TS_TMP/app.payload" \
    --signature "$TS_TMP/bad.sig" "$R/demo/app@$D"
ts_expect_fail "missing --signature refused" 2 "required" \
    "$TS_CLIENT" attach signature --payload "$TS_TMP/app.payload" "$R/demo/app@$D"
ts_expect_fail "missing payload file refused" 2 "cannot open the payload file" \
    "$TS_CLIENT" attach signature --payload "$TS_TMP/nope" \
    --signature "$TS_TMP/app.sig" "$R/demo/app@$D"
ts_expect_fail "'attach' without 'signature' refused" 2 "only 'attach signature'" \
    "$TS_CLIENT" attach sbom "$R/demo/app@$D"
[ "$(sig_status demo/app "$D")" = 404 ] || ts_fail "a refusal wrote demo/app's .sig"
[ "$(blob_status demo/app "$(payload_digest "$TS_TMP/other.payload")")" = 404 ] ||
    ts_fail "a refusal uploaded the other payload's blob"
[ "$(blob_status demo/app "$(payload_digest "$TS_TMP/app.payload")")" = 404 ] ||
    ts_fail "a refusal uploaded the payload blob"
ts_pass "after every refusal: no .sig manifest, no payload blob"

# --- attach: verified first, appended, deduplicated --------------------
out=$("$TS_CLIENT" attach signature --key "$TS_TMP/p256.pub" \
    --payload "$TS_TMP/app.payload" --signature "$TS_TMP/app.sig" "$R/demo/app:v1" 2>&1) ||
    ts_fail "attach (P-256, --key): $out"
grep -q "signature attached" <<<"$out" || ts_fail "attach said: $out"
ts_check_sigs "$R/demo/app" "$D" "$TS_TMP/p256.pub" 1
ts_pass "P-256 detached signature attached; cosign bytes; openssl verifies"
# raw (non-base64) signature bytes are accepted too; appended as layer 2
base64 -d "$TS_TMP/ed.sig" > "$TS_TMP/ed.raw"
out=$("$TS_CLIENT" attach signature --key "$TS_TMP/ed.pub" \
    --payload "$TS_TMP/ed.payload" --signature "$TS_TMP/ed.raw" "$R/demo/app@$D" 2>&1) ||
    ts_fail "attach (Ed25519 raw): $out"
[ "$(ts_sig_layers "$R/demo/app" "$D" | wc -l)" = 2 ] || ts_fail "want 2 layers"
ts_pass "Ed25519 raw signature bytes appended as a second layer"
for k in p256 ed; do
	"$TS_CLIENT" verify --key "$TS_TMP/$k.pub" "$R/demo/app:v1" > /dev/null 2>"$TS_TMP/err" ||
	    ts_fail "$k: verify after attach: $(cat "$TS_TMP/err")"
	grep -q "1 of 2 signatures verified" "$TS_TMP/err" || ts_fail "$k: $(cat "$TS_TMP/err")"
done
ts_pass "tokensign verify IMAGE accepts both attached signatures"
out=$("$TS_CLIENT" attach signature --payload "$TS_TMP/app.payload" \
    --signature "$TS_TMP/app.sig" "$R/demo/app@$D" 2>&1) || ts_fail "re-attach: $out"
grep -q "already present" <<<"$out" || ts_fail "re-attach said: $out"
[ "$(ts_sig_layers "$R/demo/app" "$D" | wc -l)" = 2 ] || ts_fail "re-attach duplicated a layer"
ts_pass "re-attaching the same signature adds no layer"
# after a sign, attach still appends (shared .sig read-modify-write)
"$TS_CLIENT" sign --key "file:$TS_TMP/ed.key" "$R/demo/other@$DO" 2>"$TS_TMP/err" ||
    ts_fail "sign other: $(cat "$TS_TMP/err")"
"$TS_CLIENT" attach signature --payload "$TS_TMP/other.payload" \
    --signature "$TS_TMP/other.sig" "$R/demo/other@$DO" 2>"$TS_TMP/err" ||
    ts_fail "attach other: $(cat "$TS_TMP/err")"
[ "$(ts_sig_layers "$R/demo/other" "$DO" | wc -l)" = 2 ] || ts_fail "attach after sign: want 2 layers"
ts_pass "attach appends to a .sig written by tokensign sign"
ts_done
