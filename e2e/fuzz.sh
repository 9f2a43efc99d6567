#!/usr/bin/env bash
# Runs every fuzz target of the validators and the flow loader for a bounded
# time each (FUZZTIME, default 10s). Fails on a crash or on a value a
# validator accepts that a dial string would treat as syntax; the failing
# input is written under flows/testdata/fuzz/<target>/ to be committed with
# the fix.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-10s}
targets=(FuzzLoad FuzzNormalizeNumber FuzzNormalizeNumberSyntax FuzzParseDTMF FuzzValidateCallerName FuzzParseEndpoint FuzzValidateMediaURI)
for t in "${targets[@]}"; do
	echo "== $t ($FUZZTIME)"
	go test ./flows/ -run '^$' -fuzz "^${t}\$" -fuzztime "$FUZZTIME"
done
echo "fuzz: ${#targets[@]} targets passed"
