#!/usr/bin/env bash
# The benchmark and the soak, on a stack of their own.
#   e2e/bench.sh [ariflow-bench flags]     e.g. -calls 300 -concurrency 100 -json bench.json
#   e2e/bench.sh -soak 10m -concurrency 100
#   e2e/bench.sh -calls 300 -concurrency 100 -rate 50 -trace   the same with every call traced (OTLP), for the A/B
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export ARIFLOW_STACK_DIR=${ARIFLOW_STACK_DIR:-/tmp/ariflow-bench-stack}
export ARIFLOW_STACK_PORT_BASE=${ARIFLOW_STACK_PORT_BASE:-27000}
export ARIFLOW_STACK_ENV=$ARIFLOW_STACK_DIR/stack.env
bash e2e/setup.sh
bash e2e/stack.sh down >/dev/null 2>&1 || true
bash e2e/stack.sh up --no-ariflow
trap 'ARIFLOW_STACK_KEEP_LOGS=1 bash e2e/stack.sh down' EXIT
go run ./cmd/ariflow-bench -repo . "$@"
