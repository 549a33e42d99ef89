#!/bin/bash
# Fails on clang-format drift in tracked C sources (style.md section 2).
set -eu
cd "${1:-.}"
fmt=${CLANG_FORMAT:-clang-format}
bad=0
for f in $(git ls-files -- '*.c' '*.h'); do
	if ! "$fmt" --style=file --dry-run --Werror "$f" >/dev/null 2>&1; then
		echo "format drift: $f" >&2
		bad=1
	fi
done
[ $bad -eq 0 ] && echo "formatting clean"
exit $bad
