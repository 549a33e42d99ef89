#!/bin/bash
# Peer checks: a client running as another uid (setpriv) is refused unless
# the agent allows its uid or one of its groups; refusals are audited.
# The socket is normally 0600 in a 0700 dir; this test opens both up so
# the other uid reaches SO_PEERCRED, the check under test.
. "$TS_SRC/tests/lib/common.sh"
. "$TS_SRC/tests/lib/softhsm.sh"
. "$TS_SRC/tests/lib/agent.sh"
command -v setpriv >/dev/null || { echo "no setpriv"; exit 77; }
[ "$(id -u)" = 0 ] || { echo "needs root for setpriv"; exit 77; }
ts_softhsm_setup p256
chmod 711 "$TS_TMP"
mkdir -m 711 "$TS_TMP/pub"
export TS_AGENT_SOCK=$TS_TMP/pub/agent.sock
dig=$(printf '%064x' 42)
ts_payload registry.example.com/team/app "$dig" > "$TS_TMP/pub/payload.json"
chmod 644 "$TS_TMP/pub/payload.json"

as_nobody() { # [--regid G] [--groups G,..] CMD...
	local regid=65534 groups=(--clear-groups)
	while :; do
		case $1 in
		--regid) regid=$2; shift 2 ;;
		--groups) groups=(--groups "$2"); shift 2 ;;
		*) break ;;
		esac
	done
	setpriv --reuid=65534 --regid="$regid" "${groups[@]}" \
	    env TOKENSIGN_AUTH_SOCK="$TOKENSIGN_AUTH_SOCK" "$@"
}
open_socket() { chmod 666 "$TS_AGENT_SOCK"; }

# Default: own uid (root here) only.
ts_agent_start --audit "$TS_TMP/audit.log"
open_socket
"$TS_CLIENT" keys >/dev/null || ts_fail "own uid refused"
ts_pass "own uid allowed"
ts_expect_fail "uid 65534 refused by default" 13 'peer not allowed' \
    as_nobody "$TS_CLIENT" keys
grep '"event":"connect"' "$TS_TMP/audit.log" | grep '"uid":65534' |
    grep -q '"result":"refused"' || ts_fail "refusal not audited"
ts_pass "refusal audited with the peer uid"
grep '"event":"connect"' "$TS_TMP/audit.log" | grep '"exe":"' >/dev/null ||
    ts_fail "audit lacks the peer exe"
ts_pass "audit names the peer executable"
ts_agent_stop
[ ! -e "$TS_AGENT_SOCK" ] || ts_fail "socket left behind"

# Allowed by uid; raw digests stay reserved to the agent's own uid.
ts_agent_start --audit "$TS_TMP/audit.log" --allow-uid 65534
open_socket
as_nobody "$TS_CLIENT" keys | grep -q p256 || ts_fail "uid 65534 not allowed"
ts_pass "uid 65534 allowed by --allow-uid"
as_nobody "$TS_CLIENT" agent sign --key p256 \
    --payload "$TS_TMP/pub/payload.json" >/dev/null ||
    ts_fail "allowed uid cannot sign a payload"
ts_pass "allowed uid signs a payload"
ts_expect_fail "raw digest refused for another uid" 13 'raw digest signing not allowed' \
    as_nobody "$TS_CLIENT" agent sign --key p256 --digest "$dig"
ts_agent_stop

# Allowed by group: primary gid, and a supplementary group.
cat > "$TS_TMP/agent.conf" <<CONF
allow_group 65534
audit $TS_TMP/audit.log
CONF
ts_agent_start --config "$TS_TMP/agent.conf"
open_socket
as_nobody "$TS_CLIENT" keys | grep -q p256 || ts_fail "gid 65534 not allowed"
ts_pass "primary group allowed by allow_group"
as_nobody --regid 1 --groups 65534 "$TS_CLIENT" keys | grep -q p256 ||
    ts_fail "supplementary group not allowed"
ts_pass "supplementary group allowed (SO_PEERGROUPS)"
ts_expect_fail "other group refused" 13 'peer not allowed' \
    as_nobody --regid 1 "$TS_CLIENT" keys
ts_agent_stop
"$TS_CLIENT" audit verify "$TS_TMP/audit.log" >/dev/null ||
    ts_fail "audit chain broken across restarts"
ts_pass "audit chain continues across restarts"

# The default socket: fresh 0700 dir, socket 0600.
unset TS_AGENT_SOCK
"$TS_AGENT" -s --module "$TS_MODULE" --pin-source "$TS_PIN_FILE" \
    > "$TS_TMP/env.sh" 2>>"$TS_TMP/agent.log" || ts_fail "daemon start"
. "$TS_TMP/env.sh" >/dev/null
ts_bg_track "$TOKENSIGN_AGENT_PID"
d=$(dirname "$TOKENSIGN_AUTH_SOCK")
[ "$(stat -c %a "$d")" = 700 ] || ts_fail "socket dir mode $(stat -c %a "$d")"
[ "$(stat -c %a "$TOKENSIGN_AUTH_SOCK")" = 600 ] || ts_fail "socket mode"
ts_pass "daemonized agent: dir 0700, socket 0600, -s output evaluates"
"$TS_CLIENT" keys | grep -q p256 || ts_fail "daemon does not answer"
ts_pass "daemonized agent answers"
grep -q "^TOKENSIGN_AGENT_PID=$TOKENSIGN_AGENT_PID; export" "$TS_TMP/env.sh" ||
    ts_fail "-s output: $(cat "$TS_TMP/env.sh")"
"$TS_AGENT" -c --module "$TS_MODULE" --pin-source "$TS_PIN_FILE" \
    > "$TS_TMP/env.csh" 2>>"$TS_TMP/agent.log" || ts_fail "daemon start (-c)"
grep -q '^setenv TOKENSIGN_AUTH_SOCK /' "$TS_TMP/env.csh" || ts_fail "-c output"
pid2=$(awk '/TOKENSIGN_AGENT_PID/ {print $3}' "$TS_TMP/env.csh" | tr -d ';')
ts_bg_track "$pid2"
ts_pass "-c prints csh lines"
kill -TERM "$TOKENSIGN_AGENT_PID" "$pid2"
ts_wait_for test ! -e "$TOKENSIGN_AUTH_SOCK" || ts_fail "socket not removed"
ts_wait_for test ! -e "$d" || ts_fail "socket dir not removed"
ts_pass "SIGTERM removes the daemon's socket and directory"
ts_done
