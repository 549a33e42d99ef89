#!/bin/bash
# Registry faults, injected by a small proxy (tests/lib/regfault.py) in
# front of a real docker-registry: 500 then success and 429 with
# Retry-After are retried; persistent 500, garbage manifests, Content-Type
# mismatches, a lying Docker-Content-Digest and a .sig over the size cap
# are clear errors with exit 12 and leave no signature behind.
. "$TS_SRC/tests/lib/common.sh"
. "$TS_SRC/tests/lib/registry.sh"
. "$TS_SRC/tests/lib/oci-image.sh"
command -v skopeo >/dev/null || { echo "SKIP: no skopeo"; exit 77; }
export TOKENSIGN_SETTLE_MS=50

ts_registry_start
ts_regfault_start f "$TS_REGISTRY"
P=$TS_FAULT_f_ADDR
RULES=$TS_FAULT_f_RULES
LOG=$TS_FAULT_f_LOG
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$TS_TMP/k" 2>/dev/null
openssl pkey -in "$TS_TMP/k" -pubout -out "$TS_TMP/k.pub"
K="file:$TS_TMP/k"
rules() { printf '%s' "$1" >"$RULES.tmp" && mv "$RULES.tmp" "$RULES"; : >"$LOG"; }

ts_image "$TS_REGISTRY/f/app:v1" f1
D=$(ts_manifest_digest "$TS_REGISTRY/f/app:v1")

# 500 twice, then the real answer: retried, signed
rules '[{"method":"GET","path":"/v2/f/app/manifests/v1$","times":2,"status":500,"body":"{\"errors\":[{\"code\":\"UNKNOWN\",\"message\":\"boom\"}]}"}]'
"$TS_CLIENT" sign --key "$K" "$P/f/app:v1" 2>"$TS_TMP/err" || ts_fail "500-then-ok: $(cat "$TS_TMP/err")"
[ "$(grep -c 'GET /v2/f/app/manifests/v1$' "$LOG")" = 3 ] || ts_fail "expected 3 GETs: $(cat "$LOG")"
ts_check_sigs "$TS_REGISTRY/f/app" "$D" "$TS_TMP/k.pub" 1 "$P/f/app"
ts_pass "500 then success: retried and signed"

# 429 with Retry-After on the upload start: honoured
rules '[{"method":"POST","path":"/blobs/uploads/","times":1,"status":429,"headers":{"Retry-After":"1"},"body":"{\"errors\":[{\"code\":\"TOOMANYREQUESTS\",\"message\":\"slow down\"}]}"}]'
start=$(date +%s%N)
"$TS_CLIENT" sign --key "$K" "$P/f/app@$D" 2>"$TS_TMP/err" || ts_fail "429: $(cat "$TS_TMP/err")"
el=$((($(date +%s%N) - start) / 1000000))
[ $el -ge 900 ] || ts_fail "Retry-After: 1 not honoured (${el} ms)"
ts_pass "429 Retry-After honoured (${el} ms)"

# persistent 500 on the .sig read: clear error, registry JSON shown, exit 12
n0=$(ts_sig_layers "$TS_REGISTRY/f/app" "$D" | wc -l)
rules '[{"method":"GET","path":"\\.sig$","times":100,"status":500,"body":"{\"errors\":[{\"code\":\"UNKNOWN\",\"message\":\"storage on fire\"}]}"}]'
ts_reg_expect_fail "persistent 500" 12 "HTTP 500: UNKNOWN: storage on fire" \
    "$TS_CLIENT" sign --key "$K" "$P/f/app@$D"
n1=$(ts_sig_layers "$TS_REGISTRY/f/app" "$D" | wc -l)
[ "$n0" = "$n1" ] || ts_fail "a failed sign changed the .sig ($n0 -> $n1)"
ts_pass "persistent 500 left the .sig as it was"

# push refused in pre-flight: registry's error shown, nothing signed
rules '[{"method":"POST","path":"/blobs/uploads/","times":100,"status":403,"body":"{\"errors\":[{\"code\":\"DENIED\",\"message\":\"read-only mirror\"}]}"}]'
ts_reg_expect_fail "push denied in pre-flight" 12 "DENIED: read-only mirror.*|pre-flight failed" \
    "$TS_CLIENT" sign --key "$K" "$P/f/app@$D"
grep -q 'PUT' "$LOG" && ts_fail "something was PUT after a failed pre-flight: $(cat "$LOG")"
ts_pass "pre-flight failure: nothing uploaded"

# garbage instead of a manifest
rules '[{"method":"GET","path":"/manifests/v1$","times":100,"status":200,"content_type":"application/vnd.oci.image.manifest.v1+json","body":"<html>garbage</html>"}]'
ts_reg_expect_fail "garbage manifest" 12 "not a JSON object" \
    "$TS_CLIENT" sign --key "$K" "$P/f/app:v1"

# Content-Type says index, body says manifest
m=$(ts_manifest_get "$TS_REGISTRY/f/app:v1" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')
rules "[{\"method\":\"GET\",\"path\":\"/manifests/v1\$\",\"times\":100,\"status\":200,\"content_type\":\"application/vnd.oci.image.index.v1+json\",\"body\":$m}]"
ts_reg_expect_fail "Content-Type/mediaType mismatch" 12 "differs from the manifest's mediaType" \
    "$TS_CLIENT" sign --key "$K" "$P/f/app:v1"

# Docker-Content-Digest that is not the digest of the bytes
rules "[{\"method\":\"GET\",\"path\":\"/manifests/v1\$\",\"times\":100,\"status\":200,\"content_type\":\"application/vnd.oci.image.manifest.v1+json\",\"headers\":{\"Docker-Content-Digest\":\"sha256:0000000000000000000000000000000000000000000000000000000000000000\"},\"body\":$m}]"
ts_reg_expect_fail "lying Docker-Content-Digest" 12 "registry says digest" \
    "$TS_CLIENT" sign --key "$K" "$P/f/app:v1"

# by digest, bytes that do not hash to it
rules '[{"method":"GET","path":"/manifests/sha256:","times":100,"status":200,"content_type":"application/vnd.oci.image.manifest.v1+json","body":"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{},\"layers\":[]}"}]'
ts_reg_expect_fail "bytes not matching the pinned digest" 12 "do not hash to" \
    "$TS_CLIENT" sign --key "$K" "$P/f/app@$D"

# .sig over the 4 MiB cap
rules '[{"method":"GET","path":"\\.sig$","times":100,"status":200,"content_type":"application/vnd.oci.image.manifest.v1+json","body":"x","body_repeat":4194305}]'
ts_reg_expect_fail ".sig over the size cap" 12 "larger than the 4194304-byte cap" \
    "$TS_CLIENT" sign --key "$K" "$P/f/app@$D"
n2=$(ts_sig_layers "$TS_REGISTRY/f/app" "$D" | wc -l)
[ "$n0" = "$n2" ] || ts_fail "failed signs changed the .sig ($n0 -> $n2)"
ts_pass "no failure above wrote a signature"

# a Warning: 299 header is shown once
rules '[{"method":"GET","path":"/manifests/","times":100,"status":404,"headers":{"Warning":"299 - \"this registry is deprecated\""},"body":"{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\",\"message\":\"manifest unknown\"}]}"}]'
out=$("$TS_CLIENT" sign --key "$K" "$P/f/app:v1" "$P/f/app:v2" 2>&1 || true)
[ "$(grep -c 'registry warning: this registry is deprecated' <<<"$out")" = 1 ] ||
    ts_fail "Warning 299 not shown exactly once: $out"
ts_pass "Warning: 299 shown once"
ts_done
