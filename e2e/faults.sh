#!/usr/bin/env bash
# The fault tests alone (make faults): the fault matrix, the Sentinel
# failover, the PBX restart and the silent websocket, against a fresh
# stack that is torn down afterwards. make test runs them too.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH=$PATH:/usr/local/go/bin
export ARIFLOW_STACK_DIR=${ARIFLOW_STACK_DIR:-/tmp/ariflow-faults-stack}
export ARIFLOW_STACK_PORT_BASE=${ARIFLOW_STACK_PORT_BASE:-26000}
export ARIFLOW_STACK_ENV=$ARIFLOW_STACK_DIR/stack.env
bash e2e/setup.sh
bash e2e/stack.sh down >/dev/null 2>&1 || true
bash e2e/stack.sh up --no-ariflow
status=0
ARIFLOW_E2E_REQUIRED=1 go test -count=1 -timeout 30m -v ./e2e/ \
	-run 'TestFaultMatrix|TestSentinelFailoverMidCall|TestPBXRestartCleansUp|TestSilentWebsocketReplaced|TestTwoAppsShareOneRedis' || status=$?
if [ $status -ne 0 ]; then
	ARIFLOW_STACK_KEEP_LOGS=1 bash e2e/stack.sh down
else
	bash e2e/stack.sh down
fi
exit $status
