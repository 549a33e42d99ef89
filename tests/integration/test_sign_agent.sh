#!/bin/bash
# tokensign sign through the real agent and SoftHSM into a real
# docker-registry, for P-256, RSA-2048, RSA-3072 and Ed25519 keys: each
# signature, fetched back from the registry, verifies with openssl against
# `tokensign public-key` and with tokensign's strict verifier, and the
# payload bytes are exactly cosign's.  Also SIGN_BATCH for many images,
# --recursive, annotations and 16 concurrent signers.
. "$TS_SRC/tests/lib/common.sh"
. "$TS_SRC/tests/lib/softhsm.sh"
. "$TS_SRC/tests/lib/registry.sh"
. "$TS_SRC/tests/lib/oci-image.sh"
command -v skopeo >/dev/null || { echo "SKIP: no skopeo"; exit 77; }
[ -x "$TS_AGENT" ] || { echo "SKIP: no agent binary"; exit 77; }
export TOKENSIGN_SETTLE_MS=100

ts_softhsm_setup
sock=$TS_TMP/agent.sock
"$TS_AGENT" -D -a "$sock" --module "$TS_MODULE" --pin-source "$TS_PIN_FILE" \
    >"$TS_TMP/agent.out" 2>"$TS_TMP/agent.log" &
ts_bg_track $!
export TOKENSIGN_AUTH_SOCK=$sock
TS_WAIT=30 ts_wait_for "$TS_CLIENT" agent status ||
    { cat "$TS_TMP/agent.log" >&2; ts_fail "agent did not start"; }
ts_registry_start
R=$TS_REGISTRY

for k in p256 rsa2048 rsa3072 ed25519; do
	"$TS_CLIENT" public-key --key "$k" >"$TS_TMP/$k.pem" || ts_fail "public-key $k"
	ts_image "$R/agent/$k:v1" "agent-$k"
	D=$(ts_manifest_digest "$R/agent/$k:v1")
	"$TS_CLIENT" sign --key "$k" "$R/agent/$k@$D" 2>"$TS_TMP/err" ||
	    ts_fail "$k: sign failed: $(cat "$TS_TMP/err") $(tail -3 "$TS_TMP/agent.log")"
	ts_check_sigs "$R/agent/$k" "$D" "$TS_TMP/$k.pem" 1
	ts_strict_verify "$R/agent/$k" "$D" "$TS_TMP/$k.pem"
	"$TS_CLIENT" verify --key "$TS_TMP/$k.pem" "$R/agent/$k:v1" >/dev/null 2>"$TS_TMP/err" ||
	    ts_fail "$k: tokensign verify IMAGE: $(cat "$TS_TMP/err")"
	ts_pass "$k: agent signature in the registry verifies (openssl, strict verifier), cosign bytes"
done

ts_reg_expect_fail "verify IMAGE with another key" 11 "." \
    "$TS_CLIENT" verify --key "$TS_TMP/rsa2048.pem" "$R/agent/p256:v1"
ts_image "$R/agent/unsigned:v1" unsigned
ts_reg_expect_fail "verify IMAGE without signatures" 10 "." \
    "$TS_CLIENT" verify --key "$TS_TMP/p256.pem" "$R/agent/unsigned:v1"

# tree names the agent key that made each signature (no --key needed)
tree=$("$TS_CLIENT" tree "$R/agent/rsa3072:v1" 2>&1) || ts_fail "tree: $tree"
fp=$(openssl pkey -pubin -in "$TS_TMP/rsa3072.pem" -outform DER | sha256sum | cut -d' ' -f1)
grep -q "key: SHA256:$fp (agent key rsa3072)" <<<"$tree" || ts_fail "tree lacks the agent key: $tree"
ts_pass "tree identifies the signing key through the agent"

# the same key again: already signed (checked with the agent's public key)
Dp=$(ts_manifest_digest "$R/agent/p256:v1")
out=$("$TS_CLIENT" sign -v --key p256 "$R/agent/p256@$Dp" 2>&1) || ts_fail "re-sign: $out"
grep -q "already signed with this key" <<<"$out" || ts_fail "no 'already signed': $out"
[ "$(ts_sig_layers "$R/agent/p256" "$Dp" | wc -l)" = 1 ] || ts_fail "re-sign added a layer"
ts_pass "re-signing through the agent adds no layer"

# the signature is over the digest named: another image's digest fails
Dp=$(ts_manifest_digest "$R/agent/p256:v1")
Dr=$(ts_manifest_digest "$R/agent/rsa2048:v1")
pd=$(ts_sig_layers "$R/agent/p256" "$Dp" | cut -d' ' -f1)
ts_blob_get "$R/agent/p256" "$pd" "$TS_TMP/p.payload"
ts_sig_layers "$R/agent/p256" "$Dp" | cut -d' ' -f2 | tr -d '\n' >"$TS_TMP/p.sig"
ts_reg_expect_fail "digest of another image" 11 "digest" \
    "$TS_CLIENT" verify --key "$TS_TMP/p256.pem" --identity "$R/agent/p256" \
    --payload "$TS_TMP/p.payload" --signature "$TS_TMP/p.sig" --digest "$Dr"
ts_reg_expect_fail "wrong key" 11 "." \
    "$TS_CLIENT" verify --key "$TS_TMP/rsa2048.pem" --identity "$R/agent/p256" \
    --payload "$TS_TMP/p.payload" --signature "$TS_TMP/p.sig" --digest "$Dp"

# annotations through the agent (it parses the payload strictly)
"$TS_CLIENT" sign --key p256 -a team=release -a build=7 "$R/agent/p256@$Dp" 2>"$TS_TMP/err" ||
    ts_fail "sign with annotations: $(cat "$TS_TMP/err")"
n=$(ts_sig_layers "$R/agent/p256" "$Dp" | wc -l)
[ "$n" = 2 ] || ts_fail "annotated signature not appended ($n)"
ts_strict_verify "$R/agent/p256" "$Dp" "$TS_TMP/p256.pem"
pd=$(ts_sig_layers "$R/agent/p256" "$Dp" | sed -n 2p | cut -d' ' -f1)
ts_blob_get "$R/agent/p256" "$pd" "$TS_TMP/a.payload"
grep -q '"optional":{"build":"7","team":"release"}}$' "$TS_TMP/a.payload" ||
    ts_fail "annotations: $(cat "$TS_TMP/a.payload")"
ts_pass "annotations signed through the agent"

# many images: one SIGN_BATCH, parallel uploads
imgs=()
for i in $(seq 1 8); do
	ts_image "$R/batch/i$i:v1" "batch$i"
	imgs+=("$R/batch/i$i:v1")
done
"$TS_CLIENT" sign --key p256 --jobs 4 "${imgs[@]}" 2>"$TS_TMP/err" ||
    ts_fail "batch sign: $(cat "$TS_TMP/err")"
for i in $(seq 1 8); do
	ts_check_sigs "$R/batch/i$i" "$(ts_manifest_digest "$R/batch/i$i:v1")" "$TS_TMP/p256.pem" 1
done
ts_pass "8 images in one call (SIGN_BATCH, 4 jobs)"

# --recursive: the index and each child, each verifiable
ts_image_index "$R/agent/multi:v1" amulti
DI=$(ts_manifest_digest "$R/agent/multi:v1")
"$TS_CLIENT" sign --key ed25519 --recursive "$R/agent/multi:v1" 2>"$TS_TMP/err" || ts_fail "recursive: $(cat "$TS_TMP/err")"
ts_strict_verify "$R/agent/multi" "$DI" "$TS_TMP/ed25519.pem"
for c in $(ts_manifest_get "$R/agent/multi:v1" | python3 -c 'import json,sys; [print(x["digest"]) for x in json.load(sys.stdin)["manifests"]]'); do
	ts_strict_verify "$R/agent/multi" "$c" "$TS_TMP/ed25519.pem"
done
ts_pass "--recursive through the agent: index and children verify"

# 16 concurrent tokensign processes on one image leave 16 signatures
ts_image "$R/agent/race:v1" arace
DR=$(ts_manifest_digest "$R/agent/race:v1")
pids=()
for i in $(seq 1 16); do
	"$TS_CLIENT" sign --key p256 -a "n=$i" "$R/agent/race@$DR" 2>"$TS_TMP/race.$i" &
	pids+=($!)
done
for p in "${pids[@]}"; do
	wait "$p" || ts_fail "concurrent signer failed: $(cat "$TS_TMP"/race.*)"
done
n=$(ts_sig_layers "$R/agent/race" "$DR" | wc -l)
[ "$n" = 16 ] || ts_fail "16 concurrent agent signers left $n signatures"
ts_strict_verify "$R/agent/race" "$DR" "$TS_TMP/p256.pem"
ts_pass "16 concurrent agent signers: 16 signatures"

# no agent: a clear error and exit 13, before anything is uploaded
ts_reg_expect_fail "agent unreachable" 13 "cannot reach the agent" \
    env TOKENSIGN_AUTH_SOCK="$TS_TMP/nope.sock" "$TS_CLIENT" sign --key p256 "$R/agent/p256@$Dp"
ts_reg_expect_fail "unknown key" 14 "key not found" \
    "$TS_CLIENT" sign --key nosuchkey "$R/agent/p256@$Dp"
ts_reg_expect_fail "several keys, no --key" 14 "choose one with --key" \
    "$TS_CLIENT" sign "$R/agent/p256@$Dp"
ts_done
