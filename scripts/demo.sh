#!/bin/bash
# README command 1: install packages, build, and run the main job on an
# embedded default: a SoftHSM token with a P-256 key in a temp dir, a local
# docker-registry, a pushed test image, the agent, sign and verify.
# Parts land with their issues; each step below is real, none is faked.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/deps.sh"
"$top/scripts/build.sh"
export TS_BIN=${BUILD_DIR:-$top/build} TS_SRC=$top
exec bash "$top/tests/lib/demo-run.sh"
