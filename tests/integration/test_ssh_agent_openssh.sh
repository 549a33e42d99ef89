#!/bin/bash
# The agent's ssh-agent protocol against OpenSSH's own tools (openssh-client
# 9.2, git 2.39): ssh-add -L lists the token keys; ssh-keygen -Y sign through
# the agent verifies with ssh-keygen -Y verify (P-256, Ed25519, RSA); the
# audit log records "ssh signature" with the data's SHA-256; git commit -S
# with gpg.format=ssh passes git verify-commit; an sshd started here accepts
# publickey logins through the agent; ssh-add of a file key, removal and a
# locked agent are refused cleanly.
. "$TS_SRC/tests/lib/common.sh"
. "$TS_SRC/tests/lib/softhsm.sh"
ts_softhsm_setup

sock=$TS_TMP/agent.sock
"$TS_AGENT" -D -a "$sock" --module "$TS_MODULE" --pin-source "$TS_PIN_FILE" \
    --audit "$TS_TMP/audit.log" > "$TS_TMP/agent.out" 2>&1 &
agent_pid=$!
ts_bg_track $agent_pid
ts_wait_for test -S "$sock" || ts_fail "agent did not start: $(cat "$TS_TMP/agent.out")"
export SSH_AUTH_SOCK=$sock

# --- ssh-add -L lists exactly the ssh-capable token keys ---------------
ssh-add -L > "$TS_TMP/agent-keys.pub" || ts_fail "ssh-add -L failed"
for k in p256 p256-aa rsa2048 rsa3072 ed25519; do
	ts_softhsm_pubkey "$k" "$TS_TMP/$k.pem"
	want=$("$TS_CLIENT" ssh-keys --pem "$TS_TMP/$k.pem" --comment "$k")
	grep -qxF "$want" "$TS_TMP/agent-keys.pub" ||
	    ts_fail "ssh-add -L lacks $k ($want): $(cat "$TS_TMP/agent-keys.pub")"
	echo "$want" > "$TS_TMP/$k.pub"
done
ts_softhsm_pubkey p256-b "$TS_TMP/p256-b.pem" ts-second
grep -q " p256-b$" "$TS_TMP/agent-keys.pub" || ts_fail "second token key missing"
n=$(wc -l < "$TS_TMP/agent-keys.pub")
[ "$n" -eq 6 ] || ts_fail "expected 6 ssh keys (no P-384), got $n"
ts_pass "ssh-add -L lists the 6 ssh-capable token keys, P-384 left out"
# tokensign ssh-keys (through agent_client) prints the same lines
TOKENSIGN_AUTH_SOCK=$sock "$TS_CLIENT" ssh-keys | sort > "$TS_TMP/ts-keys.pub" ||
    ts_fail "tokensign ssh-keys failed"
sort "$TS_TMP/agent-keys.pub" | cmp -s - "$TS_TMP/ts-keys.pub" ||
    ts_fail "tokensign ssh-keys differs from ssh-add -L: $(cat "$TS_TMP/ts-keys.pub")"
ts_pass "tokensign ssh-keys == ssh-add -L"
line=$(TOKENSIGN_AUTH_SOCK=$sock "$TS_CLIENT" ssh-keys --key ed25519)
[ "$line" = "$(grep ' ed25519$' "$TS_TMP/agent-keys.pub")" ] ||
    ts_fail "ssh-keys --key ed25519: $line"
ts_expect_fail "ssh-keys --key p384 refused" 14 "not usable with ssh" \
    env TOKENSIGN_AUTH_SOCK="$sock" "$TS_CLIENT" ssh-keys --key p384
ts_expect_fail "ssh-keys --key unknown" 14 "nope" \
    env TOKENSIGN_AUTH_SOCK="$sock" "$TS_CLIENT" ssh-keys --key nope
ts_expect_fail "ssh-keys with no agent" 13 "." \
    env TOKENSIGN_AUTH_SOCK="$TS_TMP/none.sock" "$TS_CLIENT" ssh-keys
# ssh-add -l (fingerprints) agrees with ssh-keygen -l on the same lines
ssh-add -l | awk '{print $2}' | sort > "$TS_TMP/fp-agent"
ssh-keygen -l -f "$TS_TMP/agent-keys.pub" | awk '{print $2}' | sort > "$TS_TMP/fp-file"
cmp -s "$TS_TMP/fp-agent" "$TS_TMP/fp-file" || ts_fail "ssh-add -l fingerprints differ"
ts_pass "ssh-add -l fingerprints"

# --- ssh-keygen -Y sign / verify (SSHSIG) through the agent -------------
echo "some file to sign $$" > "$TS_TMP/data.txt"
for k in p256 ed25519 rsa2048; do
	rm -f "$TS_TMP/data.txt.sig"
	ssh-keygen -Y sign -n git -f "$TS_TMP/$k.pub" "$TS_TMP/data.txt" \
	    2> "$TS_TMP/sign.err" || ts_fail "$k: ssh-keygen -Y sign: $(cat "$TS_TMP/sign.err")"
	echo "signer@example.com $(cat "$TS_TMP/$k.pub")" > "$TS_TMP/allowed"
	ssh-keygen -Y verify -n git -f "$TS_TMP/allowed" -I signer@example.com \
	    -s "$TS_TMP/data.txt.sig" < "$TS_TMP/data.txt" > "$TS_TMP/verify.out" 2>&1 ||
	    ts_fail "$k: ssh-keygen -Y verify: $(cat "$TS_TMP/verify.out")"
	ts_pass "$k: ssh-keygen -Y sign through the agent verifies"
	# a changed file does not verify
	echo tampered >> "$TS_TMP/data.txt"
	if ssh-keygen -Y verify -n git -f "$TS_TMP/allowed" -I signer@example.com \
	    -s "$TS_TMP/data.txt.sig" < "$TS_TMP/data.txt" >/dev/null 2>&1; then
		ts_fail "$k: tampered data verified"
	fi
	echo "some file to sign $$" > "$TS_TMP/data.txt"
done
ts_pass "tampered data refused by ssh-keygen -Y verify"
# RSA used rsa-sha2-512 (ssh-keygen's choice for SSHSIG), never ssh-rsa
rm -f "$TS_TMP/data.txt.sig"
ssh-keygen -Y sign -n file -f "$TS_TMP/rsa2048.pub" "$TS_TMP/data.txt" 2>/dev/null
sed -n '2,$p' "$TS_TMP/data.txt.sig" | head -n -1 | base64 -d 2>/dev/null |
    grep -aq 'rsa-sha2-512' || ts_fail "RSA SSHSIG not rsa-sha2-512"
ts_pass "RSA signature is rsa-sha2-512"

# --- audit: "ssh signature" with the SHA-256 of the data ssh sent -------
grep -q '"event":"ssh signature"' "$TS_TMP/audit.log" ||
    ts_fail "no ssh signature audit line: $(tail -3 "$TS_TMP/audit.log")"
nlines=$(grep -c '"event":"ssh signature"' "$TS_TMP/audit.log")
[ "$nlines" -ge 4 ] || ts_fail "expected >= 4 ssh audit lines, got $nlines"
grep '"event":"ssh signature"' "$TS_TMP/audit.log" | head -1 |
    grep -Eq '"digest":"[0-9a-f]{64}"' || ts_fail "audit line lacks the data SHA-256"
ts_pass "audit: $nlines 'ssh signature' lines with data SHA-256"

# --- git commit -S with gpg.format=ssh, git verify-commit ---------------
repo=$TS_TMP/repo
git init -q "$repo"
(
	cd "$repo"
	git config user.name "Token Signer"
	git config user.email signer@example.com
	git config gpg.format ssh
	git config user.signingkey "key::$(cat "$TS_TMP/p256.pub")"
	echo "signer@example.com namespaces=\"git\" $(cat "$TS_TMP/p256.pub")" > "$TS_TMP/git-allowed"
	git config gpg.ssh.allowedSignersFile "$TS_TMP/git-allowed"
	echo hello > f && git add f
	git commit -q -S -m "signed on the token" 2> "$TS_TMP/git.err" ||
	    ts_fail "git commit -S: $(cat "$TS_TMP/git.err")"
	git verify-commit HEAD > "$TS_TMP/vc.out" 2>&1 ||
	    ts_fail "git verify-commit: $(cat "$TS_TMP/vc.out")"
	grep -q 'Good "git" signature for signer@example.com' "$TS_TMP/vc.out" ||
	    ts_fail "verify-commit output: $(cat "$TS_TMP/vc.out")"
	# another key in allowed signers: the commit must not verify
	echo "signer@example.com namespaces=\"git\" $(cat "$TS_TMP/ed25519.pub")" > "$TS_TMP/git-allowed"
	if git verify-commit HEAD >/dev/null 2>&1; then
		ts_fail "verify-commit accepted an unlisted key"
	fi
)
ts_pass "git commit -S (gpg.format=ssh) verifies with git verify-commit"

# --- sshd on 127.0.0.1: publickey login through the agent ---------------
if [ "$(id -u)" -eq 0 ] && [ ! -d /run/sshd ]; then
	# sshd's compiled-in privilege separation directory (Debian's unit
	# creates it the same way)
	mkdir -p /run/sshd && chmod 0755 /run/sshd
fi
port=$(ts_free_port)
ssh-keygen -q -t ed25519 -N '' -f "$TS_TMP/hostkey"
cat "$TS_TMP/p256.pub" "$TS_TMP/ed25519.pub" "$TS_TMP/rsa2048.pub" > "$TS_TMP/authorized_keys"
me=$(id -un)
cat > "$TS_TMP/sshd_config" <<CONF
ListenAddress 127.0.0.1
Port $port
HostKey $TS_TMP/hostkey
PidFile $TS_TMP/sshd.pid
AuthorizedKeysFile $TS_TMP/authorized_keys
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PermitRootLogin prohibit-password
AllowUsers $me
LogLevel VERBOSE
CONF
/usr/sbin/sshd -D -e -f "$TS_TMP/sshd_config" 2> "$TS_TMP/sshd.log" &
ts_bg_track $!
ts_wait_for bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" ||
    ts_fail "sshd did not start: $(cat "$TS_TMP/sshd.log")"
echo "[127.0.0.1]:$port $(cat "$TS_TMP/hostkey.pub")" > "$TS_TMP/known_hosts"
for k in p256 ed25519 rsa2048; do
	out=$(env -u SSH_AUTH_SOCK ssh -F /dev/null -o IdentityAgent="$sock" \
	    -o IdentitiesOnly=yes -o IdentityFile="$TS_TMP/$k.pub" \
	    -o UserKnownHostsFile="$TS_TMP/known_hosts" \
	    -o StrictHostKeyChecking=yes -o BatchMode=yes \
	    -o PasswordAuthentication=no -p "$port" "$me@127.0.0.1" \
	    echo logged-in-$k 2>&1) || ts_fail "$k: ssh login failed: $out"
	[ "$(echo "$out" | tail -1)" = "logged-in-$k" ] || ts_fail "$k: $out"
	ts_pass "$k: sshd accepted publickey auth through the agent"
done
out=$(env -u SSH_AUTH_SOCK ssh -F /dev/null -o IdentityAgent="$sock" \
    -o IdentitiesOnly=no -o UserKnownHostsFile="$TS_TMP/known_hosts" \
    -o BatchMode=yes -p "$port" "$me@127.0.0.1" true 2>&1) ||
    ts_fail "ssh with IdentitiesOnly=no failed: $out"
ts_pass "ssh -o IdentityAgent=... -o IdentitiesOnly=no ... true"
grep -q "Accepted publickey" "$TS_TMP/sshd.log" || ts_fail "sshd log lacks Accepted publickey"
# a key that is not in authorized_keys (rsa3072) is not accepted
if env -u SSH_AUTH_SOCK ssh -F /dev/null -o IdentityAgent="$sock" \
    -o IdentitiesOnly=yes -o IdentityFile="$TS_TMP/rsa3072.pub" \
    -o UserKnownHostsFile="$TS_TMP/known_hosts" -o BatchMode=yes \
    -p "$port" "$me@127.0.0.1" true >/dev/null 2>&1; then
	ts_fail "login with a key not in authorized_keys succeeded"
fi
ts_pass "unauthorized token key refused by sshd"

# --- refusals: adding/removing keys, locked agent -----------------------
ssh-keygen -q -t ed25519 -N '' -f "$TS_TMP/filekey"
ts_expect_fail "ssh-add of a file key refused" 1 "agent refused operation" \
    ssh-add "$TS_TMP/filekey"
ts_expect_fail "ssh-add -D refused" 1 "[Ff]ailed|refused" ssh-add -D
ts_expect_fail "ssh-add -d refused" 1 "[Ff]ailed|refused|[Cc]ould not" \
    ssh-add -d "$TS_TMP/p256.pub"
[ "$(ssh-add -L | wc -l)" -eq 6 ] || ts_fail "key list changed after refused ops"
ts_pass "key list unchanged"

printf 'lock-pass-%s' "$$" > "$TS_TMP/lockpass"
python3 "$TS_SRC/tests/lib/tsproto.py" "$sock" lock "$TS_TMP/lockpass" ||
    ts_fail "LOCK failed"
ts_expect_fail "locked agent refuses ssh signatures" nonzero "agent refused|[Ff]ailed|Couldn't sign|signing failed" \
    ssh-keygen -Y sign -n git -f "$TS_TMP/p256.pub" "$TS_TMP/data.txt"
grep '"event":"ssh signature"' "$TS_TMP/audit.log" | tail -1 | grep -qi 'locked' ||
    ts_fail "locked refusal not audited: $(tail -1 "$TS_TMP/audit.log")"
ts_pass "locked refusal audited"
python3 "$TS_SRC/tests/lib/tsproto.py" "$sock" unlock "$TS_TMP/lockpass" ||
    ts_fail "UNLOCK failed"
rm -f "$TS_TMP/data.txt.sig"
ssh-keygen -Y sign -n git -f "$TS_TMP/p256.pub" "$TS_TMP/data.txt" 2>/dev/null ||
    ts_fail "sign after unlock failed"
ts_pass "signing works again after UNLOCK"
# the agent is still serving our own protocol users
kill -0 "$agent_pid" 2>/dev/null || ts_fail "agent died"
ts_pass "agent still running"

# --- per-key ssh switch: "ssh KEY off" in the agent's config -----------
printf 'ssh ed25519 off\nssh p256 on\n' > "$TS_TMP/agent2.conf"
sock2=$TS_TMP/agent2.sock
"$TS_AGENT" -D -a "$sock2" --config "$TS_TMP/agent2.conf" --module "$TS_MODULE" \
    --pin-source "$TS_PIN_FILE" --audit "$TS_TMP/audit2.log" > "$TS_TMP/agent2.out" 2>&1 &
ts_bg_track $!
ts_wait_for test -S "$sock2" || ts_fail "agent 2 did not start: $(cat "$TS_TMP/agent2.out")"
SSH_AUTH_SOCK=$sock2 ssh-add -L > "$TS_TMP/agent2-keys.pub"
grep -q ' ed25519$' "$TS_TMP/agent2-keys.pub" && ts_fail "ed25519 offered although ssh is off for it"
grep -q ' p256$' "$TS_TMP/agent2-keys.pub" || ts_fail "p256 missing with ssh on"
ts_pass "ssh off for ed25519: not listed"
rm -f "$TS_TMP/data.txt.sig"
ts_expect_fail "ssh off: sign refused" nonzero "agent refused|[Ff]ailed|Couldn't|No private key" \
    env SSH_AUTH_SOCK="$sock2" ssh-keygen -Y sign -n git -f "$TS_TMP/ed25519.pub" "$TS_TMP/data.txt"
# our own protocol still signs with it (cosign path unaffected)
TOKENSIGN_AUTH_SOCK=$sock2 "$TS_CLIENT" keys 2>/dev/null | grep -q ed25519 ||
    ts_fail "ed25519 vanished from tokensign keys"
ts_pass "ssh switch leaves tokensign's own protocol alone"
# --- --confirm applies to ssh signatures too ---------------------------
cat > "$TS_TMP/askpass" <<'SH'
#!/bin/sh
echo "$1" >> "$(dirname "$0")/prompts"
[ -e "$(dirname "$0")/approve" ]
SH
chmod +x "$TS_TMP/askpass"
sock4=$TS_TMP/agent4.sock
TOKENSIGN_ASKPASS=$TS_TMP/askpass "$TS_AGENT" -D -a "$sock4" --module "$TS_MODULE" \
    --pin-source "$TS_PIN_FILE" --confirm p256 --audit "$TS_TMP/audit4.log" \
    > "$TS_TMP/agent4.out" 2>&1 &
ts_bg_track $!
ts_wait_for test -S "$sock4" || ts_fail "agent 4 did not start: $(cat "$TS_TMP/agent4.out")"
rm -f "$TS_TMP/data.txt.sig"
ts_expect_fail "ssh signature declined by askpass" nonzero "agent refused|[Ff]ailed|Couldn't" \
    env SSH_AUTH_SOCK="$sock4" ssh-keygen -Y sign -n git -f "$TS_TMP/p256.pub" "$TS_TMP/data.txt"
grep -q 'ssh signature' "$TS_TMP/prompts" || ts_fail "prompt: $(cat "$TS_TMP/prompts")"
grep '"event":"ssh signature"' "$TS_TMP/audit4.log" | grep '"reason":"confirmation' >/dev/null ||
    ts_fail "declined ssh signature not audited: $(cat "$TS_TMP/audit4.log")"
touch "$TS_TMP/approve"
rm -f "$TS_TMP/data.txt.sig"
SSH_AUTH_SOCK=$sock4 ssh-keygen -Y sign -n git -f "$TS_TMP/p256.pub" "$TS_TMP/data.txt" \
    2>/dev/null || ts_fail "approved ssh signature failed"
ts_pass "--confirm: ssh signature declined, then approved; prompt and audit"
printf 'ssh no-such-key off\n' > "$TS_TMP/agent3.conf"
ts_expect_fail "unknown key in ssh switch refused" nonzero "no-such-key" \
    timeout 20 "$TS_AGENT" -D -a "$TS_TMP/agent3.sock" --config "$TS_TMP/agent3.conf" \
    --module "$TS_MODULE" --pin-source "$TS_PIN_FILE"
ts_done
