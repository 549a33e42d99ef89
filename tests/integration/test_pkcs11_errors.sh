#!/bin/bash
# tokensign pkcs11 failure paths on a real SoftHSM token: each one a clear
# message and a non-zero exit, nothing half-written.
. "$TS_SRC/tests/lib/common.sh"
. "$TS_SRC/tests/lib/softhsm.sh"
# sanitizer builds: SoftHSM's own leaks are not ours (full stacks needed
# to see that the allocation comes from inside the module)
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}fast_unwind_on_malloc=0
ts_softhsm_setup p256
# a second key labelled p256 on the other token: "object=p256" is ambiguous
ts_softhsm_keygen ts-second EC:prime256v1 p256 21
T=$TS_CLIENT
M=$TS_MODULE
D=$(printf x | openssl dgst -sha256 -r | cut -c1-64)

( umask 077; printf 'wrong-pin' >"$TS_TMP/badpin" )
ts_expect_fail "wrong PIN" 14 'PIN incorrect' \
    "$T" pkcs11 sign --module "$M" 'pkcs11:token=ts-main;object=p256' \
    --digest "$D" --pin-source "$TS_TMP/badpin" --out "$TS_TMP/w.sig"
[ ! -e "$TS_TMP/w.sig" ] || ts_fail "wrong PIN left an output file"
compgen -G "$TS_TMP/w.sig.tmp*" >/dev/null && ts_fail "wrong PIN left a temp file"
ts_pass "wrong PIN: no output written"
ts_expect_fail "wrong PIN via env" 14 'PIN incorrect' \
    env BADPIN=000000 "$T" pkcs11 keys --module "$M" 'pkcs11:token=ts-main' \
    --pin-env BADPIN
# the right PIN still works afterwards (never locked by us)
"$T" pkcs11 sign --module "$M" 'pkcs11:token=ts-main;object=p256' \
    --digest "$D" --pin-source "$TS_PIN_FILE" >/dev/null ||
    ts_fail "right PIN after wrong ones"
ts_pass "right PIN still accepted"

cp "$TS_PIN_FILE" "$TS_TMP/openpin"; chmod 644 "$TS_TMP/openpin"
ts_expect_fail "PIN file readable by others" 14 'accessible by group or others' \
    "$T" pkcs11 sign --module "$M" 'pkcs11:token=ts-main;object=p256' \
    --digest "$D" --pin-source "$TS_TMP/openpin"
ts_expect_fail "missing PIN file" 14 'PIN source cannot be read' \
    "$T" pkcs11 sign --module "$M" 'pkcs11:token=ts-main;object=p256' \
    --digest "$D" --pin-source "$TS_TMP/nonexistent"
ts_expect_fail "unset PIN variable" 14 'not set or empty' \
    "$T" pkcs11 sign --module "$M" 'pkcs11:token=ts-main;object=p256' \
    --digest "$D" --pin-env TS_NO_SUCH_VARIABLE
ts_expect_fail "pin-value on the command line" 2 'refusing a URI with pin-value' \
    "$T" pkcs11 sign --module "$M" 'pkcs11:object=p256?pin-value=123456' \
    --digest "$D"
ts_expect_fail "pin-source program" 14 'not supported' \
    "$T" pkcs11 sign --module "$M" 'pkcs11:token=ts-main;object=p256?pin-source=|echo' \
    --digest "$D"

ts_expect_fail "missing module" 14 'cannot be loaded' \
    "$T" pkcs11 tokens --module "$TS_TMP/no-such-module.so"
cp "$(readlink -f "$M")" "$TS_TMP/libcopy.so"
ts_expect_fail "module not on the allow-list" 14 'not on the allow-list' \
    "$T" pkcs11 tokens --module "$TS_TMP/libcopy.so"
ln -s "$TS_TMP/libcopy.so" "$TS_TMP/link.so"
ts_expect_fail "allow-list matched after realpath" 14 'not on the allow-list' \
    "$T" pkcs11 tokens --module "$TS_TMP/link.so" --allow-module "$TS_TMP/link*"
out=$("$T" pkcs11 tokens --module "$TS_TMP/link.so" --allow-module "$TS_TMP/lib*") ||
    ts_fail "explicit allow-list refused an allowed module"
grep -q ts-main <<<"$out" || ts_fail "allowed module lists no ts-main: $out"
ts_pass "explicit --allow-module accepts the real path"
ts_expect_fail "not a PKCS#11 module" 14 'cannot be loaded' \
    "$T" pkcs11 tokens --module /etc/hostname --allow-module '/etc/*'
ts_expect_fail "no module given" 2 'module PATH is required' \
    "$T" pkcs11 tokens

ts_expect_fail "key URI matching nothing" 14 'key not found' \
    "$T" pkcs11 sign --module "$M" 'pkcs11:object=nope' --digest "$D" \
    --pin-source "$TS_PIN_FILE"
ts_expect_fail "key URI id matching nothing" 14 'key not found' \
    "$T" pkcs11 sign --module "$M" 'pkcs11:token=ts-main;id=%02' --digest "$D" \
    --pin-source "$TS_PIN_FILE"
ts_expect_fail "key URI matching two keys" 14 'matches more than one key' \
    "$T" pkcs11 sign --module "$M" 'pkcs11:object=p256' --digest "$D" \
    --pin-source "$TS_PIN_FILE"
ts_expect_fail "pubkey of an ambiguous URI" 14 'matches more than one key' \
    "$T" pkcs11 pubkey --module "$M" 'pkcs11:object=p256'
ts_expect_fail "token URI matching nothing" 14 'key not found' \
    "$T" pkcs11 sign --module "$M" 'pkcs11:token=nope;object=p256' \
    --digest "$D" --pin-source "$TS_PIN_FILE"
ts_expect_fail "malformed URI" 2 "duplicate attribute 'token'" \
    "$T" pkcs11 keys --module "$M" 'pkcs11:token=a;token=b'
ts_expect_fail "bad escape" 2 'bad percent escape' \
    "$T" pkcs11 keys --module "$M" 'pkcs11:token=%zz'
ts_expect_fail "digest of the wrong size" 2 'digest' \
    "$T" pkcs11 sign --module "$M" 'pkcs11:token=ts-main;object=p256' \
    --digest abcd --pin-source "$TS_PIN_FILE"
ts_expect_fail "digest not hex" 2 'must be hex' \
    "$T" pkcs11 sign --module "$M" 'pkcs11:token=ts-main;object=p256' \
    --digest "${D%??}zz" --pin-source "$TS_PIN_FILE"
ts_expect_fail "unknown subcommand" 2 'unknown subcommand' \
    "$T" pkcs11 frobnicate --module "$M"
ts_done
