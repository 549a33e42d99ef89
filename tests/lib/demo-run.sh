#!/bin/bash
# The demo body (scripts/demo.sh runs it after building): the main job on
# an embedded default.  Everything here is real: a SoftHSM token with a
# P-256 key in a temp dir, the Debian docker-registry on a free 127.0.0.1
# port, a small OCI image pushed with skopeo, tokensign-agent holding the
# token session, `tokensign sign` and `tokensign verify`, and openssl
# checking the stored signature independently.  All of it is torn down at
# the end (tests/lib/common.sh's trap).
. "$TS_SRC/tests/lib/common.sh"
. "$TS_SRC/tests/lib/softhsm.sh"
. "$TS_SRC/tests/lib/registry.sh"
. "$TS_SRC/tests/lib/oci-image.sh"
. "$TS_SRC/tests/lib/agent.sh"

step() { printf '\n==> %s\n' "$*"; }

step "SoftHSM token 'ts-main' with a P-256 key (in $TS_TMP)"
ts_softhsm_setup p256
"$TS_CLIENT" pkcs11 keys --module "$TS_MODULE" --pin-source "$TS_PIN_FILE" \
    'pkcs11:token=ts-main'

step "docker-registry on 127.0.0.1 and a test image pushed with skopeo"
ts_registry_start
IMAGE=$TS_REGISTRY/demo/app:v1
ts_image "$IMAGE" demo
echo "pushed $IMAGE"

step "tokensign-agent holds the token session (socket in $TS_TMP)"
ts_agent_start --audit "$TS_TMP/audit.log"
"$TS_CLIENT" keys
"$TS_CLIENT" public-key --key p256 >"$TS_TMP/p256.pem"

step "tokensign sign $IMAGE"
"$TS_CLIENT" sign --key p256 "$IMAGE"
"$TS_CLIENT" triangulate "$IMAGE"

step "tokensign verify --key p256.pem $IMAGE"
"$TS_CLIENT" verify --key "$TS_TMP/p256.pem" "$IMAGE"

step "independent check: openssl over the payload bytes stored in the registry"
D=$(ts_manifest_digest "$IMAGE")
ts_check_sigs "$TS_REGISTRY/demo/app" "$D" "$TS_TMP/p256.pem" 1
echo "openssl: signature over the stored payload verifies; payload bytes are cosign's"

step "the agent's status and audit trail (one hash-chained JSON line per decision)"
"$TS_CLIENT" agent status
tail -n 1 "$TS_TMP/audit.log"
"$TS_CLIENT" audit verify "$TS_TMP/audit.log"
printf '\nDemo complete: %s is signed with a key that never left the token.\n' "$IMAGE"
