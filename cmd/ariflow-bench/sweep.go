package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/ariflow/ariflow/e2e"
)

// sweepReport is a sweep's points, each a comparison of both sides.
type sweepReport struct {
	Points []*compareReport `json:"points"`
}

// sweep runs the comparison at each number of calls at once in o.sweep,
// offering half as many new calls a second (a bench call lasts about two
// seconds), and prints both sides of every point and their ratios.
func sweep(ctx context.Context, o options, s *e2e.Stack, af *e2e.Ariflow, carrier *e2e.Carrier) error {
	var rep sweepReport
	for _, f := range strings.Split(o.sweep, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return fmt.Errorf("sweep: %q is not a number of calls at once", f)
		}
		po := o
		po.concurrency, po.rate = n, float64(n)/2
		r, err := compare(ctx, po, s, af, carrier)
		if err != nil {
			return fmt.Errorf("sweep point %d: %w", n, err)
		}
		r.print()
		rep.Points = append(rep.Points, r)
	}
	rep.print()
	return writeJSON(o.jsonOut, rep)
}

func (r *sweepReport) print() {
	fmt.Printf("\nsweep: each point both sides in one run; resume = the far end's hangup to the next number's INVITE, at the carrier\n\n")
	fmt.Println("| at once | calls/side | side | resume p50 / p95 / p99 ms | DTMF p50 / p99 ms | PBX Asterisk CPU s/1000 | ariflow CPU s/1000 | Redis round trips/call |")
	fmt.Println("|---|---|---|---|---|---|---|---|")
	for _, p := range r.Points {
		for _, sd := range p.Sides {
			af, rt := "–", "–"
			if sd.Name == "ariflow" {
				af, rt = fmt.Sprintf("%.1f", sd.AriflowCPUPer1000), fmt.Sprintf("%.1f", sd.RedisTripsPerCall)
			}
			fmt.Printf("| %d | %d/%d | %s | %.1f / %.1f / %.1f | %.1f / %.1f | %.1f | %s | %s |\n", p.Concurrency, sd.Completed, sd.Calls, sd.Name,
				sd.ResumeP50, sd.ResumeP95, sd.ResumeP99, sd.DTMFP50, sd.DTMFP99, sd.AsteriskCPUPer1000, af, rt)
		}
	}
	fmt.Println("\n| at once | resume p50 Δ | resume p99 Δ | DTMF p99 Δ | whole-system CPU ratio | PBX Asterisk CPU ratio |")
	fmt.Println("|---|---|---|---|---|---|")
	for _, p := range r.Points {
		a, d, ok := p.side("ariflow"), p.side("dialplan"), true
		if a == nil || d == nil || d.AsteriskCPUPer1000 == 0 {
			ok = false
		}
		if !ok {
			continue
		}
		fmt.Printf("| %d | %+.1f ms | %+.1f ms | %+.1f ms | %.2f× | %.2f× |\n", p.Concurrency,
			a.ResumeP50-d.ResumeP50, a.ResumeP99-d.ResumeP99, a.DTMFP99-d.DTMFP99,
			(a.AsteriskCPUPer1000+a.AriflowCPUPer1000)/d.AsteriskCPUPer1000, a.AsteriskCPUPer1000/d.AsteriskCPUPer1000)
	}
}

func (r *compareReport) side(name string) *side {
	for i := range r.Sides {
		if r.Sides[i].Name == name {
			return &r.Sides[i]
		}
	}
	return nil
}
