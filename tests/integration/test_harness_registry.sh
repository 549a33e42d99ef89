#!/bin/bash
# The registry harness itself: an anonymous and an htpasswd registry start on
# free ports, a hand-built OCI image and a two-platform index push with
# skopeo, and the registry serves them with the digests we built.
. "$TS_SRC/tests/lib/common.sh"
. "$TS_SRC/tests/lib/registry.sh"
. "$TS_SRC/tests/lib/oci-image.sh"
command -v skopeo >/dev/null || { echo "SKIP: no skopeo"; exit 77; }

ts_registry_start
code=$(curl -s -o /dev/null -w '%{http_code}' "http://$TS_REGISTRY/v2/")
[ "$code" = 200 ] || ts_fail "anonymous registry /v2/ answered $code"
ts_pass "anonymous registry up at $TS_REGISTRY"

d=$TS_TMP/img
ts_oci_image "$d" v1 seed1
want=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"])' "$d/index.json")
ts_oci_push "$d" v1 "$TS_REGISTRY/demo/app:v1"
got=$(ts_manifest_digest "$TS_REGISTRY/demo/app:v1")
[ "$got" = "$want" ] || ts_fail "pushed digest $got, built $want"
ts_pass "single image pushed with its own digest"

# Without the OCI type in Accept, distribution 2.8.2 answers 404 (formats.md 5.2).
code=$(curl -s -o /dev/null -w '%{http_code}' "http://$TS_REGISTRY/v2/demo/app/manifests/v1")
[ "$code" = 404 ] || ts_fail "manifest without Accept answered $code, expected 404"
ts_pass "registry 404s an OCI manifest without Accept"

ts_oci_index "$TS_TMP/idx" multi seed2
ts_oci_push_all "$TS_TMP/idx" multi "$TS_REGISTRY/demo/multi:v1"
m=$(ts_manifest_get "$TS_REGISTRY/demo/multi:v1")
n=$(echo "$m" | python3 -c 'import json,sys; m=json.load(sys.stdin); assert m["mediaType"]=="application/vnd.oci.image.index.v1+json"; print(" ".join(sorted(x["platform"]["architecture"] for x in m["manifests"])))')
[ "$n" = "amd64 arm64" ] || ts_fail "index children: $n"
for c in $(echo "$m" | python3 -c 'import json,sys; [print(x["digest"]) for x in json.load(sys.stdin)["manifests"]]'); do
	ts_manifest_get "$TS_REGISTRY/demo/multi@$c" >/dev/null || ts_fail "child $c missing"
done
ts_pass "two-platform index pushed with both children"

ts_registry_start_auth sec alice 's3cret:pw'
code=$(curl -s -o /dev/null -w '%{http_code}' "http://$TS_REG_sec_ADDR/v2/")
[ "$code" = 401 ] || ts_fail "auth registry without credentials answered $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -u 'alice:s3cret:pw' "http://$TS_REG_sec_ADDR/v2/")
[ "$code" = 200 ] || ts_fail "auth registry with credentials answered $code"
ts_pass "htpasswd registry demands and accepts Basic auth"
ts_done
