# tests/lib/shim.sh - the fault-injecting PKCS#11 shim (tests/shim/,
# docs/internals/shim.md) over the test's SoftHSM tokens.
#
# Source after common.sh and softhsm.sh, and after ts_softhsm_setup:
#   ts_shim_setup          exports TS_SHIM (libtsshim.so path; load it as
#                          the PKCS#11 module instead of $TS_MODULE),
#                          TS_SHIM_ALLOW (the --module-allow pattern for it),
#                          TS_SHIM_TARGET, TS_SHIM_CONTROL, TS_SHIM_STATS
#                          (all inherited by the agent started afterwards)
#   ts_shim_set LINE...    replace the (first) control file atomically, one LINE
#                          per argument, e.g. ts_shim_set present=0
#                          or ts_shim_set '[token ts-main]' sign_hang=1
#   ts_shim_stat NAME      print a counter from the stats file (0 if none),
#                          e.g. ts_shim_stat C_Login, ts_shim_stat
#                          fault.C_Sign
#   ts_probe_start TOKEN [NAME]   start tests/shim/shim_probe on TOKEN as a
#                          bash coprocess; ts_probe CMD sends one command
#                          and prints its reply line (see shim_probe.c)
#
# The control file is replaced by rename(2), never rewritten in place: the
# shim re-reads it on every call, and must never see it half-written.

ts_shim_setup() {
	TS_SHIM=$TS_BIN/tests/shim/libtsshim.so
	[ -f "$TS_SHIM" ] || ts_fail "shim: $TS_SHIM not built"
	export TS_SHIM
	# the agent's --module-allow pattern that admits the shim
	TS_SHIM_ALLOW="$(dirname "$(readlink -f "$TS_SHIM")")/*"
	export TS_SHIM_ALLOW
	export TS_SHIM_TARGET=$TS_MODULE
	export TS_SHIM_CONTROL=$TS_TMP/shim.control
	export TS_SHIM_STATS=$TS_TMP/shim.stats
	ts_shim_set
}

# Writes the first control file only: TS_SHIM_CONTROL may list more
# (colon-separated), written by helpers such as ts_pcsc_bridge_shim.
ts_shim_set() {
	local f=${TS_SHIM_CONTROL%%:*} line
	local tmp=$f.new.$$
	: > "$tmp"
	for line in "$@"; do
		printf '%s\n' "$line" >> "$tmp"
	done
	mv -f "$tmp" "$f"
}

ts_shim_stat() {
	local v
	v=$(awk -v k="$1" '$1 == k { print $2 }' "$TS_SHIM_STATS" 2>/dev/null)
	echo "${v:-0}"
}

# ts_probe_start TOKEN: one probe per test (bash allows one coprocess).
ts_probe_start() {
	local token=$1 line
	coproc TS_PROBE { exec "$TS_BIN/tests/shim/shim_probe" "$TS_SHIM" \
	    "$token" "$TS_PIN_FILE" 2>>"$TS_TMP/probe.err"; }
	ts_bg_track "$TS_PROBE_PID"
	IFS= read -r -t 20 -u "${TS_PROBE[0]}" line ||
	    ts_fail "probe did not start: $(cat "$TS_TMP/probe.err")"
	[ "$line" = ready ] || ts_fail "probe: $line"
}

# ts_probe_send CMD: send without waiting; ts_probe_reply [SECONDS] reads.
ts_probe_send() { printf '%s\n' "$*" >&"${TS_PROBE[1]}"; }
ts_probe_reply() {
	local line
	IFS= read -r -t "${1:-20}" -u "${TS_PROBE[0]}" line || return 1
	printf '%s\n' "$line"
}
ts_probe() {
	ts_probe_send "$@"
	ts_probe_reply 20 || ts_fail "probe: no reply to '$*'"
}

# ts_probe_stop: quit the probe; it must exit 0 without a sanitizer report
# (ASan/LSan/UBSan in the sanitizer build).
ts_probe_stop() {
	local pid=$TS_PROBE_PID rc=0
	ts_probe_send quit
	wait "$pid" || rc=$?
	! grep -q 'Sanitizer' "$TS_TMP/probe.err" 2>/dev/null ||
	    ts_fail "probe: sanitizer report: $(grep -A20 Sanitizer "$TS_TMP/probe.err" | head -40)"
	[ "$rc" = 0 ] || ts_fail "probe exited $rc: $(tail -5 "$TS_TMP/probe.err")"
	ts_pass "probe exited cleanly"
}
