#!/bin/bash
# Faults on the mutual-TLS listener (issue 5): while hostile or broken
# clients do their worst, a well-behaved mTLS client keeps signing:
#   - 40 clients that stop mid-handshake (a partial ClientHello, then
#     nothing): dropped at the handshake deadline and audited ("timeout");
#   - a client that sends its handshake 1 byte per second;
#   - clients that complete mTLS, send a SIGN_PAYLOAD and disconnect with
#     the request in flight;
#   - garbage instead of a ClientHello.
. "$TS_SRC/tests/lib/common.sh"
. "$TS_SRC/tests/lib/softhsm.sh"
. "$TS_SRC/tests/lib/pki.sh"
. "$TS_SRC/tests/lib/agent.sh"
[ -x "$TS_AGENT" ] || { echo "no agent binary"; exit 77; }
ts_softhsm_setup p256
ts_pki_setup
P=$TS_PKI
port=$(ts_free_port)
cat >"$TS_TMP/policy.json" <<'EOF'
{"version": 1, "rules": [
 {"name": "ci", "match": {"transport": "tls"}, "keys": "*",
  "repositories": "**"},
 {"name": "local", "match": {"transport": "unix"}, "keys": "*"}]}
EOF
ts_tls_agent_start agent "$port" "$TS_TMP/policy.json"
agent_pid=$TS_TLS_AGENT_PID
audit=$TS_TMP/agent.audit
export TOKENSIGN_AUTH_SOCK= TOKENSIGN_TLS_CONFIG=/dev/null
export TOKENSIGN_AGENT="tls://127.0.0.1:$port"
export TOKENSIGN_TLS_CERT=$P/runner-a.pem TOKENSIGN_TLS_KEY=$P/runner-a.key
export TOKENSIGN_TLS_CA=$P/ca.pem
key=$("$TS_CLIENT" keys | awk '$4 == "p256" { print $1 }')
printf '{"critical":{"identity":{"docker-reference":"registry.example.com/a"},"image":{"docker-manifest-digest":"sha256:%064d"},"type":"cosign container image signature"},"optional":null}' 5 \
    >"$TS_TMP/p.json"

# hostile clients, all in one python process
python3 - "$port" "$P" "$key" "$TS_TMP/p.json" >"$TS_TMP/hostile.log" 2>&1 <<'PY' &
import socket, ssl, struct, sys, threading, time
port, pki, key, pfile = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
payload = open(pfile, "rb").read()
# a real ClientHello's first bytes: record header + handshake header
HELLO_START = bytes.fromhex("16030100f4010000f00303")
stalled = []
for _ in range(40):          # stop mid-handshake, keep the socket open
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(HELLO_START)
    stalled.append(s)
def trickle():               # 1 byte per second
    s = socket.create_connection(("127.0.0.1", port))
    try:
        for b in HELLO_START + b"\x00" * 20:
            s.send(bytes([b]))
            time.sleep(1)
    except OSError:
        print("trickle: dropped by the agent")
threading.Thread(target=trickle, daemon=True).start()
def frame(t, body):
    return struct.pack(">IB", len(body) + 1, t) + body
def sstr(b):
    return struct.pack(">I", len(b)) + b
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.load_verify_locations(pki + "/ca.pem")
ctx.load_cert_chain(pki + "/runner-b.pem", pki + "/runner-b.key")
inflight = 0
for _ in range(10):          # request in flight, then vanish
    with socket.create_connection(("127.0.0.1", port)) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(frame(100, struct.pack(">I", 1) + sstr(b"hostile")))
            s.sendall(frame(102, sstr(key.encode()) + sstr(payload) + struct.pack(">I", 0)))
            inflight += 1
print("in-flight disconnects:", inflight)
for _ in range(5):           # garbage instead of TLS
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        try:
            s.recv(100)
        except OSError:
            pass
time.sleep(14)               # past the agent's 10 s handshake deadline
alive = 0
for s in stalled:
    try:
        s.settimeout(0.5)
        if s.recv(1) != b"":
            alive += 1
    except (socket.timeout, BlockingIOError):
        alive += 1
    except OSError:
        pass
print("stalled still open:", alive)
PY
hostile=$!
ts_bg_track $hostile
sleep 1

# the well-behaved client signs throughout, each signature promptly
n=0
start=$SECONDS
while [ $((SECONDS - start)) -lt 16 ]; do
	t0=$(date +%s%N)
	timeout 10 "$TS_CLIENT" agent sign --key "$key" --payload "$TS_TMP/p.json" \
	    -o "$TS_TMP/s$n.sig" || ts_fail "good client failed at $n"
	ms=$((($(date +%s%N) - t0) / 1000000))
	[ $ms -lt 5000 ] || ts_fail "signature $n took $ms ms"
	n=$((n + 1))
done
[ $n -ge 5 ] || ts_fail "only $n signatures in 16 s"
ts_pass "good client signed $n times during the attack, each under 5 s"
wait $hostile || ts_fail "hostile script failed: $(cat "$TS_TMP/hostile.log")"
grep -q 'in-flight disconnects: 10' "$TS_TMP/hostile.log" ||
    ts_fail "in-flight clients: $(cat "$TS_TMP/hostile.log")"
grep -q 'stalled still open: 0' "$TS_TMP/hostile.log" ||
    ts_fail "stalled handshakes not dropped: $(cat "$TS_TMP/hostile.log")"
ts_pass "40 stalled handshakes dropped at the deadline"
grep -q 'trickle: dropped' "$TS_TMP/hostile.log" ||
    ts_fail "1-byte-per-second client not dropped"
ts_pass "1-byte-per-second handshake dropped"
[ "$(grep -c '"timeout: handshake not finished' "$audit")" -ge 41 ] ||
    ts_fail "handshake timeouts not audited"
grep -q '"protocol: ' "$audit" || ts_fail "garbage not audited"
ts_pass "timeouts and garbage audited"
kill -0 $agent_pid || ts_fail "agent died"
"$TS_CLIENT" audit verify "$audit" >/dev/null || ts_fail "audit chain"
ts_pass "agent alive, audit chain verifies"
ts_done
