# tests/lib/pki.sh - a small throwaway PKI for the mutual-TLS tests.
#
# Source after common.sh, then call ts_pki_setup.  Everything lives under
# $TS_PKI (inside $TS_TMP, so it disappears with the test).  Keys are P-256
# (fast); nothing here touches a token.  The recipe is the one
# docs/deployment.md shows for a real build farm, minus the passphrases.
#
# After ts_pki_setup:
#   $TS_PKI/ca.pem ca.key          the client+server CA ("tokensign test CA")
#   $TS_PKI/server.pem server.key  server cert: SAN IP:127.0.0.1, DNS:localhost
#   $TS_PKI/runner-a.pem .key      client CN=runner-a,
#                                  SAN URI:spiffe://ci.example/runner-a,
#                                  DNS:runner-a.ci.example
#   $TS_PKI/runner-b.pem .key      client CN=runner-b, SAN URI/DNS likewise
#   $TS_PKI/expired.pem .key       client CN=runner-expired, valid 2020-2021
#   $TS_PKI/revoked.pem .key       client CN=runner-revoked, listed in crl.pem
#   $TS_PKI/crl.pem                CRL of ca (revokes "revoked")
#   $TS_PKI/ca2.pem ca2.key        an unrelated CA ("unrelated CA")
#   $TS_PKI/foreign.pem .key       client CN=runner-a issued by ca2
#   $TS_PKI/server2.pem .key       server cert from ca2 (client-side refusal)
# ts_pki_client NAME CN [SAN]      issues another client cert from ca
#                                  (SAN defaults to URI:spiffe://ci.example/CN)
# ts_pki_issue_for PUB OUT SERIAL  a server cert from ca for a public key
#                                  held elsewhere (a token key)

TS_PKI=${TS_PKI:-$TS_TMP/pki}

# _ts_pki_ca_init DIR CN: a CA in DIR with its openssl-ca database.
_ts_pki_ca_init() {
	local dir=$1 cn=$2
	mkdir -p "$dir/newcerts"
	: >"$dir/index.txt"
	echo 1000 >"$dir/serial"
	echo 1000 >"$dir/crlnumber"
	cat >"$dir/ca.cnf" <<EOF
[ ca ]
default_ca = tsca
[ tsca ]
dir = $dir
database = \$dir/index.txt
new_certs_dir = \$dir/newcerts
serial = \$dir/serial
crlnumber = \$dir/crlnumber
certificate = \$dir/ca.pem
private_key = \$dir/ca.key
default_md = sha256
default_days = 30
default_crl_days = 30
policy = pol_any
unique_subject = no
copy_extensions = copy
email_in_dn = no
[ pol_any ]
commonName = supplied
organizationName = optional
[ v3_ca ]
basicConstraints = critical, CA:true, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ v3_server ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ v3_client ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
	    -out "$dir/ca.key" 2>/dev/null
	openssl req -new -x509 -key "$dir/ca.key" -out "$dir/ca.pem" \
	    -days 30 -subj "/O=tokensign tests/CN=$cn" \
	    -config "$dir/ca.cnf" -extensions v3_ca 2>/dev/null
}

# _ts_pki_issue CADIR OUTBASE CN EXT SAN [extra openssl-ca args...]
_ts_pki_issue() {
	local cadir=$1 out=$2 cn=$3 ext=$4 san=$5
	shift 5
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
	    -out "$out.key" 2>/dev/null
	chmod 600 "$out.key"
	openssl req -new -key "$out.key" -out "$out.csr" \
	    -subj "/O=tokensign tests/CN=$cn" -addext "subjectAltName=$san" \
	    2>/dev/null
	openssl ca -batch -notext -config "$cadir/ca.cnf" -extensions "$ext" \
	    -in "$out.csr" -out "$out.pem" "$@" 2>"$out.err" ||
	    { cat "$out.err" >&2; return 1; }
	rm -f "$out.csr" "$out.err"
}

# ts_pki_client NAME CN [SAN]: another client certificate from the main CA.
ts_pki_client() {
	local name=$1 cn=$2 san=${3:-URI:spiffe://ci.example/$2}
	_ts_pki_issue "$TS_PKI/ca" "$TS_PKI/$name" "$cn" v3_client "$san"
}

# ts_pki_issue_for PUBKEY OUT SERIAL: a server certificate (localhost,
# 127.0.0.1) from the test CA for a public key whose private half we do
# not hold.  OpenSSL 3.0 has no
# "x509 -new"; "x509 -req -force_pubkey" signs a CSR made with a throwaway
# key but puts PUBKEY in the certificate.
ts_pki_issue_for() {
	local pub=$1 out=$2 serial=$3
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
	    -out "$TS_TMP/throwaway.key" 2>/dev/null
	openssl req -new -key "$TS_TMP/throwaway.key" -out "$TS_TMP/srv.csr" \
	    -subj "/O=tokensign tests/CN=localhost" 2>/dev/null
	cat >"$TS_TMP/srv.ext" <<'EOF'
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = IP:127.0.0.1, DNS:localhost
EOF
	openssl x509 -req -in "$TS_TMP/srv.csr" -CA "$TS_PKI/ca.pem" \
	    -CAkey "$TS_PKI/ca.key" -set_serial "$serial" -days 30 -sha256 \
	    -force_pubkey "$pub" -extfile "$TS_TMP/srv.ext" -out "$out" \
	    2>"$TS_TMP/x509.err" || ts_fail "issue: $(cat "$TS_TMP/x509.err")"
	rm -f "$TS_TMP/throwaway.key" "$TS_TMP/srv.csr"
}

# ts_pki_crl: (re)generate $TS_PKI/crl.pem from the CA database.
ts_pki_crl() {
	openssl ca -batch -config "$TS_PKI/ca/ca.cnf" -gencrl \
	    -out "$TS_PKI/crl.pem" 2>/dev/null
}

ts_pki_setup() {
	local p=$TS_PKI
	mkdir -p "$p"
	_ts_pki_ca_init "$p/ca" "tokensign test CA"
	_ts_pki_ca_init "$p/ca2" "unrelated CA"
	cp "$p/ca/ca.pem" "$p/ca.pem"
	cp "$p/ca2/ca.pem" "$p/ca2.pem"
	ln -sf ca/ca.key "$p/ca.key"
	ln -sf ca2/ca.key "$p/ca2.key"

	_ts_pki_issue "$p/ca" "$p/server" "localhost" v3_server \
	    "IP:127.0.0.1,DNS:localhost"
	_ts_pki_issue "$p/ca2" "$p/server2" "localhost" v3_server \
	    "IP:127.0.0.1,DNS:localhost"
	local r
	for r in a b; do
		_ts_pki_issue "$p/ca" "$p/runner-$r" "runner-$r" v3_client \
		    "URI:spiffe://ci.example/runner-$r,DNS:runner-$r.ci.example"
	done
	# Expired: an explicit validity window in the past (openssl ca takes
	# -startdate/-enddate, so no faketime is needed).
	_ts_pki_issue "$p/ca" "$p/expired" "runner-expired" v3_client \
	    "URI:spiffe://ci.example/runner-expired" \
	    -startdate 20200101000000Z -enddate 20210101000000Z
	_ts_pki_issue "$p/ca" "$p/revoked" "runner-revoked" v3_client \
	    "URI:spiffe://ci.example/runner-revoked"
	openssl ca -batch -config "$p/ca/ca.cnf" -revoke "$p/revoked.pem" \
	    -crl_reason keyCompromise 2>/dev/null
	ts_pki_crl
	# Same CN as a legitimate runner, wrong issuer.
	_ts_pki_issue "$p/ca2" "$p/foreign" "runner-a" v3_client \
	    "URI:spiffe://ci.example/runner-a,DNS:runner-a.ci.example"
	export TS_PKI
}
