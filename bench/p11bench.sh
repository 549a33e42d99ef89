#!/bin/bash
# bench/p11bench.sh - signatures/s through tokensign's pkcs11/ layer
# (bench/p11bench) against ../shared/baselines/p11loop on the same SoftHSM
# keys in the same run: P-256 and RSA-2048, 1 and 2 threads.  Runs are
# interleaved (p11loop, ours, p11loop, ours ...) so drift on a shared
# machine hits both.  Target: ours >= 0.95x p11loop.
#
# usage: bench/p11bench.sh [BUILD_DIR] [SECONDS] [ROUNDS]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
export TS_SRC=$here TS_BIN=$(cd "${1:-$here/build}" && pwd)
SECS=${2:-3}
ROUNDS=${3:-1}
. "$TS_SRC/tests/lib/common.sh"
. "$TS_SRC/tests/lib/softhsm.sh"
ts_softhsm_setup p256
ts_softhsm_keygen ts-main rsa:2048 rsa2048 03
BENCH=$TS_BIN/bench/p11bench
[ -x "$BENCH" ] || ts_fail "build $BENCH first"
bl=$TS_TMP/baselines
cp -r "$TS_SHARED/baselines" "$bl"
make -s -C "$bl" p11loop >/dev/null || ts_fail "cannot build p11loop"

rate() { sed -n 's/.*sigs_per_s=\([0-9.]*\).*/\1/p'; }
printf '%-10s %-7s %12s %12s %7s\n' key threads p11loop ours ratio
for spec in p256:ecdsa rsa2048:rsa; do
	key=${spec%%:*} mech=${spec#*:}
	for th in 1 2; do
		base=0 ours=0
		for _ in $(seq "$ROUNDS"); do
			# p11loop takes the PIN on argv; it is a throwaway test PIN
			b=$("$bl/p11loop" "$TS_MODULE" ts-main "$TS_PIN" "$key" \
			    "$mech" "$SECS" "$th" | rate)
			o=$("$BENCH" "$TS_MODULE" ts-main "$TS_PIN_FILE" "$key" \
			    "$mech" "$SECS" "$th" | rate)
			base=$(echo "$base + $b" | bc)
			ours=$(echo "$ours + $o" | bc)
		done
		printf '%-10s %-7s %12.0f %12.0f %7.3f\n' "$key" "$th" \
		    "$(echo "$base / $ROUNDS" | bc -l)" \
		    "$(echo "$ours / $ROUNDS" | bc -l)" \
		    "$(echo "$ours / $base" | bc -l)"
	done
done
ts_pass "benchmark ran"
