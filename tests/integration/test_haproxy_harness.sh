#!/bin/bash
# The HAProxy harness (tests/lib/haproxy.sh): Debian's haproxy in TCP mode
# in front of two trivial TCP backends that answer with their name.  Both
# serve while up; when one dies (SIGKILL) the health check marks it down,
# every new connection lands on the survivor, and a connection attempt made
# before the check noticed is redispatched rather than failed.  When the
# backend comes back it is marked up and serves again.
. "$TS_SRC/tests/lib/common.sh"
. "$TS_SRC/tests/lib/haproxy.sh"

# backend NAME PORT: answers every connection with "NAME\n" and closes.
backend() {
	python3 -c '
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[2])))
s.listen(64)
while True:
    c, _ = s.accept()
    try:
        c.sendall(sys.argv[1].encode() + b"\n")
    except OSError:
        pass
    c.close()
' "$1" "$2" &
	ts_bg_track $!
	ts_wait_for bash -c "exec 3<>/dev/tcp/127.0.0.1/$2"
}

# ask: one connection through haproxy, print what the backend said.
ask() {
	python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
print(s.makefile().readline().strip())
' "$TS_HAPROXY_PORT"
}

p0=$(ts_free_port)
p1=$(ts_free_port)
backend alpha "$p0"
alpha_pid=$!
backend beta "$p1"
ts_haproxy_start "127.0.0.1:$p0" "127.0.0.1:$p1"
ts_haproxy_wait_state b0 up || ts_fail "b0 never up"
ts_haproxy_wait_state b1 up || ts_fail "b1 never up"
ts_pass "haproxy up, both backends healthy"

seen=$(for i in $(seq 1 10); do ask; done | sort | uniq -c)
grep -q ' 5 alpha' <<<"$seen" || ts_fail "round robin: $seen"
grep -q ' 5 beta' <<<"$seen" || ts_fail "round robin: $seen"
ts_pass "round robin across both backends"

kill -KILL "$alpha_pid"
wait "$alpha_pid" 2>/dev/null || true
# Straight away, before the check notices: connect failures are retried
# on the other backend, so no client sees an error.
out=$(for i in $(seq 1 10); do ask || echo ERROR; done | sort | uniq -c)
[ "$(echo "$out" | tr -s ' ')" = " 10 beta" ] ||
    ts_fail "failover before the check: $out"
ts_pass "connections redispatched to beta while alpha is dead"
ts_haproxy_wait_state b0 down || ts_fail "b0 never marked down"
ts_haproxy_server_up b1 || ts_fail "b1 went down"
grep -q 'b0 is DOWN' "$TS_TMP/haproxy/haproxy.log" ||
    ts_fail "haproxy log lacks the DOWN transition"
ts_pass "health check marked the dead backend down"
out=$(for i in $(seq 1 10); do ask || echo ERROR; done | sort | uniq -c)
[ "$(echo "$out" | tr -s ' ')" = " 10 beta" ] || ts_fail "after down: $out"
ts_pass "all traffic on the survivor"

backend alpha "$p0"
ts_haproxy_wait_state b0 up || ts_fail "b0 never back up"
seen=$(for i in $(seq 1 10); do ask; done | sort | uniq -c)
grep -q alpha <<<"$seen" || ts_fail "alpha not used after recovery: $seen"
ts_pass "recovered backend serves again"
ts_done
