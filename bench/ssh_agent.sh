#!/bin/bash
# bench/ssh_agent.sh - ssh signatures/s through tokensign-agent vs OpenSSH's
# ssh-agent holding the same SoftHSM P-256 key via `ssh-add -s`, same run,
# both driven by ../shared/baselines/agentloop (SIGN_REQUEST loop).
# Target (issue 7): >= 4x ssh-agent.  Run by hand, never from ctest:
#   TS_BIN=build TS_SRC=. bash bench/ssh_agent.sh [SECONDS] [CLIENTS...]
# Prints one line per (agent, clients) and the ratio.
set -euo pipefail
TS_BIN=$(cd "${TS_BIN:?set TS_BIN to the build dir}" && pwd)
TS_SRC=$(cd "${TS_SRC:?set TS_SRC to the source dir}" && pwd)
export TS_BIN TS_SRC
. "$TS_SRC/tests/lib/common.sh"
. "$TS_SRC/tests/lib/softhsm.sh"
secs=${1:-3}
shift || true
clients=("${@:-1 4}")
[ ${#clients[@]} -gt 0 ] || clients=(1 4)
read -r -a clients <<< "${clients[*]}"

bl=$TS_TMP/baselines
cp -r "$TS_SHARED/baselines" "$bl"
make -s -C "$bl" agentloop >/dev/null

ts_softhsm_setup p256
# one token, one P-256 key: both agents must offer the very same key first
softhsm2-util --delete-token --token ts-second >/dev/null

ours=$TS_TMP/ts.sock
"$TS_AGENT" -D -a "$ours" --module "$TS_MODULE" --pin-source "$TS_PIN_FILE" \
    > "$TS_TMP/agent.out" 2>&1 &
ts_bg_track $!
ts_wait_for test -S "$ours" || ts_fail "tokensign-agent: $(cat "$TS_TMP/agent.out")"

theirs=$TS_TMP/ossh.sock
real=$(readlink -f "$TS_MODULE")
ssh-agent -D -a "$theirs" -P "$(dirname "$real")/*" > "$TS_TMP/ssh-agent.out" 2>&1 &
ts_bg_track $!
ts_wait_for test -S "$theirs" || ts_fail "ssh-agent did not start"
cat > "$TS_TMP/askpass" <<ASK
#!/bin/sh
cat "$TS_PIN_FILE"
ASK
chmod 700 "$TS_TMP/askpass"
SSH_AUTH_SOCK=$theirs SSH_ASKPASS=$TS_TMP/askpass SSH_ASKPASS_REQUIRE=force \
    DISPLAY=:0 ssh-add -s "$real" < /dev/null > /dev/null 2>&1 ||
    ts_fail "ssh-add -s $real failed"

k1=$(SSH_AUTH_SOCK=$ours ssh-add -L | awk '/^ecdsa/ {print $2; exit}')
k2=$(SSH_AUTH_SOCK=$theirs ssh-add -L | awk '/^ecdsa/ {print $2; exit}')
[ "$k1" = "$k2" ] || ts_fail "the two agents offer different keys"

echo "# ssh signatures/s, SoftHSM P-256, ${secs}s per run, $(nproc) CPUs"
for n in "${clients[@]}"; do
	a=$("$bl/agentloop" "$ours" ecdsa-sha2-nistp256 "$secs" "$n")
	b=$("$bl/agentloop" "$theirs" ecdsa-sha2-nistp256 "$secs" "$n")
	echo "tokensign-agent $a"
	echo "ssh-agent       $b"
	ra=$(echo "$a" | sed -n 's/.*sigs_per_s=\([0-9.]*\).*/\1/p')
	rb=$(echo "$b" | sed -n 's/.*sigs_per_s=\([0-9.]*\).*/\1/p')
	python3 -c "print('clients=$n ratio=%.2fx (target >= 4x)' % ($ra / $rb))"
done
TS_CHECKS=1
