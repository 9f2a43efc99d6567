# The two things a person does here. Both need root on Debian (see README).
.PHONY: test demo build validate bench soak faults chaos

test:
	bash e2e/test.sh

demo:
	bash e2e/demo.sh

build:
	go build -o bin/ariflow ./cmd/ariflow

validate:
	go run ./cmd/ariflow validate flows/examples

# ariflow against native dialplan, and the soak (see README, Performance).
bench:
	bash e2e/bench.sh -calls 300 -concurrency 100 -rate 50 -json bench.json

soak:
	bash e2e/bench.sh -soak 10m -concurrency 100 -json soak.json

# The fault matrix and the other fault tests alone (see README, High availability).
faults:
	bash e2e/faults.sh

# The chaos soak: random faults every 20-40 s for 10 minutes under load,
# with both cores busy (see docs/chaos.md). Not part of make test.
chaos:
	bash e2e/chaos.sh
