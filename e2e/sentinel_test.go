package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// sentinelSet is one Redis primary, one replica and three sentinels on
// loopback ports, started by the test and ended by it.
type sentinelSet struct {
	dir              string
	primary, replica string // host:port
	sentinels        []string
	procs            []*exec.Cmd
	exited           chan string // the log name of a process that ended
	waited           []chan struct{}
	name             string
}

// replicaGuard is what docs/security.md asks of a Sentinel set ariflow's
// lease lives in: a primary refuses writes once no replica has acknowledged
// it for 2 s, so a primary cut off from its replicas (and from the
// sentinels, which promote one of them) stops taking lease renewals
// instead of taking ones the failover will lose.
var replicaGuard = []string{"--min-replicas-to-write", "1", "--min-replicas-max-lag", "2"}

// errSetExited is a set-up in which a process ended: most likely its port,
// free when picked, was taken before it bound (freePort's race with every
// connection made meanwhile). The set is started again on new ports.
var errSetExited = errors.New("a process of the set ended during set-up")

// startSentinelSet starts the set; redisArgs go to the primary and the
// replica (which may become primary) alike.
func startSentinelSet(t *testing.T, redisArgs ...string) *sentinelSet {
	t.Helper()
	for try := 1; ; try++ {
		s, err := trySentinelSet(t, redisArgs...)
		if err == nil {
			return s
		}
		s.logTails(t)
		s.stop()
		if !errors.Is(err, errSetExited) || try == 3 {
			t.Fatal(err)
		}
		t.Logf("sentinel set, try %d: %v; starting it again on new ports", try, err)
	}
}

func trySentinelSet(t *testing.T, redisArgs ...string) (*sentinelSet, error) {
	s := &sentinelSet{dir: t.TempDir(), name: "ariflow-ha", exited: make(chan string, 8)}
	t.Cleanup(s.stop)
	port := func() string {
		a, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	s.primary, s.replica = port(), port()
	start := func(name string, args ...string) {
		log, err := os.Create(filepath.Join(s.dir, name+".log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("redis-server", args...)
		cmd.Stdout, cmd.Stderr = log, log
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			_ = cmd.Wait()
			log.Close()
			close(done)
			s.exited <- name
		}()
		s.procs, s.waited = append(s.procs, cmd), append(s.waited, done)
	}
	hostPort := func(a string) (string, string) { h, p, _ := strings.Cut(a, ":"); return h, p }
	for i, a := range []string{s.primary, s.replica} {
		h, p := hostPort(a)
		d := filepath.Join(s.dir, fmt.Sprintf("redis%d", i))
		_ = os.MkdirAll(d, 0o755)
		args := append([]string{"--bind", h, "--port", p, "--save", "", "--appendonly", "yes", "--appendfsync", "always", "--dir", d}, redisArgs...)
		if i == 1 {
			ph, pp := hostPort(s.primary)
			args = append(args, "--replicaof", ph, pp)
		}
		start(fmt.Sprintf("redis%d", i), args...)
	}
	for i := 0; i < 3; i++ {
		a := port()
		s.sentinels = append(s.sentinels, a)
		h, p := hostPort(a)
		ph, pp := hostPort(s.primary)
		conf := filepath.Join(s.dir, fmt.Sprintf("sentinel%d.conf", i))
		body := fmt.Sprintf("bind %s\nport %s\ndir %s\nsentinel monitor %s %s %s 2\nsentinel down-after-milliseconds %s 1000\nsentinel failover-timeout %s 5000\n",
			h, p, s.dir, s.name, ph, pp, s.name, s.name)
		if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		start(fmt.Sprintf("sentinel%d", i), conf, "--sentinel")
	}
	// Ready when every sentinel knows the replica and the two others.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, a := range s.sentinels {
		sc := redis.NewSentinelClient(&redis.Options{Addr: a})
		for {
			reps, _ := sc.Replicas(ctx, s.name).Result()
			sens, _ := sc.Sentinels(ctx, s.name).Result()
			if len(reps) == 1 && len(sens) == 2 {
				break
			}
			select {
			case name := <-s.exited:
				sc.Close()
				return s, fmt.Errorf("%w: %s", errSetExited, name)
			case <-ctx.Done():
				sc.Close()
				return s, fmt.Errorf("sentinel %s: replicas %d, other sentinels %d after 30 s", a, len(reps), len(sens))
			case <-time.After(100 * time.Millisecond):
			}
		}
		sc.Close()
	}
	return s, nil
}

// logTails logs the end of each of the set's logs: a set that did not
// come up (a sentinel that never joined) says why there.
func (s *sentinelSet) logTails(t *testing.T) {
	logs, _ := filepath.Glob(filepath.Join(s.dir, "*.log"))
	for _, f := range logs {
		b, _ := os.ReadFile(f)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		t.Logf("%s (last lines):\n%s", filepath.Base(f), strings.Join(lines[max(0, len(lines)-15):], "\n"))
	}
}

// URL is the Redis URL ariflow takes for this set.
func (s *sentinelSet) URL() string {
	u := "redis://" + s.sentinels[0] + "/0?master_name=" + s.name
	for _, a := range s.sentinels[1:] {
		u += "&addr=" + a
	}
	return u
}

// failover makes the sentinels promote the replica and waits until they
// name it the primary.
func (s *sentinelSet) failover(ctx context.Context, t *testing.T) time.Duration {
	t.Helper()
	sc := redis.NewSentinelClient(&redis.Options{Addr: s.sentinels[0]})
	defer sc.Close()
	started := time.Now()
	if err := sc.Failover(ctx, s.name).Err(); err != nil {
		t.Fatalf("SENTINEL FAILOVER: %v", err)
	}
	for {
		addr, err := sc.GetMasterAddrByName(ctx, s.name).Result()
		if err == nil && len(addr) == 2 && addr[0]+":"+addr[1] == s.replica {
			return time.Since(started)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the replica was not promoted: %v %v", addr, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s *sentinelSet) stop() {
	for i, p := range s.procs {
		_ = p.Process.Kill()
		<-s.waited[i]
	}
	s.procs, s.waited = nil, nil
}

// A Redis primary fails over to its replica in the middle of a bridged
// transfer: ariflow, connected through the sentinels, follows the new
// primary, and the caller still comes back when the shipper hangs up.
// The set runs with the documented replica guard (replicaGuard), which
// refuses writes for a moment as the roles swap.
func TestSentinelFailoverMidCall(t *testing.T) {
	ctx := callTest(t, 90*time.Second)
	set := startSentinelSet(t, replicaGuard...)

	// One lease store per app: the suite's process (on the stack's Redis)
	// steps aside while one on the Sentinel set serves.
	if err := af.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := af.start(context.Background(), filepath.Base(af.LogPath)); err != nil {
			t.Errorf("restarting the suite's ariflow: %v", err)
		}
	})
	sa, err := StartAriflowWith(ctx, &Ariflow{Stack: stack, FlowsDir: flowsDir,
		Env: []string{"ARIFLOW_REDIS_URL=" + set.URL()}}, "ariflow-sentinel.log")
	if err != nil {
		t.Fatal(err)
	}
	defer sa.Close()

	caller, s, from := transferToShipper(ctx, t, "+4930555010", shipper)
	agent := carrier.ExpectFrom(agentOK, from)
	_ = s.Answer()
	if d, err := s.Digits(ctx, 6); err != nil {
		t.Fatalf("digits %q: %v", d, err)
	}
	took := set.failover(ctx, t)
	t.Logf("sentinel failover: replica promoted in %s", took.Round(time.Millisecond))
	if err := sa.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	// The record moved with the data: the call is in the new primary.
	rdb := redis.NewClient(&redis.Options{Addr: set.replica})
	defer rdb.Close()
	if keys, _ := rdb.Keys(ctx, "ariflow:*:call:*").Result(); len(keys) == 0 {
		t.Error("no call record on the promoted primary")
	}
	_ = s.Hangup()
	a := recv(ctx, t, agent, "the agent after the failover")
	_ = a.Answer()
	_ = a.Hangup()
	if err := caller.WaitHangup(ctx); err != nil {
		t.Fatal(err)
	}
	// A new call after the failover works too.
	c2, err := carrier.Dial(ctx, nextCaller(), "+4930555002")
	if err != nil {
		t.Fatal(err)
	}
	if err := c2.WaitHangup(ctx); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		keys, _ := rdb.Keys(ctx, "ariflow:*:call:*").Result()
		if len(keys) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("call records left on the promoted primary: %v", keys)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := sa.Metric("ariflow_adopted_calls_total"); n > 0 {
		t.Logf("the call was adopted %v time(s) across the failover", n)
	}
}

// With min-replicas-to-write, a primary whose replica stops answering
// refuses writes (NOREPLICAS). ariflow then fails closed: the active
// process cannot renew its lease and stops acting within the lease TTL,
// says why (ErrNoReplicas), reports not ready and lets go of the app, so a
// caller arriving meanwhile goes to the dialplan's fallback; no process
// campaigns successfully while writes are refused. Once the replica is
// back, a process takes the lease, adopts the call that stayed bridged,
// and the caller resumes when the far end hangs up.
func TestSentinelNoReplicasFailsClosed(t *testing.T) {
	ctx := callTest(t, 120*time.Second)
	set := startSentinelSet(t, replicaGuard...)
	if err := af.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := af.start(context.Background(), filepath.Base(af.LogPath)); err != nil {
			t.Errorf("restarting the suite's ariflow: %v", err)
		}
	})
	sa, err := StartAriflowWith(ctx, &Ariflow{Stack: stack, FlowsDir: flowsDir,
		Env: []string{"ARIFLOW_REDIS_URL=" + set.URL()}}, "ariflow-noreplicas.log")
	if err != nil {
		t.Fatal(err)
	}
	defer sa.Close()

	caller, s, from := transferToShipper(ctx, t, "+4930555010", shipper)
	agent := carrier.ExpectFrom(agentOK, from)
	_ = s.Answer()
	if d, err := s.Digits(ctx, 6); err != nil {
		t.Fatalf("digits %q: %v", d, err)
	}

	// The replica stops (SIGSTOP: its connection stays, its
	// acknowledgements stop): after min-replicas-max-lag the primary
	// refuses writes.
	replica := set.procs[1].Process
	if err := replica.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			_ = replica.Signal(syscall.SIGCONT)
		}
	}
	defer resume()
	primary := redis.NewClient(&redis.Options{Addr: set.primary})
	defer primary.Close()
	stopped := time.Now()
	for {
		err := primary.Set(ctx, "ariflow-e2e-probe", "1", time.Minute).Err()
		if err != nil && strings.Contains(err.Error(), "NOREPLICAS") {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the primary still takes writes with its replica stopped: %v", err)
		}
		time.Sleep(100 * time.Millisecond) // the primary's lag check: nothing to await
	}
	refusing := time.Now()
	for Ready(sa.HTTPAddr) {
		if ctx.Err() != nil {
			t.Fatal("ariflow still ready while Redis refuses its writes")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("replica stopped: writes refused after %s, ariflow not ready %s later",
		refusing.Sub(stopped).Round(time.Millisecond), time.Since(refusing).Round(time.Millisecond))
	if n := sa.Metric("ariflow_lease_failures_total"); n < 1 {
		t.Errorf("ariflow_lease_failures_total = %v while Redis refuses writes", n)
	}
	// Once the process has let go of the app (its term over: the calls
	// stopped, the websocket closed), a new caller goes to the fallback
	// desk: Stasis() fails and the dialplan sends it there.
	for sa.Metric("ariflow_active") != 0 {
		if ctx.Err() != nil {
			t.Fatal("ariflow_active still 1 while Redis refuses writes")
		}
		time.Sleep(20 * time.Millisecond)
	}
	from2 := nextCaller()
	desk := carrier.ExpectFrom(fallbackDesk, from2)
	c2, err := carrier.Dial(ctx, from2, "+4930555002")
	if err != nil {
		t.Fatal(err)
	}
	d := recv(ctx, t, desk, "the fallback desk while no process is active")
	d.AnswerAndHangup()
	if err := c2.WaitHangup(ctx); err != nil {
		t.Fatal(err)
	}
	if Ready(sa.HTTPAddr) {
		t.Error("ariflow became ready while Redis refuses writes")
	}

	// The replica is back: writes are taken, a process is active again,
	// and the bridged call is still served.
	resume()
	if err := sa.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	_ = s.Hangup()
	a := recv(ctx, t, agent, "the agent after the replica came back")
	a.AnswerAndHangup()
	if err := caller.WaitHangup(ctx); err != nil {
		t.Fatal(err)
	}
	log, err := os.ReadFile(sa.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "fewer replicas than min-replicas-to-write") {
		t.Errorf("%s never says why the lease could not be renewed", sa.LogPath)
	}
}
