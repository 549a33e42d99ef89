#!/bin/bash
# Interop with containers/image: images signed by tokensign (agent +
# SoftHSM) and copied by skopeo between two registries with
# `use-sigstore-attachments: true` keep every signature byte for byte, and
# tokensign's strict verifier accepts them at the destination; skopeo also
# reads them into a dir: layout that `tokensign verify --local` accepts.
# (Debian's skopeo cannot verify sigstore itself: formats.md section 0.)
. "$TS_SRC/tests/lib/common.sh"
. "$TS_SRC/tests/lib/softhsm.sh"
. "$TS_SRC/tests/lib/registry.sh"
. "$TS_SRC/tests/lib/oci-image.sh"
command -v skopeo >/dev/null || { echo "SKIP: no skopeo"; exit 77; }
[ -x "$TS_AGENT" ] || { echo "SKIP: no agent binary"; exit 77; }

ts_softhsm_setup p256
"$TS_AGENT" -D -a "$TS_TMP/agent.sock" --module "$TS_MODULE" --pin-source "$TS_PIN_FILE" \
    >"$TS_TMP/agent.out" 2>"$TS_TMP/agent.log" &
ts_bg_track $!
export TOKENSIGN_AUTH_SOCK=$TS_TMP/agent.sock
TS_WAIT=30 ts_wait_for "$TS_CLIENT" agent status || ts_fail "agent did not start"
"$TS_CLIENT" public-key --key p256 >"$TS_TMP/p256.pem" || ts_fail "public-key"

ts_registry_start src
ts_registry_start dst
A=$TS_REG_src_ADDR
B=$TS_REG_dst_ADDR
ts_image_index "$A/interop/multi:v1" interop
DI=$(ts_manifest_digest "$A/interop/multi:v1")
"$TS_CLIENT" sign --key p256 --recursive -a stage=release "$A/interop/multi:v1" 2>"$TS_TMP/sign.err" ||
    ts_fail "sign at the source: $(cat "$TS_TMP/sign.err")"
children=$(ts_manifest_get "$A/interop/multi:v1" | python3 -c 'import json,sys; [print(x["digest"]) for x in json.load(sys.stdin)["manifests"]]')

cat >"$TS_TMP/registries.d/sigstore.yaml" <<YAML
docker:
  $A:
    use-sigstore-attachments: true
  $B:
    use-sigstore-attachments: true
YAML
ts_skopeo copy -q --all --src-tls-verify=false --dest-tls-verify=false \
    "docker://$A/interop/multi:v1" "docker://$B/mirror/multi:v1" 2>"$TS_TMP/skopeo.err" ||
    ts_fail "skopeo copy --all: $(cat "$TS_TMP/skopeo.err")"
[ "$(ts_manifest_digest "$B/mirror/multi:v1")" = "$DI" ] || ts_fail "index digest changed in the copy"
for d in $DI $children; do
	a=$(ts_sig_layers "$A/interop/multi" "$d")
	b=$(ts_sig_layers "$B/mirror/multi" "$d")
	[ -n "$a" ] && [ "$a" = "$b" ] || ts_fail "signatures of $d differ after the copy: '$a' vs '$b'"
	TS_SV_IDENTITY="$A/interop/multi" ts_strict_verify "$B/mirror/multi" "$d" "$TS_TMP/p256.pem" -a stage=release
done
ts_pass "skopeo copy --all carried the index and child signatures; verified at the destination"

# tokensign verify IMAGE at the destination (registry path, --recursive)
"$TS_CLIENT" verify --key "$TS_TMP/p256.pem" --identity "$A/interop/multi" -a stage=release \
    --recursive "$B/mirror/multi:v1" >"$TS_TMP/v.json" 2>"$TS_TMP/v.err" ||
    ts_fail "tokensign verify at the destination: $(cat "$TS_TMP/v.err")"
python3 -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1]) if l.strip()]' "$TS_TMP/v.json" ||
    ts_fail "verify output is not JSON: $(cat "$TS_TMP/v.json")"
ts_reg_expect_fail "destination identity without --identity" 11 "." \
    "$TS_CLIENT" verify --key "$TS_TMP/p256.pem" "$B/mirror/multi:v1"
ts_pass "tokensign verify --recursive accepts the copied signatures at the destination"

# the identity is the source repository: at the destination without
# --identity naming it, the strict verifier refuses (identity mismatch)
pd=$(ts_sig_layers "$B/mirror/multi" "$DI" | cut -d' ' -f1)
ts_blob_get "$B/mirror/multi" "$pd" "$TS_TMP/m.payload"
ts_sig_layers "$B/mirror/multi" "$DI" | cut -d' ' -f2 | tr -d '\n' >"$TS_TMP/m.sig"
ts_reg_expect_fail "identity of another repository" 11 "identity|docker-reference" \
    "$TS_CLIENT" verify --key "$TS_TMP/p256.pem" --identity "$B/mirror/multi" \
    --payload "$TS_TMP/m.payload" --signature "$TS_TMP/m.sig" --digest "$DI"

# skopeo reads our .sig into a dir: layout; tokensign verify --local agrees
child=$(echo "$children" | head -1)
ts_skopeo copy -q --src-tls-verify=false "docker://$A/interop/multi@$child" "dir:$TS_TMP/dir" \
    2>"$TS_TMP/skopeo.err" || ts_fail "skopeo copy to dir: $(cat "$TS_TMP/skopeo.err")"
[ -f "$TS_TMP/dir/signature-1" ] || ts_fail "skopeo wrote no signature-1: $(ls "$TS_TMP/dir")"
head -c 15 "$TS_TMP/dir/signature-1" | tail -c 14 | grep -q 'sigstore-json' || ts_fail "signature-1 is not a sigstore attachment"
"$TS_CLIENT" verify --key "$TS_TMP/p256.pem" --identity "$A/interop/multi" --local "$TS_TMP/dir" \
    >/dev/null 2>"$TS_TMP/v.err" || ts_fail "verify --local: $(cat "$TS_TMP/v.err")"
ts_pass "skopeo parses our signature into dir:, tokensign verify --local accepts it"
ts_done
