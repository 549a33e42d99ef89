#!/bin/bash
# `tokensign agent status --json` (issue 5's metrics choice): one JSON
# object with tokens (presence, login), lock state, uptime and counters
# (totals and per key) that move with real signatures and failures; a
# down agent still gives {"up":false} with exit 13; the node_exporter
# textfile script in docs/examples turns it into Prometheus text format.
. "$TS_SRC/tests/lib/common.sh"
. "$TS_SRC/tests/lib/softhsm.sh"
. "$TS_SRC/tests/lib/agent.sh"
ts_softhsm_setup p256
cd "$TS_TMP"
C=$TS_CLIENT
dig=$(printf '%064x' 9)

ts_agent_start
# jget FILE PYEXPR: evaluate PYEXPR over the JSON object d, print it
jget() { python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"; }
"$C" agent status --json > s0.json || ts_fail "status --json failed"
[ "$(wc -l < s0.json)" = 1 ] || ts_fail "want one line: $(cat s0.json)"
[ "$(jget s0.json 'd["up"] is True and d["locked"] is False and d["needs_unlock"] is False')" = True ] ||
    ts_fail "state: $(cat s0.json)"
[ "$(jget s0.json 'sorted(d) == sorted(["up","agent","protocol","locked","needs_unlock","uptime_seconds","signatures","errors","connections","tokens","keys"])')" = True ] ||
    ts_fail "fields: $(cat s0.json)"
[ "$(jget s0.json '[(t["present"], t["logged_in"]) for t in d["tokens"] if t["label"] == "ts-main"]')" = "[(True, True)]" ] ||
    ts_fail "ts-main not present/logged in: $(cat s0.json)"
kid=$(jget s0.json '[k["id"] for k in d["keys"] if k["label"] == "p256"][0]') ||
    ts_fail "no p256 key: $(cat s0.json)"
ts_pass "status --json: up, unlocked, ts-main present and logged in, key p256"

s0=$(jget s0.json 'd["signatures"]')
e0=$(jget s0.json 'd["errors"]')
for i in 1 2 3; do
	"$C" agent sign --key p256 --digest "$dig" > /dev/null || ts_fail "sign $i"
done
"$C" agent sign --key p256 --digest "$dig" --hash sha384 > /dev/null 2>&1 &&
    ts_fail "a SHA-256 digest accepted as SHA-384"
"$C" agent status --json > s1.json || ts_fail "status --json (2)"
[ "$(jget s1.json "d['signatures'] - $s0")" = 3 ] || ts_fail "total signatures: $(cat s0.json) -> $(cat s1.json)"
[ "$(jget s1.json "[k['signatures'] for k in d['keys'] if k['id'] == '$kid'][0]")" -ge 3 ] ||
    ts_fail "per-key signatures: $(cat s1.json)"
[ "$(jget s1.json "d['uptime_seconds'] >= 0 and d['connections'] >= 1")" = True ] ||
    ts_fail "uptime/connections: $(cat s1.json)"
[ "$(jget s1.json "d['errors'] - $e0")" = 1 ] || ts_fail "the refused request not counted in errors: $(cat s1.json)"
ts_pass "counters: 3 signatures in the total and for the key, 1 refusal in errors"

( umask 077; echo 'pass phrase' > pass )
"$C" agent lock --passphrase-file pass > /dev/null || ts_fail "lock"
"$C" agent status --json > s2.json || ts_fail "status --json while locked"
[ "$(jget s2.json 'd["locked"]')" = True ] || ts_fail "not locked: $(cat s2.json)"
"$C" agent unlock --passphrase-file pass > /dev/null || ts_fail "unlock"
ts_pass "status --json shows the lock"

# the node_exporter textfile recipe of docs/deployment.md
command -v jq > /dev/null || ts_fail "jq missing (scripts/deps.sh)"
mkdir textfile
TOKENSIGN=$C sh "$TS_SRC/docs/examples/tokensign-metrics.sh" textfile ||
    ts_fail "tokensign-metrics.sh failed"
p=textfile/tokensign.prom
grep -qx 'tokensign_up 1' $p || ts_fail "no tokensign_up 1: $(cat $p)"
grep -qx 'tokensign_locked 0' $p || ts_fail "locked: $(cat $p)"
grep -q "^tokensign_key_signatures_total{key=\"$kid\",label=\"p256\"} [1-9]" $p ||
    ts_fail "per-key counter: $(cat $p)"
grep -qx 'tokensign_token_present{token="ts-main"} 1' $p || ts_fail "token: $(cat $p)"
# every sample line is NAME{labels} VALUE, every family has HELP and TYPE
python3 - $p <<'PY' || ts_fail "not Prometheus text format: $(cat $p)"
import re, sys
seen = set()
for line in open(sys.argv[1]):
    line = line.rstrip("\n")
    if line.startswith("# TYPE "):
        seen.add(line.split()[2])
        continue
    if line.startswith("#"):
        continue
    m = re.fullmatch(r'([a-z_]+)(\{[^}]*\})? (\d+)', line)
    assert m and m.group(1) in seen, line
PY
[ -z "$(ls -A textfile | grep -v '^tokensign.prom$')" ] || ts_fail "temp files left: $(ls -A textfile)"
ts_pass "textfile collector script writes valid Prometheus text"

ts_agent_stop
rc=0
"$C" agent status --json > down.json 2> down.err || rc=$?
[ $rc = 13 ] || ts_fail "agent down: exit $rc, want 13"
[ "$(jget down.json 'd["up"]')" = False ] || ts_fail "agent down: $(cat down.json)"
TOKENSIGN=$C sh "$TS_SRC/docs/examples/tokensign-metrics.sh" textfile ||
    ts_fail "tokensign-metrics.sh with the agent down"
grep -qx 'tokensign_up 0' textfile/tokensign.prom || ts_fail "down: $(cat textfile/tokensign.prom)"
ts_pass "agent down: {\"up\":false}, exit 13, tokensign_up 0"
ts_expect_fail "status with an unknown option refused" 2 "usage" "$C" agent status --yaml
ts_done
