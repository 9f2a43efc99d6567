package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ariflow/ariflow/e2e"
)

// sweepReport is a sweep's points, each a comparison of both sides.
type sweepReport struct {
	Points []*compareReport `json:"points"`
}

// parseSweep reads -sweep: the calls at once of each point, e.g.
// "20,100,150".
func parseSweep(s string) ([]int, error) {
	var points []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("sweep: %q is not a number of calls at once", f)
		}
		points = append(points, n)
	}
	return points, nil
}

// callBase is how long a bench call lasts besides the shipper's hold.
const callBase = time.Second

// sweep runs the comparison at each number of calls at once in o.sweep,
// offering half as many new calls a second (a bench call lasts about two
// seconds) or o.sweepRate when fewer, each call then held long enough to
// reach that many at once; it prints both sides of every point and their
// ratios.
func sweep(ctx context.Context, o options, s *e2e.Stack, af *e2e.Ariflow, carrier *e2e.Carrier) error {
	var rep sweepReport
	for _, n := range o.sweep {
		r, err := compare(ctx, o.point(n), s, af, carrier)
		if err != nil {
			return fmt.Errorf("sweep point %d: %w", n, err)
		}
		r.print()
		rep.Points = append(rep.Points, r)
	}
	rep.print(os.Stdout)
	return writeJSON(o.jsonOut, rep)
}

// point is o for the sweep's point of n calls at once (see sweep).
func (o options) point(n int) options {
	o.concurrency, o.rate = n, float64(n)/2
	if o.sweepRate > 0 && o.sweepRate < o.rate {
		o.rate = o.sweepRate
		o.hold = max(0, time.Duration(float64(n)/o.sweepRate*float64(time.Second))-callBase)
	}
	return o
}

// sweepRatio is one point of a sweep, ariflow against the dialplan:
// latency differences in ms, CPU ratios.
type sweepRatio struct {
	Concurrency int
	ResumeP50   float64 // ariflow - dialplan
	ResumeP99   float64
	DTMFP99     float64
	SystemCPU   float64 // (ariflow's Asterisk + ariflow) / the dialplan's Asterisk
	AsteriskCPU float64 // ariflow's Asterisk / the dialplan's Asterisk
}

// ratios compares the sides of every point that has both, and a
// dialplan side whose CPU was measured.
func (r *sweepReport) ratios() []sweepRatio {
	var out []sweepRatio
	for _, p := range r.Points {
		a, d := p.side("ariflow"), p.side("dialplan")
		if a == nil || d == nil || d.AsteriskCPUPer1000 == 0 {
			continue
		}
		out = append(out, sweepRatio{Concurrency: p.Concurrency,
			ResumeP50: a.ResumeP50 - d.ResumeP50, ResumeP99: a.ResumeP99 - d.ResumeP99, DTMFP99: a.DTMFP99 - d.DTMFP99,
			SystemCPU:   (a.AsteriskCPUPer1000 + a.AriflowCPUPer1000) / d.AsteriskCPUPer1000,
			AsteriskCPU: a.AsteriskCPUPer1000 / d.AsteriskCPUPer1000})
	}
	return out
}

func (r *sweepReport) print(w io.Writer) {
	via := "ari"
	if len(r.Points) > 0 && r.Points[0].Via != "" {
		via = r.Points[0].Via
	}
	fmt.Fprintf(w, "\nsweep: each point both sides in one run; ariflow's transfers dialled via %s; resume = the far end's hangup to the next number's INVITE, at the carrier\n", via)
	for _, p := range r.Points {
		fmt.Fprintf(w, "  %d at once: %.0f new calls a second, the shipper holding %.1f s\n", p.Concurrency, p.Rate, p.HoldS)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| at once | calls/side | side | resume p50 / p95 / p99 ms | DTMF p50 / p99 ms | PBX Asterisk CPU s/1000 | ariflow CPU s/1000 | Redis round trips/call |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	for _, p := range r.Points {
		for _, sd := range p.Sides {
			af, rt := "–", "–"
			if sd.Name == "ariflow" {
				af, rt = fmt.Sprintf("%.1f", sd.AriflowCPUPer1000), fmt.Sprintf("%.1f", sd.RedisTripsPerCall)
			}
			fmt.Fprintf(w, "| %d | %d/%d | %s | %.1f / %.1f / %.1f | %.1f / %.1f | %.1f | %s | %s |\n", p.Concurrency, sd.Completed, sd.Calls, sd.Name,
				sd.ResumeP50, sd.ResumeP95, sd.ResumeP99, sd.DTMFP50, sd.DTMFP99, sd.AsteriskCPUPer1000, af, rt)
		}
	}
	fmt.Fprintln(w, "\n| at once | resume p50 Δ | resume p99 Δ | DTMF p99 Δ | whole-system CPU ratio | PBX Asterisk CPU ratio |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, q := range r.ratios() {
		fmt.Fprintf(w, "| %d | %+.1f ms | %+.1f ms | %+.1f ms | %.2f× | %.2f× |\n", q.Concurrency,
			q.ResumeP50, q.ResumeP99, q.DTMFP99, q.SystemCPU, q.AsteriskCPU)
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
