#!/bin/bash
# The shipped systemd units parse (systemd-analyze verify) and carry the
# hardening the agent relies on.
. "$TS_SRC/tests/lib/common.sh"
command -v systemd-analyze >/dev/null || { echo "no systemd-analyze"; exit 77; }
for d in system user; do
	mkdir -p "$TS_TMP/$d"
	for f in "$TS_SRC"/agent/systemd/$d/*; do
		sed "s|/usr/bin/tokensign-agent|$TS_AGENT|" "$f" > "$TS_TMP/$d/$(basename "$f")"
	done
	out=$(cd "$TS_TMP/$d" && systemd-analyze verify ./tokensign-agent.socket \
	    ./tokensign-agent.service 2>&1 | grep -v 'pcscd.socket' || true)
	[ -z "$out" ] || ts_fail "$d units: $out"
	ts_pass "$d units verify"
	svc=$TS_TMP/$d/tokensign-agent.service
	for k in NoNewPrivileges=yes ProtectSystem=strict PrivateTmp=yes \
	    'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6' \
	    MemoryDenyWriteExecute=yes LockPersonality=yes Type=notify; do
		grep -qx "$k" "$svc" || ts_fail "$d service lacks $k"
	done
	ts_pass "$d service hardened"
	grep -q '^SocketMode=06[06]0' "$TS_TMP/$d/tokensign-agent.socket" ||
	    ts_fail "$d socket mode"
done
grep -qx 'ProtectHome=yes' "$TS_TMP/system/tokensign-agent.service" ||
    ts_fail "system service lacks ProtectHome"
grep -qx 'SocketMode=0600' "$TS_TMP/user/tokensign-agent.socket" ||
    ts_fail "user socket not 0600"
ts_pass "system service ProtectHome, user socket 0600"
ts_done
