#!/bin/bash
# SIGHUP reload (good config applies without dropping connections; a bad
# one is refused and the old one kept), SIGTERM finishing an in-flight
# request before a clean exit, systemd socket activation with readiness
# notification, and bad LISTEN_FDS refused.
. "$TS_SRC/tests/lib/common.sh"
. "$TS_SRC/tests/lib/softhsm.sh"
. "$TS_SRC/tests/lib/agent.sh"
ts_softhsm_setup p256
cd "$TS_TMP"
C=$TS_CLIENT
dig=$(printf '%064x' 9)
sign() { "$C" agent sign --key "${1:-p256}" --digest "$dig" >/dev/null; }

echo 'raw_digest no' > agent.conf
ts_agent_start --config "$TS_TMP/agent.conf"
ts_expect_fail "raw digests off by config" 13 'raw digest signing not allowed' sign
# A connection held open across the reloads (python, raw protocol).
python3 - "$TOKENSIGN_AUTH_SOCK" > held.out 2>&1 <<'PY' &
import socket, struct, sys, time
c = socket.socket(socket.AF_UNIX); c.connect(sys.argv[1])
def rpc(t, b=b""):
    c.sendall(struct.pack(">IB", len(b) + 1, t) + b)
    n, = struct.unpack(">I", c.recv(4, socket.MSG_WAITALL))
    return c.recv(n, socket.MSG_WAITALL)[0]
print("hello", rpc(100, struct.pack(">I", 1) + struct.pack(">I", 2) + b"py"), flush=True)
time.sleep(3)
print("status", rpc(107), flush=True)
PY
held=$!
sleep 0.5
echo 'raw_digest yes' > agent.conf
kill -HUP "$TS_AGENT_PID"
ts_wait_for sign || ts_fail "reload did not enable raw digests"
grep -q 'configuration reloaded' agent.log || ts_fail "reload not logged"
ts_pass "SIGHUP reloads a good config"
printf 'raw_digest no\nbogus_keyword 1\n' > agent.conf
kill -HUP "$TS_AGENT_PID"
ts_wait_for grep -q 'reload failed, keeping the old configuration: .*agent.conf:2: unknown keyword' agent.log ||
    ts_fail "bad config not reported: $(tail -3 agent.log)"
sign || ts_fail "bad config was applied"
ts_pass "bad config refused with file:line, old config kept"
printf 'confirm nosuchkey\n' > agent.conf
kill -HUP "$TS_AGENT_PID"
ts_wait_for grep -q 'confirm "nosuchkey": key not found' agent.log ||
    ts_fail "bad key reference not reported"
sign || ts_fail "config with a bad key ref was applied"
ts_pass "config naming an unknown key refused"
wait $held || ts_fail "held connection broke"
grep -q 'status 126' held.out || ts_fail "held connection: $(cat held.out)"
ts_pass "a connection stays open and usable across three reloads"

# SIGTERM: an in-flight request (waiting on a slow askpass) completes.
ts_agent_stop
cat > askpass <<'SH'
#!/bin/sh
sleep 1
exit 0
SH
chmod +x askpass
TOKENSIGN_ASKPASS=$TS_TMP/askpass ts_agent_start --confirm p256
( sign p256 && echo signed > inflight.out ) &
inflight=$!
sleep 0.4
kill -TERM "$TS_AGENT_PID"
rc=0; wait "$TS_AGENT_PID" || rc=$?
[ $rc = 0 ] || ts_fail "agent exit status $rc after SIGTERM"
wait $inflight || ts_fail "in-flight request failed on SIGTERM"
grep -q signed inflight.out || ts_fail "in-flight request lost"
ts_pass "SIGTERM: in-flight signature delivered, exit 0"
[ ! -e "$TOKENSIGN_AUTH_SOCK" ] || ts_fail "socket not removed on SIGTERM"
ts_pass "socket removed on exit"
grep -q 'exiting' agent.log || ts_fail "no exit log"

# An audit log that cannot be written: nothing is signed.
if [ -w /dev/full ]; then
	ts_agent_start --audit /dev/full
	ts_expect_fail "unwritable audit log refuses signing" 13 'cannot write the audit log' sign
	ts_agent_stop
fi

# --key limits the keys served; a reference matching nothing is fatal.
ts_agent_start --key p256
out=$("$C" keys)
[ "$(echo "$out" | wc -l)" = 1 ] && grep -q ' p256 ' <<<"$out" ||
    ts_fail "--key p256 served: $out"
ts_pass "--key limits the keys served"
ts_agent_stop
ts_expect_fail "--key naming no key refused at start" 1 'key "nosuch": key not found' \
    "$TS_AGENT" -D -a "$TS_TMP/k.sock" --module "$TS_MODULE" \
    --pin-source "$TS_PIN_FILE" --key nosuch
for opt in token key confirm tls-key; do
	ts_expect_fail "--$opt URI with pin-value refused" 2 \
	    "--$opt: refusing a URI with pin-value on the command line" \
	    "$TS_AGENT" -D -a "$TS_TMP/k.sock" --module "$TS_MODULE" \
	    --pin-source "$TS_PIN_FILE" --$opt 'pkcs11:token=ts-main?pin-value=1234'
done
[ ! -e "$TS_TMP/k.sock" ] || ts_fail "an agent started with a pin-value URI"
ts_expect_fail "client --key URI with pin-value refused" 2 \
    'tokensign: refusing a URI with pin-value on the command line' \
    "$TS_CLIENT" agent sign --key 'pkcs11:object=p256?pin-value=1234' --digest "$(printf '%064d' 1)"
ts_expect_fail "client --key=URI with pin-value refused" 2 'refusing a URI with pin-value' \
    "$TS_CLIENT" public-key --key='PKCS11:object=p256?pin-value=1234'

# systemd socket activation + sd_notify READY=1.
command -v systemd-socket-activate >/dev/null || { ts_done; exit 0; }
python3 - "$TS_TMP/notify.sock" > notify.out <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sys.argv[1])
s.settimeout(30)
print(s.recv(256).decode(), flush=True)
PY
notify=$!
ts_wait_for test -S "$TS_TMP/notify.sock"
NOTIFY_SOCKET=$TS_TMP/notify.sock systemd-socket-activate -E SOFTHSM2_CONF \
    -E NOTIFY_SOCKET -l "$TS_TMP/act.sock" \
    "$TS_AGENT" --module "$TS_MODULE" --pin-source "$TS_PIN_FILE" \
    2>>agent.log &
act=$!
ts_bg_track $act
ts_wait_for test -S "$TS_TMP/act.sock" || ts_fail "activation socket"
TOKENSIGN_AUTH_SOCK=$TS_TMP/act.sock "$C" keys | grep -q p256 ||
    ts_fail "socket-activated agent does not answer"
ts_pass "socket activation: the agent serves the inherited socket"
wait $notify
grep -q 'READY=1' notify.out || ts_fail "no READY=1: $(cat notify.out)"
ts_pass "READY=1 sent to NOTIFY_SOCKET"
kill -TERM $act; wait $act || true
[ -e "$TS_TMP/act.sock" ] && ts_log "(systemd-socket-activate owns act.sock)"
ts_expect_fail "malformed LISTEN_FDS refused" 1 'malformed LISTEN_PID/LISTEN_FDS' \
    bash -c 'LISTEN_PID=$$ LISTEN_FDS=x exec "$0" --module "$1" --pin-source "$2"' \
    "$TS_AGENT" "$TS_MODULE" "$TS_PIN_FILE"
ts_expect_fail "LISTEN_FDS naming a file refused" 1 'not a listening Unix stream socket' \
    bash -c 'exec 3<"$0"; LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" --module "$1" --pin-source "$2"' \
    "$TS_AGENT" "$TS_MODULE" "$TS_PIN_FILE"
ts_done
