#!/bin/bash
# A token that is not there when the agent starts (a YubiKey still in the
# pocket, an HSM coming up after the host) is waited for, through the
# fault-injecting shim: the agent starts, STATUS shows the spec waiting,
# its keys are unknown; once the token is inserted it is logged in from
# the PIN source, its keys are served with the --key filter and per-key
# config (touch_timeout) applied, and removal/reinsertion work for it as
# for any token.  Tokens present at start serve meanwhile.  Negative:
# "missing_token fail" refuses to start; a wrong PIN on the late token is
# tried once, never again; a late key not named by --key is not served.
. "$TS_SRC/tests/lib/common.sh"
. "$TS_SRC/tests/lib/softhsm.sh"
. "$TS_SRC/tests/lib/shim.sh"
. "$TS_SRC/tests/lib/agent.sh"
ts_softhsm_setup p256
ts_softhsm_keygen ts-main EC:secp384r1 p384 02
# the label of ts-second's key: --key p256-b names that one already
ts_softhsm_keygen ts-main EC:prime256v1 p256-b 12
ts_shim_setup
cd "$TS_TMP"
C=$TS_CLIENT
dig=$(printf '%064x' 9)
export TOKENSIGN_AUTH_SOCK=$TS_TMP/a.sock
MAIN='pkcs11:token=ts-main'
SECOND='pkcs11:token=ts-second'
agent() { # CONFIG-FILE LOG [OPTIONS...]
	local conf=$1 log=$2
	shift 2
	"$TS_AGENT" -D -a "$TOKENSIGN_AUTH_SOCK" --module "$TS_SHIM" \
	    --module-allow "$TS_SHIM_ALLOW" --config "$conf" "$@" \
	    >/dev/null 2>"$log" &
	pid=$!
	ts_bg_track $pid
}
stop() { # a clean exit (under ASan: no leak of a late token's state)
	kill -TERM "$pid" 2>/dev/null
	wait "$pid" || ts_fail "agent exit status $? after SIGTERM"
}
served() { # LABEL: the agent lists the key
	"$C" keys 2>/dev/null | awk -v l="$1" '$4 == l { f = 1 } END { exit !f }'
}

conf() { # NAME [LINE...]: an agent config file, mode 0600
	local f=$1
	shift
	printf '%s\n' "$@" > "$f"
	chmod 600 "$f"
}
refused() { # DESC PATTERN CONFIG-LINE: the agent must not start
	conf refused.conf "$3"
	ts_expect_fail "$1" nonzero "$2" \
	    "$TS_AGENT" -D -a "$TOKENSIGN_AUTH_SOCK" --module "$TS_SHIM" \
	    --module-allow "$TS_SHIM_ALLOW" --config "$TS_TMP/refused.conf" \
	    --pin-source "$TS_PIN_FILE" --token "$MAIN" --token "$SECOND"
}

# --- missing_token fail: the old refusal, now by choice
ts_shim_set '[token ts-main]' present=0
refused "missing_token fail: absent token refused at start" \
    "no token matches --token $MAIN" 'missing_token fail'
refused "missing_token takes wait or fail" 'missing_token is wait or fail' \
    'missing_token sometimes'
refused "missing_token takes one value" 'missing_token takes 1 value' \
    'missing_token wait fail'

# --- default: start without ts-main, serve ts-second meanwhile
conf agent.conf 'touch_timeout p256 1'
agent agent.conf agent.log --pin-source "$TS_PIN_FILE" --token "$MAIN" \
    --token "$SECOND" --key p256 --key p256-b
ts_wait_for "$C" agent status || ts_fail "agent did not start: $(cat agent.log)"
grep -q "token $MAIN is not present; waiting for it" agent.log ||
    ts_fail "no waiting line: $(cat agent.log)"
st=$("$C" agent status)
grep -q "^token: $MAIN waiting" <<<"$st" || ts_fail "STATUS: $st"
grep -q '^token: ts-second present, logged in' <<<"$st" || ts_fail "STATUS: $st"
"$C" agent status --json | python3 -c '
import json, sys
t = {x["uri"]: x for x in json.load(sys.stdin)["tokens"]}
assert t["pkcs11:token=ts-main"]["waiting"] is True, t
assert not t["pkcs11:token=ts-main"]["present"], t
assert [x for x in t.values() if x["label"] == "ts-second"][0]["waiting"] is False, t
' || ts_fail "STATUS --json does not show the waiting token"
# the textfile collector script names a waiting spec by its URI
metrics() { # metrics LINE...: each LINE is in the script's output
	local l
	rm -rf textfile && mkdir textfile
	TOKENSIGN=$C sh "$TS_SRC/docs/examples/tokensign-metrics.sh" textfile ||
	    ts_fail "tokensign-metrics.sh failed"
	for l in "$@"; do
		grep -qxF "$l" textfile/tokensign.prom || ts_fail "no '$l': $(cat textfile/tokensign.prom)"
	done
}
metrics "tokensign_token_waiting{token=\"$MAIN\"} 1" \
    'tokensign_token_waiting{token="ts-second"} 0' \
    "tokensign_token_login_failed{token=\"$MAIN\"} 0"
ts_pass "agent started without ts-main; STATUS shows it waiting"
served p256-b && ! served p256 || ts_fail "key list before insertion: $("$C" keys 2>&1)"
"$C" agent sign --key p256-b --digest "$dig" >/dev/null ||
    ts_fail "ts-second's key does not sign while ts-main is awaited"
ts_expect_fail "ts-main's key unknown before insertion" 14 'key not found' \
    "$C" agent sign --key p256 --digest "$dig"
[ "$(ts_shim_stat C_Login)" = 1 ] ||
    ts_fail "C_Login $(ts_shim_stat C_Login) times before insertion, want 1 (ts-second)"
ts_pass "ts-second signs; ts-main's key unknown, not logged in"

# --- insertion: picked up, logged in, keys served with their config
t0=$(ts_now_ms)
ts_shim_set
ts_wait_for served p256 ||
    ts_fail "late key never served: $(cat agent.log)"
t1=$(ts_now_ms)
ts_pass "ts-main's keys served $((t1 - t0)) ms after insertion"
grep -q 'token "ts-main" (serial .*) arrived: 3 key(s)' agent.log ||
    ts_fail "no arrival line: $(cat agent.log)"
"$C" public-key --key p256 > p256.pem
ts_payload registry.example.com/late/app "$dig" > payload.json
"$C" agent sign --key p256 --payload payload.json -o p256.sig ||
    ts_fail "late key does not sign: $(tail -3 agent.log)"
openssl dgst -sha256 -verify p256.pem -signature p256.sig payload.json >/dev/null ||
    ts_fail "late key's signature does not verify"
ts_pass "late key signs; openssl verifies"
served p384 && ts_fail "p384 served though --key names only p256"
grep -q 'key .* "p384" on token "ts-main": not named by --key.*not served' agent.log ||
    ts_fail "no log line for the filtered key: $(cat agent.log)"
[ "$("$C" keys 2>/dev/null | awk '$4 == "p256-b"' | wc -l)" = 1 ] ||
    ts_fail "--key p256-b admitted a second key: $("$C" keys 2>&1)"
"$C" keys 2>/dev/null | awk '$4 == "p256-b" && $5 == "ts-second" { f = 1 } END { exit !f }' ||
    ts_fail "p256-b is not ts-second's any more: $("$C" keys 2>&1)"
ts_pass "a --key reference naming a served key does not admit the late key of that label"
ts_expect_fail "late key outside --key refused" 14 'key not found' \
    "$C" agent sign --key p384 --digest "$dig"
st=$("$C" agent status)
grep -q 'waiting' <<<"$st" && ts_fail "STATUS still waiting: $st"
grep -q '^token: ts-main present, logged in' <<<"$st" || ts_fail "STATUS: $st"
ts_pass "--key filter applies to the late token; STATUS shows it present"
# touch_timeout p256 1 (config) applies to the late key
ts_shim_set '[token ts-main]' sign_delay_ms=5000
ts_expect_fail "late key: touch_timeout applied" 14 'touch timed out' \
    "$C" agent sign --key p256 --digest "$dig"
ts_shim_set
ts_pass "per-key config reached the late key"

# --- removal and reinsertion of the late token
ts_wait_for sh -c "'$C' agent status --json | python3 -c 'import json,sys; sys.exit(json.load(sys.stdin)[\"connections\"] != 1)'" ||
    ts_fail "the timed-out signature never finished"
ts_shim_set '[token ts-main]' present=0
ts_expect_fail "late token removed" 14 'ts-main .serial .*. is not present' \
    "$C" agent sign --key p256 --digest "$dig"
ts_shim_set
ts_wait_for "$C" agent sign --key p256 --digest "$dig" ||
    ts_fail "signing did not resume after reinsertion: $(tail -5 agent.log)"
ts_pass "the late token's removal and reinsertion are watched"
[ "$(ts_shim_stat C_Login)" -ge 3 ] ||
    ts_fail "C_Login $(ts_shim_stat C_Login) times, want ts-second, ts-main and the re-login"
stop
ts_shim_set '[token ts-main]' present=0
conf plain.conf '# nothing but the defaults'

# --- an env PIN source: read at start (the variable is scrubbed then)
TS_LATE_PIN=$TS_PIN agent plain.conf env.log --pin-env TS_LATE_PIN --token "$MAIN"
ts_wait_for "$C" agent status || ts_fail "agent did not start: $(cat env.log)"
tr '\0' '\n' < "/proc/$pid/environ" | grep -q "^TS_LATE_PIN=$TS_PIN" &&
    ts_fail "the PIN is still in the agent's /proc/PID/environ"
ts_shim_set
ts_wait_for "$C" agent sign --key p256 --digest "$dig" ||
    ts_fail "late token with an env PIN: $(cat env.log)"
stop
ts_shim_set '[token ts-main]' present=0
ts_pass "env PIN: read at start, scrubbed, used when the token arrived"

# --- a wrong PIN on the late token: one try, never again
printf '654321\n' > wrong.pin
chmod 600 wrong.pin
rm -f "$TS_SHIM_STATS" # counters are per process: this agent's only
agent plain.conf wrong.log --pin-source "$TS_TMP/wrong.pin" --token "$MAIN"
ts_wait_for "$C" agent status || ts_fail "agent did not start: $(cat wrong.log)"
ts_shim_set
ts_wait_for grep -q 'token "ts-main" (serial .*) arrived but could not log in; not trying again' wrong.log ||
    ts_fail "no refusal line: $(cat wrong.log)"
sleep 1.5 # several presence intervals: no second try
n=$(ts_shim_stat C_Login)
[ "$n" = 1 ] || ts_fail "wrong PIN tried $n times on the late token"
served p256 && ts_fail "keys served without a login"
out=$("$C" agent status)
grep -qF "token: $MAIN arrived, not served: login failed, not tried again" <<<"$out" ||
    ts_fail "STATUS does not show the failed login: $out"
grep -q 'waiting (not inserted yet)' <<<"$out" && ts_fail "still shown as waiting: $out"
"$C" agent status --json | python3 -c '
import json, sys
t = [t for t in json.load(sys.stdin)["tokens"] if t["label"] == ""]
assert len(t) == 1 and t[0]["login_failed"] and not t[0]["waiting"], t
' || ts_fail "status --json does not show login_failed"
metrics "tokensign_token_login_failed{token=\"$MAIN\"} 1" \
    "tokensign_token_waiting{token=\"$MAIN\"} 0"
stop
ts_pass "wrong PIN on the late token: tried once, not again, nothing served"
ts_done
