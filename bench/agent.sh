#!/bin/bash
# bench/agent.sh - signatures/s through tokensign-agent with 1, 4, 16
# clients and with SIGN_BATCH, beside raw PKCS#11 (baselines/p11loop) and
# OpenSSH ssh-agent with the same SoftHSM token via `ssh-add -s`
# (baselines/agentloop), all in one run on one SoftHSM P-256 key; then the
# agent's idle RSS and its growth after many signatures.
#
# usage: TS_BIN=build TS_SRC=. bench/agent.sh [SECONDS] [RSS_SIGNATURES]
# Run by hand (never in CI); figures go to docs/performance-agent.md.
set -euo pipefail
secs=${1:-3}
rss_n=${2:-200000}
export TS_BIN=${TS_BIN:-$PWD/build} TS_SRC=${TS_SRC:-$PWD}
. "$TS_SRC/tests/lib/common.sh"
. "$TS_SRC/tests/lib/softhsm.sh"
. "$TS_SRC/tests/lib/agent.sh"
BL=$TS_TMP/baselines
cp -r "$TS_SRC/../shared/baselines" "$BL"
make -s -C "$BL" >/dev/null 2>&1 || ts_fail "cannot build the baselines"
ts_softhsm_setup p256
AB=$TS_BIN/bench/agentbench

rate_of() { sed -n 's/.*sigs_per_s=\([0-9.]*\).*/\1/p; s/.* rate \([0-9]*\)\/s.*/\1/p'; }
raw() { "$BL/p11loop" "$TS_MODULE" ts-main "$TS_PIN" p256 ecdsa "$secs" "$1" | rate_of; }

ts_agent_start
agent() { "$AB" -c "$1" -s "$secs" -k p256 ${2:+-b "$2"} "$TOKENSIGN_AUTH_SOCK" | rate_of; }

# ssh-agent with the token key through ssh-pkcs11-helper.
SSH_SOCK=$TS_TMP/ssh-agent.sock
eval "$(ssh-agent -a "$SSH_SOCK" -P '/usr/lib/*,/usr/lib/x86_64-linux-gnu/*' -s)" >/dev/null
ts_on_exit "kill $SSH_AGENT_PID"
SSH_ASKPASS=/bin/false ssh-add -s "$(readlink -f "$TS_MODULE")" </dev/null \
    >/dev/null 2>&1 <<<"$TS_PIN" || true
if ! SSH_AUTH_SOCK=$SSH_SOCK ssh-add -l 2>/dev/null | grep -q ECDSA; then
	# ssh-add reads the PIN from the terminal; feed it through a helper.
	printf '#!/bin/sh\necho %s\n' "$TS_PIN" > "$TS_TMP/askpin"
	chmod +x "$TS_TMP/askpin"
	SSH_AUTH_SOCK=$SSH_SOCK SSH_ASKPASS=$TS_TMP/askpin SSH_ASKPASS_REQUIRE=force \
	    DISPLAY=none ssh-add -s "$(readlink -f "$TS_MODULE")" </dev/null >/dev/null 2>&1 || true
fi
ssh() { "$BL/agentloop" "$SSH_SOCK" ecdsa-sha2-nistp256 "$secs" "$1" | rate_of; }

# p11-kit server exporting the same token, driven by the same p11loop
# through p11-kit-client.so (the peer named in the issue).
P11KIT_CLIENT=/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so
if command -v p11-kit >/dev/null && [ -e "$P11KIT_CLIENT" ]; then
	p11-kit server -f --provider "$TS_MODULE" -n "$TS_TMP/p11kit.sock" \
	    "pkcs11:token=ts-main" >/dev/null 2>&1 &
	ts_bg_track $!
	ts_wait_for test -S "$TS_TMP/p11kit.sock" || ts_fail "p11-kit server did not start"
	p11kit() {
		P11_KIT_SERVER_ADDRESS=unix:path=$TS_TMP/p11kit.sock \
		    "$BL/p11loop" "$P11KIT_CLIENT" ts-main "$TS_PIN" p256 ecdsa \
		    "$secs" "$1" | rate_of
	}
fi

# The machine is shared and noisy: each row alternates raw and agent runs
# ROUNDS times and reports the medians and the median of the ratios.
rounds=${ROUNDS:-3}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
row() { # LABEL RAWCLIENTS CMD...
	local label=$1 rc=$2 i a r ratios=() as=() rs=()
	shift 2
	for i in $(seq "$rounds"); do
		r=$(raw "$rc"); a=$("$@" || echo 0)
		rs+=("$r"); as+=("${a:-0}")
		ratios+=("$(echo "${a:-0} / $r" | bc -l)")
	done
	printf '%-28s %10s %10s %8.2f\n' "$label" \
	    "$(printf '%s\n' "${as[@]}" | median)" \
	    "$(printf '%s\n' "${rs[@]}" | median)" \
	    "$(printf '%s\n' "${ratios[@]}" | median)"
}
printf '%-28s %10s %10s %8s\n' "what (median of $rounds)" "sig/s" "raw sig/s" "ratio"
for c in 1 4 16; do row "agent, $c client(s)" "$c" agent "$c"; done
row "agent, 1 client, batch 32" 1 agent 1 32
row "agent, 4 clients, batch 32" 4 agent 4 32
for c in 1 4; do row "ssh-agent, $c client(s)" "$c" ssh "$c"; done
if declare -F p11kit >/dev/null; then
	for c in 1 4; do row "p11-kit server, $c thread(s)" "$c" p11kit "$c"; done
fi

rss() { awk '/VmRSS/ {print $2}' "/proc/$TS_AGENT_PID/status"; }
idle=$(rss)
"$AB" -c 4 -n $((rss_n / 4)) -k p256 "$TOKENSIGN_AUTH_SOCK" >/dev/null
after=$(rss)
"$AB" -c 4 -n $((rss_n / 4)) -k p256 "$TOKENSIGN_AUTH_SOCK" >/dev/null
after2=$(rss)
echo "RSS idle ${idle} kB; after $rss_n signatures ${after} kB; after $((2 * rss_n)) ${after2} kB"
floor=$("$BL/rssfloor" "$TS_MODULE" ts-main "$TS_PIN" p256 1000 2>/dev/null | tail -1 || true)
echo "rssfloor: $floor"
ts_agent_stop
TS_CHECKS=1
