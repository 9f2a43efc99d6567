package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// The fault matrix: for each fault, 20 calls of mixed kinds are in progress
// (in a prompt, in input, ringing, in DTMF, bridged, in a webhook) while
// two ariflow processes run (one active, one standby); the fault is
// injected, and then every call must end at the agent its flow leads to,
// or at the documented fallback, with no caller left in silence, nothing
// leaked, and no action by a fenced process.

const (
	haShipper    = "+4930123459"
	fallbackDesk = "+4930111999" // asterisk-conf/extensions.conf [ariflow-fallback]
)

type haKind string

const (
	kindBridged haKind = "bridged"
	kindRinging haKind = "ringing"
	kindInput   haKind = "input"
	kindPrompt  haKind = "prompt"
	kindWebhook haKind = "webhook"
	kindDTMF    haKind = "dtmf"
)

// haMix is the calls in flight per fault, in the order they are placed:
// the long-lived states first, the short ones (a 6 s prompt, a 2 s
// webhook, 4 s of digits) last, just before the fault.
var haMix = []struct {
	kind haKind
	n    int
}{{kindBridged, 4}, {kindRinging, 4}, {kindInput, 3}, {kindPrompt, 3}, {kindWebhook, 3}, {kindDTMF, 3}}

var haDID = map[haKind]string{
	kindPrompt: "+4930555700", kindInput: "+4930555701", kindWebhook: "+4930555703",
	kindRinging: "+4930555702", kindDTMF: "+4930555702", kindBridged: "+4930555702",
}

// haCall is one caller of the matrix and what became of it.
type haCall struct {
	kind     haKind
	from     string
	caller   *Caller
	ship     *Remote
	digits   chan string // DTMF the shipper received (dtmf, bridged, ringing)
	ends     map[string]<-chan *Remote
	outcome  string // the number that got the caller at the end, "silent" or "dropped"
	gotDigit string
}

// faultResult is one row of the printed table.
type faultResult struct {
	fault                                 string
	inFlight, kept, fallback, silent, bad int
	takeover                              time.Duration
	fencedActions                         float64
	digitDup, digitSkip                   int
	notes                                 []string
	watch                                 *fenceWatch
	// gap: far ends that answered while no process had the app (after a
	// SIGKILL, before the standby connects): Asterisk hangs such a leg up
	// ("Stasis app not active"), and its caller takes CallFailed.
	gap, gapLegs int
	row          *haRow
}

// haRow is a matrix row's own processes: each row starts fresh ones on a
// Redis namespace of its own (ARIFLOW_PBX_ID), so that a row that failed
// leaves no broken process, lease or record to the next.
type haRow struct {
	env   []string
	procs []*Ariflow
}

func newHARow(name string) *haRow {
	return &haRow{env: []string{"ARIFLOW_PBX_ID=matrix-" + name}}
}

// start starts a process of the row (standby: wait for it to be alive,
// not ready).
func (h *haRow) start(ctx context.Context, logName string, standby bool) (*Ariflow, error) {
	p, err := StartAriflowWith(ctx, &Ariflow{Stack: stack, FlowsDir: flowsDir, Standby: standby, Env: h.env}, logName)
	if err != nil {
		return nil, err
	}
	h.procs = append(h.procs, p)
	return p, nil
}

// close ends every process of the row, a stopped one too.
func (h *haRow) close() {
	for _, p := range h.procs {
		if p.Running() {
			_ = p.Signal(syscall.SIGCONT)
		}
		p.Close()
	}
}

// kill ends every process of the row at once (SIGKILL), and its proxy.
func (h *haRow) kill() {
	for _, p := range h.procs {
		p.Kill()
		p.Proxy.Close()
	}
}

// namespace is the row's key namespace in Redis.
func (h *haRow) namespace() string {
	return "ariflow:{ariflow@" + strings.TrimPrefix(h.env[0], "ARIFLOW_PBX_ID=") + "}"
}

// redisRestart restarts the stack's Redis on its data (stack.sh finds the
// stack and Redis's port by the environment it gets here).
func redisRestart(ctx context.Context) error {
	cmd := exec.CommandContext(ctx, "bash", "stack.sh", "redis-restart")
	opts, err := redis.ParseURL(stack.Env["ARIFLOW_STACK_REDIS_URL"])
	if err != nil {
		return err
	}
	_, port, _ := strings.Cut(opts.Addr, ":")
	p, err := strconv.Atoi(port)
	if err != nil {
		return fmt.Errorf("redis port in %s: %w", opts.Addr, err)
	}
	cmd.Env = append(os.Environ(), "ARIFLOW_STACK_DIR="+stack.Env["ARIFLOW_STACK_DIR"], fmt.Sprintf("ARIFLOW_STACK_PORT_BASE=%d", p-79))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("redis restart: %w\n%s", err, out)
	}
	return nil
}

// stasisFailures counts the PBX's "Stasis app not active" errors so far.
func stasisFailures() int {
	b, _ := os.ReadFile(filepath.Join(stack.Env["ARIFLOW_STACK_LOGS"], "pbx.log"))
	return strings.Count(string(b), "Stasis app 'ariflow' not active")
}

// haFault injects a fault. It gets the active and standby processes and
// returns the one active afterwards (nil: whichever is ready) and the
// takeover time it measured (0: none).
type haFault struct {
	name   string
	inject func(ctx context.Context, t *testing.T, active, standby *Ariflow, r *faultResult) *Ariflow
}

func TestFaultMatrix(t *testing.T) {
	if testing.Short() {
		t.Skip("fault matrix: not in -short")
	}
	faults := []haFault{
		{"kill-active", faultKill},
		{"stop-active-10s", faultStop},
		{"second-instance", faultSecond},
		{"rolling-deploy", faultDeploy},
		{"ws-cut", func(ctx context.Context, t *testing.T, active, _ *Ariflow, _ *faultResult) *Ariflow {
			active.Proxy.CutAll()
			return active
		}},
		{"ari-stall-5s", func(ctx context.Context, t *testing.T, active, _ *Ariflow, _ *faultResult) *Ariflow {
			active.Proxy.Freeze()
			time.Sleep(5 * time.Second) // the fault is 5 s of silence
			active.Proxy.Thaw()
			return nil
		}},
		{"redis-restart", func(ctx context.Context, t *testing.T, _, _ *Ariflow, _ *faultResult) *Ariflow {
			if err := redisRestart(ctx); err != nil {
				t.Fatal(err)
			}
			return nil
		}},
		{"redis-flush", func(ctx context.Context, t *testing.T, active, _ *Ariflow, _ *faultResult) *Ariflow {
			if err := stack.RDB.FlushAll(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			return active
		}},
		{"redis-slow-2s", func(ctx context.Context, t *testing.T, _, _ *Ariflow, _ *faultResult) *Ariflow {
			// DEBUG SLEEP blocks Redis itself: every client waits 2 s.
			// Redis 7 refuses it unless enable-debug-command allows it
			// (stack.sh does): a refusal would make the row test nothing.
			if err := stack.RDB.Do(ctx, "DEBUG", "SLEEP", "2").Err(); err != nil {
				t.Fatalf("DEBUG SLEEP: %v", err)
			}
			return nil
		}},
	}
	// The rows run their own processes; the suite's gives the app up
	// meanwhile and is started again after them.
	af.Close()
	defer func() {
		next, err := StartAriflow(context.Background(), stack, flowsDir, "ariflow-e2e-after-matrix.log")
		if err != nil {
			t.Fatalf("restarting the suite's process after the matrix: %v", err)
		}
		af = next
	}()
	var table []*faultResult
	for _, f := range faults {
		r := &faultResult{fault: f.name}
		table = append(table, r)
		t.Run(f.name, func(t *testing.T) { runFault(t, f, r) })
	}
	printFaultTable(table)
}

func printFaultTable(table []*faultResult) {
	var b strings.Builder
	fmt.Fprintf(&b, "\nfault matrix (calls of 6 kinds in flight; two ariflow processes)\n")
	fmt.Fprintf(&b, "%-16s %9s %6s %8s %4s %6s %5s %9s %7s %9s\n", "fault", "in flight", "kept", "fallback", "gap", "silent", "bad", "takeover", "fenced", "dtmf dup")
	for _, r := range table {
		tk := "-"
		if r.takeover > 0 {
			tk = r.takeover.Round(time.Millisecond).String()
		}
		fmt.Fprintf(&b, "%-16s %9d %6d %8d %4d %6d %5d %9s %7.0f %9d\n", r.fault, r.inFlight, r.kept, r.fallback, r.gap, r.silent, r.bad, tk, r.fencedActions, r.digitDup)
		for _, n := range r.notes {
			fmt.Fprintf(&b, "    %s\n", n)
		}
	}
	fmt.Print(b.String())
}

func runFault(t *testing.T, f haFault, r *faultResult) {
	// Each row starts from a clean stack with fresh processes on a clean
	// namespace. Its processes are stopped last (cleanups run in reverse):
	// after callTest has checked, with them still running, that the row
	// left nothing behind.
	row := newHARow(f.name)
	r.row = row
	t.Cleanup(row.close)
	ctx := callTest(t, 150*time.Second)
	// A row that failed may have left a stopped, frozen or confused
	// process: it goes before callTest clears the stack, so that nothing
	// it still had to send lands in the next row.
	t.Cleanup(func() {
		if t.Failed() {
			row.kill()
		}
	})
	if err := stack.WaitClean(ctx, 10*time.Second); err != nil {
		t.Fatalf("the stack is not clean before the row: %v", err)
	}
	if keys, err := stack.RDB.Keys(ctx, row.namespace()+":*").Result(); err != nil {
		t.Fatal(err)
	} else if len(keys) > 0 {
		if err := stack.RDB.Del(ctx, keys...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	active, err := row.start(ctx, "ariflow-active-"+f.name+".log", false)
	if err != nil {
		t.Fatal(err)
	}
	standby, err := row.start(ctx, "ariflow-standby-"+f.name+".log", true)
	if err != nil {
		t.Fatal(err)
	}

	calls := placeHACalls(ctx, t)
	r.inFlight = len(calls)
	stasisBefore := stasisFailures()
	f.inject(ctx, t, active, standby, r)
	// Wait for an active process again, then let the calls go on.
	deadline := time.Now().Add(20 * time.Second)
	for !(active.Ready() || standby.Ready()) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: no process ready 20 s after the fault", f.name)
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.gapLegs = stasisFailures() - stasisBefore
	finishHACalls(ctx, t, calls, r)
	if w := r.watch; w != nil {
		if w.p.Ready() {
			t.Errorf("%s: the woken process reports ready", f.name)
		}
		r.fencedActions = (w.p.Metric("ariflow_ari_requests_total") - w.reqs) + (w.p.Metric("ariflow_record_writes_total") - w.writes)
	}
	if r.silent > 0 || r.bad > 0 {
		t.Errorf("%s: %d silent, %d with a wrong end: %s", f.name, r.silent, r.bad, strings.Join(r.notes, "; "))
	}
	if r.digitSkip > 0 {
		t.Errorf("%s: %d DTMF digits skipped", f.name, r.digitSkip)
	}
	if r.fencedActions > 0 {
		t.Errorf("%s: a fenced process acted %v times", f.name, r.fencedActions)
	}
}

// newHACall is a call of a kind with a fresh caller number, watched at
// every end its flow can reach.
func newHACall(kind haKind) *haCall {
	c := &haCall{kind: kind, from: nextCaller(), digits: make(chan string, 1)}
	c.ends = map[string]<-chan *Remote{
		agentOK: carrier.ExpectFrom(agentOK, c.from), agentFailed: carrier.ExpectFrom(agentFailed, c.from),
		agentError: carrier.ExpectFrom(agentError, c.from), fallbackDesk: carrier.ExpectFrom(fallbackDesk, c.from),
	}
	return c
}

// placeHACalls places the mix and brings each call to its state.
func placeHACalls(ctx context.Context, t *testing.T) []*haCall {
	t.Helper()
	var calls []*haCall
	for _, m := range haMix {
		for i := 0; i < m.n; i++ {
			c := newHACall(m.kind)
			var ship <-chan *Remote
			transfer := m.kind == kindRinging || m.kind == kindDTMF || m.kind == kindBridged
			if transfer {
				ship = carrier.Expect(haShipper)
			}
			caller, err := carrier.Dial(ctx, c.from, haDID[m.kind])
			if err != nil {
				t.Fatalf("placing a %s call: %v", m.kind, err)
			}
			c.caller = caller
			if transfer {
				c.ship = recv(ctx, t, ship, "the shipper")
			}
			switch m.kind {
			case kindDTMF, kindBridged:
				if err := c.ship.Answer(); err != nil {
					t.Fatal(err)
				}
				go c.collectDigits(ctx)
				if m.kind == kindBridged {
					// Bridged and done with the digits before the fault.
					for !c.digitsDone() {
						select {
						case <-ctx.Done():
							t.Fatal("bridged call: digits did not arrive")
						case <-time.After(20 * time.Millisecond):
						}
					}
				}
			}
			calls = append(calls, c)
		}
	}
	return calls
}

// digitIdle is how long the shipper waits for the next digit (the first
// one: since it answered) before it stops listening. It bounds how long a
// digit may be held up by a fault (a request held in a stalled proxy, an
// event path being proven again), not how long the whole string takes.
const digitIdle = 8 * time.Second

// collectDigits reads what the shipper receives until the last digit of
// the flow's "1,2,3,4,5,6" arrived (a digit sent twice makes more than
// six), the call ended, or no digit came for digitIdle.
func (c *haCall) collectDigits(ctx context.Context) {
	var got string
	for !strings.HasSuffix(got, "6") {
		dctx, cancel := context.WithTimeout(ctx, digitIdle)
		d, err := c.ship.Digits(dctx, 1)
		cancel()
		got += d
		if err != nil {
			got += fmt.Sprintf(" (then: %v)", err)
			break
		}
	}
	c.digits <- got
}

// digitDiff compares the digits received with those sent: a digit
// received twice in a row is a duplicate, one missing a skip.
func digitDiff(want, got string) (dup, skip int) {
	i, j := 0, 0
	for i < len(want) && j < len(got) {
		switch {
		case want[i] == got[j]:
			i++
			j++
		case j > 0 && got[j] == got[j-1]:
			dup++
			j++
		default:
			skip++
			i++
		}
	}
	return dup + len(got) - j, skip + len(want) - i
}

func (c *haCall) digitsDone() bool {
	select {
	case d := <-c.digits:
		c.digits <- d
		return true
	default:
		return false
	}
}

// finishHACalls lets every call run to its end and records what became of
// it.
func finishHACalls(ctx context.Context, t *testing.T, calls []*haCall, r *faultResult) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, c := range calls {
		wg.Add(1)
		go func(c *haCall) {
			defer wg.Done()
			c.finish(ctx)
			mu.Lock()
			defer mu.Unlock()
			r.tally(c)
		}(c)
	}
	wg.Wait()
}

func (r *faultResult) tally(c *haCall) {
	expected := map[string]bool{agentOK: true}
	if c.kind == kindWebhook {
		expected[agentError] = true // a takeover mid-request takes Error (not idempotent)
	}
	switch {
	case expected[c.outcome]:
		r.kept++
	case c.outcome == fallbackDesk:
		r.fallback++
		r.notes = append(r.notes, fmt.Sprintf("%s call %s: fallback", c.kind, c.from))
	case c.outcome == agentFailed && (c.kind == kindDTMF || c.kind == kindRinging) && r.gap < r.gapLegs:
		r.gap++
		r.notes = append(r.notes, fmt.Sprintf("%s call %s: far end answered in the takeover gap; CallFailed", c.kind, c.from))
	case c.outcome == "silent":
		r.silent++
		r.notes = append(r.notes, fmt.Sprintf("%s call %s: SILENT", c.kind, c.from))
	default:
		r.bad++
		r.notes = append(r.notes, fmt.Sprintf("%s call %s: ended at %s", c.kind, c.from, c.outcome))
	}
	if (c.kind == kindDTMF || c.kind == kindBridged || c.kind == kindRinging) && c.outcome == agentOK {
		digits, _, _ := strings.Cut(c.gotDigit, " ")
		dup, skip := digitDiff("123456", digits)
		r.digitDup += dup
		r.digitSkip += skip
		if dup+skip > 0 {
			r.notes = append(r.notes, fmt.Sprintf("%s call %s: digits %q", c.kind, c.from, c.gotDigit))
		}
	}
}

// finish drives one call to its end: the shipper answers (ringing) and
// hangs up, the caller presses 1 (input); then the call must reach an
// agent or the fallback desk.
func (c *haCall) finish(ctx context.Context) {
	listening := false
	switch c.kind {
	case kindInput:
		_ = c.caller.SendDTMF("1")
	case kindRinging:
		if c.ship.Answer() == nil {
			listening = true
			go c.collectDigits(ctx)
		}
	}
	if c.ship != nil {
		// The shipper hangs up once it has its digits (or when the leg is
		// gone, or no digit came for digitIdle; at once when it could not
		// answer, and nothing listens).
		if c.kind != kindRinging || listening {
			c.gotDigit = <-c.digits
		}
		_ = c.ship.Hangup()
	}
	bound := time.NewTimer(30 * time.Second)
	defer bound.Stop()
	// An input taken over restarts at its block: its caller hears the
	// prompt again and presses again (a key pressed while the standby
	// was taking over reached no process).
	var again <-chan time.Time
	if c.kind == kindInput {
		tk := time.NewTicker(5 * time.Second)
		defer tk.Stop()
		again = tk.C
	}
	cases := make(chan [2]any, len(c.ends))
	for num, ch := range c.ends {
		go func(num string, ch <-chan *Remote) {
			select {
			case rm := <-ch:
				cases <- [2]any{num, rm}
			case <-ctx.Done():
			}
		}(num, ch)
	}
wait:
	for {
		select {
		case got := <-cases:
			c.outcome = got[0].(string)
			rm := got[1].(*Remote)
			_ = rm.Answer()
			_ = rm.Hangup()
			break wait
		case <-again:
			_ = c.caller.SendDTMF("1")
		case <-bound.C:
			c.outcome = "silent"
			if !c.caller.Up() {
				c.outcome = "dropped"
			}
			break wait
		}
	}
	for num, ch := range c.ends {
		carrier.Forget(num, ch)
	}
	if c.caller.Up() {
		hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if c.caller.WaitHangup(hctx) != nil {
			_ = c.caller.Hangup()
		}
	}
}

// waitReadyTime polls p's /readyz and says how long it took from since.
func waitReadyTime(ctx context.Context, p *Ariflow, since time.Time) (time.Duration, error) {
	for !p.Ready() {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return time.Since(since), nil
}

func faultKill(ctx context.Context, t *testing.T, active, standby *Ariflow, r *faultResult) *Ariflow {
	killed := time.Now()
	active.Kill()
	d, err := waitReadyTime(ctx, standby, killed)
	if err != nil {
		t.Fatalf("standby not ready after the kill: %v", err)
	}
	r.takeover = d
	return standby
}

func faultStop(ctx context.Context, t *testing.T, active, standby *Ariflow, r *faultResult) *Ariflow {
	stopped := time.Now()
	if err := active.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	d, err := waitReadyTime(ctx, standby, stopped)
	if err != nil {
		t.Fatalf("standby not ready while the active is stopped: %v", err)
	}
	r.takeover = d
	time.Sleep(time.Until(stopped.Add(10 * time.Second))) // the fault is 10 s stopped
	// What the woken process does from now on: nothing.
	if err := active.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	// From now on the woken process must send nothing: remember what it
	// had sent, and compare once the calls are over (runFault).
	var reqs float64 = -1
	for i := 0; i < 100 && reqs < 0; i++ { // /metrics answers once it runs again
		reqs = active.Metric("ariflow_ari_requests_total")
		if reqs < 0 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	r.watch = &fenceWatch{p: active, reqs: reqs, writes: active.Metric("ariflow_record_writes_total")}
	return standby
}

// fenceWatch is what a woken, fenced process had sent when it woke.
type fenceWatch struct {
	p            *Ariflow
	reqs, writes float64
}

func faultSecond(ctx context.Context, t *testing.T, active, _ *Ariflow, r *faultResult) *Ariflow {
	third, err := r.row.start(ctx, "ariflow-third.log", true)
	if err != nil {
		t.Fatal(err)
	}
	if third.Ready() {
		r.notes = append(r.notes, "a second instance became ready while the active ran")
		r.bad++
	}
	third.Close()
	if !active.Ready() {
		r.notes = append(r.notes, "the active lost readiness when a second instance started and stopped")
		r.bad++
	}
	return active
}

func faultDeploy(ctx context.Context, t *testing.T, active, standby *Ariflow, r *faultResult) *Ariflow {
	// The new version is up (the standby); the old one gets SIGTERM.
	stopped := time.Now()
	stopErr := make(chan error, 1)
	go func() { stopErr <- active.Stop() }()
	// Callers keep coming while the old process stops: one after another
	// (at most 10) until it has gone, and one more after. Each
	// must reach its flow's end through the new process, or the fallback
	// desk through the old one (which takes no new call while it hands
	// over); none may be left in silence.
	var arrivals []*haCall
	arrive := func() {
		c := newHACall(kindPrompt)
		caller, err := carrier.Dial(ctx, c.from, haDID[kindPrompt])
		if err != nil {
			t.Errorf("a caller arriving during the deploy: %v", err)
			return
		}
		c.caller = caller
		arrivals = append(arrivals, c)
	}
	for stopping := true; stopping; {
		select {
		case err := <-stopErr:
			if err != nil {
				t.Fatal(err)
			}
			stopping = false
		default:
			if len(arrivals) < 10 {
				arrive()
			} else if err := <-stopErr; err != nil {
				t.Fatal(err)
			} else {
				stopping = false
			}
		}
	}
	d, err := waitReadyTime(ctx, standby, stopped)
	if err != nil {
		t.Fatalf("new process not ready after the old one stopped: %v", err)
	}
	r.takeover = d
	arrive()
	var wg sync.WaitGroup
	for _, c := range arrivals {
		wg.Add(1)
		go func() { defer wg.Done(); c.finish(ctx) }()
	}
	wg.Wait()
	served, fallback := 0, 0
	for _, c := range arrivals {
		switch c.outcome {
		case agentOK:
			served++
		case fallbackDesk:
			fallback++
		default:
			t.Errorf("a caller arriving during the deploy (%s) ended %s", c.from, c.outcome)
		}
	}
	t.Logf("callers arriving during the deploy: %d, %d served by the new process, %d at the fallback desk", len(arrivals), served, fallback)
	return standby
}

// standbyBeside starts a standby beside the suite's active process. kill
// SIGKILLs the active and makes the standby the suite's process, and says
// when the kill was; if the test ends before it, the standby is stopped
// and the active stays the suite's.
func standbyBeside(ctx context.Context, t *testing.T, name string) (standby *Ariflow, kill func() time.Time) {
	t.Helper()
	standby, err := StartAriflowWith(ctx, &Ariflow{Stack: stack, FlowsDir: flowsDir, Standby: true}, "ariflow-standby-"+name+".log")
	if err != nil {
		t.Fatal(err)
	}
	active, killed := af, false
	t.Cleanup(func() {
		if !killed {
			standby.Close()
		}
	})
	return standby, func() time.Time {
		at := time.Now()
		active.Kill()
		active.Close()
		af, killed = standby, true
		return at
	}
}

// A list of numbers survives a SIGKILL: the first number rings when the
// active process dies; it is busy by the time the standby has taken over,
// and the standby rings the second (not the first again), bridges it, and
// resumes the caller when it hangs up.
func TestListTakeover(t *testing.T) {
	ctx := callTest(t, 60*time.Second)
	standby, kill := standbyBeside(ctx, t, "list")
	from := nextCaller()
	first, second := carrier.ExpectFrom("+4930123461", from), carrier.ExpectFrom("+4930123462", from)
	agent := carrier.ExpectFrom(agentOK, from)
	caller, err := carrier.Dial(ctx, from, "+4930555704")
	if err != nil {
		t.Fatal(err)
	}
	n1 := recv(ctx, t, first, "the first number")
	if err := n1.Ring(); err != nil {
		t.Fatal(err)
	}
	killed := kill()
	took, err := waitReadyTime(ctx, standby, killed)
	if err != nil {
		t.Fatalf("standby not ready after the kill: %v", err)
	}
	if err := n1.Reject("busy"); err != nil {
		t.Fatal(err)
	}
	n2 := recv(ctx, t, second, "the second number after the takeover")
	t.Logf("takeover %v; the second number rang %v after the first was busy", took.Round(time.Millisecond), n2.Arrived.Sub(killed.Add(took)).Round(time.Millisecond))
	select {
	case r := <-first:
		t.Errorf("the first number rang again (from %s)", r.CallerNum)
	default:
	}
	if err := n2.Answer(); err != nil {
		t.Fatal(err)
	}
	if err := n2.Hangup(); err != nil {
		t.Fatal(err)
	}
	recv(ctx, t, agent, "the agent after the second number hung up").AnswerAndHangup()
	if err := caller.WaitHangup(ctx); err != nil {
		t.Fatal(err)
	}
	carrier.Forget("+4930123461", first)
}

// The far end answers in the instant after a SIGKILL, while no process
// has the app. An originated leg would enter a Stasis app with no
// connection and Asterisk would hang it up (the caller taking CallFailed);
// a leg made in Stasis waits, answered, and the standby bridges it: the
// shipper gets its digits and the caller comes back.
func TestAnswerInTakeoverGap(t *testing.T) {
	ctx := callTest(t, 60*time.Second)
	standby, kill := standbyBeside(ctx, t, "gap")
	from := nextCaller()
	// The shipper sees the flow's caller ID, not the caller: wait for any call to it.
	ship, agent := carrier.Expect(haShipper), carrier.ExpectFrom(agentOK, from)
	caller, err := carrier.Dial(ctx, from, haDID[kindRinging])
	if err != nil {
		t.Fatal(err)
	}
	s := recv(ctx, t, ship, "the shipper")
	if err := s.Ring(); err != nil {
		t.Fatal(err)
	}
	refused := stasisFailures()
	killed := kill()
	if err := s.Answer(); err != nil {
		t.Fatal(err)
	}
	answered := time.Now()
	took, err := waitReadyTime(ctx, standby, killed)
	if err != nil {
		t.Fatalf("standby not ready after the kill: %v", err)
	}
	if answered.After(killed.Add(took)) {
		t.Fatalf("the far end answered %v after the kill, after the standby was ready (%v): not in the gap", answered.Sub(killed), took)
	}
	digits, err := s.Digits(ctx, 6)
	if err != nil || digits != "123456" {
		t.Fatalf("the shipper got digits %q (%v); want 123456 once the standby bridged it", digits, err)
	}
	t.Logf("answered %v after the kill, standby ready after %v; bridged and digits sent", answered.Sub(killed).Round(time.Millisecond), took.Round(time.Millisecond))
	if err := s.Hangup(); err != nil {
		t.Fatal(err)
	}
	recv(ctx, t, agent, "the agent after the shipper hung up").AnswerAndHangup()
	if err := caller.WaitHangup(ctx); err != nil {
		t.Fatal(err)
	}
	if n := stasisFailures() - refused; n != 0 {
		t.Errorf("Asterisk refused %d channels for the app in the gap (Stasis app not active)", n)
	}
}

// The PBX Asterisk itself dies and comes back with nothing: every channel
// and bridge is gone. ariflow reconnects, finds the records of calls that
// no longer exist, cleans them up (nothing is adopted), and serves the
// next call.
func TestPBXRestartCleansUp(t *testing.T) {
	ctx := callTest(t, 90*time.Second)
	var callers []*Caller
	var remotes []*Remote
	for i := 0; i < 3; i++ {
		c, s, _ := transferToShipper(ctx, t, "+4930555010", shipper)
		_ = s.Answer()
		callers, remotes = append(callers, c), append(remotes, s)
	}
	p, err := carrier.Dial(ctx, nextCaller(), haDID[kindPrompt])
	if err != nil {
		t.Fatal(err)
	}
	callers = append(callers, p)
	// The PBX answers the prompt caller before ariflow's first write of
	// its record: wait for the write rather than race it.
	for deadline := time.Now().Add(5 * time.Second); ; {
		n, _ := stack.RDB.Keys(ctx, "ariflow:*:call:*").Result()
		if len(n) == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d call records before the restart, want 4", len(n))
		}
		time.Sleep(20 * time.Millisecond)
	}
	adopted := af.Metric("ariflow_adopted_calls_total")
	reconciles := af.Metric("ariflow_reconciles_total")

	if out, err := exec.CommandContext(ctx, "bash", "stack.sh", "pbx-restart").CombinedOutput(); err != nil {
		t.Fatalf("pbx restart: %v\n%s", err, out)
	}
	// The carrier's side of the dead calls gets no BYE from a killed PBX:
	// end them here.
	for _, c := range callers {
		_ = c.Hangup()
	}
	for _, r := range remotes {
		_ = r.Hangup()
	}
	waitMetric(ctx, t, "ariflow_reconciles_total", reconciles+1)
	if err := af.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	if n := af.Metric("ariflow_adopted_calls_total"); n != adopted {
		t.Errorf("%v calls adopted after the PBX lost them all", n-adopted)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		keys, _ := stack.RDB.Keys(ctx, "ariflow:*:call:*").Result()
		if len(keys) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("call records left after the PBX restart: %v", keys)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The next call works.
	caller, err := carrier.Dial(ctx, nextCaller(), "+4930555002")
	if err != nil {
		t.Fatal(err)
	}
	if err := caller.WaitHangup(ctx); err != nil {
		t.Fatal(err)
	}
}
