#!/bin/bash
# sigstore-kms-tokensign driven exactly as cosign's cliplugin client drives
# it (argv[1] "v1", argv[2] the Go-marshalled PluginArgs, message on stdin,
# one JSON object read from stdout), against the real agent and SoftHSM:
# every method; signMessage with the whole payload and no digest, with a
# digest, with empty stdin plus digest; Ed25519; RSA; key by label, id and
# percent-encoded PKCS#11 URI; errors (unknown key, agent down, locked
# agent) as errorMessage in valid JSON.  Signatures checked with openssl.
. "$TS_SRC/tests/lib/common.sh"
. "$TS_SRC/tests/lib/softhsm.sh"
ts_softhsm_setup
PLUGIN=${TS_KMS_PLUGIN:-$TS_BIN/client/sigstore-kms-tokensign}
[ -x "$PLUGIN" ] || ts_fail "plugin not built: $PLUGIN"

sock=$TS_TMP/agent.sock
"$TS_AGENT" -D -a "$sock" --module "$TS_MODULE" --pin-source "$TS_PIN_FILE" \
    --audit "$TS_TMP/audit.log" > "$TS_TMP/agent.out" 2>&1 &
agent_pid=$!
ts_bg_track $agent_pid
ts_wait_for test -S "$sock" || ts_fail "agent did not start: $(cat "$TS_TMP/agent.out")"
export TOKENSIGN_AUTH_SOCK=$sock

# The exact shapes sigstore's PluginClient marshals (common/interface.go,
# encoding.PackSignOptions: digest null when not given, keyVersion "" and
# remoteVerification false always present).
init() { # KEYREF HASH
	printf '"initOptions":{"protocolVersion":"v1","keyResourceID":"%s","hashFunc":%s}' "$1" "$2"
}
rpc='"rpcOptions":{"keyVersion":"","remoteVerification":false}'
# kms METHOD METHODJSON KEYREF HASH [STDIN-FILE]: run, print stdout, check JSON
kms() {
	local m=$1 margs=$2 ref=$3 h=$4 in=${5:-/dev/null} out
	out=$("$PLUGIN" v1 "{\"methodName\":\"$m\",\"$m\":$margs,$(init "$ref" "$h")}" \
	    < "$in" 2> "$TS_TMP/plugin.err") || true
	python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert isinstance(d, dict)' "$out" ||
	    ts_fail "$m: not one JSON object: '$out'"
	printf '%s' "$out"
}
jget() { # JSON PATH... -> value ("" when absent)
	python3 - "$@" <<'PY'
import json, sys
d = json.loads(sys.argv[1])
for k in sys.argv[2:]:
    d = d.get(k) if isinstance(d, dict) else None
print("" if d is None else (json.dumps(d) if not isinstance(d, str) else d))
PY
}
b64file() { base64 -w0 < "$1"; }

payload=$TS_TMP/payload.json
printf '%s' '{"critical":{"identity":{"docker-reference":"127.0.0.1:5000/demo/app"},"image":{"docker-manifest-digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},"type":"cosign container image signature"},"optional":null}' > "$payload"

# --- the two methods cosign must always get answers to ------------------
out=$(kms supportedAlgorithms '{}' tokensign://p256 5)
grep -q '"ecdsa-sha2-256-nistp256"' <<<"$out" || ts_fail "supportedAlgorithms: $out"
ts_pass "supportedAlgorithms"
for pair in p256:ecdsa-sha2-256-nistp256 ed25519:ed25519 rsa2048:rsa-sign-pkcs1-2048-sha256 rsa3072:rsa-sign-pkcs1-3072-sha256; do
	out=$(kms defaultAlgorithm '{}' "tokensign://${pair%%:*}" 5)
	[ "$(jget "$out" defaultAlgorithm defaultAlgorithm)" = "${pair#*:}" ] ||
	    ts_fail "defaultAlgorithm ${pair%%:*}: $out"
done
ts_pass "defaultAlgorithm per key type"

# --- publicKey / createKey: the token's key as PEM ----------------------
for k in p256 ed25519 rsa2048; do
	out=$(kms publicKey "{\"publicKeyOptions\":{$rpc}}" "tokensign://$k" 5)
	jget "$out" publicKey publicKeyPEM | base64 -d > "$TS_TMP/$k.kms.pem"
	ts_softhsm_pubkey "$k" "$TS_TMP/$k.pem"
	cmp -s <(openssl pkey -pubin -in "$TS_TMP/$k.kms.pem" -outform DER) \
	    <(openssl pkey -pubin -in "$TS_TMP/$k.pem" -outform DER) ||
	    ts_fail "$k: publicKey differs from the token's key"
done
ts_pass "publicKey equals the token key (p11tool export) for p256, ed25519, rsa2048"
out=$(kms createKey '{"algorithm":"ecdsa-sha2-256-nistp256"}' tokensign://p256 5)
[ -n "$(jget "$out" createKey publicKeyPEM)" ] || ts_fail "createKey: $out"
out=$(kms createKey '{"algorithm":"rsa-sign-pkcs1-4096-sha256"}' tokensign://p256 5)
[ -n "$(jget "$out" errorMessage)" ] || ts_fail "createKey other alg: $out"
ts_pass "createKey returns the existing key, refuses another algorithm"

# --- signMessage --------------------------------------------------------
sign() { # KEYREF HASH DIGEST-B64|null STDIN -> signature file $TS_TMP/sig
	local d=$3
	[ "$d" = null ] || d="\"$d\""
	out=$(kms signMessage "{\"signOptions\":{$rpc,\"messageOptions\":{\"digest\":$d}}}" "$1" "$2" "$4")
	err=$(jget "$out" errorMessage)
	jget "$out" signMessage signature | base64 -d > "$TS_TMP/sig"
}
# cosign 2.x: whole payload, no digest
sign tokensign://p256 5 null "$payload"
[ -z "$err" ] || ts_fail "p256 payload: $err"
openssl dgst -sha256 -verify "$TS_TMP/p256.pem" -signature "$TS_TMP/sig" "$payload" >/dev/null ||
    ts_fail "p256 payload signature does not verify with openssl"
[ "$(head -c1 "$TS_TMP/sig" | od -An -tx1 | tr -d ' ')" = 30 ] || ts_fail "ECDSA not DER"
grep -q '"image":"127.0.0.1:5000/demo/app"' "$TS_TMP/audit.log" ||
    ts_fail "SIGN_PAYLOAD not audited with the image: $(tail -1 "$TS_TMP/audit.log")"
ts_pass "p256: whole payload, no digest -> SIGN_PAYLOAD (audited image), DER verifies"
# payload plus digest
dig=$(openssl dgst -sha256 -binary "$payload" | base64 -w0)
sign tokensign://p256 5 "$dig" "$payload"
[ -z "$err" ] || ts_fail "p256 payload+digest: $err"
openssl dgst -sha256 -verify "$TS_TMP/p256.pem" -signature "$TS_TMP/sig" "$payload" >/dev/null ||
    ts_fail "payload+digest signature"
ts_pass "p256: payload with digest"
# empty stdin plus digest
sign tokensign://p256 5 "$dig" /dev/null
[ -z "$err" ] || ts_fail "p256 digest only: $err"
openssl dgst -sha256 -verify "$TS_TMP/p256.pem" -signature "$TS_TMP/sig" "$payload" >/dev/null ||
    ts_fail "digest-only signature"
grep -q '"event":"sign-digest"' "$TS_TMP/audit.log" || ts_fail "SIGN_DIGEST not audited"
ts_pass "p256: empty stdin plus digest -> SIGN_DIGEST, verifies"
# digest not matching stdin, wrong digest length
sign tokensign://p256 5 "$(printf 'x%.0s' {1..32} | base64 -w0)" "$payload"
grep -q "not the hash" <<<"$err" || ts_fail "mismatching digest: '$err'"
sign tokensign://p256 7 "$dig" /dev/null
grep -qi "length" <<<"$err" || ts_fail "wrong digest length: '$err'"
ts_pass "digest checks (mismatch, length vs hashFunc)"
# Ed25519: whole payload, no digest (pure Ed25519)
sign tokensign://ed25519 0 null "$payload"
[ -z "$err" ] || ts_fail "ed25519: $err"
[ "$(stat -c %s "$TS_TMP/sig")" -eq 64 ] || ts_fail "ed25519 signature not 64 bytes"
openssl pkeyutl -verify -pubin -inkey "$TS_TMP/ed25519.pem" -rawin -in "$payload" \
    -sigfile "$TS_TMP/sig" >/dev/null || ts_fail "ed25519 signature does not verify"
ts_pass "ed25519: whole payload verifies with openssl"
sign tokensign://ed25519 5 "$dig" /dev/null
grep -q "Ed25519" <<<"$err" || ts_fail "ed25519 digest-only: '$err'"
ts_pass "ed25519 digest-only refused with a reason"
# RSA, payload and a non-payload message (sign-blob style, SHA-256)
sign tokensign://rsa2048 5 null "$payload"
openssl dgst -sha256 -verify "$TS_TMP/rsa2048.pem" -signature "$TS_TMP/sig" "$payload" >/dev/null ||
    ts_fail "rsa2048 payload: $err"
echo "a blob, not a payload" > "$TS_TMP/blob"
sign tokensign://rsa2048 5 null "$TS_TMP/blob"
openssl dgst -sha256 -verify "$TS_TMP/rsa2048.pem" -signature "$TS_TMP/sig" "$TS_TMP/blob" >/dev/null ||
    ts_fail "rsa2048 blob: $err"
ts_pass "rsa2048: payload and blob verify (PKCS#1 v1.5 SHA-256)"
# key by id and by percent-encoded PKCS#11 URI
id=$("$TS_CLIENT" keys 2>/dev/null | awk '$0 ~ /p256 / || $0 ~ /p256$/ {print $1; exit}')
if [ -n "$id" ] && grep -Eq '^[0-9a-f]{16}$' <<<"$id"; then
	sign "tokensign://$id" 5 null "$payload"
	[ -z "$err" ] || ts_fail "by id $id: $err"
	ts_pass "key by id"
fi
sign "tokensign://pkcs11%3Atoken%3Dts-main%3Bobject%3Dp256" 5 null "$payload"
[ -z "$err" ] || ts_fail "by URI: $err"
openssl dgst -sha256 -verify "$TS_TMP/p256.pem" -signature "$TS_TMP/sig" "$payload" >/dev/null ||
    ts_fail "by URI signature"
ts_pass "key by percent-encoded PKCS#11 URI"

# --- verifySignature ----------------------------------------------------
sign tokensign://p256 5 null "$payload"
s64=$(b64file "$TS_TMP/sig")
vopts="\"verifyOptions\":{$rpc,\"messageOptions\":{\"digest\":null}}"
out=$(kms verifySignature "{\"signature\":\"$s64\",$vopts}" tokensign://p256 5 "$payload")
[ -z "$(jget "$out" errorMessage)" ] && [ -n "$(jget "$out" verifySignature)" ] ||
    ts_fail "verifySignature good: $out"
echo tampered >> "$TS_TMP/blob"
out=$(kms verifySignature "{\"signature\":\"$s64\",$vopts}" tokensign://p256 5 "$TS_TMP/blob")
[ -n "$(jget "$out" errorMessage)" ] || ts_fail "verifySignature bad: $out"
ts_pass "verifySignature accepts good, refuses wrong message"

# --- errors as JSON -----------------------------------------------------
sign tokensign://no-such-key 5 null "$payload"
grep -q "no-such-key" <<<"$err" || ts_fail "unknown key: '$err'"
ts_pass "unknown key -> errorMessage"
printf 'kms-lock-%s' "$$" > "$TS_TMP/lockpass"
python3 "$TS_SRC/tests/lib/tsproto.py" "$sock" lock "$TS_TMP/lockpass" || ts_fail "LOCK"
sign tokensign://p256 5 null "$payload"
grep -qi "locked" <<<"$err" || ts_fail "locked agent: '$err'"
python3 "$TS_SRC/tests/lib/tsproto.py" "$sock" unlock "$TS_TMP/lockpass" || ts_fail "UNLOCK"
ts_pass "locked agent -> errorMessage"
TOKENSIGN_AUTH_SOCK=$TS_TMP/nonexistent.sock sign tokensign://p256 5 null "$payload"
[ -n "$err" ] || ts_fail "agent down: no errorMessage"
out=$(TOKENSIGN_AUTH_SOCK=$TS_TMP/nonexistent.sock kms defaultAlgorithm '{}' tokensign://p256 5)
[ "$(jget "$out" defaultAlgorithm defaultAlgorithm)" = ecdsa-sha2-256-nistp256 ] ||
    ts_fail "defaultAlgorithm with agent down: $out"
ts_pass "agent down -> errorMessage; defaultAlgorithm still answers"
out=$("$PLUGIN" v2 '{}' < /dev/null || true)
grep -q errorMessage <<<"$out" || ts_fail "protocol v2: $out"
out=$("$PLUGIN" v1 '{"methodName":' < /dev/null || true)
python3 -c 'import json,sys; assert "errorMessage" in json.loads(sys.argv[1])' "$out" ||
    ts_fail "bad JSON argument: $out"
ts_pass "wrong protocol version and bad JSON -> errorMessage"
kill -0 "$agent_pid" || ts_fail "agent died"
ts_done
