#!/usr/bin/env bash
# The demo: start the stack with ariflow on flows/examples, place the seed
# scenario's call through it, print the timeline, stop the stack.
#   e2e/demo.sh [--keep]   --keep leaves the stack up to call into it again
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export ARIFLOW_STACK_DIR=${ARIFLOW_STACK_DIR:-/tmp/ariflow-demo-stack}
export ARIFLOW_STACK_PORT_BASE=${ARIFLOW_STACK_PORT_BASE:-25000}
export ARIFLOW_STACK_ENV=$ARIFLOW_STACK_DIR/stack.env
keep=0
[ "${1:-}" = --keep ] && keep=1
bash e2e/setup.sh
bash e2e/stack.sh down >/dev/null 2>&1 || true
bash e2e/stack.sh up
status=0
go run ./e2e/demo || status=$?
echo
echo "ariflow's own log of the call ($ARIFLOW_STACK_DIR/logs/ariflow.log):"
grep -E 'msg="?(call entered|step|transfer|input collected|call ended)' "$ARIFLOW_STACK_DIR/logs/ariflow.log" |
	sed -E 's/ (channel|entry|version|flow)=[^ ]+//g' || true
if [ $keep = 1 ]; then
	echo "stack left up: $ARIFLOW_STACK_ENV; stop it with: ARIFLOW_STACK_DIR=$ARIFLOW_STACK_DIR e2e/stack.sh down"
else
	bash e2e/stack.sh down
fi
exit $status
