#!/bin/bash
# The fault-injecting PKCS#11 shim (tests/shim/) itself: every call passes
# through to SoftHSM (signatures verify with openssl), and each fault in
# docs/internals/shim.md happens when the control file asks, and only then.
. "$TS_SRC/tests/lib/common.sh"
. "$TS_SRC/tests/lib/softhsm.sh"
. "$TS_SRC/tests/lib/shim.sh"
ts_softhsm_setup p256
ts_shim_setup

expect() { # DESC PATTERN LINE
	grep -Eq -- "$2" <<<"$3" || ts_fail "$1: got '$3', want /$2/"
	ts_pass "$1"
}
ms_of() { echo "$1" | sed -n 's/.* ms=\([0-9]*\).*/\1/p'; }

# --- pass-through, with independent tools -------------------------------
out=$(pkcs11-tool --module "$TS_SHIM" -L 2>&1)
grep -q 'token label *: ts-main' <<<"$out" && grep -q ts-second <<<"$out" ||
    ts_fail "pass-through: tokens not listed: $out"
ts_pass "pkcs11-tool lists both tokens through the shim"
out=$(pkcs11-tool --module "$TS_SHIM" -I 2>&1)
expect "C_GetInfo names the shim" 'tokensign fault-injecting shim' "$out"
[ "$(ts_shim_stat C_GetInterface)" -ge 1 ] ||
    ts_fail "OpenSC 0.23 did not come in through C_GetInterface"
ts_pass "pkcs11-tool loads the shim through C_GetInterface (PKCS#11 3.0)"

printf 'tokensign shim' | openssl dgst -sha256 -binary > "$TS_TMP/dgst"
ts_softhsm_pubkey p256 "$TS_TMP/p256.pem"
pkcs11-tool --module "$TS_SHIM" --token-label ts-main --login \
    --pin "$TS_PIN" --sign -m ECDSA --label p256 \
    --signature-format openssl -i "$TS_TMP/dgst" -o "$TS_TMP/sig" \
    >/dev/null 2>&1 || ts_fail "pass-through sign failed"
openssl pkeyutl -verify -pubin -inkey "$TS_TMP/p256.pem" -in "$TS_TMP/dgst" \
    -sigfile "$TS_TMP/sig" >/dev/null || ts_fail "signature does not verify"
ts_pass "pass-through ECDSA signature verifies with openssl"
[ "$(ts_shim_stat C_Login)" = 1 ] && [ "$(ts_shim_stat C_Sign)" = 1 ] ||
    ts_fail "stats: $(cat "$TS_SHIM_STATS")"
ts_pass "stats count C_Login and C_Sign"

# --- one long-lived caller ------------------------------------------------
ts_probe_start ts-main
expect "open" '^open CKR_OK' "$(ts_probe open)"
expect "login" '^login CKR_OK' "$(ts_probe login)"
expect "sign" '^sign CKR_OK .*siglen=64' "$(ts_probe sign p256)"
line=$(ts_probe slots)
nslots=${line##*n=}
expect "3.0 interface: one, 2.40, same function list; 3.0 asked: refused" \
    '^iface CKR_OK count=1 name=PKCS 11 version=2.40 v3.0=CKR_ARGUMENTS_BAD same=1' \
    "$(ts_probe iface)"
expect "no slot event yet" '^waitnb CKR_NO_EVENT' "$(ts_probe waitnb)"
expect "slot removable by default" 'present=1 removable=1' "$(ts_probe slotinfo)"

# Token removal and reinsertion (of ts-main only: ts-second stays).
ts_shim_set '[token ts-main]' present=0
expect "absent: slot info" '^slotinfo CKR_OK present=0' "$(ts_probe slotinfo)"
expect "absent: token info" '^tokeninfo CKR_TOKEN_NOT_PRESENT' "$(ts_probe tokeninfo)"
expect "absent: slot list" "^slots CKR_OK n=$((nslots - 1))\$" "$(ts_probe slots)"
expect "absent: sign" '^sign CKR_DEVICE_REMOVED' "$(ts_probe sign p256)"
expect "absent: open" '^open CKR_TOKEN_NOT_PRESENT' "$(ts_probe open)"
expect "removal is a slot event" '^waitnb CKR_OK slot=ours' "$(ts_probe waitnb)"
expect "one event per change" '^waitnb CKR_NO_EVENT' "$(ts_probe waitnb)"
out=$(pkcs11-tool --module "$TS_SHIM" -L 2>&1)
! grep -q 'ts-main' <<<"$out" && grep -q 'ts-second' <<<"$out" ||
    ts_fail "pkcs11-tool still sees the token: $out"
ts_pass "pkcs11-tool sees ts-main gone, ts-second still there"
ts_shim_set '[token ts-main]' present=0 removed_rv=CKR_TOKEN_NOT_PRESENT
expect "removed_rv configurable" '^sign CKR_TOKEN_NOT_PRESENT' "$(ts_probe sign p256)"
ts_shim_set present=1
expect "reinsertion is a slot event" '^waitnb CKR_OK slot=ours' "$(ts_probe waitnb)"
expect "old session invalid after reinsertion" '^sign CKR_SESSION_HANDLE_INVALID' \
    "$(ts_probe sign p256)"
expect "reopen" '^open CKR_OK' "$(ts_probe open)"
expect "login again" '^login CKR_OK' "$(ts_probe login)"
expect "signing resumes" '^sign CKR_OK' "$(ts_probe sign p256)"

# Blocking C_WaitForSlotEvent wakes on a presence change.
ts_probe_send wait
! ts_probe_reply 0.4 >/dev/null || ts_fail "blocking wait returned early"
ts_pass "blocking wait blocks"
t0=$(date +%s%N)
ts_shim_set '[token ts-main]' present=0
line=$(ts_probe_reply 5) || ts_fail "blocking wait never woke"
t1=$(date +%s%N)
expect "blocking wait wakes on removal" '^wait CKR_OK slot=ours' "$line"
# The shim polls every 20 ms; the bound leaves room for a loaded machine
# (other test processes share the 2 cores).
[ $(( (t1 - t0) / 1000000 )) -lt 2000 ] || ts_fail "wake took $(( (t1 - t0) / 1000000 )) ms"
ts_pass "wait woke after $(( (t1 - t0) / 1000000 )) ms"
ts_shim_set slot_events=0
expect "slot events can be turned off" '^waitnb CKR_FUNCTION_NOT_SUPPORTED' \
    "$(ts_probe waitnb)"
ts_shim_set
ts_probe waitnb >/dev/null # drain the reinsertion event
ts_probe open >/dev/null
ts_probe login >/dev/null

# Sessions closed under the caller.
expect "sign before close" '^sign CKR_OK' "$(ts_probe sign p256)"
ts_shim_set close_sessions=1
expect "closed session" '^sign CKR_SESSION_HANDLE_INVALID' "$(ts_probe sign p256)"
ts_shim_set close_sessions=1 closed_rv=CKR_SESSION_CLOSED
expect "closed_rv configurable" '^sign CKR_SESSION_CLOSED' "$(ts_probe sign p256)"
expect "reopen after close" '^open CKR_OK' "$(ts_probe open)"
expect "sign needs login again" '^sign CKR_(USER_NOT_LOGGED_IN|KEY_HANDLE_INVALID|OBJECT_HANDLE_INVALID)' \
    "$(ts_probe sign p256)"
ts_probe login >/dev/null
expect "sign after reopen" '^sign CKR_OK' "$(ts_probe sign p256)"
ts_shim_set close_sessions=1 closed_rv=CKR_SESSION_CLOSED
expect "same counter: no new close" '^sign CKR_OK' "$(ts_probe sign p256)"

# CKR_USER_NOT_LOGGED_IN once, with a real logout behind it.
ts_shim_set not_logged_in=1
logins=$(ts_shim_stat C_Login)
expect "not logged in" '^sign CKR_USER_NOT_LOGGED_IN' "$(ts_probe sign p256)"
expect "login after logout" '^login CKR_OK' "$(ts_probe login)"
expect "only once" '^sign CKR_OK' "$(ts_probe sign p256)"
[ "$(ts_shim_stat C_Login)" = $((logins + 1)) ] || ts_fail "login count"
ts_pass "login counted"
ts_shim_set not_logged_in=2 not_logged_in_at=C_Sign
expect "not logged in at C_Sign, mid-operation" '^sign CKR_USER_NOT_LOGGED_IN' \
    "$(ts_probe sign p256)"
expect "login after mid-operation logout" '^login CKR_OK' "$(ts_probe login)"
expect "no operation left active" '^sign CKR_OK' "$(ts_probe sign p256)"

# Touch delay, and removal during the touch wait.
ts_shim_set sign_delay_ms=600
line=$(ts_probe sign p256)
expect "delayed sign succeeds" '^sign CKR_OK' "$line"
[ "$(ms_of "$line")" -ge 600 ] || ts_fail "delay too short: $line"
ts_pass "sign delayed $(ms_of "$line") ms"
line=$(ts_probe attr p256)
expect "delay is for signing only" '^attr CKR_OK' "$line"
ts_shim_set sign_delay_ms=5000
ts_probe_send sign p256
sleep 0.3
ts_shim_set sign_delay_ms=5000 present=0
line=$(ts_probe_reply 5) || ts_fail "no reply after removal in touch wait"
expect "removal ends the touch wait" '^sign CKR_DEVICE_REMOVED' "$line"
# Well before the 5 s delay would have ended.
[ "$(ms_of "$line")" -lt 3000 ] || ts_fail "removal noticed late: $line"
ts_pass "removal noticed after $(ms_of "$line") ms"
ts_shim_set
ts_probe open >/dev/null
ts_probe login >/dev/null

# A sign that hangs until the control file changes.
ts_shim_set sign_hang=1
ts_probe_send sign p256
! ts_probe_reply 0.6 >/dev/null || ts_fail "hung sign returned"
ts_pass "sign hangs"
# Another token keeps working meanwhile (another process, same control).
ts_shim_set '[token ts-main]' sign_hang=1
pkcs11-tool --module "$TS_SHIM" --token-label ts-second --login \
    --pin "$TS_PIN" --sign -m ECDSA --label p256-b -i "$TS_TMP/dgst" \
    -o "$TS_TMP/sig2" >/dev/null 2>&1 || ts_fail "ts-second blocked"
ts_pass "other token signs while ts-main hangs"
line=$(ts_probe_reply 5) || ts_fail "hung sign not released by the change"
expect "hang released by a control change" '^sign CKR_OK' "$line"
ts_probe_send sign p256
! ts_probe_reply 0.4 >/dev/null || ts_fail "second hung sign returned"
ts_shim_set present=0
line=$(ts_probe_reply 5) || ts_fail "hung sign not released by removal"
expect "removal ends a hang with DEVICE_REMOVED" '^sign CKR_DEVICE_REMOVED' "$line"
ts_shim_set
ts_probe open >/dev/null
ts_probe login >/dev/null

# A card that stops answering: every call on the slot hangs.
ts_shim_set '[token ts-main]' hang=1
ts_probe_send tokeninfo
! ts_probe_reply 0.5 >/dev/null || ts_fail "token info did not hang"
ts_pass "whole-slot hang: C_GetTokenInfo blocks"
ts_shim_set
line=$(ts_probe_reply 5) || ts_fail "hang not released"
expect "whole-slot hang released by a change" '^tokeninfo CKR_OK' "$line"

# PIN-count flags; a locked PIN is refused without reaching the token.
expect "no PIN flags by default" '^tokeninfo CKR_OK pinflags=-' "$(ts_probe tokeninfo)"
ts_shim_set pin_flags=count_low,final_try
expect "count low + final try" 'pinflags=count_low,final_try,-' "$(ts_probe tokeninfo)"
ts_shim_set pin_flags=locked
expect "locked flag" 'pinflags=locked,-' "$(ts_probe tokeninfo)"
expect "locked PIN refused" '^login CKR_PIN_LOCKED' "$(ts_probe login)"
[ "$(ts_shim_stat fault.C_Login)" -ge 1 ] || ts_fail "locked login not counted"
ts_pass "refused login counted as a fault"

# Slot description (maps a slot to a PC/SC reader name).
ts_shim_set 'slot_description = Virtual PCD 00 00' removable=0
expect "slot description" 'removable=0 desc="Virtual PCD 00 00"' "$(ts_probe slotinfo)"

# Hostile token: lying attribute lengths.
ts_shim_set
expect "honest EC point" '^attr CKR_OK size=([0-9]+) rv2=CKR_OK len=' "$(ts_probe attr p256)"
line=$(ts_probe attr p256)
real=$(echo "$line" | sed 's/.*size=\([0-9]*\).*/\1/')
ts_shim_set bogus_attr=huge
expect "huge length" 'size=2147483647 rv2=skipped' "$(ts_probe attr p256)"
ts_shim_set bogus_attr=zero
expect "zero length" 'size=0 rv2=skipped' "$(ts_probe attr p256)"
ts_shim_set bogus_attr=unavailable
expect "unavailable with CKR_OK" '^attr CKR_OK size=-1 ' "$(ts_probe attr p256)"
ts_shim_set bogus_attr=overlong
expect "overlong" "size=$real rv2=CKR_OK len=$((real + 4096))" "$(ts_probe attr p256)"
ts_shim_set bogus_attr=truncate
expect "truncated" "size=$real rv2=CKR_OK len=$((real - 1))" "$(ts_probe attr p256)"
ts_shim_set bogus_attr=huge bogus_attr_types=CKA_LABEL
expect "lies limited to named types" "size=$real rv2=CKR_OK len=$real" "$(ts_probe attr p256)"

# Any function can be made to fail.
ts_shim_set fail.C_Sign=CKR_DEVICE_ERROR
expect "fail.C_Sign" '^sign CKR_DEVICE_ERROR' "$(ts_probe sign p256)"
ts_shim_set '[token ts-second]' fail.C_Sign=CKR_DEVICE_ERROR
expect "fail scoped to another token" '^sign CKR_OK' "$(ts_probe sign p256)"

# Faults under load: 8 threads, each with its own session, recovering as an
# agent would; SoftHSM must not see a session closed under a running call.
ts_shim_set
ts_probe_send load 3500 8 p256
sleep 1
ts_shim_set '[token ts-main]' present=0
sleep 0.5
ts_shim_set
sleep 0.7
ts_shim_set close_sessions=7
line=$(ts_probe_reply 30) || ts_fail "load run did not finish"
ts_log "$line"
expect "load: removal and closes seen, no other error, all threads recover" \
    '^load ok=[1-9][0-9]* removed=[1-9][0-9]* closed=[1-9][0-9]* .*other=0 .*final_ok=8 threads=8' "$line"
ts_probe open >/dev/null
ts_probe login >/dev/null

# A malformed control file is ignored whole; the settings in force stay.
ts_shim_set present=0
expect "removed before bad file" '^slotinfo CKR_OK present=0' "$(ts_probe slotinfo)"
ts_shim_set present=1 'sign_hang = maybe'
expect "bad file ignored" '^slotinfo CKR_OK present=0' "$(ts_probe slotinfo)"
grep -q "line 2: bad setting" "$TS_TMP/probe.err" || ts_fail "no parse error logged"
ts_pass "parse error names the line"
ts_shim_set present=1
expect "good file applies again" '^slotinfo CKR_OK present=1' "$(ts_probe slotinfo)"
ts_probe_stop

# Several control files (TS_SHIM_CONTROL=a:b): read in order, the second
# starting in a fresh [all] section; top-section-only keys are refused there.
printf '[token ts-main]\npresent = 0\n' > "$TS_TMP/second.ctl"
ts_shim_set '[token ts-second]' 'slot_description = from the first file'
out=$(TS_SHIM_CONTROL="$TS_SHIM_CONTROL:$TS_TMP/second.ctl" \
    pkcs11-tool --module "$TS_SHIM" -L 2>&1)
! grep -q 'ts-main' <<<"$out" && grep -q 'from the first file' <<<"$out" ||
    ts_fail "two control files: $out"
ts_pass "two control files combine"
printf 'present = 0\n' > "$TS_TMP/second.ctl"
ts_shim_set '[token ts-main]'
out=$(TS_SHIM_CONTROL="$TS_SHIM_CONTROL:$TS_TMP/second.ctl" \
    pkcs11-tool --module "$TS_SHIM" -L 2>&1)
! grep -q 'ts-' <<<"$out" ||
    ts_fail "second file continued the first file's section: $out"
ts_pass "second file does not continue the first file's section"
printf 'poll_ms = 5\n' > "$TS_TMP/second.ctl"
out=$(TS_SHIM_CONTROL="$TS_SHIM_CONTROL:$TS_TMP/second.ctl" \
    pkcs11-tool --module "$TS_SHIM" -L 2>&1)
grep -q 'second.ctl: line 1: bad setting' <<<"$out" ||
    ts_fail "top-only key accepted in a later file: $out"
ts_pass "top-section keys refused in a later file"
ts_done
