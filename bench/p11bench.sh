#!/bin/bash
# bench/p11bench.sh - signatures/s through tokensign's pkcs11/ layer
# (bench/p11bench) against ../shared/baselines/p11loop on the same SoftHSM
# keys in the same run: P-256 and RSA-2048, 1 and 2 threads.  Runs are
# interleaved (p11loop, ours, p11loop, ours ...) so drift on a shared
# machine hits both; the ratio shown is the median of the per-pair ratios,
# and CPU microseconds per signature (user+sys) are shown beside it.
# Target: ours >= 0.95x p11loop.
#
# usage: bench/p11bench.sh [BUILD_DIR] [SECONDS] [ROUNDS]   (default build 2 5)
# TS_BENCH_EXTRA=ed25519:eddsa adds the Ed25519 key.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
export TS_SRC=$here TS_BIN=$(cd "${1:-$here/build}" && pwd)
SECS=${2:-2}
ROUNDS=${3:-5}
. "$TS_SRC/tests/lib/common.sh"
. "$TS_SRC/tests/lib/softhsm.sh"
ts_softhsm_setup p256
ts_softhsm_keygen ts-main rsa:2048 rsa2048 03
ts_softhsm_keygen ts-main EC:edwards25519 ed25519 05
BENCH=$TS_BIN/bench/p11bench
[ -x "$BENCH" ] || ts_fail "build $BENCH first"
bl=$TS_TMP/baselines
cp -r "$TS_SHARED/baselines" "$bl"
make -s -C "$bl" p11loop >/dev/null || ts_fail "cannot build p11loop"

# run CMD...: prints "sigs_per_s cpu_us_per_sig" (CPU = user+sys of the
# child, which a busy shared machine disturbs much less than wall time)
run() {
	python3 - "$@" <<'PY'
import re, resource, subprocess, sys
out = subprocess.run(sys.argv[1:], check=True, capture_output=True, text=True).stdout
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
sigs = int(re.search(r"sigs=(\d+)", out).group(1))
rate = float(re.search(r"sigs_per_s=([\d.]+)", out).group(1))
print("%.0f %.1f" % (rate, (ru.ru_utime + ru.ru_stime) * 1e6 / sigs))
PY
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

printf '%-8s %-7s %10s %10s %11s %9s %9s %9s\n' key threads 'p11loop/s' 'ours/s' \
    'ratio(med)' 'min..max' 'us/sig' 'us/sig'
printf '%-8s %-7s %10s %10s %11s %9s %9s %9s\n' '' '' '' '' '' '' p11loop ours
for spec in p256:ecdsa rsa2048:rsa ${TS_BENCH_EXTRA:-}; do
	key=${spec%%:*} mech=${spec#*:}
	for th in 1 2; do
		rb=() ro=() rr=() cb=() co=()
		for _ in $(seq "$ROUNDS"); do
			# p11loop takes the PIN on argv; it is a throwaway test PIN
			read -r b bc < <(run "$bl/p11loop" "$TS_MODULE" ts-main \
			    "$TS_PIN" "$key" "$mech" "$SECS" "$th")
			read -r o oc < <(run "$BENCH" "$TS_MODULE" ts-main \
			    "$TS_PIN_FILE" "$key" "$mech" "$SECS" "$th")
			rb+=("$b") ro+=("$o") cb+=("$bc") co+=("$oc")
			rr+=("$(echo "$o / $b" | bc -l)")
		done
		printf '%-8s %-7s %10.0f %10.0f %11.3f %4.2f..%4.2f %9.1f %9.1f\n' \
		    "$key" "$th" \
		    "$(printf '%s\n' "${rb[@]}" | median)" \
		    "$(printf '%s\n' "${ro[@]}" | median)" \
		    "$(printf '%s\n' "${rr[@]}" | median)" \
		    "$(printf '%s\n' "${rr[@]}" | sort -g | head -1)" \
		    "$(printf '%s\n' "${rr[@]}" | sort -g | tail -1)" \
		    "$(printf '%s\n' "${cb[@]}" | median)" \
		    "$(printf '%s\n' "${co[@]}" | median)"
	done
done
uptime
ts_pass "benchmark ran"
