#!/bin/bash
# test_verify_registry.sh - `tokensign verify IMAGE` against a real
# docker-registry: signatures made by `tokensign sign` (file keys: P-256,
# RSA-2048, Ed25519) verify; then the negatives of issue 4 (wrong key,
# tampered payload, digest of another image, identity of another
# repository, corrupted base64, non-OCI .sig manifest, unsigned image), each
# with its exit code and message; --recursive on an index; and skopeo's
# `dir:` copy of our signatures (use-sigstore-attachments) verified offline.
. "$TS_SRC/tests/lib/common.sh"
. "$TS_SRC/tests/lib/registry.sh"
. "$TS_SRC/tests/lib/oci-image.sh"
command -v skopeo >/dev/null || { echo "SKIP: no skopeo"; exit 77; }
ts_registry_have || { echo "SKIP: no docker-registry"; exit 77; }
export TOKENSIGN_SETTLE_MS=${TOKENSIGN_SETTLE_MS:-50}

ts_registry_start
R=$TS_REGISTRY
T=$TS_CLIENT
mkkey() { # NAME ALG...
	local n=$1
	shift
	openssl genpkey "$@" -out "$TS_TMP/$n.key" 2>/dev/null
	openssl pkey -in "$TS_TMP/$n.key" -pubout -out "$TS_TMP/$n.pub"
}
mkkey p256 -algorithm EC -pkeyopt ec_paramgen_curve:P-256
mkkey rsa -algorithm RSA -pkeyopt rsa_keygen_bits:2048
mkkey ed -algorithm ED25519
mkkey other -algorithm EC -pkeyopt ec_paramgen_curve:P-256

sign() { # KEY IMAGE [ARGS...]
	local k=$1 img=$2
	shift 2
	"$T" sign --key "file:$TS_TMP/$k.key" "$@" "$img" >/dev/null 2>&1 ||
	    ts_fail "tokensign sign $img with $k failed"
}

# verify_ok DESC PATTERN CMD...: exit 0, the summary matches, stdout is
# the JSON payload array naming the image's repository.
verify_ok() {
	local desc=$1 pat=$2 rc=0
	shift 2
	"$@" >"$TS_TMP/out" 2>"$TS_TMP/err" || rc=$?
	[ $rc -eq 0 ] || ts_fail "$desc: exit $rc: $(cat "$TS_TMP/err")"
	grep -Eq -- "$pat" "$TS_TMP/err" ||
	    ts_fail "$desc: summary lacks /$pat/: $(cat "$TS_TMP/err")"
	# one JSON array per checked manifest, one per line
	python3 -c '
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert lines
for line in lines:
    v = json.loads(line)
    assert v and all(p["critical"]["type"] == "cosign container image signature" for p in v)
' \
	    "$TS_TMP/out" || ts_fail "$desc: stdout is not the payload array"
	ts_pass "$desc"
}

ts_image "$R/demo/app:v1" app1
D=$(ts_manifest_digest "$R/demo/app:v1")
ts_image "$R/demo/other:v1" other1
DO=$(ts_manifest_digest "$R/demo/other:v1")
ts_image "$R/demo/unsigned:v1" unsigned1

sign p256 "$R/demo/app@$D"
sign rsa "$R/demo/app@$D" -a env=prod
sign ed "$R/demo/app@$D"

verify_ok "P-256 signature verifies by tag" "1 of 3 signatures verified" \
    "$T" verify --key "$TS_TMP/p256.pub" "$R/demo/app:v1"
grep -q "\"docker-reference\":\"$R/demo/app\"" "$TS_TMP/out" ||
    ts_fail "verified payload not printed"
verify_ok "RSA-2048 signature verifies by digest, with -a" "1 of 3" \
    "$T" verify --key "$TS_TMP/rsa.pub" -a env=prod "$R/demo/app@$D"
verify_ok "Ed25519 signature verifies" "1 of 3" \
    "$T" verify --key "$TS_TMP/ed.pub" "$R/demo/app:v1"
verify_ok "--identity naming the repository" "1 of 3" \
    "$T" verify --key "$TS_TMP/p256.pub" --identity "$R/demo/app" \
    "$R/demo/app:v1"

ts_expect_fail "wrong key" 11 "0 of 3 signatures verified" \
    "$T" verify --key "$TS_TMP/other.pub" "$R/demo/app:v1"
ts_expect_fail "required annotation differs" 11 \
    "annotation \"env\" is \"prod\", not \"dev\"" \
    "$T" verify --key "$TS_TMP/rsa.pub" -a env=dev "$R/demo/app:v1"
ts_expect_fail "identity of another repository" 11 \
    "does not match the repository \"$R/demo/other\"" \
    "$T" verify --key "$TS_TMP/p256.pub" --identity "$R/demo/other" \
    "$R/demo/app:v1"
ts_expect_fail "unsigned image" 10 "no signatures found" \
    "$T" verify --key "$TS_TMP/p256.pub" "$R/demo/unsigned:v1"
ts_expect_fail "bad image reference" 2 "repository name must be lowercase" \
    "$T" verify --key "$TS_TMP/p256.pub" "$R/Demo/App:v1"

# sigedit MODE SRC_DIGEST DST_DIGEST REPO: rewrite .sig manifests in the
# registry the way an attacker (or a broken tool) could.
sigedit() {
	python3 - "$R" "$4" "$2" "$3" "$1" <<'PY'
import hashlib, json, sys, urllib.request as u
reg, repo, src, dst, mode = sys.argv[1:]
base = "http://%s/v2/%s" % (reg, repo)
OCI = "application/vnd.oci.image.manifest.v1+json"
def tag(d): return "sha256-%s.sig" % d.split(":")[1]
req = u.Request(base + "/manifests/" + tag(src), headers={"Accept": OCI})
m = json.load(u.urlopen(req))
def put_blob(data):
    d = "sha256:" + hashlib.sha256(data).hexdigest()
    r = u.urlopen(u.Request(base + "/blobs/uploads/", method="POST", data=b""))
    loc = r.headers["Location"]
    if loc.startswith("/"): loc = "http://" + reg + loc
    loc += ("&" if "?" in loc else "?") + "digest=" + d
    u.urlopen(u.Request(loc, method="PUT", data=data,
        headers={"Content-Type": "application/octet-stream"}))
    return d
ct = OCI
if mode == "tamper":
    l = m["layers"][0]
    p = bytearray(u.urlopen(base + "/blobs/" + l["digest"]).read())
    p[-3] ^= 0x01            # inside "null" / the last value
    l["digest"] = put_blob(bytes(p)); l["size"] = len(p)
elif mode == "badb64":
    for l in m["layers"]:
        s = l["annotations"]["dev.cosignproject.cosign/signature"]
        l["annotations"]["dev.cosignproject.cosign/signature"] = "*" + s[1:]
elif mode == "docker":
    ct = "application/vnd.docker.distribution.manifest.v2+json"
    m["mediaType"] = ct
    m["config"]["mediaType"] = "application/vnd.docker.container.image.v1+json"
body = json.dumps(m, separators=(",", ":")).encode()
u.urlopen(u.Request(base + "/manifests/" + tag(dst), method="PUT", data=body,
    headers={"Content-Type": ct}))
PY
}

# digest of another image: app's .sig copied under other's tag
sigedit copy "$D" "$DO" demo/app
ts_image "$R/demo/app:copy" other1
ts_expect_fail "signature for another image's digest" 11 \
    "digest mismatch: signature is for manifest $D, not $DO" \
    "$T" verify --key "$TS_TMP/p256.pub" "$R/demo/app:copy"

# tampered payload: one byte changed in a fresh blob, signature kept
ts_image "$R/demo/tamper:v1" tamper1
DT=$(ts_manifest_digest "$R/demo/tamper:v1")
sign p256 "$R/demo/tamper@$DT"
verify_ok "tamper image verifies before tampering" "1 of 1" \
    "$T" verify --key "$TS_TMP/p256.pub" "$R/demo/tamper:v1"
sigedit tamper "$DT" "$DT" demo/tamper
ts_expect_fail "tampered payload byte" 11 \
    "signature does not verify: the ecdsa-p256 key does not match" \
    "$T" verify --key "$TS_TMP/p256.pub" "$R/demo/tamper:v1"

# corrupted base64 in the annotation
ts_image "$R/demo/b64:v1" b64one
DB=$(ts_manifest_digest "$R/demo/b64:v1")
sign p256 "$R/demo/b64@$DB"
sigedit badb64 "$DB" "$DB" demo/b64
ts_expect_fail "corrupted base64" 11 "invalid base64" \
    "$T" verify --key "$TS_TMP/p256.pub" "$R/demo/b64:v1"

# a .sig stored as a Docker manifest: containers/image refuses it, so do we
ts_image "$R/demo/docker:v1" docker1
DD=$(ts_manifest_digest "$R/demo/docker:v1")
sign p256 "$R/demo/docker@$DD"
sigedit docker "$DD" "$DD" demo/docker
ts_expect_fail "non-OCI .sig manifest" 12 "not an OCI image manifest" \
    "$T" verify --key "$TS_TMP/p256.pub" "$R/demo/docker:v1"

# --recursive: the index and every child must carry a valid signature
ts_image_index "$R/demo/multi:v1" multi1
sign p256 "$R/demo/multi:v1" --recursive
verify_ok "--recursive: index and children verify" "verified" \
    "$T" verify --key "$TS_TMP/p256.pub" --recursive "$R/demo/multi:v1"
n=$(grep -c "1 of 1 signature verified" "$TS_TMP/err")
[ "$n" = 3 ] || ts_fail "--recursive: $n manifests verified, want 3"
ts_pass "--recursive checked 3 manifests"
ts_image_index "$R/demo/multi2:v1" multi2
sign p256 "$R/demo/multi2:v1" # index only
ts_expect_fail "--recursive: unsigned children fail" 10 "no signatures found" \
    "$T" verify --key "$TS_TMP/p256.pub" --recursive "$R/demo/multi2:v1"

# interop: skopeo copies our signatures into a dir: layout (sigstore
# attachments on), and the offline verifier accepts them there
mkdir -p "$TS_TMP/registries.d"
printf 'docker:\n  %s:\n    use-sigstore-attachments: true\n' "$R" \
    >"$TS_TMP/registries.d/local.yaml"
ts_skopeo copy -q --src-tls-verify=false "docker://$R/demo/app:v1" \
    "dir:$TS_TMP/appdir" >/dev/null 2>&1 || ts_fail "skopeo copy to dir: failed"
head -c 15 "$TS_TMP/appdir/signature-1" | cmp -s - <(printf '\0sigstore-json\n') ||
    ts_fail "skopeo did not write sigstore signatures"
for k in p256 rsa ed; do
	verify_ok "skopeo dir: copy verifies offline with $k" \
	    "1 of 3 signatures verified" \
	    "$T" verify --key "$TS_TMP/$k.pub" --identity "$R/demo/app" \
	    --local "$TS_TMP/appdir"
done

ts_done
