#!/bin/bash
# LOCK/UNLOCK (wrong passphrase delayed more each time), the PIN timeout
# (re-login from a PIN file; "needs unlock" with an env PIN, then UNLOCK
# with the PIN), and confirmation through $TOKENSIGN_ASKPASS.
. "$TS_SRC/tests/lib/common.sh"
. "$TS_SRC/tests/lib/softhsm.sh"
. "$TS_SRC/tests/lib/agent.sh"
ts_softhsm_setup p256
cd "$TS_TMP"
C=$TS_CLIENT
dig=$(printf '%064x' 7)
sign() { "$C" agent sign --key "${1:-p256}" --digest "$dig" >/dev/null; }

ts_agent_start --audit "$TS_TMP/audit.log"
( umask 077; echo 'correct horse' > pass; echo 'wrong' > wrong )
"$C" agent lock --passphrase-file pass | grep -q 'agent locked' || ts_fail "lock"
ts_pass "agent locked"
ts_expect_fail "locked agent refuses to sign" 13 'agent is locked' sign
"$C" agent status | grep -q '^state: locked' || ts_fail "status not locked"
ts_pass "status shows locked"
ts_expect_fail "second lock refused" 13 'already locked' \
    "$C" agent lock --passphrase-file pass
t0=$(date +%s%N)
ts_expect_fail "wrong passphrase refused" 13 'incorrect passphrase' \
    "$C" agent unlock --passphrase-file wrong
t1=$(date +%s%N)
for i in 1 2; do
	"$C" agent unlock --passphrase-file wrong >/dev/null 2>&1 && ts_fail "unlocked"
done
t2=$(date +%s%N)
"$C" agent unlock --passphrase-file wrong >/dev/null 2>&1 && ts_fail "unlocked"
t3=$(date +%s%N)
d1=$(((t1 - t0) / 1000000)); d4=$(((t3 - t2) / 1000000))
[ "$d1" -ge 90 ] && [ "$d4" -ge 700 ] && [ "$d4" -gt "$d1" ] ||
    ts_fail "delay not growing: first ${d1} ms, fourth ${d4} ms"
ts_pass "failed unlocks delayed longer each time (${d1} ms, then ${d4} ms)"
"$C" agent unlock --passphrase-fd 3 3<pass | grep -q 'agent unlocked' ||
    ts_fail "unlock with the right passphrase"
sign || ts_fail "cannot sign after unlock"
ts_pass "unlocked (passphrase from an fd) and signing again"
grep -c '"event":"unlock"' audit.log | grep -q '^5$' || ts_fail "unlocks not audited"
grep -q 'correct horse' audit.log && ts_fail "passphrase in the audit log"
ts_pass "lock/unlock audited without the passphrase"
ts_expect_fail "unlock of an unlocked agent" 13 'not locked' \
    "$C" agent unlock --passphrase-file pass
ts_agent_stop

# PIN timeout with a PIN file: logged out, then logged in again on use.
ts_agent_start -t 2
sign || ts_fail "sign before timeout"
ts_wait_for sh -c "'$C' agent status | grep -q 'ts-main present, logged out'" ||
    ts_fail "token not logged out after the PIN timeout"
ts_pass "PIN timeout logged the token out"
sign || ts_fail "sign after timeout with a PIN file"
grep -q 'logged in again' "$TS_TMP/agent.log" || ts_fail "no re-login logged"
ts_pass "next signature re-read the PIN file and logged in again"
ts_agent_stop

# PIN timeout with an env PIN (read once, then gone): needs unlock.
sock=$TS_TMP/env.sock
TS_TEST_PIN=$TS_PIN "$TS_AGENT" -D -a "$sock" --module "$TS_MODULE" \
    --pin-env TS_TEST_PIN -t 2 >/dev/null 2>>"$TS_TMP/agent.log" &
pid=$!
ts_bg_track $pid
export TOKENSIGN_AUTH_SOCK=$sock
ts_wait_for "$C" agent status || ts_fail "env agent start"
sign || ts_fail "sign with env PIN"
ts_wait_for sh -c "'$C' agent status | grep -q 'needs unlock'" ||
    ts_fail "no needs-unlock state"
ts_expect_fail "sign after timeout without a PIN source" 13 'agent needs unlock' sign
( umask 077; printf '%s\n' "$TS_PIN" > pinpass )
"$C" agent unlock --passphrase-file pinpass >/dev/null || ts_fail "unlock with PIN"
sign || ts_fail "sign after unlock with the PIN"
ts_pass "UNLOCK with the token PIN logs in again"
tr '\0' '\n' < "/proc/$pid/environ" | grep -q "^TS_TEST_PIN=$TS_PIN" &&
    ts_fail "PIN left in the agent's environment"
ts_pass "env PIN wiped from /proc/PID/environ"
kill -TERM $pid; wait $pid || ts_fail "env agent exit status"

# Confirmation through the askpass program.
cat > askpass <<'SH'
#!/bin/sh
echo "$1" >> "$(dirname "$0")/prompts"
[ -e "$(dirname "$0")/approve" ]
SH
chmod +x askpass
TOKENSIGN_ASKPASS=$TS_TMP/askpass ts_agent_start --confirm p256 --audit "$TS_TMP/audit2.log"
touch approve
sign p256 || ts_fail "approved signature failed"
grep -q 'with key .* (p256)' prompts || ts_fail "prompt: $(cat prompts)"
ts_pass "approved by askpass: signed; prompt names the key"
rm approve
ts_expect_fail "declined by askpass" 13 'not confirmed' sign p256
ts_expect_fail "declined payload" 13 'not confirmed' \
    "$C" agent sign --key p256 --payload <(ts_payload r.example/a "$dig")
grep -q 'image r.example/a@sha256:' prompts || ts_fail "payload prompt lacks the image"
ts_pass "payload prompt names the image"
n=$(wc -l < prompts)
sign p256-b || ts_fail "key without --confirm prompted or failed"
[ "$(wc -l < prompts)" = "$n" ] || ts_fail "p256-b prompted"
ts_pass "keys without confirm are not prompted"
touch approve
"$C" agent sign --key p256 --digest "$dig" --digest "$dig" --digest "$dig" -o b ||
    ts_fail "batch"
[ "$(wc -l < prompts)" = $((n + 1)) ] || ts_fail "batch prompted more than once"
ts_pass "a batch of 3 asks once"
grep -q '"reason":"confirmation for key' audit2.log || ts_fail "denial not audited"
ts_pass "denial audited"
ts_agent_stop
ts_done
