#!/bin/bash
# `cmake --install` puts the programs, man pages and systemd units where a
# distribution expects them, and the installed programs run.  (udev, polkit
# and sysusers files are checked by test_udev_install.)
. "$TS_SRC/tests/lib/common.sh"
inst=$TS_TMP/inst
cmake --install "$TS_BIN" --prefix "$inst" >"$TS_TMP/install.log" 2>&1 ||
    ts_fail "cmake --install failed: $(tail -5 "$TS_TMP/install.log")"
for b in tokensign tokensign-agent sigstore-kms-tokensign; do
	[ -x "$inst/bin/$b" ] || ts_fail "not installed: bin/$b"
	ts_pass "bin/$b installed"
done
out=$("$inst/bin/tokensign" version) || ts_fail "installed tokensign does not run"
grep -q '^tokensign [0-9]' <<<"$out" || ts_fail "version output: $out"
ts_pass "installed tokensign runs"
"$inst/bin/tokensign-agent" --help >/dev/null 2>&1 ||
    ts_fail "installed tokensign-agent --help fails"
ts_pass "installed tokensign-agent runs"
for m in tokensign-agent.1 tokensign.1; do
	f=$inst/share/man/man1/$m
	[ -f "$f" ] || ts_fail "man page not installed: $m"
	# the page must be a roff document with a NAME section
	grep -q '^\.TH' "$f" && grep -q '^\.SH NAME' "$f" ||
	    ts_fail "$m is not a man page"
	ts_pass "man page $m"
done
for u in system/tokensign-agent.service system/tokensign-agent.socket \
    user/tokensign-agent.service user/tokensign-agent.socket; do
	f=$inst/lib/systemd/$u
	[ -f "$f" ] || ts_fail "unit not installed: $u"
	cmp -s "$f" "$TS_SRC/agent/systemd/$u" || ts_fail "installed $u differs"
	ts_pass "unit $u"
done
ts_done
