#!/bin/bash
# docs/tokensign.1 renders without groff warnings and documents every
# command `tokensign --help` lists and every long option each command's
# --help shows, and the exit statuses of client/commands.h.
. "$TS_SRC/tests/lib/common.sh"
command -v groff > /dev/null || { echo "SKIP: no groff (scripts/deps.sh: groff-base)"; exit 77; }
M=$TS_SRC/docs/tokensign.1
warn=$(groff -man -Tutf8 -ww -z "$M" 2>&1)
[ -z "$warn" ] || ts_fail "groff warnings: $warn"
# rendered text, hyphenation and adjustment off, so words are whole
text=$(groff -man -rHY=0 -Tascii -P-c -P-b -P-u "$M" 2>/dev/null | tr -s " ")
[ -n "$text" ] || ts_fail "man page renders empty"
ts_pass "tokensign.1 renders without warnings"
cmds=$("$TS_CLIENT" --help | sed -n '/^commands:/,/^$/p' | awk 'NR > 1 && NF { print $1 }')
[ -n "$cmds" ] || ts_fail "no commands in tokensign --help"
for c in $cmds; do
	grep -q "^ tokensign $c" <<<"$text" || ts_fail "command '$c' has no section"
	help=$("$TS_CLIENT" "$c" --help 2>&1) || true
	for o in $(grep -oE -- '--[a-z][a-z0-9-]*' <<<"$help" | sort -u); do
		grep -qF -- "$o" <<<"$text" || ts_fail "$c: option $o not in the man page"
	done
done
ts_pass "every command and every --help option is documented ($(wc -w <<<"$cmds") commands)"
for v in $(sed -n 's/^#define TS_EXIT_[A-Z_]*[[:space:]]*\([0-9]*\).*/\1/p' "$TS_SRC/client/commands.h"); do
	sed -n '/^EXIT STATUS/,/^ENVIRONMENT/p' <<<"$text" | grep -qE "^ $v( |\$)" ||
	    ts_fail "exit status $v not in EXIT STATUS"
done
ts_pass "every TS_EXIT_* status is in EXIT STATUS"
ts_done
