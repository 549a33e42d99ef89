#!/bin/bash
# The demo body (scripts/demo.sh runs it after building).
set -euo pipefail
"$TS_BIN/client/tokensign" version
