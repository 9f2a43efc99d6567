#!/usr/bin/env bash
# The chaos soak (make chaos; see docs/chaos.md) on a stack of its own,
# torn down afterwards; its logs and report are kept.
#   ARIFLOW_CHAOS=10m ARIFLOW_CHAOS_CALLERS=70 ARIFLOW_CHAOS_SEED=... bash e2e/chaos.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH=$PATH:/usr/local/go/bin
export ARIFLOW_STACK_DIR=${ARIFLOW_STACK_DIR:-/tmp/ariflow-chaos-stack}
export ARIFLOW_STACK_PORT_BASE=${ARIFLOW_STACK_PORT_BASE:-31000}
export ARIFLOW_STACK_ENV=$ARIFLOW_STACK_DIR/stack.env
export ARIFLOW_CHAOS=${ARIFLOW_CHAOS:-10m}
bash e2e/setup.sh
bash e2e/stack.sh down >/dev/null 2>&1 || true
bash e2e/stack.sh up --no-ariflow
status=0
ARIFLOW_E2E_REQUIRED=1 go test -count=1 -timeout "${ARIFLOW_CHAOS_TIMEOUT:-3h}" -v -run '^TestChaos$' ./e2e/ || status=$?
ARIFLOW_STACK_KEEP_LOGS=1 bash e2e/stack.sh down
echo "chaos: logs and chaos-report.txt kept in $ARIFLOW_STACK_DIR/logs"
exit $status
