# tests/lib/registry.sh - a real docker-registry (CNCF distribution 2.8.2,
# the Debian package) on 127.0.0.1 with its own config and temp storage.
# Source tests/lib/common.sh first.
#
#   ts_registry_start [NAME]           anonymous registry
#   ts_registry_start_auth NAME USER PASS   htpasswd (bcrypt) Basic auth
#
# Each sets, for NAME (default "reg"):
#   TS_REG_<NAME>_ADDR   127.0.0.1:PORT
#   TS_REG_<NAME>_DIR    its temp dir (config.yml, storage, log)
# and, for the first registry started, TS_REGISTRY (= its ADDR).
# The registry is stopped by the common.sh cleanup trap.

ts_registry_have() { command -v docker-registry >/dev/null 2>&1; }

# _ts_registry_launch NAME AUTHBLOCK
# Optional env: TS_REG_HOST (listen address, default 127.0.0.1),
# TS_REG_TLS_CERT and TS_REG_TLS_KEY (serve HTTPS).
_ts_registry_launch() {
	local name=$1 authblock=$2 dir port pid tries=0
	local host=${TS_REG_HOST:-127.0.0.1} tlsblock=""
	if [ -n "${TS_REG_TLS_CERT:-}" ]; then
		tlsblock="  tls:
    certificate: $TS_REG_TLS_CERT
    key: $TS_REG_TLS_KEY"
	fi
	ts_registry_have || { echo "SKIP: docker-registry not installed" >&2; exit 77; }
	while :; do
		dir="$TS_TMP/registry-$name"
		mkdir -p "$dir/storage"
		port=$(ts_free_port)
		cat >"$dir/config.yml" <<CFG
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: $host:$port
  secret: ts-test-secret-$name
  headers:
    X-Content-Type-Options: [nosniff]
$tlsblock
$authblock
CFG
		docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 &
		pid=$!
		ts_bg_track "$pid"
		# Ready when /v2/ answers at all (200, or 401 with auth on) and
		# the answer was ours: a registry that lost the port to another
		# test's (the port was free when probed) exits at once, while
		# the other one answers the ping.
		if ts_wait_for _ts_registry_ping "$host" "$port" &&
		    sleep 0.3 && kill -0 "$pid" 2>/dev/null; then
			break
		fi
		kill "$pid" 2>/dev/null || true
		tries=$((tries + 1))
		# A port race with another test: try another port.
		[ $tries -lt 3 ] || { cat "$dir/log" >&2; ts_fail "registry $name did not start"; }
	done
	printf -v "TS_REG_${name}_ADDR" '%s' "$host:$port"
	printf -v "TS_REG_${name}_DIR" '%s' "$dir"
	printf -v "TS_REG_${name}_PID" '%s' "$pid"
	export "TS_REG_${name}_ADDR" "TS_REG_${name}_DIR"
	if [ -z "${TS_REGISTRY:-}" ]; then
		TS_REGISTRY="$host:$port"
		export TS_REGISTRY
	fi
}

_ts_registry_ping() {
	local code scheme=http
	[ -z "${TS_REG_TLS_CERT:-}" ] || scheme=https
	code=$(curl -sk -o /dev/null -w '%{http_code}' "$scheme://$1:$2/v2/") || return 1
	[ "$code" = 200 ] || [ "$code" = 401 ]
}

ts_registry_start() {
	_ts_registry_launch "${1:-reg}" ""
}

# ts_registry_start_auth NAME USER PASS: bcrypt htpasswd file (distribution
# accepts only bcrypt entries).
ts_registry_start_auth() {
	local name=$1 user=$2 pass=$3 dir="$TS_TMP/registry-$1"
	command -v htpasswd >/dev/null 2>&1 ||
	    { echo "SKIP: htpasswd (apache2-utils) not installed" >&2; exit 77; }
	mkdir -p "$dir"
	# The password goes through stdin (-i), never argv.
	printf '%s' "$pass" | htpasswd -iBc "$dir/htpasswd" "$user" 2>/dev/null ||
	    ts_fail "htpasswd failed"
	_ts_registry_launch "$name" "auth:
  htpasswd:
    realm: ts-basic-realm
    path: $dir/htpasswd"
}

# ts_registry_start_token NAME ISSUER_KEY_DIR: a registry that wants Bearer
# tokens from a token service (see tests/lib/tokenservice.py).  Args: NAME,
# REALM URL, path to the PEM cert bundle the tokens are signed with.
ts_registry_start_token() {
	local name=$1 realm=$2 certs=$3
	_ts_registry_launch "$name" "auth:
  token:
    realm: $realm
    service: ts-registry
    issuer: ts-token-issuer
    rootcertbundle: $certs"
}

# ts_registry_log NAME: print the registry's log (for failure messages).
ts_registry_log() { local v="TS_REG_${1:-reg}_DIR"; cat "${!v}/log" >&2 || true; }

# ts_regfault_start NAME UPSTREAM_ADDR: a fault-injecting proxy
# (tests/lib/regfault.py) in front of a registry.  Sets TS_FAULT_<NAME>_ADDR,
# TS_FAULT_<NAME>_RULES (write a JSON rule list there) and _LOG.
ts_regfault_start() {
	local name=$1 up=$2 dir="$TS_TMP/fault-$1" pid
	mkdir -p "$dir"
	echo '[]' >"$dir/rules.json"
	: >"$dir/log"
	python3 "$TS_SRC/tests/lib/regfault.py" "$dir/port" "$up" \
	    "$dir/rules.json" "$dir/log" 2>"$dir/stderr" &
	pid=$!
	ts_bg_track "$pid"
	TS_WAIT=10 ts_wait_for test -s "$dir/port" || ts_fail "fault proxy did not start"
	printf -v "TS_FAULT_${name}_ADDR" '%s' "127.0.0.1:$(cat "$dir/port")"
	printf -v "TS_FAULT_${name}_RULES" '%s' "$dir/rules.json"
	printf -v "TS_FAULT_${name}_LOG" '%s' "$dir/log"
}

# ts_regtoken_start NAME USER PASS [REFRESH [REALM_PATH]]: a token service
# (tests/lib/regtoken.py) and a docker-registry that trusts it; REFRESH is
# an OAuth2 refresh token it accepts for USER; REALM_PATH (default /token)
# is the realm the registry names.  Sets TS_REG_<NAME>_ADDR and
# TS_TOKEN_<NAME>_LOG.
ts_regtoken_start() {
	local name=$1 user=$2 pass=$3 refresh=${4:-} realm=${5:-/token}
	local dir="$TS_TMP/token-$1" pid port
	mkdir -p "$dir"
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$dir/key.pem" \
	    -out "$dir/cert.pem" -days 2 -subj "/CN=ts-token-issuer" \
	    >/dev/null 2>&1 || ts_fail "cannot make the token signing cert"
	(umask 077; printf '%s:%s\n' "$user" "$pass" >"$dir/users"
	 [ -z "$refresh" ] || printf '@refresh %s %s\n' "$refresh" "$user" >>"$dir/users")
	: >"$dir/log"
	python3 "$TS_SRC/tests/lib/regtoken.py" "$dir/port" "$dir/key.pem" \
	    "$dir/cert.pem" ts-token-issuer ts-registry "$dir/users" \
	    "$dir/log" 2>"$dir/stderr" &
	pid=$!
	ts_bg_track "$pid"
	TS_WAIT=10 ts_wait_for test -s "$dir/port" || ts_fail "token service did not start"
	port=$(cat "$dir/port")
	printf -v "TS_TOKEN_${name}_LOG" '%s' "$dir/log"
	ts_registry_start_token "$name" "http://127.0.0.1:$port$realm" "$dir/cert.pem"
}

# ts_reg_expect_fail DESC EXPECTED_RC PATTERN CMD...: as ts_expect_fail in
# common.sh, but matching with a here-string: `echo "$out" | grep -q` under
# `set -o pipefail` fails at random when grep exits before echo's last
# write (SIGPIPE), which showed up under a loaded ctest run.
ts_reg_expect_fail() {
	local desc=$1 want=$2 pat=$3 rc=0 out
	shift 3
	out=$("$@" 2>&1) || rc=$?
	if [ "$want" = nonzero ]; then
		[ $rc -ne 0 ] || ts_fail "$desc: expected failure, got success: $out"
	else
		[ $rc -eq "$want" ] || ts_fail "$desc: expected exit $want, got $rc: $out"
	fi
	grep -Eq -- "$pat" <<<"$out" || ts_fail "$desc: output lacks /$pat/: $out"
	ts_pass "$desc"
}
