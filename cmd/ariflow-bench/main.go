// Command ariflow-bench measures ariflow's Transfer to phone number block
// against the same transfer written in plain dialplan
// (Dial(...,gD(digits)) then the next priority), on the same PBX in one
// run, and soaks ariflow with mixed outcomes. It needs a running test stack
// (e2e/stack.sh up --no-ariflow); it starts ariflow itself.
//
//	ariflow-bench -calls 300 -concurrency 100 -rate 50 -json bench.json
//	ariflow-bench -sweep 20,100,150 -calls 3000 -json sweep.json
//	ariflow-bench -soak 10m -concurrency 100
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"github.com/ariflow/ariflow/e2e"
)

type options struct {
	calls       int
	concurrency int
	rate        float64
	answerAfter time.Duration
	hold        time.Duration
	soak        time.Duration
	jsonOut     string
	repo        string
	profile     string
	execTrace   string
	pbxPerf     string
	sweep       []int   // calls at once of each point of a sweep
	sweepRate   float64 // >0: every point at this rate, its calls held longer
	trace       bool
	records     bool
	via         string // who dials ariflow's side: ari or pbx (dial_via)
}

func main() {
	var o options
	flag.IntVar(&o.calls, "calls", 200, "transfers per side")
	flag.IntVar(&o.concurrency, "concurrency", 50, "calls in progress at once")
	flag.Float64Var(&o.rate, "rate", 40, "new calls per second")
	flag.DurationVar(&o.answerAfter, "answer-after", 200*time.Millisecond, "the shipper rings this long before answering")
	flag.DurationVar(&o.hold, "hold", time.Second, "the shipper talks this long after the last digit")
	flag.DurationVar(&o.soak, "soak", 0, "run the soak for this long instead of the comparison")
	flag.StringVar(&o.jsonOut, "json", "", "also write the figures as JSON here")
	flag.StringVar(&o.repo, "repo", ".", "the ariflow repository (for building ariflow and its flows)")
	flag.StringVar(&o.profile, "cpuprofile", "", "write ariflow's CPU profile during the ariflow side here")
	flag.StringVar(&o.pbxPerf, "pbxperf", "", "record the PBX Asterisk with perf during each side, to <this>-ariflow.data and <this>-dialplan.data (perf report --symfs <the stack's Asterisk root>)")
	flag.StringVar(&o.execTrace, "exectrace", "", "write ariflow's execution trace during the ariflow side here (go tool trace)")
	flag.Func("sweep", "calls at once of each point of a sweep, e.g. 20,100,150 (each at half as many calls a second); one table of both sides and their ratios", func(v string) (err error) {
		o.sweep, err = parseSweep(v)
		return err
	})
	flag.Float64Var(&o.sweepRate, "sweep-rate", 0, "at most this many new calls a second at every point of the sweep, the shipper holding each call long enough to reach the point's calls at once (the latency of many calls at once on a machine half the point a second would saturate)")
	flag.BoolVar(&o.trace, "trace", false, "ariflow traces every call, exporting over OTLP/HTTP to a receiver in the bench (the A/B of tracing)")
	flag.BoolVar(&o.records, "records", false, "ariflow writes every call's record to a Redis stream (ariflow:records:bench)")
	flag.StringVar(&o.via, "via", "ari", "who carries ariflow's side's transfers: ari, or pbx (dial_via: pbx, e2e/testdata/bench/bench-pbx.yaml)")
	flag.Parse()
	if o.via != "ari" && o.via != "pbx" {
		fmt.Fprintf(os.Stderr, "ariflow-bench: -via: want ari or pbx, got %q\n", o.via)
		os.Exit(2)
	}
	if o.profile != "" && o.execTrace != "" {
		// One side, one fetch: the two would run over the same seconds.
		fmt.Fprintln(os.Stderr, "ariflow-bench: -cpuprofile and -exectrace cover the same run; give one of them")
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "ariflow-bench:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	s, err := e2e.LoadStack()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "ariflow-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin, err := e2e.BuildAriflow(o.repo, tmp)
	if err != nil {
		return err
	}
	s.Env["ARIFLOW_STACK_ARIFLOW_BIN"] = bin
	// Native Dial sends the digits at answer; compare like with like.
	os.Setenv("ARIFLOW_DTMF_DELAY", "0s")
	if os.Getenv("ARIFLOW_LOG_LEVEL") == "" {
		// debug or trace, set in the environment, shows a rare call's
		// requests; they cost the figures their comparability.
		os.Setenv("ARIFLOW_LOG_LEVEL", "info")
	}
	os.Setenv("ARIFLOW_PPROF", "1") // profiles, and goroutine stacks for the leak check
	// The default policy's rate and concurrency caps are far below a load
	// run's. One set in the environment is taken as it is.
	if os.Getenv("ARIFLOW_DIAL_POLICY") == "" {
		os.Setenv("ARIFLOW_DIAL_POLICY", filepath.Join(o.repo, "e2e/testdata/policy/load.yaml"))
	}
	spans, err := observeSetup(o)
	if err != nil {
		return err
	}
	if spans != nil {
		defer spans.Close()
	}
	// ARI without the tests' proxy: the dialplan side has no such hop.
	af, err := e2e.StartAriflowWith(ctx, &e2e.Ariflow{Stack: s, FlowsDir: filepath.Join(o.repo, "e2e/testdata/bench"), Direct: true}, "ariflow-bench.log")
	if err != nil {
		return err
	}
	defer af.Close()
	carrier, err := e2e.NewCarrier(ctx, s)
	if err != nil {
		return err
	}
	defer carrier.Close()
	carrier.Start(ctx)

	if o.soak > 0 {
		rep, err := soak(ctx, o, s, af, carrier)
		if rep != nil {
			rep.print()
			if werr := writeJSON(o.jsonOut, rep); werr != nil {
				return werr
			}
		}
		if err != nil {
			return err
		}
		if rep.WrongBranches > 0 || rep.Leaks.any() {
			return fmt.Errorf("soak failed: %d wrong branches, leaks %+v", rep.WrongBranches, rep.Leaks)
		}
		return nil
	}
	if len(o.sweep) > 0 {
		return sweep(ctx, o, s, af, carrier)
	}
	rep, err := compare(ctx, o, s, af, carrier)
	if err != nil {
		return err
	}
	rep.Tracing, rep.Records = o.trace, o.records
	if spans != nil {
		rep.Spans = spans.spans.Load()
	}
	rep.RecordsSent = af.Metric(`ariflow_call_records_total{result="sent",sink="redis"}`)
	rep.print()
	return writeJSON(o.jsonOut, rep)
}

func writeJSON(path string, v any) error {
	if path == "" {
		return nil
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
