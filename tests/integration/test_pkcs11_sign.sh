#!/bin/bash
# tokensign pkcs11 on a real SoftHSM token: list tokens and keys, export
# every public key and compare it with GnuTLS p11tool's export, sign with
# every key type and check each signature with OpenSSL's own verify.
. "$TS_SRC/tests/lib/common.sh"
. "$TS_SRC/tests/lib/softhsm.sh"
# sanitizer builds: SoftHSM's own leaks are not ours (full stacks needed
# to see that the allocation comes from inside the module)
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}fast_unwind_on_malloc=0
ts_softhsm_setup
T=$TS_CLIENT
M=$TS_MODULE

# tokens: text and JSON
out=$("$T" pkcs11 tokens --module "$M")
grep -q "token 'ts-main'" <<<"$out" || ts_fail "tokens lacks ts-main: $out"
grep -q "token 'ts-second'" <<<"$out" || ts_fail "tokens lacks ts-second: $out"
grep -q 'pkcs11:token=ts-main;manufacturer=SoftHSM%20project;serial=' <<<"$out" ||
    ts_fail "token URI missing: $out"
ts_pass "tokens lists both tokens with URIs"
"$T" pkcs11 tokens --module "$M" --output json >"$TS_TMP/tokens.json"
python3 - "$TS_TMP/tokens.json" <<'PY' || ts_fail "tokens json"
import json, sys
t = [x for x in json.load(open(sys.argv[1])) if x["initialized"]]
labels = sorted(x["label"] for x in t)
assert labels == ["ts-main", "ts-second"], labels
for x in t:
    assert x["present"] and x["login_required"] and x["uri"].startswith("pkcs11:token=")
PY
ts_pass "tokens --output json"

# keys without login: public halves; with a PIN: the always-auth flag too
"$T" pkcs11 keys --module "$M" --output json >"$TS_TMP/keys.json"
for tok in ts-main ts-second; do
	"$T" pkcs11 keys --module "$M" "pkcs11:token=$tok" \
	    --pin-source "$TS_PIN_FILE" --output json >"$TS_TMP/keys-$tok.json"
done
python3 -c 'import json,sys; print(json.dumps(sum((json.load(open(f)) for f in sys.argv[1:]), [])))' \
    "$TS_TMP/keys-ts-main.json" "$TS_TMP/keys-ts-second.json" >"$TS_TMP/keys-login.json"
ts_expect_fail "a PIN is tried on one token only" 14 'several tokens match' \
    "$T" pkcs11 keys --module "$M" --pin-source "$TS_PIN_FILE"
python3 - "$TS_TMP/keys.json" "$TS_TMP/keys-login.json" <<'PY' || ts_fail "keys json"
import json, sys
want = {"p256": ("ecdsa-p256", 256, "01"), "p384": ("ecdsa-p384", 384, "02"),
        "rsa2048": ("rsa", 2048, "03"), "rsa3072": ("rsa", 3072, "04"),
        "ed25519": ("ed25519", 255, "05"), "p256-aa": ("ecdsa-p256", 256, "06"),
        "p256-b": ("ecdsa-p256", 256, "11")}
for f, login in ((sys.argv[1], False), (sys.argv[2], True)):
    keys = {k["label"]: k for k in json.load(open(f))}
    assert sorted(keys) == sorted(want), sorted(keys)
    for label, (typ, bits, kid) in want.items():
        k = keys[label]
        assert (k["type"], k["bits"], k["id"]) == (typ, bits, kid), k
        assert k["fingerprint"].startswith("SHA256:"), k
        assert ("id=%%%s" % kid.upper()) in k["uri"] and k["uri"].endswith(";type=private"), k
        assert k["always_authenticate"] == (login and label == "p256-aa"), k
        assert k["has_private"] == login, k
PY
ts_pass "keys --output json: every key, type, bits, id, URI, always-auth"
out=$("$T" pkcs11 keys --module "$M" 'pkcs11:token=ts-second')
[ "$(grep -c '^pkcs11:' <<<"$out")" = 1 ] && grep -q 'object=p256-b;id=%11' <<<"$out" ||
    ts_fail "keys filtered by token: $out"
ts_pass "keys filtered by a token URI"

printf 'tokensign pkcs11 test message\n' >"$TS_TMP/msg"
D256=$(openssl dgst -sha256 -r "$TS_TMP/msg" | cut -c1-64)
D384=$(openssl dgst -sha384 -r "$TS_TMP/msg" | cut -c1-96)
D512=$(openssl dgst -sha512 -r "$TS_TMP/msg" | cut -c1-128)

for k in p256 p384 rsa2048 rsa3072 ed25519 p256-aa; do
	uri="pkcs11:token=ts-main;object=$k"
	# our export and an independent one must be the same key
	"$T" pkcs11 pubkey --module "$M" "$uri" >"$TS_TMP/$k.ours.pem" ||
	    ts_fail "$k: pubkey export"
	ts_softhsm_pubkey "$k" "$TS_TMP/$k.ref.pem"
	openssl pkey -pubin -in "$TS_TMP/$k.ours.pem" -outform DER -out "$TS_TMP/$k.ours.der"
	openssl pkey -pubin -in "$TS_TMP/$k.ref.pem" -outform DER -out "$TS_TMP/$k.ref.der"
	cmp -s "$TS_TMP/$k.ours.der" "$TS_TMP/$k.ref.der" ||
	    ts_fail "$k: our SPKI differs from p11tool's"
	# the fingerprint is SHA-256 over that SPKI
	fp=$(openssl dgst -sha256 -binary "$TS_TMP/$k.ref.der" | base64 | tr -d '=')
	python3 -c 'import json,sys; k=[x for x in json.load(open(sys.argv[1])) if x["label"]==sys.argv[2]][0]; sys.exit(k["fingerprint"]!="SHA256:"+sys.argv[3])' \
	    "$TS_TMP/keys.json" "$k" "$fp" || ts_fail "$k: fingerprint"
	ts_pass "$k: exported SPKI equals p11tool's, fingerprint matches"
	if [ "$k" = ed25519 ]; then
		"$T" pkcs11 sign --module "$M" "$uri" --message "$TS_TMP/msg" \
		    --pin-source "$TS_PIN_FILE" --out "$TS_TMP/$k.sig" ||
		    ts_fail "$k: sign"
		[ "$(stat -c %s "$TS_TMP/$k.sig")" = 64 ] || ts_fail "$k: not 64 bytes"
		for pem in ref ours; do
			openssl pkeyutl -verify -pubin -inkey "$TS_TMP/$k.$pem.pem" \
			    -rawin -in "$TS_TMP/msg" -sigfile "$TS_TMP/$k.sig" \
			    >/dev/null || ts_fail "$k: Ed25519 signature invalid ($pem key)"
		done
		ts_pass "$k: pure Ed25519 over the message verifies"
		ts_expect_fail "$k: refuses a digest" 14 'cannot be used|not supported' \
		    "$T" pkcs11 sign --module "$M" "$uri" --digest "$D256" \
		    --pin-source "$TS_PIN_FILE"
		continue
	fi
	# digest mode, SHA-256 (the cosign case), raw output
	"$T" pkcs11 sign --module "$M" "$uri" --digest "$D256" \
	    --pin-source "$TS_PIN_FILE" --out "$TS_TMP/$k.sig" || ts_fail "$k: sign"
	for pem in ref ours; do
		openssl dgst -sha256 -verify "$TS_TMP/$k.$pem.pem" \
		    -signature "$TS_TMP/$k.sig" "$TS_TMP/msg" >/dev/null ||
		    ts_fail "$k: SHA-256 digest signature invalid ($pem key)"
	done
	# ECDSA signatures are minimal DER that openssl re-encodes identically
	case $k in p*)
		openssl asn1parse -inform DER -in "$TS_TMP/$k.sig" >/dev/null ||
		    ts_fail "$k: signature is not DER";;
	esac
	# message mode: SHA-256 then sign; base64 on stdout
	"$T" pkcs11 sign --module "$M" "$uri" --message "$TS_TMP/msg" \
	    --pin-source "$TS_PIN_FILE" | base64 -d >"$TS_TMP/$k.msig" ||
	    ts_fail "$k: sign --message"
	openssl dgst -sha256 -verify "$TS_TMP/$k.ref.pem" \
	    -signature "$TS_TMP/$k.msig" "$TS_TMP/msg" >/dev/null ||
	    ts_fail "$k: message signature invalid"
	ts_pass "$k: digest and message signatures verify with OpenSSL"
done

# RSA PKCS#1 v1.5 with the SHA-384 and SHA-512 DigestInfo; P-384 with SHA-384
for spec in rsa2048:sha384:$D384 rsa3072:sha512:$D512 p384:sha384:$D384; do
	k=${spec%%:*}; rest=${spec#*:}; alg=${rest%%:*}; d=${rest#*:}
	"$T" pkcs11 sign --module "$M" "pkcs11:object=$k" --digest "$d" \
	    --pin-source "$TS_PIN_FILE" --out "$TS_TMP/$k.$alg.sig" ||
	    ts_fail "$k $alg: sign"
	openssl dgst "-$alg" -verify "$TS_TMP/$k.ref.pem" \
	    -signature "$TS_TMP/$k.$alg.sig" "$TS_TMP/msg" >/dev/null ||
	    ts_fail "$k: $alg signature invalid"
	ts_pass "$k: $alg digest signature verifies"
done

# PIN from an environment variable named by the caller
SECRET_PIN_VAR=$TS_PIN "$T" pkcs11 sign --module "$M" 'pkcs11:object=p256-b' \
    --digest "$D256" --pin-env SECRET_PIN_VAR --out "$TS_TMP/b.sig" ||
    ts_fail "sign with --pin-env"
ts_softhsm_pubkey p256-b "$TS_TMP/b.pem" ts-second
openssl dgst -sha256 -verify "$TS_TMP/b.pem" -signature "$TS_TMP/b.sig" \
    "$TS_TMP/msg" >/dev/null || ts_fail "p256-b signature invalid"
ts_pass "--pin-env, key on the second token"
( cd "$(dirname "$TS_PIN_FILE")" && "$T" pkcs11 sign --module "$M" \
    'pkcs11:object=p256-b' --digest "$D256" --pin-source "$(basename "$TS_PIN_FILE")" \
    >/dev/null ) || ts_fail "relative --pin-source"
ts_pass "relative --pin-source path"

# pin-source inside the URI, module-path inside the URI
"$T" pkcs11 sign "pkcs11:object=p256?module-path=$M&pin-source=file:$TS_PIN_FILE" \
    --digest "$D256" --out "$TS_TMP/u.sig" || ts_fail "sign with URI pin-source"
openssl dgst -sha256 -verify "$TS_TMP/p256.ref.pem" -signature "$TS_TMP/u.sig" \
    "$TS_TMP/msg" >/dev/null || ts_fail "URI pin-source signature invalid"
ts_pass "module-path and pin-source taken from the URI"

# no PIN source: prompt on the terminal (a pty driven from python), no
# echo; the PIN is typed only once the prompt is shown (the prompt flushes
# typed-ahead input, as readpassphrase does)
out=$(python3 - "$T" "$M" "$D256" "$TS_PIN" <<'PY'
import os, pty, select, sys, time
t, m, d, pin = sys.argv[1:]
pid, fd = pty.fork()
if pid == 0:
    os.execv(t, [t, "pkcs11", "sign", "--module", m,
                 "pkcs11:token=ts-main;object=p256", "--digest", d])
buf, sent, deadline = b"", False, time.time() + 120
while time.time() < deadline:
    r, _, _ = select.select([fd], [], [], 1)
    if not r:
        continue
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        break
    if not chunk:
        break
    buf += chunk
    if not sent and b"PIN for token ts-main: " in buf:
        time.sleep(0.2)
        os.write(fd, pin.encode() + b"\n")
        sent = True
_, st = os.waitpid(pid, 0)
sys.stdout.write(buf.decode(errors="replace").replace("\r", ""))
sys.exit(os.waitstatus_to_exitcode(st))
PY
) || ts_fail "prompted sign failed: $out"
grep -q '^PIN for token ts-main: ' <<<"$out" || ts_fail "no prompt: $out"
grep -q "$TS_PIN" <<<"$out" && ts_fail "PIN echoed: $out"
tail -1 <<<"$out" | base64 -d >"$TS_TMP/tty.sig" 2>/dev/null ||
    ts_fail "prompt sign output: $out"
openssl dgst -sha256 -verify "$TS_TMP/p256.ref.pem" \
    -signature "$TS_TMP/tty.sig" "$TS_TMP/msg" >/dev/null ||
    ts_fail "prompted-PIN signature invalid"
ts_pass "PIN prompt on /dev/tty without echo"
ts_done
