#!/bin/bash
# Configures and builds into ${BUILD_DIR:-build}.  Extra arguments go to
# cmake (e.g. -DTOKENSIGN_SANITIZE=ON).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$top/build}
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo} "$@" >/dev/null
cmake --build "$build" -j"$(nproc)"
