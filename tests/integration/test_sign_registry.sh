#!/bin/bash
# tokensign sign against a real docker-registry, signing with file keys
# (the agent path is test_sign_agent.sh): payload bytes equal cosign's,
# signatures verify with openssl, annotations, --recursive, many images with
# --jobs, no duplicate layers, --upload=false, 16 concurrent signers, and
# refusals that leave the registry untouched.
. "$TS_SRC/tests/lib/common.sh"
. "$TS_SRC/tests/lib/registry.sh"
. "$TS_SRC/tests/lib/oci-image.sh"
command -v skopeo >/dev/null || { echo "SKIP: no skopeo"; exit 77; }
export TOKENSIGN_SETTLE_MS=${TOKENSIGN_SETTLE_MS:-100}

ts_registry_start
R=$TS_REGISTRY
mkkey() { # NAME ALG...
	local n=$1
	shift
	openssl genpkey "$@" -out "$TS_TMP/$n.key" 2>/dev/null
	openssl pkey -in "$TS_TMP/$n.key" -pubout -out "$TS_TMP/$n.pub"
}
mkkey p256 -algorithm EC -pkeyopt ec_paramgen_curve:P-256
mkkey rsa -algorithm RSA -pkeyopt rsa_keygen_bits:2048
mkkey ed -algorithm ED25519

# sign by tag: a warning, one signature, cosign's payload bytes
ts_image "$R/demo/app:v1" app1
D=$(ts_manifest_digest "$R/demo/app:v1")
out=$("$TS_CLIENT" sign --key "file:$TS_TMP/p256.key" "$R/demo/app:v1" 2>&1) ||
    ts_fail "sign failed: $out"
grep -q "is a tag, not a digest" <<<"$out" || ts_fail "no tag warning: $out"
ts_check_sigs "$R/demo/app" "$D" "$TS_TMP/p256.pub" 1
ts_pass "P-256 signature by tag: cosign payload bytes, openssl verifies"

# the same key and payload again: cosign's rule, no second layer even though
# ECDSA signatures differ on every run
out=$("$TS_CLIENT" sign -v --key "file:$TS_TMP/p256.key" "$R/demo/app@$D" 2>&1) ||
    ts_fail "re-sign failed: $out"
grep -q "already signed with this key" <<<"$out" || ts_fail "no 'already signed': $out"
ts_check_sigs "$R/demo/app" "$D" "$TS_TMP/p256.pub" 1
ts_pass "re-signing with the same key adds no layer"

# by digest: no warning, appended (2 layers), RSA
out=$("$TS_CLIENT" sign --key "file:$TS_TMP/rsa.key" "$R/demo/app@$D" 2>&1) ||
    ts_fail "sign by digest failed: $out"
grep -q "not a digest" <<<"$out" && ts_fail "warning when signing by digest"
n=$(ts_sig_layers "$R/demo/app" "$D" | wc -l)
[ "$n" = 2 ] || ts_fail "want 2 layers after a second signature, got $n"
ts_pass "second signature appended"

# Ed25519 is deterministic: signing again adds no duplicate layer
ts_image "$R/demo/ed:v1" ed1
DE=$(ts_manifest_digest "$R/demo/ed:v1")
"$TS_CLIENT" sign --key "file:$TS_TMP/ed.key" "$R/demo/ed@$DE" 2>"$TS_TMP/err" || ts_fail "ed25519 sign: $(cat "$TS_TMP/err")"
"$TS_CLIENT" sign --key "file:$TS_TMP/ed.key" "$R/demo/ed@$DE" 2>"$TS_TMP/err" || ts_fail "ed25519 re-sign: $(cat "$TS_TMP/err")"
ts_check_sigs "$R/demo/ed" "$DE" "$TS_TMP/ed.pub" 1
ts_pass "Ed25519 signature verifies; identical re-sign adds no layer"

# annotations: sorted keys, Go escaping
ts_image "$R/demo/ann:v1" ann1
DA=$(ts_manifest_digest "$R/demo/ann:v1")
"$TS_CLIENT" sign --key "file:$TS_TMP/ed.key" -a z=1 -a 'a<b>&c=x"y' -a build=42 \
    "$R/demo/ann@$DA" 2>"$TS_TMP/err" || ts_fail "sign with annotations: $(cat "$TS_TMP/err")"
ts_check_sigs "$R/demo/ann" "$DA" "$TS_TMP/ed.pub" 1 "$R/demo/ann" \
    '{"a\u003cb\u003e\u0026c":"x\"y","build":"42","z":"1"}'
ts_pass "annotations in optional, sorted and Go-escaped"
ts_reg_expect_fail "annotation without =" 2 "key=value" \
    "$TS_CLIENT" sign --key "file:$TS_TMP/ed.key" -a novalue "$R/demo/ann@$DA"

# --recursive on a two-platform index: index and both children
ts_image_index "$R/demo/multi:v1" multi1
DI=$(ts_manifest_digest "$R/demo/multi:v1")
"$TS_CLIENT" sign --key "file:$TS_TMP/p256.key" --recursive "$R/demo/multi:v1" 2>"$TS_TMP/err" ||
    ts_fail "recursive sign: $(cat "$TS_TMP/err")"
ts_check_sigs "$R/demo/multi" "$DI" "$TS_TMP/p256.pub" 1
for c in $(ts_manifest_get "$R/demo/multi:v1" | python3 -c 'import json,sys; [print(x["digest"]) for x in json.load(sys.stdin)["manifests"]]'); do
	ts_check_sigs "$R/demo/multi" "$c" "$TS_TMP/p256.pub" 1
done
ts_pass "--recursive signed the index and both children"

# several images in one call, 4 jobs, one connection per job
imgs=()
for i in 1 2 3 4 5 6; do
	ts_image "$R/many/img$i:v1" "many$i"
	imgs+=("$R/many/img$i:v1")
done
out=$(TOKENSIGN_STATS=1 "$TS_CLIENT" sign --jobs 4 --key "file:$TS_TMP/p256.key" "${imgs[@]}" 2>&1) ||
    ts_fail "multi-image sign: $out"
for i in 1 2 3 4 5 6; do
	ts_check_sigs "$R/many/img$i" "$(ts_manifest_digest "$R/many/img$i:v1")" "$TS_TMP/p256.pub" 1
done
req=$(echo "$out" | sed -n 's/.*requests=\([0-9]*\).*/\1/p')
[ -n "$req" ] && [ "$req" -le $((6 * 8)) ] || ts_fail "too many requests: $out"
ts_pass "6 images in one call with --jobs 4 ($req requests)"

# --upload=false writes payload and signature, uploads nothing
ts_image "$R/demo/detached:v1" det1
DD=$(ts_manifest_digest "$R/demo/detached:v1")
"$TS_CLIENT" sign --key "file:$TS_TMP/p256.key" --upload=false \
    --output-signature "$TS_TMP/det.sig" --output-payload "$TS_TMP/det.payload" \
    "$R/demo/detached@$DD" 2>"$TS_TMP/err" || ts_fail "detached sign: $(cat "$TS_TMP/err")"
base64 -d "$TS_TMP/det.sig" >"$TS_TMP/det.sig.bin"
openssl dgst -sha256 -verify "$TS_TMP/p256.pub" -signature "$TS_TMP/det.sig.bin" \
    "$TS_TMP/det.payload" >/dev/null || ts_fail "detached signature does not verify"
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "http://$R/v2/demo/detached/manifests/sha256-${DD#sha256:}.sig")
[ "$code" = 404 ] || ts_fail "--upload=false wrote a .sig ($code)"
ts_pass "--upload=false: files written, registry untouched"

# 16 concurrent signers on one image leave 16 signatures
ts_image "$R/demo/race:v1" race1
DR=$(ts_manifest_digest "$R/demo/race:v1")
pids=()
for i in $(seq 1 16); do
	"$TS_CLIENT" sign --key "file:$TS_TMP/p256.key" -a "signer=$i" "$R/demo/race@$DR" \
	    2>"$TS_TMP/race.$i.err" &
	pids+=($!)
done
for p in "${pids[@]}"; do
	wait "$p" || ts_fail "a concurrent signer failed: $(cat "$TS_TMP"/race.*.err)"
done
n=$(ts_sig_layers "$R/demo/race" "$DR" | wc -l)
[ "$n" = 16 ] || ts_fail "16 concurrent signers left $n signatures"
ts_pass "16 concurrent signers: 16 signatures"

# a non-OCI .sig (Docker media type) is refused and left as it was
ts_image "$R/demo/bad:v1" bad1
DB=$(ts_manifest_digest "$R/demo/bad:v1")
cfg='{}'
cd=$(printf '%s' "$cfg" | sha256sum | cut -d' ' -f1)
loc=$(curl -s -D - -o /dev/null -X POST "http://$R/v2/demo/bad/blobs/uploads/" | tr -d '\r' | sed -n 's/^Location: //Ip')
curl -sf -X PUT -H 'Content-Type: application/octet-stream' --data-binary "$cfg" "$loc&digest=sha256:$cd" >/dev/null
dm="{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\",\"config\":{\"mediaType\":\"application/vnd.docker.container.image.v1+json\",\"size\":2,\"digest\":\"sha256:$cd\"},\"layers\":[]}"
curl -sf -X PUT -H 'Content-Type: application/vnd.docker.distribution.manifest.v2+json' \
    --data-binary "$dm" "http://$R/v2/demo/bad/manifests/sha256-${DB#sha256:}.sig" >/dev/null ||
    ts_fail "cannot plant the Docker .sig"
ts_reg_expect_fail "non-OCI .sig manifest" 12 "refusing to overwrite" \
    "$TS_CLIENT" sign --key "file:$TS_TMP/p256.key" "$R/demo/bad@$DB"
got=$(curl -s -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "http://$R/v2/demo/bad/manifests/sha256-${DB#sha256:}.sig")
[ "$got" = "$dm" ] || ts_fail "the Docker .sig was changed"
ts_pass "non-OCI .sig left untouched"

ts_reg_expect_fail "bad reference" 2 "lowercase" \
    "$TS_CLIENT" sign --key "file:$TS_TMP/p256.key" "$R/Demo/App:v1"
ts_reg_expect_fail "unknown image" 12 "MANIFEST_UNKNOWN|NAME_UNKNOWN" \
    "$TS_CLIENT" sign --key "file:$TS_TMP/p256.key" "$R/demo/nope:v1"
ts_reg_expect_fail "no image" 2 "no IMAGE" "$TS_CLIENT" sign --key "file:$TS_TMP/p256.key"
ts_reg_expect_fail "bad key file" 2 "not a PEM private key" \
    "$TS_CLIENT" sign --key "file:$TS_TMP/p256.pub" "$R/demo/app@$D"
# nothing half-written after the failures above
n=$(ts_sig_layers "$R/demo/app" "$D" | wc -l)
[ "$n" = 2 ] || ts_fail "failed runs changed the .sig ($n layers)"
ts_pass "failures wrote nothing"

# triangulate and tree
t=$("$TS_CLIENT" triangulate "$R/demo/app:v1")
[ "$t" = "$R/demo/app:sha256-${D#sha256:}.sig" ] || ts_fail "triangulate: $t"
ts_pass "triangulate prints the .sig reference"
tree=$("$TS_CLIENT" tree --key "$TS_TMP/p256.pub" --key "$TS_TMP/rsa.pub" "$R/demo/app:v1")
fp=$(openssl pkey -pubin -in "$TS_TMP/rsa.pub" -outform DER | sha256sum | cut -d' ' -f1)
grep -q "signatures in .*: 2" <<<"$tree" || ts_fail "tree count: $tree"
grep -q "key: SHA256:$fp" <<<"$tree" || ts_fail "tree lacks the RSA key fingerprint: $tree"
ts_pass "tree lists both signatures with key fingerprints"
ts_reg_expect_fail "tree without signatures" 10 "no signatures" \
    "$TS_CLIENT" tree "$R/demo/detached:v1"
ts_done
