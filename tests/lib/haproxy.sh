# tests/lib/haproxy.sh - Debian's HAProxy in TCP mode in front of N
# backends, for the scale-out tests (issue 5).  Source after common.sh.
#
#   ts_haproxy_start HOST:PORT [HOST:PORT...]
#       writes $TS_TMP/haproxy/haproxy.cfg, starts `haproxy -f CFG -db` in
#       the foreground (tracked: killed when the test ends), waits for the
#       frontend and exports
#         TS_HAPROXY_PORT   frontend port on 127.0.0.1
#         TS_HAPROXY_PID    the haproxy process
#         TS_HAPROXY_SOCK   admin stats socket (ts_haproxy_cmd)
#       Backends are named b0, b1, ... in argument order.
#   ts_haproxy_cmd 'show servers state'   runs a runtime API command
#   ts_haproxy_server_up NAME             exit 0 when backend NAME is UP
#   ts_haproxy_wait_state NAME up|down    waits (TS_WAIT seconds) for it
#
# Tunables (environment, before ts_haproxy_start):
#   TS_HAPROXY_CHECK  server health-check options; default a TCP connect
#                     check every 200 ms, down after 2 failures, up after 2
#                     successes.  For agents, an mTLS check with its own
#                     identity: "check check-ssl verify required ca-file CA
#                     crt HEALTH.pem inter 1s" (see docs/deployment.md).
#   TS_HAPROXY_BALANCE  balance algorithm (default roundrobin)
#
# Connection failures to a dead backend are retried on another one
# ("option redispatch", "retries 2"), so clients see a backend's death
# only for connections that were already established to it.

ts_haproxy_start() {
	[ $# -ge 1 ] || ts_fail "ts_haproxy_start: no backend"
	command -v haproxy >/dev/null || ts_fail "haproxy is not installed"
	local dir=$TS_TMP/haproxy i=0 b
	mkdir -p "$dir"
	TS_HAPROXY_PORT=$(ts_free_port)
	TS_HAPROXY_SOCK=$dir/admin.sock
	local check=${TS_HAPROXY_CHECK:-check inter 200ms fastinter 100ms fall 2 rise 2}
	{
		cat <<EOF
global
	maxconn 4096
	stats socket $TS_HAPROXY_SOCK mode 600 level admin
	log stderr format short local0 notice

defaults
	mode tcp
	log global
	option tcplog
	option redispatch
	retries 2
	timeout connect 2s
	timeout client 120s
	timeout server 120s
	timeout check 2s

frontend agents
	bind 127.0.0.1:$TS_HAPROXY_PORT
	default_backend agents

backend agents
	balance ${TS_HAPROXY_BALANCE:-roundrobin}
	# established sessions to a server marked down are cut, so clients
	# reconnect (and retry once) instead of hanging on a dead agent
	default-server on-marked-down shutdown-sessions
EOF
		for b in "$@"; do
			echo "	server b$i $b $check"
			i=$((i + 1))
		done
	} >"$dir/haproxy.cfg"
	haproxy -c -q -f "$dir/haproxy.cfg" ||
	    ts_fail "haproxy rejects $dir/haproxy.cfg"
	haproxy -f "$dir/haproxy.cfg" -db >"$dir/haproxy.log" 2>&1 &
	TS_HAPROXY_PID=$!
	ts_bg_track "$TS_HAPROXY_PID"
	ts_wait_for bash -c "exec 3<>/dev/tcp/127.0.0.1/$TS_HAPROXY_PORT" ||
	    ts_fail "haproxy did not start: $(cat "$dir/haproxy.log")"
	export TS_HAPROXY_PORT TS_HAPROXY_PID TS_HAPROXY_SOCK
}

# ts_haproxy_cmd CMD: one runtime-API command on the admin socket.
ts_haproxy_cmd() {
	python3 - "$TS_HAPROXY_SOCK" "$1" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
out = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    out += d
sys.stdout.write(out.decode())
PY
}

# ts_haproxy_server_up NAME: exit 0 when the server's operational state is
# UP (srv_op_state 2 in "show servers state").
ts_haproxy_server_up() {
	ts_haproxy_cmd "show servers state agents" |
	    awk -v n="$1" '$4 == n { found = 1; exit($6 == 2 ? 0 : 1) }
		END { if (!found) exit 1 }'
}

ts_haproxy_server_down() { ! ts_haproxy_server_up "$1"; }

# ts_haproxy_wait_state NAME up|down
ts_haproxy_wait_state() {
	if [ "$2" = up ]; then
		ts_wait_for ts_haproxy_server_up "$1"
	else
		ts_wait_for ts_haproxy_server_down "$1"
	fi
}
