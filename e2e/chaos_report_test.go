package e2e

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"
)

// What the chaos soak makes of what it saw: the table, the faults that
// preceded each bad end, and the goals.

// fenceCount judges every ARI request with a side effect (any method
// but GET) that a process sent, by when the proxy saw it: sent while
// another process held the lease in Redis for the whole time between
// the lease samples around it, it is an action by a fenced process.
type fenceCount struct {
	judged, fenced, free, unjudged, unknownHolder int
	examples                                      []string
}

func (r *chaosRun) judgeFence() fenceCount {
	var fc fenceCount
	r.mu.Lock()
	leases := slices.Clone(r.leases)
	procs := slices.Clone(r.procs)
	r.mu.Unlock()
	known := map[int]bool{}
	for _, p := range procs {
		known[p.pid] = true
	}
	for _, p := range procs {
		for _, q := range p.Proxy.Requests() {
			if q.Method == http.MethodGet {
				continue
			}
			// The last sample read wholly before the request, the first
			// read wholly after it.
			i := sort.Search(len(leases), func(i int) bool { return leases[i].after.After(q.At) }) - 1
			j := sort.Search(len(leases), func(j int) bool { return !leases[j].before.Before(q.At) })
			if i < 0 || j >= len(leases) || !leases[i].ok || !leases[j].ok || leases[i].token != leases[j].token {
				fc.unjudged++
				continue
			}
			fc.judged++
			tok := leases[i].token
			switch holder := holderPid(tok); {
			case tok == "":
				fc.free++
			case holder == p.pid:
			default:
				if !known[holder] {
					fc.unknownHolder++
				}
				fc.fenced++
				if len(fc.examples) < 20 {
					fc.examples = append(fc.examples, fmt.Sprintf("%s %s (+%v) %s %s while %q held the lease (samples %s and %s)",
						p.name, q.At.Format("15:04:05.000"), q.At.Sub(r.start).Round(time.Millisecond), q.Method, q.Path, tok,
						leases[i].after.Format("15:04:05.000"), leases[j].before.Format("15:04:05.000")))
				}
			}
		}
	}
	return fc
}

// takeover is a "takeover complete" line of a process's log.
type takeover struct {
	proc string
	at   time.Time
	took time.Duration
}

var (
	logTime = regexp.MustCompile(`time="(\d\d:\d\d:\d\d\.\d+)"`)
	logTook = regexp.MustCompile(`took="?([0-9.]+[a-zµ]+)"?`)
)

// logAt reads a log line's time of day as a time within the run.
func (r *chaosRun) logAt(line string) time.Time {
	m := logTime.FindStringSubmatch(line)
	if m == nil {
		return time.Time{}
	}
	tod, err := time.ParseInLocation("15:04:05.000", m[1], time.Local)
	if err != nil {
		return time.Time{}
	}
	y, mo, d := r.start.Date()
	t := time.Date(y, mo, d, tod.Hour(), tod.Minute(), tod.Second(), tod.Nanosecond(), time.Local)
	if t.Before(r.start.Add(-time.Hour)) {
		t = t.Add(24 * time.Hour)
	}
	return t
}

// takeovers reads every process's takeovers from its log: from taking the
// lease to the first reconcile done (what ariflow_takeover_seconds
// observes; a killed process's metrics are gone with it, its log stays).
func (r *chaosRun) takeovers() (out []takeover, terms int) {
	for _, p := range r.procs {
		f, err := os.Open(p.LogPath)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.Contains(line, `msg="lease: active"`):
				terms++
			case strings.Contains(line, `msg="takeover complete"`):
				m := logTook.FindStringSubmatch(line)
				if m == nil {
					continue
				}
				d, err := time.ParseDuration(m[1])
				if err == nil {
					out = append(out, takeover{proc: p.name, at: r.logAt(line), took: d})
				}
			}
		}
		f.Close()
	}
	return out, terms
}

// readyGaps are the times no process of the soak said ready, from the
// first ready to the end of the calls.
func (r *chaosRun) readyGaps() (gaps, both [][2]time.Time) {
	type edge struct {
		at time.Time
		d  int
	}
	var edges []edge
	for _, p := range r.procs {
		for _, s := range p.readySpans(r.stop) {
			edges = append(edges, edge{s[0], +1}, edge{s[1], -1})
		}
	}
	sort.Slice(edges, func(i, j int) bool {
		if edges[i].at.Equal(edges[j].at) {
			return edges[i].d > edges[j].d
		}
		return edges[i].at.Before(edges[j].at)
	})
	n := 0
	var gapFrom, bothFrom time.Time
	for i, e := range edges {
		before := n
		n += e.d
		switch {
		case before == 0 && n > 0 && i > 0 && !gapFrom.IsZero():
			gaps = append(gaps, [2]time.Time{gapFrom, e.at})
		case before > 0 && n == 0:
			gapFrom = e.at
		}
		switch {
		case before < 2 && n >= 2:
			bothFrom = e.at
		case before >= 2 && n < 2:
			both = append(both, [2]time.Time{bothFrom, e.at})
		}
	}
	if n == 0 && !gapFrom.IsZero() && gapFrom.Before(r.stop) {
		gaps = append(gaps, [2]time.Time{gapFrom, r.stop})
	}
	return gaps, both
}

func pctDur(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

// preceding is the last fault injected at or before at, if it ended
// within a minute of it.
func (r *chaosRun) preceding(at time.Time) *chaosFault {
	var last *chaosFault
	for _, f := range r.faults {
		if !f.skipped && !f.at.After(at) {
			last = f
		}
	}
	if last == nil || at.Sub(last.until) > time.Minute {
		return nil
	}
	return last
}

// blame is the fault a bad end is laid to: the one preceding it, or for a
// silent call the first injected during its silence (which begins before
// the fault that causes it: when progress was due).
func (r *chaosRun) blame(c *chaosCall) *chaosFault {
	if c.outcome == outSilent && !c.quietTo.IsZero() {
		for _, f := range r.faults {
			if !f.skipped && !f.at.Before(c.badAt) && f.at.Before(c.quietTo) {
				return f
			}
		}
	}
	return r.preceding(c.badAt)
}

// overlap is how long the gaps cover [from, to).
func overlapLongest(gaps [][2]time.Time, from, to time.Time) time.Duration {
	var longest time.Duration
	for _, g := range gaps {
		if g[1].After(from) && g[0].Before(to) {
			longest = max(longest, g[1].Sub(g[0]))
		}
	}
	return longest
}

func (r *chaosRun) report() {
	t := r.t
	end := time.Now()
	// Calls the carrier got that nobody expected: a far end called twice,
	// an end reached after the call was over.
	byFrom := map[string]*chaosCall{}
	for _, c := range r.calls {
		byFrom[c.from] = c
	}
	for _, u := range carrier.Unexpected() {
		number, from, _ := strings.Cut(u, " from ")
		if c := byFrom[from]; c != nil {
			c.mark(outWrong, c.end, "unexpected call to %s (not awaited: a second call, or after the call was over)", number)
		}
	}

	type tally struct{ calls, kept, fallback, silent, wrong, harness, lagged int }
	kinds := map[string]*tally{}
	var all tally
	var dup, farDup, leaked, skip int
	var farDupCalls []*chaosCall
	var bad []*chaosCall
	for _, c := range r.calls {
		k := kinds[c.kind.name]
		if k == nil {
			k = &tally{}
			kinds[c.kind.name] = k
		}
		for _, x := range []*tally{k, &all} {
			x.calls++
			switch c.outcome {
			case outKept:
				x.kept++
			case outFallback:
				x.fallback++
			case outWrong:
				x.wrong++
			case outSilent:
				x.silent++
			}
			if len(c.harness) > 0 {
				x.harness++
			}
			if c.outcome != outKept && c.lag > harnessLag {
				x.lagged++
			}
		}
		dup += c.dup
		farDup += c.farDup
		if c.farDup > 0 {
			farDupCalls = append(farDupCalls, c)
		}
		leaked += c.leaked
		skip += c.skip
		if c.outcome != outKept || len(c.harness) > 0 {
			bad = append(bad, c)
		}
	}
	fence := r.judgeFence()
	tks, terms := r.takeovers()
	var took []time.Duration
	for _, tk := range tks {
		took = append(took, tk.took)
	}
	gaps, both := r.readyGaps()
	var gapTotal, gapMax time.Duration
	for _, g := range gaps {
		gapTotal += g[1].Sub(g[0])
		gapMax = max(gapMax, g[1].Sub(g[0]))
	}
	var flightSum, flightMin int
	flightMin = -1
	for _, n := range r.flight {
		flightSum += n
		if flightMin < 0 || n < flightMin {
			flightMin = n
		}
	}
	flightMean := 0.0
	if len(r.flight) > 0 {
		flightMean = float64(flightSum) / float64(len(r.flight))
	}
	refusedTotal := 0
	for _, x := range r.refused {
		refusedTotal += x.n
	}

	var b strings.Builder
	goal := func(ok bool) string {
		if ok {
			return "ok"
		}
		return "MISSED"
	}
	missed := []string{}
	check := func(name string, ok bool) string {
		if !ok {
			missed = append(missed, name)
		}
		return goal(ok)
	}
	fmt.Fprintf(&b, "\n== chaos soak from %s: %v, seed %d, %d callers (in flight: mean %.1f, min %d), %d busy loops on %d cores, a fault every %v–%v, silence bound %v ==\n",
		r.start.Format("15:04:05.000"), r.stop.Sub(r.start).Round(time.Second), r.cfg.seed, r.cfg.callers, flightMean, max(flightMin, 0), r.cfg.load, runtime.NumCPU(), r.cfg.every[0], r.cfg.every[1], r.cfg.silence)
	if r.cfg.duration < 10*time.Minute || r.cfg.callers < 60 || r.cfg.load < runtime.NumCPU() {
		fmt.Fprintf(&b, "(shorter, smaller or less loaded than the proof run: 10 min, 60 callers, a busy loop per core)\n")
	}
	row := func(name string, n int, g string) { fmt.Fprintf(&b, "  %-40s %7d   %s\n", name, n, g) }
	row("calls ended", all.calls, "")
	row("kept their branch", all.kept, "")
	row("fallback desk", all.fallback, "")
	row("silent", all.silent, "goal 0: "+check("silent", all.silent == 0))
	row("wrong end", all.wrong, "goal 0: "+check("wrong end", all.wrong == 0))
	row("calls with a harness failure", all.harness, "must be 0 for the run to prove anything: "+check("harness", all.harness == 0))
	row("bad ends where the harness lagged", all.lagged, fmt.Sprintf("(a carrier event of the call reached the harness over %v late: maybe the harness's doing)", harnessLag))
	leftN := len(r.left.channels) + len(r.left.bridges) + len(r.left.records)
	fmt.Fprintf(&b, "  %-40s %7d   goal 0: %s (channels %d, bridges %d, call records %d; dial-out slots held %d)\n", "leftovers", leftN, check("leftovers", leftN == 0),
		len(r.left.channels), len(r.left.bridges), len(r.left.records), r.left.slots)
	fmt.Fprintf(&b, "  %-40s %7d   goal 0: %s (%d requests judged, %d not judgeable, %d sent while no one held the lease)\n", "actions by a fenced process", fence.fenced,
		check("fenced actions", fence.fenced == 0), fence.judged, fence.unjudged, fence.free)
	row("digits sent twice", dup, "goal 0: "+check("digits sent twice", dup == 0))
	row("far end reported a digit twice", farDup, fmt.Sprintf("(not a goal: carrier event duplicates, a repeat within %v; docs/chaos.md)", carrierDupWindow))
	row("return-key digits heard by a far end", leaked, "goal 0: "+check("leaked keys", leaked == 0))
	row("digits a far end never got", skip, "(not a goal)")
	p99 := pctDur(took, 99)
	fmt.Fprintf(&b, "  %-40s %7d   goal p99 ≤ 1s: %s (p50 %v, p99 %v, max %v; %d terms begun; lease taken → first reconcile done, from the logs)\n", "takeovers",
		len(took), check("takeover p99", p99 <= time.Second), pctDur(took, 50).Round(time.Millisecond), p99.Round(time.Millisecond), pctDur(took, 100).Round(time.Millisecond), terms)
	fmt.Fprintf(&b, "  %-40s %7d   (longest %v, in all %v; /readyz polled every 100 ms)\n", "times no process was ready", len(gaps), gapMax.Round(10*time.Millisecond), gapTotal.Round(10*time.Millisecond))
	fmt.Fprintf(&b, "  %-40s %7d   (two processes said ready at once)\n", "overlaps", len(both))
	fmt.Fprintf(&b, "  %-40s %7d   (PBX log: \"Stasis app 'ariflow' not active\": Stasis() attempts refused; the dialplan tries again for 4 s, then the fallback)\n", "Stasis() attempts refused", refusedTotal)
	r.mu.Lock()
	prop := slices.Clone(r.propagation)
	r.mu.Unlock()
	fmt.Fprintf(&b, "  %-40s %7d   (p50 %v, p99 %v, max %v)\n", "caller hangup → far end ended", len(prop),
		pctDur(prop, 50).Round(time.Millisecond), pctDur(prop, 99).Round(time.Millisecond), pctDur(prop, 100).Round(time.Millisecond))

	var carrierRTT, pbxRTT []time.Duration
	var loadSum, loadMax float64
	for _, h := range r.health {
		carrierRTT, pbxRTT = append(carrierRTT, h.carrier), append(pbxRTT, h.pbx)
		loadSum += h.load
		loadMax = max(loadMax, h.load)
	}
	var lagSecs []time.Duration
	over := 0
	for _, l := range r.carrierLags {
		lagSecs = append(lagSecs, l)
		if l > time.Second {
			over++
		}
	}
	fmt.Fprintf(&b, "  %-40s %7s   (carrier events, Asterisk's stamp to the harness, the worst of each second: p50 %v, p99 %v, max %v; %d s over 1 s)\n", "the harness's lag", "",
		pctDur(lagSecs, 50).Round(time.Millisecond), pctDur(lagSecs, 99).Round(time.Millisecond), pctDur(lagSecs, 100).Round(time.Millisecond), over)
	if n := len(r.health); n > 0 {
		fmt.Fprintf(&b, "  %-40s %7s   (GET /asterisk/info each second: carrier p50 %v, p99 %v, max %v; PBX p99 %v, max %v; load average mean %.1f, max %.1f)\n", "the harness's health", "",
			pctDur(carrierRTT, 50).Round(time.Millisecond), pctDur(carrierRTT, 99).Round(time.Millisecond), pctDur(carrierRTT, 100).Round(time.Millisecond),
			pctDur(pbxRTT, 99).Round(time.Millisecond), pctDur(pbxRTT, 100).Round(time.Millisecond), loadSum/float64(n), loadMax)
	}

	fmt.Fprintf(&b, "\nby kind of call:\n  %-32s %6s %6s %8s %6s %6s %7s %7s\n", "kind", "calls", "kept", "fallback", "silent", "wrong", "harness", "lagged")
	for _, k := range chaosKinds {
		x := kinds[k.name]
		if x == nil {
			x = &tally{}
		}
		fmt.Fprintf(&b, "  %-32s %6d %6d %8d %6d %6d %7d %7d\n", k.name, x.calls, x.kept, x.fallback, x.silent, x.wrong, x.harness, x.lagged)
	}

	// Per fault: the bad ends it preceded.
	type ftally struct {
		injected, skipped, flight, silent, wrong, fallback, refused int
		gap                                                         time.Duration
	}
	fts := map[string]*ftally{}
	get := func(name string) *ftally {
		if fts[name] == nil {
			fts[name] = &ftally{}
		}
		return fts[name]
	}
	for _, f := range r.faults {
		x := get(f.name)
		if f.skipped {
			x.skipped++
			continue
		}
		x.injected++
		x.flight += f.inFlight
		x.gap = max(x.gap, overlapLongest(gaps, f.at, f.until.Add(30*time.Second)))
		for _, rf := range r.refused {
			if !rf.at.Before(f.at) && rf.at.Before(f.until.Add(30*time.Second)) {
				x.refused += rf.n
			}
		}
	}
	for _, c := range bad {
		if c.outcome == outKept {
			continue
		}
		name := "(no fault within a minute)"
		if f := r.blame(c); f != nil {
			name = f.name
		}
		x := get(name)
		switch c.outcome {
		case outSilent:
			x.silent++
		case outWrong:
			x.wrong++
		case outFallback:
			x.fallback++
		}
	}
	fmt.Fprintf(&b, "\nby the fault that preceded the bad end:\n  %-28s %8s %7s %10s %6s %6s %8s %12s %8s\n", "fault", "injected", "skipped", "in flight", "silent", "wrong", "fallback", "no-ready gap", "refused")
	names := append(slices.Clone(r.cfg.faults), "(no fault within a minute)")
	for _, n := range names {
		x := fts[n]
		if x == nil {
			continue
		}
		fl := "-"
		if x.injected > 0 {
			fl = fmt.Sprintf("%.0f", float64(x.flight)/float64(x.injected))
		}
		fmt.Fprintf(&b, "  %-28s %8d %7d %10s %6d %6d %8d %12v %8d\n", n, x.injected, x.skipped, fl, x.silent, x.wrong, x.fallback, x.gap.Round(10*time.Millisecond), x.refused)
	}
	fmt.Fprintf(&b, "  (no-ready gap: the longest time no process said ready, from the fault to 30 s after it; refused: Stasis() attempts Asterisk could not give to the app then)\n")

	// The faults in order, and every bad end.
	var detail strings.Builder
	fmt.Fprintf(&detail, "\nfaults:\n")
	for _, f := range r.faults {
		n := 0
		for _, c := range bad {
			if c.outcome != outKept && r.blame(c) == f {
				n++
			}
		}
		st := ""
		if f.skipped {
			st = " SKIPPED"
		}
		fmt.Fprintf(&detail, "  %s +%-6v %-16s %-28s %s; %d in flight; %d bad ends after it%s\n", f.at.Format("15:04:05.0"), f.at.Sub(r.start).Round(time.Second), f.name, f.target, f.detail, f.inFlight, n, st)
	}
	for _, tk := range tks {
		if tk.took > time.Second {
			fmt.Fprintf(&detail, "  takeover over 1 s: %s at +%v took %v\n", tk.proc, tk.at.Sub(r.start).Round(time.Second), tk.took)
		}
	}
	for _, e := range fence.examples {
		fmt.Fprintf(&detail, "  fenced: %s\n", e)
	}
	if fence.unknownHolder > 0 {
		fmt.Fprintf(&detail, "  %d judged requests had a lease holder no process of the soak matched (owner format changed?): the fence count is not to be trusted\n", fence.unknownHolder)
	}
	for _, g := range both {
		fmt.Fprintf(&detail, "  two ready at once: +%v for %v\n", g[0].Sub(r.start).Round(time.Millisecond), g[1].Sub(g[0]).Round(time.Millisecond))
	}
	for _, p := range r.procs {
		if p.second && len(p.readySpans(end)) > 0 {
			fmt.Fprintf(&detail, "  the second instance %s said ready while the pair ran\n", p.name)
		}
	}
	for _, n := range r.notes {
		fmt.Fprintf(&detail, "  note: %s\n", n)
	}
	sort.Slice(bad, func(i, j int) bool { return bad[i].start.Before(bad[j].start) })
	fmt.Fprintf(&detail, "\nbad ends (%d):\n", len(bad))
	for _, c := range bad {
		after := "no fault within a minute before"
		if f := r.blame(c); f != nil {
			after = fmt.Sprintf("%s %s at +%v, %v before", f.name, f.target, f.at.Sub(r.start).Round(time.Second), c.badAt.Sub(f.at).Round(100*time.Millisecond))
			if f.at.After(c.badAt) {
				after = fmt.Sprintf("%s %s at +%v, during the silence", f.name, f.target, f.at.Sub(r.start).Round(time.Second))
			}
		}
		fmt.Fprintf(&detail, "  %s %-30s %-9s began %s, went wrong %s +%v (after %s): %s", c.from, c.kind.name, c.outcome,
			c.start.Format("15:04:05"), c.badAt.Format("15:04:05.0"), c.badAt.Sub(r.start).Round(100*time.Millisecond), after, strings.Join(c.reasons, "; "))
		if len(c.harness) > 0 {
			fmt.Fprintf(&detail, " HARNESS: %s", strings.Join(c.harness, "; "))
		}
		if c.lag > harnessLag {
			fmt.Fprintf(&detail, " HARNESS LAG %v", c.lag.Round(100*time.Millisecond))
		}
		if fd := c.farDigits(); fd != "" {
			fmt.Fprintf(&detail, " (%s)", fd)
		}
		detail.WriteString("\n")
	}
	if len(farDupCalls) > 0 {
		fmt.Fprintf(&detail, "\ndigits the far end's carrier reported twice (%d calls; not wrong ends):\n", len(farDupCalls))
		for _, c := range farDupCalls {
			fmt.Fprintf(&detail, "  %s %-30s %s\n", c.from, c.kind.name, c.farDigits())
		}
	}
	out := b.String() + detail.String()
	if len(out) > 60000 {
		fmt.Print(b.String())
		fmt.Printf("(the faults and every bad end are in the report file)\n")
	} else {
		fmt.Print(out)
	}
	path := r.cfg.report
	if path == "" {
		path = filepath.Join(stack.Env["ARIFLOW_STACK_LOGS"], "chaos-report.txt")
	}
	if err := os.WriteFile(path, []byte(out+r.badLogExcerpts(bad)), 0o644); err != nil {
		t.Errorf("writing the report: %v", err)
	} else {
		fmt.Printf("chaos: report with the log lines of every bad end in %s; logs in %s\n", path, stack.Env["ARIFLOW_STACK_LOGS"])
	}
	if len(missed) > 0 {
		t.Errorf("chaos soak: goals missed: %s", strings.Join(missed, ", "))
	}
}

// badLogExcerpts gathers, for each bad end, the ariflow log lines of its
// call (by the call_id of the line that names its caller).
func (r *chaosRun) badLogExcerpts(bad []*chaosCall) string {
	want := map[string]*chaosCall{}
	for _, c := range bad {
		want[c.from] = c
	}
	ids := map[string]string{} // call_id -> caller
	callID := regexp.MustCompile(`call_id=(\S+)`)
	caller := regexp.MustCompile(`caller="?(\+[0-9]+)`)
	type line struct {
		at   time.Time
		proc string
		text string
	}
	lines := map[string][]line{} // caller -> lines
	for pass := 0; pass < 2; pass++ {
		for _, p := range r.procs {
			f, err := os.Open(p.LogPath)
			if err != nil {
				continue
			}
			sc := bufio.NewScanner(f)
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			for sc.Scan() {
				s := sc.Text()
				m := callID.FindStringSubmatch(s)
				if m == nil {
					continue
				}
				if pass == 0 {
					if cm := caller.FindStringSubmatch(s); cm != nil && want[cm[1]] != nil {
						ids[m[1]] = cm[1]
					}
					continue
				}
				if from, ok := ids[m[1]]; ok {
					lines[from] = append(lines[from], line{r.logAt(s), p.name, s})
				}
			}
			f.Close()
		}
	}
	var b strings.Builder
	b.WriteString("\nlog lines of each bad end (ariflow logs, by call_id):\n")
	for _, c := range bad {
		ls := lines[c.from]
		sort.SliceStable(ls, func(i, j int) bool { return ls[i].at.Before(ls[j].at) })
		fmt.Fprintf(&b, "\n-- %s %s (%s): %s\n", c.from, c.kind.name, c.outcome, strings.Join(c.reasons, "; "))
		if len(ls) == 0 {
			b.WriteString("   (no ariflow log line names this caller)\n")
		}
		if len(ls) > 60 {
			fmt.Fprintf(&b, "   (%d lines; the last 60)\n", len(ls))
			ls = ls[len(ls)-60:]
		}
		for _, l := range ls {
			fmt.Fprintf(&b, "   %s: %s\n", l.proc, l.text)
		}
	}
	return b.String()
}
