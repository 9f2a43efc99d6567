#!/usr/bin/env bash
# The test command: unit tests, then the end-to-end suite against a fresh
# stack (two Asterisk 22, Redis), which is torn down afterwards.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH=$PATH:/usr/local/go/bin
export ARIFLOW_STACK_DIR=${ARIFLOW_STACK_DIR:-/tmp/ariflow-test-stack}
export ARIFLOW_STACK_PORT_BASE=${ARIFLOW_STACK_PORT_BASE:-26000}
export ARIFLOW_STACK_ENV=$ARIFLOW_STACK_DIR/stack.env
bash e2e/setup.sh

echo "== go vet"
go vet ./...
echo "== flows: validate the shipped examples"
go run ./cmd/ariflow validate flows/examples e2e/testdata/flows
echo "== observability: the alert rules (promtool) and the metric names the dashboard and rules use"
promtool check rules deploy/observability/alerts.yml
go test -count=1 ./deploy/observability/
echo "== unit tests"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
go test -count=1 -v $(go list ./... | grep -v /e2e) >"$out/unit" 2>&1 || { cat "$out/unit"; exit 1; }
grep -E '^(ok|FAIL|---)' "$out/unit" | grep -v -- '--- PASS' || true
echo "== fuzz: each validator and the flow loader, ${FUZZTIME:-5000x} inputs each"
bash e2e/fuzz.sh

echo "== end-to-end tests (PBX + carrier Asterisk, Redis)"
bash e2e/stack.sh down >/dev/null 2>&1 || true
bash e2e/stack.sh up --no-ariflow
status=0
ARIFLOW_E2E_REQUIRED=1 go test -count=1 -timeout 20m -v ./e2e/ 2>&1 | tee "$out/e2e" || status=$?
if [ $status -ne 0 ]; then
	echo "== e2e failed; logs kept in $ARIFLOW_STACK_DIR/logs:"
	for f in "$ARIFLOW_STACK_DIR"/logs/ariflow-e2e.log "$ARIFLOW_STACK_DIR"/logs/pbx.log; do
		echo "--- tail of $f"
		tail -40 "$f" || true
	done
	ARIFLOW_STACK_KEEP_LOGS=1 bash e2e/stack.sh down
else
	bash e2e/stack.sh down
fi
# >>> container tests (set by .ci/run): docker-compose.yml through podman
touch "$out/containers"
if [ "${ARIFLOW_CONTAINER_TESTS:-}" = 1 ]; then
	echo "== container tests (the shipped Dockerfiles and docker-compose.yml, seed call through them)"
	bash e2e/containers/test.sh 2>&1 | tee "$out/containers" || status=1
fi
# <<< container tests
# One closing line for the whole run, subtests included.
echo "tests: $(cat "$out/unit" "$out/e2e" "$out/containers" | grep -c -- '--- PASS') passed, $(cat "$out/unit" "$out/e2e" "$out/containers" | grep -c -- '--- FAIL' || true) failed"
exit $status
