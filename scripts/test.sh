#!/bin/bash
# README command 2: install packages, build, run the whole suite via ctest.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/deps.sh"
"$top/scripts/build.sh" "$@"
build=${BUILD_DIR:-$top/build}
cd "$build"
ctest --output-on-failure -j"$(nproc)" --timeout 900
