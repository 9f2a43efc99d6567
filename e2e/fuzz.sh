#!/usr/bin/env bash
# Runs every fuzz target of the validators and the flow loader for a bounded
# number of inputs each (FUZZTIME, default 5000x). A count, not a duration:
# Go 1.26's fuzz coordinator can report "context deadline exceeded" at the
# end of a -fuzztime duration when the machine is busy (go.dev/issue/75804,
# fixed in Go 1.27), failing a run that found nothing. Fails on a crash or on a value a
# validator accepts that a dial string would treat as syntax; the failing
# input is written under flows/testdata/fuzz/<target>/ to be committed with
# the fix.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-5000x}
targets=(FuzzLoad FuzzNormalizeNumber FuzzNormalizeNumberSyntax FuzzParseDTMF FuzzValidateCallerName FuzzParseEndpoint FuzzValidateMediaURI)
for t in "${targets[@]}"; do
	echo "== $t ($FUZZTIME)"
	go test ./flows/ -run '^$' -fuzz "^${t}\$" -fuzztime "$FUZZTIME"
done
echo "== FuzzConvert, the Connect importer ($FUZZTIME)"
go test ./flows/connect/ -run '^$' -fuzz '^FuzzConvert$' -fuzztime "$FUZZTIME"
echo "fuzz: $((${#targets[@]} + 1)) targets passed"
