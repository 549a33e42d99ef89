#!/bin/bash
# bench/regbench.sh - tokensign sign of 100 images in one call against the
# minimal registry exchange (shared/baselines/regloop), same registry, same
# run; 1 and 4 jobs; HTTP requests per signature; `tokensign version`
# start-up time.  Run by hand from a build:
#   TS_BIN=build TS_SRC=. bench/regbench.sh [N_IMAGES]
# Signing goes through the real agent and a SoftHSM P-256 key; a file-key
# run is shown too, to separate agent cost from registry cost.
set -euo pipefail
TS_BIN=$(cd "${TS_BIN:-build}" && pwd)
TS_SRC=$(cd "${TS_SRC:-.}" && pwd)
export TS_BIN TS_SRC
N=${1:-100}
. "$TS_SRC/tests/lib/common.sh"
. "$TS_SRC/tests/lib/softhsm.sh"
. "$TS_SRC/tests/lib/registry.sh"
C=$TS_CLIENT

# regloop from a temp copy (shared/ is read-only)
cp -r "$TS_SHARED/baselines" "$TS_TMP/bl"
make -s -C "$TS_TMP/bl" regloop >/dev/null 2>&1 || make -s -C "$TS_TMP/bl" >/dev/null
REGLOOP=$TS_TMP/bl/regloop

ts_softhsm_setup p256 >/dev/null
"$TS_AGENT" -D -a "$TS_TMP/agent.sock" --module "$TS_MODULE" --pin-source "$TS_PIN_FILE" \
    >/dev/null 2>"$TS_TMP/agent.log" &
ts_bg_track $!
export TOKENSIGN_AUTH_SOCK=$TS_TMP/agent.sock
TS_WAIT=30 ts_wait_for "$C" agent status || ts_fail "agent did not start"
ts_registry_start
R=$TS_REGISTRY
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$TS_TMP/k" 2>/dev/null

# N distinct small manifests over one config blob, PUT directly (fast)
cfg='{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"config":{}}'
cd=$(printf '%s' "$cfg" | sha256sum | cut -d' ' -f1)
mkimages() { # PREFIX
	local loc i m
	loc=$(curl -s -D - -o /dev/null -X POST "http://$R/v2/bench/$1/blobs/uploads/" | tr -d '\r' | sed -n 's/^Location: //Ip')
	curl -sf -X PUT -H 'Content-Type: application/octet-stream' --data-binary "$cfg" "$loc&digest=sha256:$cd" >/dev/null
	for i in $(seq 1 "$N"); do
		m="{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"size\":${#cfg},\"digest\":\"sha256:$cd\"},\"layers\":[],\"annotations\":{\"n\":\"$1-$i\"}}"
		curl -sf -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
		    --data-binary "$m" "http://$R/v2/bench/$1/manifests/i$i" >/dev/null
	done
}
refs() { local i; for i in $(seq 1 "$N"); do echo "$R/bench/$1:i$i"; done; }

now() { date +%s.%N; }
run_sign() { # LABEL PREFIX JOBS KEY
	local t0 t1 out
	mkimages "$2"
	t0=$(now)
	out=$(TOKENSIGN_STATS=1 "$C" sign --jobs "$3" --key "$4" $(refs "$2") 2>&1 | grep -v WARNING || true)
	t1=$(now)
	local req
	req=$(sed -n 's/.*requests=\([0-9]*\).*/\1/p' <<<"$out")
	python3 -c "import sys; n=$N; t=$t1-$t0; print('%-28s %6.1f sig/s  %5.2f s  %4.2f req/sig' % (sys.argv[1], n/t, t, $req/n))" "$1"
	echo "$N $t0 $t1" >"$TS_TMP/last"
}
rate() { python3 -c "n,a,b=open('$TS_TMP/last').read().split(); print(int(n)/(float(b)-float(a)))"; }

# The machine is shared and noisy: alternate baseline and ours REPS times
# and compare medians of the same run.
REPS=${REPS:-3}
regloop_rate() { "$REGLOOP" "http://$R" bench/regloop 3 "$1" | sed -n 's/.*sigs_per_s=\([0-9.]*\).*/\1/p'; }
median() { python3 -c 'import statistics,sys; print("%.1f" % statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }
declare -a RL1 RL4 S1 S4 F1 F4
for rep in $(seq 1 "$REPS"); do
	echo "== round $rep =="
	RL1+=("$(regloop_rate 1)"); echo "regloop 1 proc: ${RL1[-1]} sig/s"
	run_sign "agent p256, 1 job" "a1r$rep" 1 p256; S1+=("$(rate)")
	RL4+=("$(regloop_rate 4)"); echo "regloop 4 procs: ${RL4[-1]} sig/s"
	run_sign "agent p256, 4 jobs" "a4r$rep" 4 p256; S4+=("$(rate)")
done
run_sign "file key, 1 job" f1 1 "file:$TS_TMP/k"
run_sign "file key, 4 jobs" f4 4 "file:$TS_TMP/k"
m_rl1=$(median "${RL1[@]}"); m_s1=$(median "${S1[@]}")
m_rl4=$(median "${RL4[@]}"); m_s4=$(median "${S4[@]}")
echo "== medians of $REPS rounds =="
echo "1 job:  regloop $m_rl1 sig/s, tokensign $m_s1 sig/s"
echo "4 jobs: regloop $m_rl4 sig/s, tokensign $m_s4 sig/s"
python3 -c "print('ratio to regloop: 1 job %.2f, 4 jobs %.2f (target >= 0.90)' % ($m_s1/$m_rl1, $m_s4/$m_rl4))"

echo "== start-up: tokensign version =="
if command -v hyperfine >/dev/null; then
	hyperfine -N --warmup 20 "$C version"
else
	t0=$(now)
	for i in $(seq 1 300); do "$C" version >/dev/null; done
	t1=$(now)
	python3 -c "print('tokensign version: %.2f ms per run (300 runs, includes fork+exec)' % (($t1-$t0)/300*1000))"
	t0=$(now)
	for i in $(seq 1 300); do /bin/true; done
	t1=$(now)
	python3 -c "print('/bin/true:         %.2f ms per run (fork+exec floor)' % (($t1-$t0)/300*1000))"
fi
ts_pass bench
