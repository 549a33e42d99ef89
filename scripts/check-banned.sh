#!/bin/bash
# Fails when project C sources call a banned function (style.md section 8).
set -eu
top=${1:-.}
cd "$top"
banned='strcpy|strcat|sprintf|vsprintf|gets|strtok|atoi|atol|sscanf|strncpy|alloca'
hits=$(git ls-files -- '*.c' '*.h' 2>/dev/null | grep -v '^tests/shim/' |
    xargs -r grep -nE "(^|[^_a-zA-Z0-9])($banned)[[:space:]]*\(" |
    grep -vE '^[^:]+:[0-9]+:[[:space:]]*(\*|/\*)' || true)
if [ -n "$hits" ]; then
	echo "banned functions used:" >&2
	echo "$hits" >&2
	exit 1
fi
echo "no banned functions"
