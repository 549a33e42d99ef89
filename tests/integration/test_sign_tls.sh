#!/bin/bash
# HTTPS and the plain-HTTP rule against real registries on this machine's
# non-loopback address (loopback always uses plain HTTP, so TLS needs
# another address): an untrusted certificate is refused, --ca-file trusts
# it, --allow-insecure-registry skips verification with a warning; a
# plain-HTTP registry on a non-loopback address is refused unless named
# with --allow-http-registry.
. "$TS_SRC/tests/lib/common.sh"
. "$TS_SRC/tests/lib/registry.sh"
. "$TS_SRC/tests/lib/oci-image.sh"
command -v skopeo >/dev/null || { echo "SKIP: no skopeo"; exit 77; }
IP=$(hostname -I 2>/dev/null | tr ' ' '\n' | grep -E '^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$' | grep -v '^127\.' | head -1 || true)
[ -n "$IP" ] || { echo "SKIP: no non-loopback IPv4 address"; exit 77; }
export TOKENSIGN_SETTLE_MS=50
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$TS_TMP/k" 2>/dev/null
openssl pkey -in "$TS_TMP/k" -pubout -out "$TS_TMP/k.pub"
K="file:$TS_TMP/k"

# a CA and a server certificate for $IP
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$TS_TMP/ca.key" -out "$TS_TMP/ca.pem" -days 2 -subj "/CN=ts test CA" \
    >/dev/null 2>&1 || ts_fail "CA"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$TS_TMP/srv.key" -out "$TS_TMP/srv.csr" -subj "/CN=$IP" >/dev/null 2>&1
printf 'subjectAltName=IP:%s\n' "$IP" >"$TS_TMP/ext"
openssl x509 -req -in "$TS_TMP/srv.csr" -CA "$TS_TMP/ca.pem" -CAkey "$TS_TMP/ca.key" \
    -CAcreateserial -days 2 -extfile "$TS_TMP/ext" -out "$TS_TMP/srv.pem" >/dev/null 2>&1 ||
    ts_fail "server certificate"

TS_REG_HOST=$IP TS_REG_TLS_CERT=$TS_TMP/srv.pem TS_REG_TLS_KEY=$TS_TMP/srv.key ts_registry_start tls
T=$TS_REG_tls_ADDR
ts_oci_image "$TS_TMP/img" t tls1
ts_skopeo copy -q --dest-tls-verify=false "oci:$TS_TMP/img:t" "docker://$T/tls/app:v1" >/dev/null ||
    ts_fail "push to the TLS registry"

ts_reg_expect_fail "untrusted certificate" 12 "certificate|SSL|TLS" \
    "$TS_CLIENT" sign --key "$K" "$T/tls/app:v1"
"$TS_CLIENT" sign --key "$K" --ca-file "$TS_TMP/ca.pem" "$T/tls/app:v1" 2>"$TS_TMP/err" ||
    ts_fail "sign with --ca-file: $(cat "$TS_TMP/err")"
ts_pass "HTTPS with --ca-file"
out=$("$TS_CLIENT" sign --key "$K" -a second=1 --allow-insecure-registry "$T/tls/app:v1" 2>&1) ||
    ts_fail "sign with --allow-insecure-registry: $out"
grep -q "WARNING: TLS certificate verification is disabled" <<<"$out" ||
    ts_fail "no warning for --allow-insecure-registry: $out"
ts_pass "--allow-insecure-registry works and warns"
n=$(curl -s --cacert "$TS_TMP/ca.pem" -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "https://$T/v2/tls/app/manifests/v1" | sha256sum | cut -d' ' -f1)
n=$(curl -s --cacert "$TS_TMP/ca.pem" -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "https://$T/v2/tls/app/manifests/sha256-$n.sig" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["layers"]))')
[ "$n" = 2 ] || ts_fail "want 2 signatures over HTTPS, got $n"
ts_reg_expect_fail "missing --ca-file" 2 "CA file" \
    "$TS_CLIENT" sign --key "$K" --ca-file "$TS_TMP/nope.pem" "$T/tls/app:v1"

# plain HTTP on a non-loopback address: only when named
TS_REG_HOST=$IP ts_registry_start plain
P=$TS_REG_plain_ADDR
ts_oci_image "$TS_TMP/img2" t plain1
ts_skopeo copy -q --dest-tls-verify=false "oci:$TS_TMP/img2:t" "docker://$P/plain/app:v1" >/dev/null ||
    ts_fail "push to the plain registry"
ts_reg_expect_fail "plain HTTP registry not named" 12 "SSL|TLS|wrong version|HTTP transport" \
    "$TS_CLIENT" sign --key "$K" "$P/plain/app:v1"
"$TS_CLIENT" sign --key "$K" --allow-http-registry "$P" "$P/plain/app:v1" 2>"$TS_TMP/err" ||
    ts_fail "sign with --allow-http-registry: $(cat "$TS_TMP/err")"
ts_pass "--allow-http-registry HOST:PORT allows plain HTTP"
ts_reg_expect_fail "bad --allow-http-registry" 2 "HOST" \
    "$TS_CLIENT" sign --key "$K" --allow-http-registry "http://x/y" "$P/plain/app:v1"
ts_done
