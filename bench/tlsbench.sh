#!/bin/bash
# bench/tlsbench.sh BUILD_DIR [SECONDS] [CLIENTS]: issue 5 figures.
# Starts SoftHSM (P-256), a throwaway PKI and one agent listening on both
# a Unix socket and tls://127.0.0.1, then runs build/bench/tlsbench:
# signatures/s with CLIENTS persistent clients over the Unix socket and
# over mutual TLS, and new TLS connections/s (full and resumed).
# Figures go in docs/performance-tls.md.  Run by hand (never in ctest).
set -euo pipefail
TS_BIN=$(cd "${1:?usage: tlsbench.sh BUILD_DIR [SECONDS] [CLIENTS]}" && pwd)
TS_SRC=$(cd "$(dirname "$0")/.." && pwd)
export TS_BIN TS_SRC
secs=${2:-3}
clients=${3:-16}
. "$TS_SRC/tests/lib/common.sh"
. "$TS_SRC/tests/lib/softhsm.sh"
. "$TS_SRC/tests/lib/pki.sh"
ts_softhsm_setup p256
ts_pki_setup
port=$(ts_free_port)
cat >"$TS_TMP/policy.json" <<'EOF'
{"version": 1, "rules": [
 {"name": "bench", "match": {"tls_cn": "runner-a"}, "keys": "*",
  "repositories": "**"},
 {"name": "local", "match": {"transport": "unix"}, "keys": "*",
  "repositories": "**"}]}
EOF
"$TS_AGENT" -D -a "$TS_TMP/agent.sock" --module "$TS_MODULE" \
    --pin-source "$TS_PIN_FILE" --listen "tls://127.0.0.1:$port" \
    --tls-cert "$TS_PKI/server.pem" --tls-key "$TS_PKI/server.key" \
    --client-ca "$TS_PKI/ca.pem" --policy "$TS_TMP/policy.json" \
    --max-connections 1024 >/dev/null 2>"$TS_TMP/agent.log" &
ts_bg_track $!
ts_wait_for bash -c "exec 3<>/dev/tcp/127.0.0.1/$port"
key=$(TOKENSIGN_AUTH_SOCK=$TS_TMP/agent.sock "$TS_CLIENT" keys |
    awk '$4 == "p256" { print $1 }')
printf '{"critical":{"identity":{"docker-reference":"registry.example.com/bench/app"},"image":{"docker-manifest-digest":"sha256:%064d"},"type":"cosign container image signature"},"optional":null}' 1 \
    >"$TS_TMP/payload.json"
TOKENSIGN_TLS_CERT=$TS_PKI/runner-a.pem TOKENSIGN_TLS_KEY=$TS_PKI/runner-a.key \
    TOKENSIGN_TLS_CA=$TS_PKI/ca.pem TOKENSIGN_TLS_CONFIG=/dev/null \
    "$TS_BIN/bench/tlsbench" -t "tls://127.0.0.1:$port" \
    -u "$TS_TMP/agent.sock" -k "$key" -p "$TS_TMP/payload.json" \
    -c "$clients" -s "$secs"
TS_CHECKS=1
