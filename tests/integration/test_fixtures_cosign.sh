#!/bin/bash
# test_fixtures_cosign.sh - every case of ../shared/fixtures/containers-image-
# cosign (real cosign and skopeo signatures) judged as its README and
# containers/image's policy_eval_sigstore_test.go say; a negative suite for
# `tokensign verify` (exit codes and messages); and openssl agreeing with
# our verdict on every fixture payload.
#
# The fixture copy stores upstream's git symlinks as small text files
# holding the link target ("../dir-img-cosign-valid/signature-1").
# materialize() turns them back into what upstream's tests read: the
# target's bytes, or a dangling link when the target was not copied.
source "$TS_SRC/tests/lib/common.sh"

FIX=$TS_SHARED/fixtures/containers-image-cosign
[ -r "$FIX/README.md" ] || ts_fail "fixtures not found at $FIX"
T=$TS_CLIENT
ID=192.168.64.2:5000/cosign-signed-single-sample
D634=sha256:634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00
W=$TS_TMP/fx
mkdir -p "$W"

# Every case directory must be judged below; a new one fails this test.
JUDGED=" dir-img-cosign-fulcio-rekor-valid dir-img-cosign-key-rekor-valid
 dir-img-cosign-manifest-digest-error dir-img-cosign-mixed
 dir-img-cosign-modified-manifest dir-img-cosign-no-manifest
 dir-img-cosign-other-attachment dir-img-cosign-pki-valid
 dir-img-cosign-valid dir-img-cosign-valid-2 dir-img-cosign-valid-with-tag "
for d in "$FIX"/dir-*; do
	case "$JUDGED" in
	*" $(basename "$d")"[[:space:]]*) ;;
	*) ts_fail "fixture case $(basename "$d") is not judged by this test" ;;
	esac
done
ts_pass "every fixture case directory is judged"

# is_link FILE: a flattened git symlink?
is_link() {
	[ "$(stat -c %s "$1")" -lt 200 ] &&
	    LC_ALL=C grep -qxE '\.\./[A-Za-z0-9._/-]+' "$1" 2>/dev/null
}

# materialize CASE [only-manifest]: copy $FIX/CASE to $W/CASE resolving
# links (only manifest.json's when asked).
materialize() {
	local src=$FIX/$1 dst=$W/$1${2:+-$2} f name target
	rm -rf "$dst"
	mkdir -p "$dst"
	for f in "$src"/*; do
		[ -e "$f" ] || continue
		name=$(basename "$f")
		if is_link "$f" && { [ -z "${2:-}" ] || [ "$name" = manifest.json ]; }; then
			target=$(cat "$f")
			if [ -e "$src/$target" ]; then
				cp "$src/$target" "$dst/$name"
			else
				ln -s "$TS_TMP/missing/$target" "$dst/$name"
			fi
		else
			cp "$f" "$dst/$name"
		fi
	done
	echo "$dst"
}

# expect_ok DESC PATTERN_ON_STDERR CMD...: exit 0, stdout is a JSON array
# of payload objects, stderr matches.
expect_ok() {
	local desc=$1 pat=$2 rc=0
	shift 2
	"$@" >"$TS_TMP/out" 2>"$TS_TMP/err" || rc=$?
	[ $rc -eq 0 ] || ts_fail "$desc: exit $rc: $(cat "$TS_TMP/err")"
	grep -Eq -- "$pat" "$TS_TMP/err" ||
	    ts_fail "$desc: stderr lacks /$pat/: $(cat "$TS_TMP/err")"
	python3 -c '
import json, sys
v = json.load(open(sys.argv[1]))
assert isinstance(v, list) and v, "not a non-empty array"
for p in v:
    assert p["critical"]["type"] == "cosign container image signature"
' "$TS_TMP/out" || ts_fail "$desc: stdout is not the JSON payload array"
	ts_pass "$desc"
}

for c in "$FIX"/dir-*; do materialize "$(basename "$c")" >/dev/null; done

# ---- accepted ----
expect_ok "dir-img-cosign-valid: valid with cosign.pub" \
    "1 of 1 signature verified" \
    "$T" verify --key "$FIX/cosign.pub" --identity "$ID" \
    --local "$W/dir-img-cosign-valid"
grep -q "\"docker-reference\":\"$ID\"" "$TS_TMP/out" ||
    ts_fail "valid: payload not printed"
ts_pass "dir-img-cosign-valid: the verified payload is printed"
ts_expect_fail "-a without KEY=VALUE is a usage error" 2 "KEY=VALUE|requires an argument" \
    "$T" verify --key "$FIX/cosign.pub" --identity "$ID" -a novalue \
    --local "$W/dir-img-cosign-valid"

# upstream: signature-1 links to a valid signature, signature-2 is another
expect_ok "dir-img-cosign-valid-2 (upstream layout): 2 valid signatures" \
    "2 of 2 signatures verified" \
    "$T" verify --key "$FIX/cosign.pub" --identity "$ID" \
    --local "$W/dir-img-cosign-valid-2"
# README: signature-1 is not a sigstore signature: skipped and counted
d=$(materialize dir-img-cosign-valid-2 manifest-only)
expect_ok "dir-img-cosign-valid-2 (as shipped): signature-2 valid, signature-1 skipped" \
    "1 of 1 signature verified, 1 non-sigstore \(GPG\) signature skipped" \
    "$T" verify --key "$FIX/cosign.pub" --identity "$ID" --local "$d"

# skopeo-style identity with a tag: matches the repository; exact match
# only when --identity names a tag (containers/image matchExact)
expect_ok "dir-img-cosign-valid-with-tag: repository match" "verified" \
    "$T" verify --key "$FIX/cosign.pub" \
    --identity 192.168.64.2:5000/skopeo-signed \
    --local "$W/dir-img-cosign-valid-with-tag"
expect_ok "dir-img-cosign-valid-with-tag: exact tag match" "verified" \
    "$T" verify --key "$FIX/cosign.pub" \
    --identity 192.168.64.2:5000/skopeo-signed:tag \
    --local "$W/dir-img-cosign-valid-with-tag"
grep -q '"creator":"containers/image 5.21.2-dev"' "$TS_TMP/out" ||
    ts_fail "with-tag: optional not printed"
ts_expect_fail "dir-img-cosign-valid-with-tag: other tag rejected" 11 \
    "does not match the exact reference" \
    "$T" verify --key "$FIX/cosign.pub" \
    --identity 192.168.64.2:5000/skopeo-signed:othertag \
    --local "$W/dir-img-cosign-valid-with-tag"
ts_expect_fail "dir-img-cosign-valid: tagless cosign identity fails an exact tag" \
    11 "does not match the exact reference" \
    "$T" verify --key "$FIX/cosign.pub" --identity "$ID:latest" \
    --local "$W/dir-img-cosign-valid"
ts_expect_fail "dir-img-cosign-valid-2: non-matching reference, both rejected" \
    11 "0 of 2 signatures verified" \
    "$T" verify --key "$FIX/cosign.pub" --identity this/does-not:match \
    --local "$W/dir-img-cosign-valid-2"

expect_ok "dir-img-cosign-key-rekor-valid: valid with cosign2.pub" \
    "1 of 1 signature verified" \
    "$T" verify --key "$FIX/cosign2.pub" \
    --identity 192.168.64.2:5000/cosign-signed/key-1 \
    --local "$W/dir-img-cosign-key-rekor-valid"
ts_expect_fail "dir-img-cosign-key-rekor-valid: cosign.pub rejected" 11 \
    "does not match it over the raw payload" \
    "$T" verify --key "$FIX/cosign.pub" \
    --identity 192.168.64.2:5000/cosign-signed/key-1 \
    --local "$W/dir-img-cosign-key-rekor-valid"

# mixed: an unknown-key signature, then a valid one: accepted
expect_ok "dir-img-cosign-mixed: one invalid, one valid: accepted" \
    "1 of 2 signatures verified" \
    "$T" verify --key "$FIX/cosign.pub" --identity "$ID" \
    --local "$W/dir-img-cosign-mixed"
grep -q "signature-1: rejected: signature does not verify" "$TS_TMP/err" ||
    ts_fail "mixed: signature-1's rejection not reported"
ts_pass "dir-img-cosign-mixed: the unknown-key signature is reported"

# ---- rejected ----
for key in cosign.pub cosign2.pub some-rsa-key.pub; do
	ts_expect_fail "dir-img-cosign-fulcio-rekor-valid with $key" 11 \
	    "certificate-based \(Fulcio/PKI\)" \
	    "$T" verify --key "$FIX/$key" \
	    --identity 192.168.64.2:5000/cosign-signed/fulcio-rekor-1 \
	    --local "$W/dir-img-cosign-fulcio-rekor-valid"
	ts_expect_fail "dir-img-cosign-pki-valid with $key" 11 \
	    "certificate-based \(Fulcio/PKI\)" \
	    "$T" verify --key "$FIX/$key" --identity localhost:5000/test \
	    --local "$W/dir-img-cosign-pki-valid"
done
ts_expect_fail "dir-img-cosign-modified-manifest: rejected" 11 \
    "digest mismatch: signature is for manifest $D634" \
    "$T" verify --key "$FIX/cosign.pub" --identity "$ID" \
    --local "$W/dir-img-cosign-modified-manifest"
ts_expect_fail "dir-img-cosign-other-attachment: no signature there" 10 \
    "no signatures found, 1 non-signature attachment skipped" \
    "$T" verify --key "$FIX/cosign.pub" --identity "$ID" \
    --local "$W/dir-img-cosign-other-attachment"
ts_expect_fail "dir-img-cosign-no-manifest: rejected" 1 \
    "manifest.json does not exist" \
    "$T" verify --key "$FIX/cosign.pub" --identity "$ID" \
    --local "$W/dir-img-cosign-no-manifest"
# upstream's manifest.json is an unreadable schema-1 file not in our copy:
# as materialized it is missing; as shipped its bytes do not match.
ts_expect_fail "dir-img-cosign-manifest-digest-error (upstream): rejected" 1 \
    "manifest.json does not exist" \
    "$T" verify --key "$FIX/cosign.pub" --identity "$ID" \
    --local "$W/dir-img-cosign-manifest-digest-error"
ts_expect_fail "dir-img-cosign-manifest-digest-error (as shipped): rejected" \
    nonzero "no signatures found|digest mismatch" \
    "$T" verify --key "$FIX/cosign.pub" --identity "$ID" \
    --local "$FIX/dir-img-cosign-manifest-digest-error"
U=$W/unknown-key
mkdir -p "$U"
cp "$W/dir-img-cosign-valid/manifest.json" "$U/"
cp "$FIX/unknown-cosign-key.signature" "$U/signature-1"
for key in cosign.pub cosign2.pub some-rsa-key.pub; do
	ts_expect_fail "unknown-cosign-key.signature rejected with $key" 11 \
	    "0 of 1 signature verified" \
	    "$T" verify --key "$FIX/$key" --identity "$ID" --local "$U"
done

# The certificate-based signatures are real RSA-4096 and P-256 signatures:
# with the public key taken out of their (unverified) certificate, our
# crypto path accepts them.  This checks the RSA PKCS#1 v1.5 path and
# line-wrapped base64 on real data; it is not certificate verification.
for c in pki-valid:localhost:5000/test \
    fulcio-rekor-valid:192.168.64.2:5000/cosign-signed/fulcio-rekor-1; do
	d=${c%%:*}
	python3 -c '
import json, sys
j = json.loads(open(sys.argv[1], "rb").read()[15:])
sys.stdout.write(j["annotations"]["dev.sigstore.cosign/certificate"])
' "$FIX/dir-img-cosign-$d/signature-1" >"$TS_TMP/cert.pem"
	openssl x509 -in "$TS_TMP/cert.pem" -pubkey -noout >"$TS_TMP/certkey.pem"
	expect_ok "dir-img-cosign-$d: signature math checks with the certificate's key" \
	    verified "$T" verify --key "$TS_TMP/certkey.pem" \
	    --identity "${c#*:}" --local "$W/dir-img-cosign-$d"
done

# ---- negative suite on payload + signature files ----
N=$TS_TMP/neg
mkdir -p "$N"
python3 - "$W/dir-img-cosign-valid/signature-1" "$N" <<'PY'
import base64, json, sys
j = json.loads(open(sys.argv[1], "rb").read()[15:])
out = sys.argv[2]
open(out + "/payload.json", "wb").write(base64.b64decode(j["payload"]))
sig = j["annotations"]["dev.cosignproject.cosign/signature"]
open(out + "/sig.b64", "w").write(sig + "\n")
open(out + "/sig.der", "wb").write(base64.b64decode(sig))
open(out + "/sig.bad64", "w").write(sig[:10] + "*" + sig[11:] + "\n")
p = bytearray(base64.b64decode(j["payload"]))
p[60] ^= 1
open(out + "/tampered.json", "wb").write(p)
PY
V=("$T" verify --key "$FIX/cosign.pub")
expect_ok "payload + base64 signature file verify" "1 of 1 signature verified" \
    "${V[@]}" --identity "$ID" --payload "$N/payload.json" \
    --signature "$N/sig.b64" --digest "$D634"
expect_ok "payload + raw DER signature file verify" "verified" \
    "${V[@]}" --identity "$ID" --payload "$N/payload.json" \
    --signature "$N/sig.der" --digest "$D634"
ts_expect_fail "tampered payload byte" 11 \
    "signature does not verify: the ecdsa-p256 key does not match" \
    "${V[@]}" --identity "$ID" --payload "$N/tampered.json" \
    --signature "$N/sig.b64" --digest "$D634"
ts_expect_fail "wrong key" 11 "signature does not verify" \
    "$T" verify --key "$FIX/cosign2.pub" --identity "$ID" \
    --payload "$N/payload.json" --signature "$N/sig.b64" --digest "$D634"
ts_expect_fail "RSA key against an ECDSA signature" 11 \
    "signature does not verify: the rsa key" \
    "$T" verify --key "$FIX/some-rsa-key.pub" --identity "$ID" \
    --payload "$N/payload.json" --signature "$N/sig.b64" --digest "$D634"
ts_expect_fail "digest of another image" 11 \
    "digest mismatch: signature is for manifest $D634, not sha256:0489" \
    "${V[@]}" --identity "$ID" --payload "$N/payload.json" \
    --signature "$N/sig.b64" \
    --digest sha256:0489474da8ea22426ece86ace6c1c0026ab2fd3cdfbbd62b7e94650266c37d9a
ts_expect_fail "identity of another repository" 11 \
    "signature identity does not match: .* does not match the repository \"192.168.64.2:5000/other\"" \
    "${V[@]}" --identity 192.168.64.2:5000/other --payload "$N/payload.json" \
    --signature "$N/sig.b64" --digest "$D634"
ts_expect_fail "identity on another registry port" 11 "identity does not match" \
    "${V[@]}" --identity 192.168.64.2:5001/cosign-signed-single-sample \
    --payload "$N/payload.json" --signature "$N/sig.b64" --digest "$D634"
ts_expect_fail "corrupted base64" 11 \
    "invalid base64: signature annotation is not valid standard base64" \
    "${V[@]}" --identity "$ID" --payload "$N/payload.json" \
    --signature "$N/sig.bad64" --digest "$D634"
ts_expect_fail "required annotation missing" 11 \
    "required annotation \"env\" is missing" \
    "${V[@]}" --identity "$ID" -a env=prod --payload "$N/payload.json" \
    --signature "$N/sig.b64" --digest "$D634"
# the same negatives inside a dir: layout
mkdir -p "$N/dir"
cp "$W/dir-img-cosign-valid/manifest.json" "$N/dir/"
python3 - "$W/dir-img-cosign-valid/signature-1" "$N/dir/signature-1" <<'PY'
import base64, json, sys
raw = open(sys.argv[1], "rb").read()
j = json.loads(raw[15:])
p = bytearray(base64.b64decode(j["payload"]))
p[60] ^= 1
j["payload"] = base64.b64encode(bytes(p)).decode()
open(sys.argv[2], "wb").write(raw[:15] + json.dumps(j).encode())
PY
ts_expect_fail "dir: tampered payload byte" 11 "signature does not verify" \
    "${V[@]}" --identity "$ID" --local "$N/dir"
printf '\0sigstore-json\n{"mimeType":"x","payload":"e30="}' >"$N/dir/signature-1"
ts_expect_fail "dir: malformed sigstore signature file" 11 \
    "signature-1 is malformed: signature: missing key \"annotations\"" \
    "${V[@]}" --identity "$ID" --local "$N/dir"
rm "$N/dir/signature-1"
ts_expect_fail "dir: no signatures at all" 10 "no signatures found" \
    "${V[@]}" --identity "$ID" --local "$N/dir"

# usage errors
ts_expect_fail "no --key" 2 "--key PUB.pem is required" \
    "$T" verify --identity "$ID" --local "$N/dir"
ts_expect_fail "two modes" 2 "exactly one of" \
    "${V[@]}" --identity "$ID" --local "$N/dir" --payload "$N/payload.json" \
    --signature "$N/sig.b64" --digest "$D634"
ts_expect_fail "offline without --identity" 2 "--identity REF is required" \
    "${V[@]}" --local "$N/dir"
ts_expect_fail "bad --digest" 2 "--digest \"sha256:abc\": hex part" \
    "${V[@]}" --identity "$ID" --payload "$N/payload.json" \
    --signature "$N/sig.b64" --digest sha256:abc
ts_expect_fail "--payload without --signature" 2 "needs --signature" \
    "${V[@]}" --identity "$ID" --payload "$N/payload.json"
ts_expect_fail "key file is not a public key" 2 "no PEM block found" \
    "$T" verify --key "$N/payload.json" --identity "$ID" --local "$N/dir"
ts_expect_fail "invalid --identity" 2 "--identity \"Bad Ref\" is not a valid docker reference" \
    "${V[@]}" --identity "Bad Ref" --local "$W/dir-img-cosign-valid"

# ---- openssl agrees with us on every fixture payload ----
X=$TS_TMP/xcheck
mkdir -p "$X"
n=0
for sigf in "$FIX"/dir-*/signature-* "$FIX"/unknown-cosign-key.signature \
    "$N/tampered-marker"; do
	if [ "$sigf" = "$N/tampered-marker" ]; then
		cp "$N/tampered.json" "$X/payload"
		cp "$N/sig.der" "$X/sig.der"
		printf '%s\n' "$ID" >"$X/ident"
		printf '%s\n' "$D634" >"$X/digest"
	else
		[ -f "$sigf" ] && ! is_link "$sigf" || continue
		head -c 15 "$sigf" | cmp -s - <(printf '\0sigstore-json\n') ||
		    continue
		python3 - "$sigf" "$X" <<'PY' || continue
import base64, json, sys
j = json.loads(open(sys.argv[1], "rb").read()[15:])
if j["mimeType"] != "application/vnd.dev.cosign.simplesigning.v1+json":
    sys.exit(1)
out = sys.argv[2]
p = base64.b64decode(j["payload"])
open(out + "/payload", "wb").write(p)
s = j["annotations"]["dev.cosignproject.cosign/signature"]
open(out + "/sig.der", "wb").write(base64.b64decode(s))
pj = json.loads(p)
open(out + "/ident", "w").write(pj["critical"]["identity"]["docker-reference"] + "\n")
open(out + "/digest", "w").write(pj["critical"]["image"]["docker-manifest-digest"] + "\n")
PY
	fi
	for key in cosign.pub cosign2.pub some-rsa-key.pub; do
		ossl=1
		openssl dgst -sha256 -verify "$FIX/$key" -signature "$X/sig.der" \
		    "$X/payload" >/dev/null 2>&1 && ossl=0
		ours=0
		"$T" verify --key "$FIX/$key" --identity "$(cat "$X/ident")" \
		    --payload "$X/payload" --signature "$X/sig.der" \
		    --digest "$(cat "$X/digest")" >/dev/null 2>&1 || ours=$?
		if [ $ossl -eq 0 ] && [ $ours -ne 0 ]; then
			ts_fail "xcheck $(basename "$(dirname "$sigf")")/$key: openssl verifies, we exit $ours"
		elif [ $ossl -ne 0 ] && [ $ours -eq 0 ]; then
			ts_fail "xcheck $(basename "$(dirname "$sigf")")/$key: we verify, openssl does not"
		fi
		[ $ossl -eq 0 ] && n=$((n + 1))
	done
done
# cosign.pub: valid, valid-2's second signature, with-tag; cosign2: rekor
[ $n -eq 4 ] || ts_fail "openssl verified $n fixture signatures, expected 4"
ts_pass "openssl and tokensign agree on every fixture payload and key ($n verified)"

ts_done
