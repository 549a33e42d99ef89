#!/bin/bash
# The agent lists its keys and signs payloads and digests with every key
# type; each signature verifies with openssl against the PEM that
# `tokensign public-key` prints (itself checked against GnuTLS p11tool's
# export).  A batch of 100 payloads signs in one request.  Invalid payloads
# and bad digests are refused; everything is in an intact audit chain.
. "$TS_SRC/tests/lib/common.sh"
. "$TS_SRC/tests/lib/softhsm.sh"
. "$TS_SRC/tests/lib/agent.sh"
ts_softhsm_setup
ts_agent_start --audit "$TS_TMP/audit.log"
C=$TS_CLIENT
cd "$TS_TMP"

out=$("$C" keys)
for k in p256 p384 rsa2048 rsa3072 ed25519 p256-aa p256-b; do
	grep -Eq "^[0-9a-f]{16}  .* $k " <<<"$out" || ts_fail "keys lacks $k: $out"
done
[ "$(echo "$out" | wc -l)" = 7 ] || ts_fail "expected 7 keys: $out"
ts_pass "tokensign keys lists all 7 keys with ids"
grep -E ' p256 ' <<<"$out" | grep -q 'ecdsa-p256  256' || ts_fail "p256 type: $out"
grep -E ' rsa3072 ' <<<"$out" | grep -q 'rsa        3072' || ts_fail "rsa type: $out"
ts_pass "types and sizes listed"

# Key references: id, label, URI; ambiguous and unknown refused.
id=$(echo "$out" | awk '$4 == "p256" {print $1}')
"$C" public-key --key "$id" > byid.pem
"$C" public-key --key p256 > bylabel.pem
"$C" public-key --key 'pkcs11:token=ts-main;object=p256' > byuri.pem
cmp -s byid.pem bylabel.pem && cmp -s byid.pem byuri.pem || ts_fail "key refs differ"
ts_pass "key by id, label and PKCS#11 URI"
ts_expect_fail "ambiguous URI refused" 14 'more than one key' \
    "$C" public-key --key 'pkcs11:token=ts-main'
ts_expect_fail "unknown key refused" 14 'key not found' "$C" public-key --key nosuch
ts_expect_fail "no --key with 7 keys" 14 'choose one with --key' "$C" public-key

dig=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
ts_payload registry.example.com/team/app "$dig" > payload.json
for k in p256 p384 rsa2048 rsa3072 ed25519 p256-aa; do
	"$C" public-key --key "$k" > "$k.pem"
	ts_softhsm_pubkey "$k" "$k.p11tool.pem"
	cmp -s <(openssl pkey -pubin -in "$k.pem" -outform DER) \
	    <(openssl pkey -pubin -in "$k.p11tool.pem" -outform DER) ||
	    ts_fail "$k: public-key differs from p11tool's export"
	"$C" agent sign --key "$k" --payload payload.json -o "$k.psig" ||
	    ts_fail "$k: payload signing failed: $(tail -3 "$TS_TMP/agent.log")"
	if [ "$k" = ed25519 ]; then
		openssl pkeyutl -verify -pubin -inkey "$k.pem" -rawin \
		    -in payload.json -sigfile "$k.psig" >/dev/null ||
		    ts_fail "ed25519 payload signature does not verify"
		[ "$(stat -c %s "$k.psig")" = 64 ] || ts_fail "ed25519 sig size"
	else
		openssl dgst -sha256 -verify "$k.pem" -signature "$k.psig" \
		    payload.json >/dev/null ||
		    ts_fail "$k payload signature does not verify"
	fi
	ts_pass "$k: payload signature verifies with openssl"
	case $k in
	ed25519)
		ts_expect_fail "ed25519 refuses a raw digest" 14 'key type' \
		    "$C" agent sign --key ed25519 --digest "$dig"
		continue ;;
	p384) alg=sha384 ;;
	*) alg=sha256 ;;
	esac
	printf 'message for %s' "$k" > "$k.msg"
	openssl dgst -"$alg" -binary "$k.msg" > "$k.dig"
	"$C" agent sign --key "$k" --hash "$alg" \
	    --digest "$(od -An -tx1 -v "$k.dig" | tr -d ' \n')" -o "$k.dsig" ||
	    ts_fail "$k: digest signing failed"
	openssl pkeyutl -verify -pubin -inkey "$k.pem" -in "$k.dig" \
	    -sigfile "$k.dsig" -pkeyopt digest:"$alg" >/dev/null ||
	    ts_fail "$k digest signature does not verify"
	ts_pass "$k: $alg digest signature verifies with openssl"
done
# ECDSA signatures are DER, never raw r||s.
openssl asn1parse -inform DER -in p256.psig | grep -q 'INTEGER' ||
    ts_fail "p256 signature is not DER"
ts_pass "ECDSA signatures are DER"

# A batch of 100 payloads in one request.
args=()
for i in $(seq 1 100); do
	d=$(printf '%064x' "$i")
	ts_payload "registry.example.com/team/app$i" "$d" > "b$i.json"
	args+=(--payload "b$i.json")
done
"$C" agent sign --key p256 "${args[@]}" -o batch || ts_fail "batch failed"
for i in $(seq 1 100); do
	openssl dgst -sha256 -verify p256.pem -signature "batch.$i" "b$i.json" \
	    >/dev/null || ts_fail "batch item $i does not verify"
done
ts_pass "batch of 100 payloads: all verify"
args=()
for i in $(seq 1 20); do args+=(--digest "$(printf '%064x' "$i")"); done
"$C" agent sign --key rsa2048 "${args[@]}" -o dbatch || ts_fail "digest batch"
printf '%064x' 7 | xxd -r -p > d7.bin
openssl pkeyutl -verify -pubin -inkey rsa2048.pem -in d7.bin -sigfile dbatch.7 \
    -pkeyopt digest:sha256 >/dev/null || ts_fail "digest batch item 7"
ts_pass "batch of 20 digests (RSA)"

# Payload checks: anything not a strict simple-signing payload is refused.
printf '{"critical":{"identity":{"docker-reference":"x"},"image":{"Docker-manifest-digest":"sha256:%s"},"type":"cosign container image signature"},"optional":null}' "$dig" > bad1.json
printf '{"critical":{"identity":{"docker-reference":"x"},"image":{"docker-manifest-digest":"sha256:%s"},"type":"atomic container signature"},"optional":null}' "$dig" > bad2.json
ts_payload x "$dig" | sed 's/}$/,"extra":1}/' > bad3.json
echo 'not json' > bad4.json
ts_payload x "$dig" > bad5.json; echo ' trailing' >> bad5.json
ts_payload x "0123" > bad6.json
: > bad7.json
for i in 1 2 3 4 5 6 7; do
	ts_expect_fail "invalid payload $i refused" 13 'not a valid simple-signing payload' \
	    "$C" agent sign --key p256 --payload "bad$i.json"
done
args=(--payload payload.json --payload bad1.json)
ts_expect_fail "batch with one invalid payload refused whole" 13 'item 2' \
    "$C" agent sign --key p256 "${args[@]}" -o nope
[ ! -e nope.1 ] || ts_fail "a refused batch wrote signatures"
ts_pass "refused batch wrote nothing"
ts_expect_fail "digest of wrong length refused" 13 'invalid field' \
    "$C" agent sign --key p256 --digest 0011
ts_expect_fail "sha384 digest with 32 bytes refused" 13 'invalid field' \
    "$C" agent sign --key p256 --hash sha384 --digest "$dig"

# Audit: every decision recorded, chain intact, image named, no PIN.
"$C" audit verify audit.log >/dev/null || ts_fail "audit chain broken"
grep -q '"image":"registry.example.com/team/app","manifest_digest":"sha256:'"$dig" audit.log ||
    ts_fail "audit lacks the signed image"
grep -q '"result":"refused"' audit.log || ts_fail "audit lacks refusals"
grep -Eq "[^0-9a-f]$TS_PIN[^0-9a-f]" audit.log && ts_fail "PIN in the audit log"
ts_pass "audit log records images and refusals, chain verifies, no PIN"
n=$(wc -l < audit.log)
[ "$n" -ge 130 ] || ts_fail "expected >= 130 audit lines, got $n"
cp audit.log edited.log
sed -i '5s/"result":"ok"/"result":"no"/' edited.log
ts_expect_fail "edited audit line detected" 1 ':6: chain broken' "$C" audit verify edited.log
sed '7d' audit.log > deleted.log
ts_expect_fail "deleted audit line detected" 1 ':7: chain broken' "$C" audit verify deleted.log
head=$("$C" audit verify audit.log | awk '{print $NF}')
head -n -1 audit.log > truncated.log
ts_expect_fail "tail truncation detected with --head" 1 'differs from --head' \
    "$C" audit verify truncated.log --head "$head"
ts_agent_stop
ts_done
