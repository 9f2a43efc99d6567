#!/usr/bin/env bash
# The resume path's per-call timeline (docs/performance.md): the benchmark
# one call at a time on its own stack, the loopback captured, and for each
# far end's BYE every step to the agent's INVITE.
#   e2e/timeline.sh                         60 calls, one at a time
#   e2e/timeline.sh -calls 20 -exectrace exec.trace   more bench flags
# Needs dumpcap and tshark (Debian: tshark). Keeps the capture as
# timeline.pcapng (TIMELINE_PCAP sets another path).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
for t in dumpcap tshark; do
	command -v "$t" >/dev/null || { echo "timeline: $t is missing (apt-get install tshark)" >&2; exit 2; }
done
base=${ARIFLOW_STACK_PORT_BASE:-27000}
pcap=${TIMELINE_PCAP:-$PWD/timeline.pcapng}
ports="port $((base + 60)) or port $((base + 70)) or port $((base + 88)) or port $((base + 79))"
dumpcap -q -i lo -f "$ports" -w "$pcap" &
cap=$!
trap 'kill $cap 2>/dev/null || true' EXIT
sleep 1 # dumpcap is listening before the first call
bash e2e/bench.sh -calls 60 -concurrency 1 -rate 1 "$@" >&2
sleep 1
kill $cap
wait $cap 2>/dev/null || true
mapfile -t fields < <(go run ./cmd/ariflow-timeline -fields)
args=()
for f in "${fields[@]}"; do args+=(-e "$f"); done
tshark -r "$pcap" -Y "sip or websocket or http or (tcp.port == $((base + 79)) and tcp.len > 0)" \
	-T fields -E separator='|' "${args[@]}" 2>/dev/null |
	go run ./cmd/ariflow-timeline -carrier-sip $((base + 70)) -ari $((base + 88)) -redis $((base + 79))
