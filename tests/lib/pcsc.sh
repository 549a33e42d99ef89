# tests/lib/pcsc.sh - pcscd with vsmartcard's virtual reader, and a virtual
# card the test inserts and removes (vicc).  Source after common.sh.
#
#   ts_pcsc_setup            start (or reuse, see below) pcscd with vpcd;
#                            exports TS_PCSC_READER (the reader the card
#                            goes into, "Virtual PCD 00 00"), TS_VPCD_PORT,
#                            TS_PCSC_WAIT (tests/shim/pcsc_wait, a small
#                            libpcsclite watcher), TS_PCSC_MODE (own|reuse)
#   ts_pcsc_card_insert      start `vicc -t iso7816` (returns at once: the
#                            card shows 0.2-0.5 s later, after Python's
#                            start-up; ts_pcsc_card_connected N tells when
#                            vicc has connected to vpcd for the N-th time)
#   ts_pcsc_card_remove      stop vicc (the card is gone within ~0.4 s)
#   ts_pcsc_wait_card present|absent [TIMEOUT_MS]
#                            block on SCardGetStatusChange until the card
#                            is in / out of TS_PCSC_READER (default 3000)
#   ts_pcsc_bridged_card_in  insert the card; wait for pcscd and the bridge
#   ts_pcsc_agent_start [OPTS] the card in, an agent on the bridged shim
#                            that only its reader watcher can tell about it
#   ts_pcsc_bridge_shim TOKEN
#                            tie a shim token (tests/lib/shim.sh) to the
#                            virtual card: its slot is described as
#                            TS_PCSC_READER and is present exactly while
#                            the card is in, as a real smart-card module's
#                            slot is.  Call after ts_shim_setup and before
#                            starting the program that loads the shim (it
#                            adds a control file to TS_SHIM_CONTROL).
#
# pcscd's socket is fixed at /run/pcscd/pcscd.comm (its
# PCSCLITE_CSOCK_NAME is read by clients only), so only one pcscd runs and
# the tests using it are named test_pcsc_*.sh, which ctest never runs in
# parallel (RESOURCE_LOCK pcscd in tests/CMakeLists.txt).  Needs root, since
# pcscd writes /run/pcscd; otherwise the test is skipped (exit 77).
#
# A pcscd already running on the machine (a system daemon, or systemd's
# pcscd.socket) is handled so:
#   - by default it is reused when it has vsmartcard's reader (Debian's
#     vsmartcard-vpcd installs /etc/reader.conf.d/vpcd, port 0x8C7B =
#     35963); the port comes from that file.  Otherwise the test is
#     skipped with a message saying so.
#   - with TS_PCSC_STOP_SYSTEM=1 it is stopped for the test (systemctl, or
#     SIGTERM to the pid in /run/pcscd/pcscd.pid) and restored afterwards
#     (systemctl start, or the same command line again).
# Our own pcscd reads a private reader.conf.d (pcscd -c) whose vpcd entry
# uses a free port pair (vpcd listens on CHANNELID for reader "00 00" and
# CHANNELID+1 for "00 01"), so a user's vicc on 35963 never meets ours.

TS_VPCD_DRIVER=${TS_VPCD_DRIVER:-/usr/lib/pcsc/drivers/serial/libifdvpcd.so}
TS_VICC_PY=${TS_VICC_PY:-/usr/lib/python3/site-packages/virtualsmartcard}
TS_PCSC_SOCK=/run/pcscd/pcscd.comm
TS_PCSC_PIDFILE=/run/pcscd/pcscd.pid
TS_VICC_PID=

ts_pcsc_skip() { echo "SKIP: $*" >&2; exit 77; }

# Prints the pid of a running pcscd, if any.
ts_pcsc_running_pid() {
	local pid
	pid=$(cat "$TS_PCSC_PIDFILE" 2>/dev/null) || return 1
	[ -n "$pid" ] && [ -d "/proc/$pid" ] &&
	    grep -q pcscd "/proc/$pid/comm" 2>/dev/null && echo "$pid"
}

ts_pcsc_systemd_active() {
	[ -d /run/systemd/system ] &&
	    systemctl is-active --quiet pcscd.socket pcscd.service 2>/dev/null
}

# Two consecutive free ports; prints the first.
ts_pcsc_port_pair() {
	python3 - <<'PY'
import socket
for _ in range(50):
    a = socket.socket(); a.bind(("127.0.0.1", 0)); p = a.getsockname()[1]
    b = socket.socket()
    try:
        b.bind(("127.0.0.1", p + 1))
    except OSError:
        a.close(); continue
    a.close(); b.close(); print(p); break
PY
}

# Python alias: vicc imports Crypto, python3-pycryptodome ships Cryptodome.
ts_pcsc_pyalias() {
	mkdir -p "$TS_TMP/pcsc/py/Crypto"
	cat > "$TS_TMP/pcsc/py/Crypto/__init__.py" <<'PY'
import sys
import Cryptodome
sys.modules[__name__] = Cryptodome
PY
}

ts_pcsc_stop_system() {
	local pid cmdline
	if ts_pcsc_systemd_active; then
		systemctl stop pcscd.socket pcscd.service ||
		    ts_fail "pcsc: cannot stop the system pcscd"
		TS_PCSC_RESTORE='systemctl start pcscd.socket'
		ts_log "pcsc: stopped systemd's pcscd; restarted at exit"
		return
	fi
	pid=$(ts_pcsc_running_pid) || return 0
	cmdline=$(tr '\0' ' ' < "/proc/$pid/cmdline")
	kill -TERM "$pid"
	TS_WAIT=5 ts_wait_for test ! -d "/proc/$pid" ||
	    ts_fail "pcsc: pcscd $pid did not stop"
	# Restored with the same command line, detached (it may have run in
	# the foreground under a supervisor we cannot reach).
	TS_PCSC_RESTORE="setsid $cmdline >/dev/null 2>&1 < /dev/null &"
	ts_log "pcsc: stopped pcscd $pid ($cmdline); restarted at exit"
}

ts_pcsc_reuse() {
	local conf port
	conf=$(grep -ls "$TS_VPCD_DRIVER" /etc/reader.conf.d/* 2>/dev/null | head -1)
	[ -n "$conf" ] || ts_pcsc_skip "a pcscd without vsmartcard's reader is running; stop it or set TS_PCSC_STOP_SYSTEM=1"
	port=$(awk '$1 == "CHANNELID" { print $2 }' "$conf" | head -1)
	[ -n "$port" ] || ts_pcsc_skip "pcsc: no CHANNELID in $conf"
	TS_VPCD_PORT=$((port))
	TS_PCSC_MODE=reuse
	ts_log "pcsc: reusing the running pcscd (vpcd port $TS_VPCD_PORT from $conf)"
}

ts_pcsc_own() {
	local dir=$TS_TMP/pcsc port pid
	mkdir -p "$dir/conf"
	port=$(ts_pcsc_port_pair)
	[ -n "$port" ] || ts_fail "pcsc: no free port pair"
	printf 'FRIENDLYNAME "Virtual PCD"\nDEVICENAME /dev/null:0x%X\nLIBPATH %s\nCHANNELID 0x%X\n' \
	    "$port" "$TS_VPCD_DRIVER" "$port" > "$dir/conf/vpcd"
	pcscd --foreground --debug --config "$dir/conf" > "$dir/pcscd.log" 2>&1 &
	pid=$!
	TS_PCSC_PID=$pid
	TS_WAIT=10 ts_wait_for grep -q 'daemon ready' "$dir/pcscd.log" ||
	    ts_fail "pcsc: pcscd did not start: $(tail -5 "$dir/pcscd.log")"
	TS_VPCD_PORT=$(sed -n 's/.*Waiting for virtual ICC on port \([0-9]*\).*/\1/p' \
	    "$dir/pcscd.log" | head -1)
	[ -n "$TS_VPCD_PORT" ] || ts_fail "pcsc: vpcd port not in the pcscd log"
	TS_PCSC_MODE=own
}

# Teardown, one hook in a fixed order: card out, our pcscd stopped and its
# socket released, and only then a stopped system pcscd restored.
ts_pcsc_teardown() {
	ts_pcsc_card_remove
	if [ -n "${TS_PCSC_PID:-}" ]; then
		kill -TERM "$TS_PCSC_PID" 2>/dev/null || true
		wait "$TS_PCSC_PID" 2>/dev/null || true
		TS_PCSC_PID=
	fi
	if [ -n "${TS_PCSC_RESTORE:-}" ]; then
		eval "$TS_PCSC_RESTORE" || true
		TS_PCSC_RESTORE=
	fi
}

ts_pcsc_setup() {
	[ "$(id -u)" = 0 ] || ts_pcsc_skip "pcscd tests need root (/run/pcscd)"
	command -v pcscd >/dev/null || ts_pcsc_skip "pcscd not installed"
	[ -f "$TS_VPCD_DRIVER" ] || ts_pcsc_skip "vsmartcard-vpcd not installed"
	[ -x /usr/bin/vicc ] || ts_pcsc_skip "vsmartcard-vpicc not installed"
	TS_PCSC_WAIT=$TS_BIN/tests/shim/pcsc_wait
	[ -x "$TS_PCSC_WAIT" ] || ts_fail "pcsc: $TS_PCSC_WAIT not built"
	export TS_PCSC_WAIT
	ts_pcsc_pyalias
	TS_PCSC_PID= TS_PCSC_RESTORE=
	ts_on_exit 'ts_pcsc_teardown'
	if ts_pcsc_running_pid >/dev/null || ts_pcsc_systemd_active; then
		if [ "${TS_PCSC_STOP_SYSTEM:-0}" = 1 ]; then
			ts_pcsc_stop_system
			ts_pcsc_own
		else
			ts_pcsc_reuse
		fi
	else
		ts_pcsc_own
	fi
	export TS_PCSC_READER="Virtual PCD 00 00" TS_VPCD_PORT TS_PCSC_MODE
	TS_WAIT=10 ts_wait_for "$TS_PCSC_WAIT" readers ||
	    ts_fail "pcsc: no PC/SC service"
	"$TS_PCSC_WAIT" readers | grep -q " $TS_PCSC_READER\$" ||
	    ts_fail "pcsc: no reader '$TS_PCSC_READER': $("$TS_PCSC_WAIT" readers)"
}

ts_pcsc_card_insert() {
	[ -z "$TS_VICC_PID" ] || ts_fail "pcsc: card already inserted"
	# /usr/bin/python3 explicitly: vicc's modules are for Debian's python.
	# -vvv (INFO) logs "Connected to virtual PCD", the moment the card is "in"
	# (ts_pcsc_card_connected); Python's start-up before it takes
	# 0.2-0.5 s, more on a loaded machine.
	PYTHONPATH=$TS_TMP/pcsc/py:$TS_VICC_PY /usr/bin/python3 /usr/bin/vicc \
	    -vvv -t iso7816 -H 127.0.0.1 -P "$TS_VPCD_PORT" \
	    >>"$TS_TMP/pcsc/vicc.log" 2>&1 &
	TS_VICC_PID=$!
}

# ts_pcsc_card_connected N: true once vicc has connected N times in this
# test (its log accumulates over insertions).
ts_pcsc_card_connected() {
	[ "$(grep -c 'Connected to virtual PCD' "$TS_TMP/pcsc/vicc.log" 2>/dev/null)" -ge "$1" ]
}

ts_pcsc_card_remove() {
	[ -n "$TS_VICC_PID" ] || return 0
	kill -TERM "$TS_VICC_PID" 2>/dev/null || true
	wait "$TS_VICC_PID" 2>/dev/null || true
	TS_VICC_PID=
}

ts_pcsc_wait_card() {
	"$TS_PCSC_WAIT" card "$1" "${2:-3000}" "$TS_PCSC_READER"
}

# The bridge: a watcher (pcsc_wait watch) feeding a loop that rewrites a
# control file of its own, so ts_shim_set keeps working for other faults.
ts_pcsc_bridge_shim() {
	local token=$1 f=$TS_TMP/pcsc/shim-bridge.control fifo=$TS_TMP/pcsc/bridge.fifo
	[ -n "${TS_SHIM_CONTROL:-}" ] || ts_fail "pcsc bridge: call ts_shim_setup first"
	ts_pcsc_bridge_write "$token" "$f" 0
	export TS_SHIM_CONTROL="$TS_SHIM_CONTROL:$f"
	mkfifo "$fifo"
	"$TS_PCSC_WAIT" watch 86400000 > "$fifo" 2>>"$TS_TMP/pcsc/bridge.err" &
	ts_bg_track $!
	(
		while read -r _ ev reader; do
			[ "$reader" = "$TS_PCSC_READER" ] || continue
			case $ev in
			card-inserted) ts_pcsc_bridge_write "$token" "$f" 1 ;;
			card-removed) ts_pcsc_bridge_write "$token" "$f" 0 ;;
			esac
		done < "$fifo"
	) &
	ts_bg_track $!
}

# ts_pcsc_bridged_card_in: inserts the virtual card and waits until pcscd
# and the shim bridge (ts_pcsc_bridge_shim) both see it.
ts_pcsc_bridged_card_in() {
	ts_pcsc_card_insert
	ts_pcsc_wait_card present 3000 >/dev/null || ts_fail "card not inserted"
	TS_WAIT=5 ts_wait_for grep -q 'present = 1' "$TS_TMP/pcsc/shim-bridge.control" ||
	    ts_fail "bridge did not follow the insertion"
}

# ts_pcsc_agent_start [AGENT OPTIONS...]: with the card in, an agent
# (tests/lib/agent.sh) on the bridged shim whose presence polling and slot
# events are off, so only its reader watcher can see the card come and
# go; checks that ts-main is served.  Writes $TS_TMP/agent.conf.
ts_pcsc_agent_start() {
	ts_pcsc_bridged_card_in
	# no slot events (as SoftHSM and many HSM modules have none)
	ts_shim_set slot_events=0
	printf 'presence_poll_ms 0\n' > "$TS_TMP/agent.conf"
	chmod 600 "$TS_TMP/agent.conf"
	TS_MODULE=$TS_SHIM ts_agent_start --module-allow "$TS_SHIM_ALLOW" \
	    --config "$TS_TMP/agent.conf" "$@"
	"$TS_CLIENT" agent status | grep -q '^token: ts-main present, logged in' ||
	    ts_fail "start: $("$TS_CLIENT" agent status)"
}

# The slot is described as the reader unless TS_PCSC_BRIDGE_DESC names
# something else (a module that does not name its slots after readers).
ts_pcsc_bridge_write() { # TOKEN FILE PRESENT
	printf '[token %s]\nslot_description = %s\npresent = %s\n' \
	    "$1" "${TS_PCSC_BRIDGE_DESC:-$TS_PCSC_READER}" "$3" > "$2.new"
	mv -f "$2.new" "$2"
}
