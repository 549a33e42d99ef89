#!/bin/bash
# Registry authentication with real servers: htpasswd Basic auth through
# docker config.json ("auths"), a credential helper (credHelpers and
# credsStore, protocol of formats.md 6.3) and the containers auth file;
# Bearer tokens from a token service the test starts; and the refusals:
# no credentials, wrong password, helper failure.
. "$TS_SRC/tests/lib/common.sh"
. "$TS_SRC/tests/lib/registry.sh"
. "$TS_SRC/tests/lib/oci-image.sh"
command -v skopeo >/dev/null || { echo "SKIP: no skopeo"; exit 77; }
export TOKENSIGN_SETTLE_MS=50
unset REGISTRY_AUTH_FILE DOCKER_CONFIG
export XDG_RUNTIME_DIR=$TS_TMP/xdg HOME=$TS_TMP/home
mkdir -p "$XDG_RUNTIME_DIR" "$HOME"

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$TS_TMP/k" 2>/dev/null
openssl pkey -in "$TS_TMP/k" -pubout -out "$TS_TMP/k.pub"
K="file:$TS_TMP/k"
PASS='p4ss:with:colons'

# ---- Basic (htpasswd) ----
ts_registry_start_auth basic alice "$PASS"
B=$TS_REG_basic_ADDR
push() { # IMG REF
	ts_oci_image "$TS_TMP/$1" t "$1"
	ts_skopeo copy -q --dest-tls-verify=false --dest-creds "alice:$PASS" \
	    "oci:$TS_TMP/$1:t" "docker://$2" >/dev/null || ts_fail "push $2"
}
push b1 "$B/auth/app:v1"
D=$(curl -sf -u "alice:$PASS" -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "http://$B/v2/auth/app/manifests/v1" | sha256sum | sed 's/ .*//; s/^/sha256:/')

ts_reg_expect_fail "Basic registry without credentials" 12 "requires a login" \
    "$TS_CLIENT" sign --key "$K" "$B/auth/app@$D"

mkdir -p "$TS_TMP/dc"
auth=$(printf 'alice:%s' "$PASS" | base64 -w0)
printf '{"auths":{"http://%s/v1/":{"auth":"%s"}}}' "$B" "$auth" >"$TS_TMP/dc/config.json"
DOCKER_CONFIG=$TS_TMP/dc "$TS_CLIENT" sign --key "$K" -a via=auths "$B/auth/app@$D" 2>"$TS_TMP/err" ||
    ts_fail "sign with config.json auths: $(cat "$TS_TMP/err")"
ts_pass "Basic via DOCKER_CONFIG config.json auths (key reduced to host)"

bad=$(printf 'alice:wrong' | base64 -w0)
printf '{"auths":{"%s":{"auth":"%s"}}}' "$B" "$bad" >"$TS_TMP/dc/config.json"
DOCKER_CONFIG=$TS_TMP/dc ts_reg_expect_fail "wrong password" 12 "rejected the user name or password" \
    "$TS_CLIENT" sign --key "$K" "$B/auth/app@$D"
printf '{"auths":{"%s":{"auth":"!!notbase64"}}}' "$B" >"$TS_TMP/dc/config.json"
DOCKER_CONFIG=$TS_TMP/dc ts_reg_expect_fail "corrupt auth field" 12 "not base64 of user:password" \
    "$TS_CLIENT" sign --key "$K" "$B/auth/app@$D"

# credential helper: gets "get" in argv and the server URL on stdin only
mkdir -p "$TS_TMP/bin"
cat >"$TS_TMP/bin/docker-credential-tstest" <<HELPER
#!/bin/bash
[ "\$*" = get ] || { echo "bad argv: \$*"; exit 1; }
read -r url
echo "\$url" >>"$TS_TMP/helper.log"
[ "\$url" = "$B" ] || { echo "credentials not found in native keychain"; exit 1; }
printf '{"ServerURL":"%s","Username":"alice","Secret":"%s"}' "\$url" '$PASS'
HELPER
chmod +x "$TS_TMP/bin/docker-credential-tstest"
printf '{"credHelpers":{"%s":"tstest"},"auths":{"%s":{"auth":"%s"}}}' "$B" "$B" "$bad" >"$TS_TMP/dc/config.json"
PATH=$TS_TMP/bin:$PATH DOCKER_CONFIG=$TS_TMP/dc "$TS_CLIENT" sign --key "$K" -a via=credhelpers "$B/auth/app@$D" 2>"$TS_TMP/err" ||
    ts_fail "sign with credHelpers: $(cat "$TS_TMP/err")"
[ "$(cat "$TS_TMP/helper.log")" = "$B" ] || ts_fail "helper got: $(cat "$TS_TMP/helper.log")"
ts_pass "Basic via credHelpers (server URL on stdin, preferred over auths)"

printf '{"credsStore":"tstest"}' >"$TS_TMP/dc/config.json"
PATH=$TS_TMP/bin:$PATH DOCKER_CONFIG=$TS_TMP/dc "$TS_CLIENT" sign --key "$K" -a via=credsstore "$B/auth/app@$D" 2>"$TS_TMP/err" ||
    ts_fail "sign with credsStore: $(cat "$TS_TMP/err")"
ts_pass "Basic via credsStore"
printf '{"credsStore":"nosuchhelper"}' >"$TS_TMP/dc/config.json"
DOCKER_CONFIG=$TS_TMP/dc ts_reg_expect_fail "missing helper" 12 "docker-credential-nosuchhelper not found" \
    "$TS_CLIENT" sign --key "$K" "$B/auth/app@$D"

# containers auth file: the most specific key wins
printf '{"auths":{"%s":{"auth":"%s"},"%s/auth/app":{"auth":"%s"}}}' "$B" "$bad" "$B" "$auth" >"$TS_TMP/auth.json"
REGISTRY_AUTH_FILE=$TS_TMP/auth.json "$TS_CLIENT" sign --key "$K" -a via=authfile "$B/auth/app@$D" 2>"$TS_TMP/err" ||
    ts_fail "sign with REGISTRY_AUTH_FILE: $(cat "$TS_TMP/err")"
mkdir -p "$XDG_RUNTIME_DIR/containers"
cp "$TS_TMP/auth.json" "$XDG_RUNTIME_DIR/containers/auth.json"
"$TS_CLIENT" sign --key "$K" -a via=xdg "$B/auth/app@$D" 2>"$TS_TMP/err" ||
    ts_fail "sign with XDG_RUNTIME_DIR auth.json: $(cat "$TS_TMP/err")"
rm "$XDG_RUNTIME_DIR/containers/auth.json"
ts_pass "containers auth.json (REGISTRY_AUTH_FILE and XDG_RUNTIME_DIR), host/repo key wins"
n=$(curl -sf -u "alice:$PASS" -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "http://$B/v2/auth/app/manifests/sha256-${D#sha256:}.sig" |
    python3 -c 'import json,sys; print(len(json.load(sys.stdin)["layers"]))')
[ "$n" = 5 ] || ts_fail "want 5 signatures on the Basic registry, got $n"
ts_pass "5 signatures stored through Basic auth"

# ---- Bearer (token service) ----
ts_regtoken_start tok bob 'b0b-secret'
T=$TS_REG_tok_ADDR
ts_oci_image "$TS_TMP/t1" t t1
ts_skopeo copy -q --dest-tls-verify=false --dest-creds 'bob:b0b-secret' \
    "oci:$TS_TMP/t1:t" "docker://$T/tok/app:v1" >/dev/null || ts_fail "push to token registry"
ts_reg_expect_fail "Bearer without credentials" 12 "refused anonymous access|bad or missing credentials" \
    "$TS_CLIENT" sign --key "$K" "$T/tok/app:v1"
printf '{"auths":{"%s":{"auth":"%s"}}}' "$T" "$(printf 'bob:b0b-secret' | base64 -w0)" >"$TS_TMP/dc/config.json"
: >"$TS_TOKEN_tok_LOG"
DOCKER_CONFIG=$TS_TMP/dc "$TS_CLIENT" sign --key "$K" "$T/tok/app:v1" 2>"$TS_TMP/err" ||
    ts_fail "sign with Bearer: $(cat "$TS_TMP/err")"
[ "$(grep -c 'auth=Basic' "$TS_TOKEN_tok_LOG")" = 1 ] ||
    ts_fail "want one token request with Basic credentials: $(cat "$TS_TOKEN_tok_LOG")"
ts_pass "Bearer token flow with credentials, token cached for the call"
printf '{"auths":{"%s":{"auth":"%s"}}}' "$T" "$(printf 'bob:nope' | base64 -w0)" >"$TS_TMP/dc/config.json"
DOCKER_CONFIG=$TS_TMP/dc ts_reg_expect_fail "Bearer with a wrong password" 12 "token service .* refused" \
    "$TS_CLIENT" sign --key "$K" "$T/tok/app:v1"

# ---- identity token: the OAuth2 refresh_token grant ----
# docker login stores {"auth": base64("<token>:"), "identitytoken": ...}
# for registries that issue refresh tokens; the client POSTs it to the realm.
idtoken_config() { # ADDR REFRESH: docker config.json with an identity token
	printf '{"auths":{"%s":{"auth":"%s","identitytoken":"%s"}}}' "$1" \
	    "$(printf '<token>:' | base64 -w0)" "$2" >"$TS_TMP/dc/config.json"
}
push_as() { # USER:PASS ADDR
	ts_skopeo copy -q --dest-tls-verify=false --dest-creds "$1" \
	    "oci:$TS_TMP/t1:t" "docker://$2/tok/app:v1" >/dev/null || ts_fail "push to $2"
}
ts_regtoken_start oauth carol 'c4rol-pass' 'rt-0f9e+8d/7c='
O=$TS_REG_oauth_ADDR
push_as 'carol:c4rol-pass' "$O"
idtoken_config "$O" 'rt-0f9e+8d/7c='
: >"$TS_TOKEN_oauth_LOG"
DOCKER_CONFIG=$TS_TMP/dc "$TS_CLIENT" sign --key "$K" "$O/tok/app:v1" 2>"$TS_TMP/err" ||
    ts_fail "sign with an identity token: $(cat "$TS_TMP/err")"
grep -q '^POST /token ctype=application/x-www-form-urlencoded grant=refresh_token client_id=tokensign$' \
    "$TS_TOKEN_oauth_LOG" || ts_fail "no OAuth2 refresh grant: $(cat "$TS_TOKEN_oauth_LOG")"
! grep -q '^GET /token' "$TS_TOKEN_oauth_LOG" ||
    ts_fail "identity token sent as a GET: $(cat "$TS_TOKEN_oauth_LOG")"
DOCKER_CONFIG=$TS_TMP/dc "$TS_CLIENT" verify --key "$TS_TMP/k.pub" "$O/tok/app:v1" >/dev/null 2>"$TS_TMP/err" ||
    ts_fail "verify with an identity token: $(cat "$TS_TMP/err")"
! grep -q 'rt-0f9e' "$TS_TMP/err" || ts_fail "refresh token in the output"
ts_pass "identity token exchanged through the OAuth2 refresh_token grant; sign and verify"
idtoken_config "$O" rt-revoked
DOCKER_CONFIG=$TS_TMP/dc ts_reg_expect_fail "a revoked identity token" 12 \
    "token service .* refused the identity token's \(OAuth2 refresh\) access .*invalid_grant" \
    "$TS_CLIENT" sign --key "$K" "$O/tok/app:v1"
# A realm that redirects the POST to another origin: the refresh token in
# the body must not follow.
ts_regtoken_start oauthr dave 'd4ve-pass' 'rt-redirected' /token307
R=$TS_REG_oauthr_ADDR
push_as 'dave:d4ve-pass' "$R"
idtoken_config "$R" rt-redirected
: >"$TS_TOKEN_oauthr_LOG"
DOCKER_CONFIG=$TS_TMP/dc ts_reg_expect_fail "identity token realm redirecting to another origin" 12 \
    "redirected to http://localhost:[0-9]+; not sending the credential in the body to another origin" \
    "$TS_CLIENT" sign --key "$K" "$R/tok/app:v1"
grep -q '^POST /token307 ' "$TS_TOKEN_oauthr_LOG" || ts_fail "no POST to the realm: $(cat "$TS_TOKEN_oauthr_LOG")"
! grep -q '^POST /token ' "$TS_TOKEN_oauthr_LOG" ||
    ts_fail "the refresh token followed the redirect: $(cat "$TS_TOKEN_oauthr_LOG")"
ts_pass "the refresh token is not sent on to the redirect's other origin"
ts_done
