package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// The chaos soak (make chaos; docs/chaos.md): many calls of every kind in
// flight for minutes, two ariflow processes (active and standby) on one
// Redis, a fault drawn at random every 20–40 s, and both cores kept busy
// by a load generator. Every call's end is checked from the carrier; at
// the end one table says what became of the calls and what was left, and
// the test fails when a goal is missed.

// chaosConfig is the soak's settings, from the environment.
type chaosConfig struct {
	duration time.Duration // ARIFLOW_CHAOS
	callers  int           // ARIFLOW_CHAOS_CALLERS: calls kept in flight
	seed     uint64        // ARIFLOW_CHAOS_SEED
	faults   []string      // ARIFLOW_CHAOS_FAULTS
	every    [2]time.Duration
	silence  time.Duration // ARIFLOW_CHAOS_SILENCE: the silence bound
	load     int           // ARIFLOW_CHAOS_LOAD: busy loops
	report   string        // ARIFLOW_CHAOS_REPORT: the report file
	nice     int           // ARIFLOW_CHAOS_HARNESS_NICE: the carrier's and the harness's priority
}

// chaosFaultNames are the faults drawn by default; "deploy" (SIGTERM of
// the active, a new process started) can be added by name.
var chaosFaultNames = []string{"kill", "stop", "ws-cut", "ari-stall", "redis-restart", "redis-flush", "redis-sleep", "redis-latency", "second-instance"}

func chaosConfigFromEnv() (chaosConfig, error) {
	c := chaosConfig{callers: 70, seed: uint64(time.Now().UnixNano() % 1_000_000), faults: chaosFaultNames, nice: -5,
		every: [2]time.Duration{20 * time.Second, 40 * time.Second}, silence: 15 * time.Second, load: runtime.NumCPU()}
	v := os.Getenv("ARIFLOW_CHAOS")
	if v == "" {
		return c, nil
	}
	var err error
	if c.duration, err = time.ParseDuration(v); err != nil {
		return c, fmt.Errorf("ARIFLOW_CHAOS=%q: want a duration such as 10m", v)
	}
	ints := []struct {
		env string
		p   *int
	}{{"ARIFLOW_CHAOS_CALLERS", &c.callers}, {"ARIFLOW_CHAOS_LOAD", &c.load}}
	for _, i := range ints {
		if s := os.Getenv(i.env); s != "" {
			if *i.p, err = strconv.Atoi(s); err != nil || *i.p < 0 {
				return c, fmt.Errorf("%s=%q: want a whole number", i.env, s)
			}
		}
	}
	if s := os.Getenv("ARIFLOW_CHAOS_HARNESS_NICE"); s != "" {
		if c.nice, err = strconv.Atoi(s); err != nil || c.nice < -20 || c.nice > 19 {
			return c, fmt.Errorf("ARIFLOW_CHAOS_HARNESS_NICE=%q: want a nice value, -20 to 19", s)
		}
	}
	if s := os.Getenv("ARIFLOW_CHAOS_SEED"); s != "" {
		if c.seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			return c, fmt.Errorf("ARIFLOW_CHAOS_SEED=%q: want a number", s)
		}
	}
	if s := os.Getenv("ARIFLOW_CHAOS_SILENCE"); s != "" {
		if c.silence, err = time.ParseDuration(s); err != nil {
			return c, fmt.Errorf("ARIFLOW_CHAOS_SILENCE=%q: want a duration", s)
		}
	}
	if s := os.Getenv("ARIFLOW_CHAOS_EVERY"); s != "" {
		lo, hi, ok := strings.Cut(s, "-")
		a, err1 := time.ParseDuration(lo)
		b, err2 := time.ParseDuration(hi)
		if !ok || err1 != nil || err2 != nil || a <= 0 || b < a {
			return c, fmt.Errorf("ARIFLOW_CHAOS_EVERY=%q: want two durations such as 20s-40s", s)
		}
		c.every = [2]time.Duration{a, b}
	}
	if s := os.Getenv("ARIFLOW_CHAOS_FAULTS"); s != "" {
		c.faults = nil
		for _, f := range strings.Split(s, ",") {
			f = strings.TrimSpace(f)
			if !slices.Contains(chaosFaultNames, f) && f != "deploy" {
				return c, fmt.Errorf("ARIFLOW_CHAOS_FAULTS: unknown fault %q (known: %s, deploy)", f, strings.Join(chaosFaultNames, ", "))
			}
			c.faults = append(c.faults, f)
		}
	}
	c.report = os.Getenv("ARIFLOW_CHAOS_REPORT")
	return c, nil
}

// chaosProc is one ariflow process of the soak.
type chaosProc struct {
	*Ariflow
	name    string
	pid     int
	second  bool // a second instance (fault), not one of the pair
	started time.Time

	mu      sync.Mutex
	exited  time.Time
	readyAt time.Time // when it was last seen turning ready (zero: not ready)
	spans   [][2]time.Time
}

func (p *chaosProc) setReady(ready bool, at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case ready && p.readyAt.IsZero():
		p.readyAt = at
	case !ready && !p.readyAt.IsZero():
		p.spans = append(p.spans, [2]time.Time{p.readyAt, at})
		p.readyAt = time.Time{}
	}
}

// readySpans are the times it was seen ready, an open one closed at end.
func (p *chaosProc) readySpans(end time.Time) [][2]time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := slices.Clone(p.spans)
	if !p.readyAt.IsZero() {
		s = append(s, [2]time.Time{p.readyAt, end})
	}
	return s
}

// chaosFault is one injected fault.
type chaosFault struct {
	name     string
	at       time.Time // injected
	until    time.Time // the fault over (stop, stall, latency last a while)
	target   string
	detail   string
	skipped  bool
	inFlight int
}

// leaseSample is the lease's value in Redis, read at some instant
// between before and after; ok false when the read failed.
type leaseSample struct {
	before, after time.Time
	token         string
	ok            bool
}

// healthSample is how quickly the two Asterisks answered ARI, and the
// machine's load, at one moment: a slow carrier is the harness's failure,
// not ariflow's.
type healthSample struct {
	carrier, pbx time.Duration
	load         float64
}

// chaosRun is one soak.
type chaosRun struct {
	t     *testing.T
	cfg   chaosConfig
	ctx   context.Context
	env   []string
	pbxID string
	redis *Proxy // in front of Redis, for the latency fault
	rdb   *redis.Client
	start time.Time
	stop  time.Time // calls stopped being placed

	mu        sync.Mutex
	procs     []*chaosProc // every process started
	restartAt time.Time
	faults    []*chaosFault
	calls     []*chaosCall
	leases    []leaseSample
	refused   []struct {
		at time.Time
		n  int
	} // "Stasis app not active" lines of the PBX log, as they appeared
	flight      []int
	health      []healthSample
	propagation []time.Duration
	notes       []string
	procSeq     int

	left        chaosLeftovers
	carrierLags map[int64]time.Duration
	inFlight    atomic.Int64
	callerSeq   atomic.Int64
	loadPids    []*exec.Cmd
}

func (r *chaosRun) note(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notes = append(r.notes, fmt.Sprintf("%s +%v: ", time.Now().Format("15:04:05"), time.Since(r.start).Round(time.Second))+fmt.Sprintf(format, args...))
}

func (r *chaosRun) noteHangupPropagation(d time.Duration) {
	r.mu.Lock()
	r.propagation = append(r.propagation, d)
	r.mu.Unlock()
}

func TestChaos(t *testing.T) {
	cfg, err := chaosConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.duration == 0 {
		t.Skip("the chaos soak runs with ARIFLOW_CHAOS=10m (make chaos)")
	}
	if len(cfg.faults) == 0 {
		t.Fatal("ARIFLOW_CHAOS_FAULTS names no fault")
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.duration+15*time.Minute)
	defer cancel()
	r := &chaosRun{t: t, cfg: cfg, ctx: ctx, pbxID: "chaos"}
	fmt.Printf("chaos: %v, seed %d (ARIFLOW_CHAOS_SEED=%d repeats the faults and the calls' kinds), %d callers, faults every %v–%v from %s, %d busy loops, silence bound %v, carrier and harness at nice %d\n",
		cfg.duration, cfg.seed, cfg.seed, cfg.callers, cfg.every[0], cfg.every[1], strings.Join(cfg.faults, ", "), cfg.load, cfg.silence, cfg.nice)
	if err := stack.WaitClean(ctx, 10*time.Second); err != nil {
		t.Fatalf("the stack is not clean before the soak: %v", err)
	}
	// The suite's process gives the app up to the soak's own two, which
	// reach Redis through a proxy; it is started again afterwards.
	af.Close()
	defer func() {
		next, err := StartAriflow(context.Background(), stack, flowsDir, "ariflow-e2e-after-chaos.log")
		if err != nil {
			t.Errorf("restarting the suite's process: %v", err)
			return
		}
		af = next
	}()
	redis.SetLogger(quietRedis{}) // Redis restarts are expected here
	// The observer decodes every PBX event; the soak needs none of them.
	observer.Close()
	defer func() {
		o, err := NewObserver(context.Background(), stack)
		if err != nil {
			t.Errorf("reconnecting the observer: %v", err)
			return
		}
		observer = o
	}()
	r.run()
	r.report()
}

// renice sets the nice value of every thread of pid and of its
// descendants (threads started later inherit it).
func renice(pid, nice int) error {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return err
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, nice); err != nil {
			return fmt.Errorf("renice %d: %w", tid, err)
		}
		kids, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, tid))
		for _, k := range strings.Fields(string(kids)) {
			if kid, err := strconv.Atoi(k); err == nil {
				if err := renice(kid, nice); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// reniceHarness gives the outside world (the carrier Asterisk, and this
// process: the callers, far ends, proxies and samplers) a higher priority
// than the busy loops, the PBX, Redis and ariflow: in production it runs
// on other machines, and a starved carrier would fail calls ariflow did
// not fail.
func (r *chaosRun) reniceHarness() {
	if r.cfg.nice == 0 {
		return
	}
	b, err := os.ReadFile(filepath.Join(stack.Env["ARIFLOW_STACK_DIR"], "carrier.pid"))
	if err != nil {
		r.t.Fatalf("carrier pid: %v", err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	for _, p := range []int{pid, os.Getpid()} {
		if err := renice(p, r.cfg.nice); err != nil {
			r.t.Fatalf("renice the harness (ARIFLOW_CHAOS_HARNESS_NICE=0 to leave it): %v", err)
		}
	}
}

// quietRedis drops go-redis's own log lines.
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

func (r *chaosRun) run() {
	t := r.t
	opts, err := redis.ParseURL(stack.Env["ARIFLOW_STACK_REDIS_URL"])
	if err != nil {
		t.Fatal(err)
	}
	if r.redis, err = NewProxy(opts.Addr); err != nil {
		t.Fatal(err)
	}
	defer r.redis.Close()
	// The lease sampler's own client: short timeouts, so that a blocked
	// Redis shows as missing samples rather than stalling the sampler.
	lopts := *opts
	lopts.ReadTimeout, lopts.WriteTimeout, lopts.DialTimeout, lopts.MaxRetries = 300*time.Millisecond, 300*time.Millisecond, 300*time.Millisecond, -1
	r.rdb = redis.NewClient(&lopts)
	defer r.rdb.Close()
	// trace: every ARI request in the log, to read a bad end back.
	r.env = []string{"ARIFLOW_PBX_ID=" + r.pbxID, "ARIFLOW_LOG_LEVEL=trace", fmt.Sprintf("ARIFLOW_REDIS_URL=redis://%s/%d", r.redis.Addr(), opts.DB),
		"ARIFLOW_DIAL_POLICY=" + chaosPolicy()}

	r.reniceHarness()
	carrier.hub.lags() // from now on
	r.startLoad()
	defer r.stopLoad()
	r.start = time.Now()
	if _, err := r.startProc(false, false); err != nil {
		t.Fatal(err)
	}
	if _, err := r.startProc(true, false); err != nil {
		t.Fatal(err)
	}
	samplers, stopSamplers := context.WithCancel(r.ctx)
	var bg sync.WaitGroup
	for _, f := range []func(context.Context){r.sampleLease, r.sampleFlight, r.samplePBXLog, r.sampleHealth, r.supervise} {
		bg.Add(1)
		go func() { defer bg.Done(); f(samplers) }()
	}
	deadline := r.start.Add(r.cfg.duration)
	faultsDone := make(chan struct{})
	go func() { defer close(faultsDone); r.injectFaults(deadline) }()

	var callers sync.WaitGroup
	for w := 0; w < r.cfg.callers; w++ {
		callers.Add(1)
		go func() {
			defer callers.Done()
			rng := rand.New(rand.NewPCG(r.cfg.seed, uint64(w)+1))
			// A ramp: a new caller every 100 ms.
			select {
			case <-time.After(time.Duration(w) * 100 * time.Millisecond):
			case <-r.ctx.Done():
				return
			}
			for time.Now().Before(deadline) && r.ctx.Err() == nil {
				kind := chaosKinds[rng.IntN(len(chaosKinds))]
				from := fmt.Sprintf("+49173%07d", r.callerSeq.Add(1))
				c := newChaosCall(r.ctx, r, kind, from, rng)
				r.inFlight.Add(1)
				c.run()
				r.inFlight.Add(-1)
				r.mu.Lock()
				r.calls = append(r.calls, c)
				r.mu.Unlock()
			}
		}()
	}
	<-faultsDone
	r.stop = time.Now()
	callers.Wait()
	fmt.Printf("chaos: %d calls ended; checking what is left\n", len(r.calls))
	// Leftovers, with the pair still running: what the processes were
	// to clean up must be gone.
	if err := stack.WaitClean(r.ctx, 60*time.Second); err != nil {
		r.note("after the soak: %v", err)
	}
	stopSamplers()
	bg.Wait()
	r.carrierLags = carrier.hub.lags()
	r.leftovers()
	r.mu.Lock()
	procs := slices.Clone(r.procs)
	r.mu.Unlock()
	for _, p := range procs {
		if p.Running() {
			_ = p.Signal(syscall.SIGCONT)
			p.Close()
		}
		p.setReady(false, time.Now())
	}
	if err := stack.ForceClean(r.ctx); err != nil {
		t.Errorf("clearing the stack after the soak: %v", err)
	}
	// The soak's namespace goes with it.
	if keys, err := stack.RDB.Keys(r.ctx, "ariflow:{ariflow@"+r.pbxID+"}:*").Result(); err == nil && len(keys) > 0 {
		_ = stack.RDB.Del(r.ctx, keys...).Err()
	}
}

// startLoad starts one busy loop per core at normal priority: the
// machine the soak proves ariflow on is a busy one.
func (r *chaosRun) startLoad() {
	var pids []string
	for i := 0; i < r.cfg.load; i++ {
		cmd := exec.Command("sh", "-c", "while :; do :; done")
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			r.t.Fatalf("load generator: %v", err)
		}
		r.loadPids = append(r.loadPids, cmd)
		pids = append(pids, strconv.Itoa(cmd.Process.Pid))
	}
	if len(pids) > 0 {
		fmt.Printf("chaos: load generator: busy loops, PIDs %s\n", strings.Join(pids, " "))
	}
}

func (r *chaosRun) stopLoad() {
	for _, cmd := range r.loadPids {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	r.loadPids = nil
}

// startProc starts an ariflow process of the soak: one of the pair, or a
// second instance (the fault); standby: it waits to be alive, not ready.
func (r *chaosRun) startProc(standby, second bool) (*chaosProc, error) {
	r.mu.Lock()
	r.procSeq++
	name := fmt.Sprintf("chaos-ariflow-%d", r.procSeq)
	r.mu.Unlock()
	a, err := StartAriflowWith(r.ctx, &Ariflow{Stack: stack, FlowsDir: flowsDir, Standby: standby, Env: r.env, RecordRequests: true}, name+".log")
	if err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &chaosProc{Ariflow: a, name: name, pid: a.Pid(), second: second, started: time.Now()}
	r.mu.Lock()
	r.procs = append(r.procs, p)
	r.mu.Unlock()
	go r.watchReady(p)
	return p, nil
}

// watchReady polls a process's /readyz until it exits.
func (r *chaosRun) watchReady(p *chaosProc) {
	for {
		running := p.Running()
		if !running {
			now := time.Now()
			p.setReady(false, now)
			p.mu.Lock()
			if p.exited.IsZero() {
				p.exited = now
			}
			p.mu.Unlock()
			return
		}
		// Ready from the answer on; not ready from the question on (a
		// stopped process answers nothing: its poll times out).
		asked := time.Now()
		if Ready(p.HTTPAddr) {
			p.setReady(true, time.Now())
		} else {
			p.setReady(false, asked)
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-r.ctx.Done():
			return
		}
	}
}

// pair is the running processes of the pair.
func (r *chaosRun) pair() []*chaosProc {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*chaosProc
	for _, p := range r.procs {
		if !p.second && p.Running() {
			out = append(out, p)
		}
	}
	return out
}

// supervise keeps two processes in the pair: one that exited (killed) is
// replaced, after restartAt.
func (r *chaosRun) supervise(ctx context.Context) {
	for ctx.Err() == nil {
		r.mu.Lock()
		due := time.Now().After(r.restartAt)
		r.mu.Unlock()
		if due && len(r.pair()) < 2 {
			if p, err := r.startProc(true, false); err != nil {
				r.note("supervisor: %v", err)
			} else {
				r.note("supervisor: started %s (pid %d) to keep two processes", p.name, p.Pid())
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// holderPid is the PID in the lease's owner ("host-PID-random|epoch").
func holderPid(token string) int {
	owner, _, _ := strings.Cut(token, "|")
	parts := strings.Split(owner, "-")
	if len(parts) < 3 {
		return 0
	}
	pid, _ := strconv.Atoi(parts[len(parts)-2])
	return pid
}

func (r *chaosRun) leaseKey() string { return "ariflow:{ariflow@" + r.pbxID + "}:lease" }

// active is the pair's process that serves calls now: the one ready (the
// lease holder when two say so), or the lease holder; nil when none.
func (r *chaosRun) active() *chaosProc {
	pair := r.pair()
	var ready []*chaosProc
	for _, p := range pair {
		if p.Ready() {
			ready = append(ready, p)
		}
	}
	if len(ready) == 1 {
		return ready[0]
	}
	token, _ := stack.RDB.Get(r.ctx, r.leaseKey()).Result()
	for _, p := range pair {
		if p.Pid() == holderPid(token) {
			return p
		}
	}
	if len(ready) > 0 {
		return ready[0]
	}
	return nil
}

func (r *chaosRun) sampleLease(ctx context.Context) {
	for ctx.Err() == nil {
		before := time.Now()
		v, err := r.rdb.Get(ctx, r.leaseKey()).Result()
		s := leaseSample{before: before, after: time.Now(), token: v, ok: err == nil || err == redis.Nil}
		r.mu.Lock()
		r.leases = append(r.leases, s)
		r.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (r *chaosRun) sampleFlight(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
		if time.Since(r.start) < time.Duration(r.cfg.callers)*100*time.Millisecond+10*time.Second || time.Since(r.start) > r.cfg.duration {
			continue // the ramp, the drain
		}
		r.mu.Lock()
		r.flight = append(r.flight, int(r.inFlight.Load()))
		r.mu.Unlock()
	}
}

func (r *chaosRun) sampleHealth(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
		var h healthSample
		t0 := time.Now()
		if _, err := carrier.cli.Asterisk().Info(nil); err == nil {
			h.carrier = time.Since(t0)
		}
		t1 := time.Now()
		if _, err := stack.PBX.Asterisk().Info(nil); err == nil {
			h.pbx = time.Since(t1)
		}
		if b, err := os.ReadFile("/proc/loadavg"); err == nil {
			h.load, _ = strconv.ParseFloat(strings.Fields(string(b))[0], 64)
		}
		r.mu.Lock()
		r.health = append(r.health, h)
		r.mu.Unlock()
	}
}

// samplePBXLog counts, as they appear, the PBX's "Stasis app not active"
// lines: callers Asterisk could not give to any process (they go to the
// fallback desk through the dialplan).
func (r *chaosRun) samplePBXLog(ctx context.Context) {
	path := filepath.Join(stack.Env["ARIFLOW_STACK_LOGS"], "pbx.log")
	var off int64
	if st, err := os.Stat(path); err == nil {
		off = st.Size()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
		f, err := os.Open(path)
		if err != nil {
			continue
		}
		st, err := f.Stat()
		if err != nil || st.Size() <= off {
			f.Close()
			continue
		}
		b := make([]byte, st.Size()-off)
		n, _ := f.ReadAt(b, off)
		f.Close()
		// Whole lines only.
		if i := strings.LastIndexByte(string(b[:n]), '\n'); i >= 0 {
			off += int64(i + 1)
			if k := strings.Count(string(b[:i]), "Stasis app 'ariflow' not active"); k > 0 {
				r.mu.Lock()
				r.refused = append(r.refused, struct {
					at time.Time
					n  int
				}{time.Now(), k})
				r.mu.Unlock()
			}
		}
	}
}

// injectFaults injects a fault every cfg.every until deadline.
func (r *chaosRun) injectFaults(deadline time.Time) {
	rng := rand.New(rand.NewPCG(r.cfg.seed, 0))
	between := func() time.Duration {
		lo, hi := r.cfg.every[0], r.cfg.every[1]
		return lo + time.Duration(rng.Int64N(int64(hi-lo)+1))
	}
	// Drawn from a shuffled deck, dealt out and shuffled again: random,
	// and every fault comes about as often.
	var deck []string
	draw := func() string {
		if len(deck) == 0 {
			deck = slices.Clone(r.cfg.faults)
			rng.Shuffle(len(deck), func(i, j int) { deck[i], deck[j] = deck[j], deck[i] })
		}
		f := deck[0]
		deck = deck[1:]
		return f
	}
	next := r.start.Add(between())
	for {
		wake := next
		if deadline.Before(wake) {
			wake = deadline
		}
		if d := time.Until(wake); d > 0 {
			select {
			case <-time.After(d):
			case <-r.ctx.Done():
				return
			}
		}
		if time.Now().After(deadline) || r.ctx.Err() != nil {
			return
		}
		f := &chaosFault{name: draw(), at: time.Now(), inFlight: int(r.inFlight.Load())}
		r.inject(f, rng)
		if f.until.IsZero() {
			f.until = time.Now()
		}
		r.mu.Lock()
		r.faults = append(r.faults, f)
		r.mu.Unlock()
		status := f.detail
		if f.skipped {
			status = "skipped: " + status
		}
		fmt.Printf("chaos: %s +%v %s %s (%s; %d calls in flight)\n", f.at.Format("15:04:05"), f.at.Sub(r.start).Round(time.Second), f.name, f.target, status, f.inFlight)
		next = f.at.Add(between())
		if f.skipped {
			next = time.Now().Add(2 * time.Second)
		}
	}
}

// inject injects one fault, and returns when it is over (a stopped
// process woken, a stall or a latency ended).
func (r *chaosRun) inject(f *chaosFault, rng *rand.Rand) {
	var p *chaosProc
	switch f.name {
	case "kill", "stop", "ws-cut", "ari-stall", "deploy":
		if p = r.active(); p == nil {
			f.skipped, f.detail = true, "no active process"
			return
		}
		f.target = fmt.Sprintf("%s (pid %d)", p.name, p.Pid())
	}
	switch f.name {
	case "kill":
		p.Kill()
		p.Proxy.Close()
		r.mu.Lock()
		r.restartAt = time.Now().Add(2 * time.Second) // a moment, then two again
		r.mu.Unlock()
		f.detail = "SIGKILL"
	case "stop":
		hold := 2*time.Second + time.Duration(rng.Int64N(int64(8*time.Second)))
		if err := p.Signal(syscall.SIGSTOP); err != nil {
			f.skipped, f.detail = true, err.Error()
			return
		}
		time.Sleep(hold)
		if err := p.Signal(syscall.SIGCONT); err != nil {
			r.t.Errorf("SIGCONT %s: %v", p.name, err)
		}
		f.detail = fmt.Sprintf("SIGSTOP for %v, then SIGCONT", hold.Round(100*time.Millisecond))
	case "ws-cut":
		f.detail = fmt.Sprintf("%d ARI connections cut", p.Proxy.CutAll())
	case "ari-stall":
		p.Proxy.Freeze()
		time.Sleep(5 * time.Second)
		p.Proxy.Thaw()
		f.detail = "ARI stalled 5 s"
	case "deploy":
		err := p.Stop()
		p.Proxy.Close()
		f.detail = "SIGTERM"
		if err != nil {
			f.detail += ": " + err.Error()
		}
	case "redis-restart":
		f.detail = "SIGTERM, started again on its append-only file"
		if err := redisRestart(r.ctx); err != nil {
			r.t.Errorf("%v", err)
			f.detail = "failed: " + err.Error()
		}
	case "redis-flush":
		f.detail = "FLUSHALL"
		if err := stack.RDB.FlushAll(r.ctx).Err(); err != nil {
			r.t.Errorf("FLUSHALL: %v", err)
			f.detail = "failed: " + err.Error()
		}
	case "redis-sleep":
		f.detail = "DEBUG SLEEP 2"
		if err := stack.RDB.Do(r.ctx, "DEBUG", "SLEEP", "2").Err(); err != nil {
			r.t.Errorf("DEBUG SLEEP: %v (Redis needs enable-debug-command, see stack.sh)", err)
			f.detail = "failed: " + err.Error()
		}
	case "redis-latency":
		hold := 5*time.Second + time.Duration(rng.Int64N(int64(10*time.Second)))
		r.redis.Delay(300 * time.Millisecond)
		time.Sleep(hold)
		r.redis.Delay(0)
		f.detail = fmt.Sprintf("300 ms on every Redis reply for %v", hold.Round(100*time.Millisecond))
	case "second-instance":
		hold := 3*time.Second + time.Duration(rng.Int64N(int64(3*time.Second)))
		q, err := r.startProc(true, true)
		if err != nil {
			f.skipped, f.detail = true, err.Error()
			return
		}
		f.target = fmt.Sprintf("%s (pid %d)", q.name, q.Pid())
		time.Sleep(hold)
		if err := q.Stop(); err != nil {
			r.t.Errorf("stopping the second instance: %v", err)
		}
		q.Proxy.Close()
		f.detail = fmt.Sprintf("a third process ran %v beside the pair, then SIGTERM", hold.Round(100*time.Millisecond))
	}
	f.until = time.Now()
}

// leftovers records what the PBX and Redis still hold after the soak.
func (r *chaosRun) leftovers() {
	ch, br, keys, err := stack.Leftovers(r.ctx)
	if err != nil {
		r.t.Errorf("leftovers: %v", err)
	}
	r.left.channels, r.left.bridges, r.left.records = ch, br, keys
	slots, _ := stack.RDB.Keys(r.ctx, "ariflow:policy:slots:*").Result()
	for _, k := range slots {
		n, _ := stack.RDB.ZCard(r.ctx, k).Result()
		r.left.slots += int(n)
	}
}

// chaosLeftovers is what the PBX and Redis held after the soak.
type chaosLeftovers struct {
	channels, bridges, records []string
	slots                      int // dial-out policy slots still held
}

// chaosPolicy is the soak's dial policy file (testdata/policy/chaos.yaml),
// as an absolute path: the processes run elsewhere.
func chaosPolicy() string {
	p, err := filepath.Abs("testdata/policy/chaos.yaml")
	if err != nil {
		panic(err)
	}
	return p
}
