#!/bin/bash
# common/sshkey against OpenSSH's own tools on real token keys (no agent):
# for every SoftHSM key, the authorized_keys line of `tokensign ssh-keys
# --pem` equals what OpenSSH 9.2 derives independently, either from the PEM
# (`ssh-keygen -i -m PKCS8`, EC/RSA) or straight from the token through
# its own PKCS#11 code (`ssh-keygen -D MODULE`); P-384 is refused cleanly.
. "$TS_SRC/tests/lib/common.sh"
. "$TS_SRC/tests/lib/softhsm.sh"
ts_softhsm_setup

# what OpenSSH reads from the token itself (C_GetAttributeValue on the
# public objects, no login needed for SoftHSM public keys)
ssh-keygen -D "$TS_MODULE" > "$TS_TMP/openssh-token.pub" 2>/dev/null || true

for k in p256 rsa2048 rsa3072 ed25519 p256-aa; do
	ts_softhsm_pubkey "$k" "$TS_TMP/$k.pem"
	ours=$("$TS_CLIENT" ssh-keys --pem "$TS_TMP/$k.pem" --comment "$k") ||
	    ts_fail "$k: ssh-keys --pem failed"
	[ "$(echo "$ours" | awk '{print $3}')" = "$k" ] ||
	    ts_fail "$k: comment missing: $ours"
	mine=$(echo "$ours" | awk '{print $1" "$2}')
	if [ "$k" != ed25519 ]; then
		# ssh-keygen 9.2 has no PKCS8 import for Ed25519
		theirs=$(ssh-keygen -i -m PKCS8 -f "$TS_TMP/$k.pem")
		[ "$mine" = "$theirs" ] ||
		    ts_fail "$k: ours '$mine' != ssh-keygen -i '$theirs'"
		ts_pass "$k matches ssh-keygen -i -m PKCS8"
	fi
	if grep -qF "$mine" "$TS_TMP/openssh-token.pub"; then
		ts_pass "$k matches ssh-keygen -D (OpenSSH's PKCS#11 reader)"
	elif [ "$k" != ed25519 ]; then
		ts_fail "$k: not among ssh-keygen -D keys: $(cat "$TS_TMP/openssh-token.pub")"
	fi
	# fingerprints agree as well
	fp_ours=$(echo "$ours" | ssh-keygen -l -f - | awk '{print $2}')
	[ -n "$fp_ours" ] || ts_fail "$k: ssh-keygen cannot read our line"
	ts_pass "$k line readable by ssh-keygen -l ($fp_ours)"
done

# Ed25519: ssh-keygen 9.2 cannot import it from PEM nor (9.2) list it
# from PKCS#11, so check the blob against the raw key in the SPKI
raw=$(openssl pkey -pubin -in "$TS_TMP/ed25519.pem" -outform DER |
    tail -c 32 | base64 -w0)
blob=$("$TS_CLIENT" ssh-keys --pem "$TS_TMP/ed25519.pem" | awk '{print $2}')
tail32=$(echo "$blob" | base64 -d | tail -c 32 | base64 -w0)
[ "$raw" = "$tail32" ] || ts_fail "ed25519: blob key bytes differ"
ts_pass "ed25519 blob carries the raw key"

# P-384 is not an ssh key for us: clear error, no output
ts_softhsm_pubkey p384 "$TS_TMP/p384.pem"
ts_expect_fail "p384 refused" 1 "not usable with ssh" \
    "$TS_CLIENT" ssh-keys --pem "$TS_TMP/p384.pem"
out=$("$TS_CLIENT" ssh-keys --pem "$TS_TMP/p384.pem" 2>/dev/null || true)
[ -z "$out" ] || ts_fail "p384: half-written output: $out"
ts_pass "p384: nothing written"
# not a key at all
echo "hello" > "$TS_TMP/junk.pem"
ts_expect_fail "junk refused" 1 "not a PEM public key" \
    "$TS_CLIENT" ssh-keys --pem "$TS_TMP/junk.pem"
ts_expect_fail "missing file" 1 "cannot open" \
    "$TS_CLIENT" ssh-keys --pem "$TS_TMP/nope.pem"
ts_done
