# tests/lib/oci-image.sh - small valid OCI images built by hand (no network)
# and pushed to a test registry with skopeo.  Source common.sh first.
#
#   ts_oci_image DIR TAG [SEED]        single-platform image layout
#   ts_oci_index DIR TAG [SEED]        two-platform index (amd64 + arm64)
#   ts_oci_push DIR TAG REF            skopeo copy oci:DIR:TAG docker://REF
#   ts_oci_push_all DIR TAG REF        same with --all (multi-arch)
#   ts_image REF [SEED]                build + push a single image to REF
#   ts_image_index REF [SEED]          build + push a multi-arch image to REF
#   ts_manifest_digest REF             the registry's digest for REF
#
# SEED makes the content (and so every digest) differ between images.

_ts_sha() { sha256sum "$1" | cut -d' ' -f1; }
_ts_size() { stat -c %s "$1"; }

# _ts_blob DIR FILE: move FILE into DIR/blobs/sha256/<hex>; prints hex.
_ts_blob() {
	local dir=$1 f=$2 h
	h=$(_ts_sha "$f")
	mkdir -p "$dir/blobs/sha256"
	mv "$f" "$dir/blobs/sha256/$h"
	echo "$h"
}

# _ts_oci_manifest DIR SEED ARCH: writes layer, config and manifest blobs;
# prints "<manifest hex> <manifest size>".
_ts_oci_manifest() {
	local dir=$1 seed=$2 arch=$3 work lh lsize dh ch csize mh
	work=$(mktemp -d "$TS_TMP/ocib.XXXXXX")
	mkdir -p "$work/root/etc"
	printf 'tokensign test image %s %s\n' "$seed" "$arch" >"$work/root/etc/ts-release"
	# Reproducible tar: fixed owner, mtime and order.
	tar --sort=name --owner=0 --group=0 --numeric-owner \
	    --mtime='2020-01-01 00:00:00Z' -C "$work/root" -cf "$work/layer.tar" etc
	dh=$(_ts_sha "$work/layer.tar")
	gzip -n -9 <"$work/layer.tar" >"$work/layer.tar.gz"
	lsize=$(_ts_size "$work/layer.tar.gz")
	lh=$(_ts_blob "$dir" "$work/layer.tar.gz")
	printf '{"architecture":"%s","os":"linux","config":{"Cmd":["/bin/true"],"Labels":{"ts.seed":"%s"}},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created":"2020-01-01T00:00:00Z","created_by":"tokensign test harness"}]}' \
	    "$arch" "$seed" "$dh" >"$work/config.json"
	csize=$(_ts_size "$work/config.json")
	ch=$(_ts_blob "$dir" "$work/config.json")
	printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' \
	    "$ch" "$csize" "$lh" "$lsize" >"$work/manifest.json"
	local msize
	msize=$(_ts_size "$work/manifest.json")
	mh=$(_ts_blob "$dir" "$work/manifest.json")
	rm -rf "$work"
	echo "$mh $msize"
}

_ts_oci_layout() {
	mkdir -p "$1/blobs/sha256"
	printf '{"imageLayoutVersion":"1.0.0"}' >"$1/oci-layout"
}

# ts_oci_image DIR TAG [SEED]
ts_oci_image() {
	local dir=$1 tag=$2 seed=${3:-$RANDOM$RANDOM} m
	_ts_oci_layout "$dir"
	read -r mh msize < <(_ts_oci_manifest "$dir" "$seed" amd64)
	printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"%s"}}]}' \
	    "$mh" "$msize" "$tag" >"$dir/index.json"
}

# ts_oci_index DIR TAG [SEED]: an image index with linux/amd64 and
# linux/arm64 children.
ts_oci_index() {
	local dir=$1 tag=$2 seed=${3:-$RANDOM$RANDOM} a1 s1 a2 s2 ih isize work
	_ts_oci_layout "$dir"
	read -r a1 s1 < <(_ts_oci_manifest "$dir" "$seed" amd64)
	read -r a2 s2 < <(_ts_oci_manifest "$dir" "$seed" arm64)
	work=$(mktemp -d "$TS_TMP/ocii.XXXXXX")
	printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"amd64","os":"linux"}},{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"arm64","os":"linux","variant":"v8"}}]}' \
	    "$a1" "$s1" "$a2" "$s2" >"$work/index.json"
	isize=$(_ts_size "$work/index.json")
	ih=$(_ts_blob "$dir" "$work/index.json")
	rm -rf "$work"
	printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"%s"}}]}' \
	    "$ih" "$isize" "$tag" >"$dir/index.json"
}

# skopeo with private policy and registries.d, so the host's config is not
# read (and a signed copy keeps sigstore attachments when asked).
ts_skopeo() {
	if [ ! -f "$TS_TMP/skopeo-policy.json" ]; then
		printf '{"default":[{"type":"insecureAcceptAnything"}]}' >"$TS_TMP/skopeo-policy.json"
		mkdir -p "$TS_TMP/registries.d"
	fi
	skopeo --policy "$TS_TMP/skopeo-policy.json" \
	    --registries.d "$TS_TMP/registries.d" "$@"
}

ts_oci_push() {
	ts_skopeo copy -q --dest-tls-verify=false "oci:$1:$2" "docker://$3" >/dev/null ||
	    ts_fail "skopeo push of oci:$1:$2 to $3 failed"
}

ts_oci_push_all() {
	ts_skopeo copy -q --all --dest-tls-verify=false "oci:$1:$2" "docker://$3" >/dev/null ||
	    ts_fail "skopeo push --all of oci:$1:$2 to $3 failed"
}

# ts_image REF [SEED]: build a single image and push it to REF (host/repo:tag).
ts_image() {
	local d
	d=$(mktemp -d "$TS_TMP/oci.XXXXXX")
	ts_oci_image "$d" t "${2:-}"
	ts_oci_push "$d" t "$1"
}

ts_image_index() {
	local d
	d=$(mktemp -d "$TS_TMP/oci.XXXXXX")
	ts_oci_index "$d" t "${2:-}"
	ts_oci_push_all "$d" t "$1"
}

# ts_manifest_digest REF: digest of REF's manifest as the registry serves it
# (full Accept list, formats.md 5.2), computed from the bytes.
ts_manifest_digest() {
	local ref=$1 host path tag
	host=${ref%%/*}
	path=${ref#*/}
	tag=${path##*:}
	path=${path%:*}
	curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json' \
	    "http://$host/v2/$path/manifests/$tag" | sha256sum | sed 's/ .*//; s/^/sha256:/'
}

# ts_manifest_get REF_OR_HOST/REPO@DIGEST-or-TAG: print the manifest bytes.
ts_manifest_get() {
	local ref=$1 host path tag
	host=${ref%%/*}
	path=${ref#*/}
	if [[ $path == *@* ]]; then
		tag=${path#*@}
		path=${path%@*}
	else
		tag=${path##*:}
		path=${path%:*}
	fi
	curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json' \
	    "http://$host/v2/$path/manifests/$tag"
}

# ts_sig_layers REF_HOST/REPO DIGEST: print "<payload digest> <sig b64>" per
# simple-signing layer of the image's .sig manifest (formats.md 2.4).
ts_sig_layers() {
	local repo=$1 dg=$2 tag
	tag="sha256-${dg#sha256:}.sig"
	ts_manifest_get "$repo:$tag" | python3 -c '
import json, sys
m = json.load(sys.stdin)
assert m["mediaType"] == "application/vnd.oci.image.manifest.v1+json", m.get("mediaType")
for l in m["layers"]:
    if l["mediaType"] == "application/vnd.dev.cosign.simplesigning.v1+json":
        print(l["digest"], l["annotations"]["dev.cosignproject.cosign/signature"])'
}

# ts_blob_get HOST/REPO DIGEST OUT: fetch a blob to OUT.
ts_blob_get() {
	local host=${1%%/*} path=${1#*/}
	curl -sf -o "$3" "http://$host/v2/$path/blobs/$2" || ts_fail "blob $2 missing"
}

# ts_check_sigs HOST/REPO DIGEST PUB.pem WANT_N [IDENTITY] [OPTIONAL_JSON]:
# the .sig has WANT_N signatures; each payload is exactly cosign's bytes
# for DIGEST (and IDENTITY, OPTIONAL_JSON, default null) and verifies with
# PUB.pem under openssl (SHA-256; Ed25519 pure).
ts_check_sigs() {
	local repo=$1 dg=$2 pub=$3 want=$4 ident=${5:-$1} opt=${6:-null}
	local n=0 pd sig expect
	expect="{\"critical\":{\"identity\":{\"docker-reference\":\"$ident\"},\"image\":{\"docker-manifest-digest\":\"$dg\"},\"type\":\"cosign container image signature\"},\"optional\":$opt}"
	while read -r pd sig; do
		n=$((n + 1))
		ts_blob_get "$repo" "$pd" "$TS_TMP/payload.$n"
		[ "$(cat "$TS_TMP/payload.$n")" = "$expect" ] ||
		    ts_fail "payload $n bytes differ from cosign's layout: $(cat "$TS_TMP/payload.$n") vs $expect"
		[ "$(stat -c %s "$TS_TMP/payload.$n")" = "${#expect}" ] ||
		    ts_fail "payload $n has extra bytes"
		printf '%s' "$sig" | base64 -d >"$TS_TMP/sig.$n" || ts_fail "signature $n not base64"
		if openssl pkey -pubin -in "$pub" -noout -text 2>/dev/null | grep -q ED25519; then
			openssl pkeyutl -verify -pubin -inkey "$pub" -rawin \
			    -in "$TS_TMP/payload.$n" -sigfile "$TS_TMP/sig.$n" >/dev/null ||
			    ts_fail "signature $n does not verify (Ed25519)"
		else
			openssl dgst -sha256 -verify "$pub" -signature "$TS_TMP/sig.$n" \
			    "$TS_TMP/payload.$n" >/dev/null || ts_fail "signature $n does not verify"
		fi
	done < <(ts_sig_layers "$repo" "$dg")
	[ "$n" = "$want" ] || ts_fail "$repo@$dg: $n signatures, want $want"
}

# ts_strict_verify HOST/REPO DIGEST PUB.pem [-a k=v]...: every signature in
# the .sig passes tokensign's strict verifier (offline path, on the bytes
# fetched from the registry) with --identity HOST/REPO.
ts_strict_verify() {
	local repo=$1 dg=$2 pub=$3 n=0 pd sig
	shift 3
	while read -r pd sig; do
		n=$((n + 1))
		ts_blob_get "$repo" "$pd" "$TS_TMP/sv.payload.$n"
		printf '%s' "$sig" >"$TS_TMP/sv.sig.$n"
		"$TS_CLIENT" verify --key "$pub" "$@" --identity "${TS_SV_IDENTITY:-$repo}" \
		    --payload "$TS_TMP/sv.payload.$n" --signature "$TS_TMP/sv.sig.$n" \
		    --digest "$dg" >/dev/null 2>"$TS_TMP/sv.err" ||
		    ts_fail "tokensign verify refused signature $n of $repo@$dg: $(cat "$TS_TMP/sv.err")"
	done < <(ts_sig_layers "$repo" "$dg")
	[ $n -gt 0 ] || ts_fail "no signatures to verify at $repo@$dg"
}
