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

# ariflow against native dialplan at 20, 100 and 150 calls at once, 3000
# calls per side per point, and the soak (docs/performance.md). BENCH_CALLS
# and BENCH_SWEEP make a shorter run; BENCH_VIA=pbx measures ariflow's side
# with its transfers carried by the PBX's Dial() (dial_via: pbx);
# BENCH_RATE=25 offers at most 25 new calls a second at every point, the
# calls held longer, for a machine the default rates (half the point)
# saturate.
BENCH_CALLS ?= 3000
BENCH_SWEEP ?= 20,100,150
BENCH_VIA ?= ari
BENCH_RATE ?=
bench:
	bash e2e/bench.sh -sweep $(BENCH_SWEEP) -calls $(BENCH_CALLS) -via $(BENCH_VIA) $(if $(BENCH_RATE),-sweep-rate $(BENCH_RATE)) -json bench.json

soak:
	bash e2e/bench.sh -soak 10m -concurrency 100 -json soak.json

# The fault matrix and the other fault tests alone (docs/operating.md).
faults:
	bash e2e/faults.sh

# The chaos soak: random faults every 20-40 s for 10 minutes under load,
# with both cores busy (see docs/chaos.md). Not part of make test.
chaos:
	bash e2e/chaos.sh
