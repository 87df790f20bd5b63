#!/usr/bin/env bash
# fuzz.sh [FUZZTIME]: runs every fuzz target of the module for FUZZTIME (default 10s) each,
# starting from its checked-in seed corpus (PKG/testdata/fuzz/NAME/). Targets are found with
# `go test -list`, so a new FuzzXxx is picked up without editing this file. A failing input is
# written to PKG/testdata/fuzz/NAME/ by go test: commit it as a regression seed once fixed.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${1:-10s}
GO=${GO:-go}

# `go test -list` prints a package's matching names, then "ok  PKG ...".
targets=$($GO test -list '^Fuzz' ./... | awk '/^Fuzz/ { names = names " " $1 } /^ok / { if (names != "") print $2 names; names = "" }')
if [ -z "$targets" ]; then
	echo "fuzz.sh: no fuzz targets found" >&2
	exit 1
fi
n=0
while read -r pkg names; do
	for name in $names; do
		echo "== $pkg $name ($fuzztime)"
		$GO test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg"
		n=$((n + 1))
	done
done <<<"$targets"
echo "fuzz.sh: $n targets, $fuzztime each: no failure"
