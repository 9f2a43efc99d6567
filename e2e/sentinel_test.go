package e2e

import (
	"context"
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
	name             string
}

func startSentinelSet(t *testing.T) *sentinelSet {
	t.Helper()
	s := &sentinelSet{dir: t.TempDir(), name: "ariflow-ha"}
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
		s.procs = append(s.procs, cmd)
	}
	hostPort := func(a string) (string, string) { h, p, _ := strings.Cut(a, ":"); return h, p }
	for i, a := range []string{s.primary, s.replica} {
		h, p := hostPort(a)
		d := filepath.Join(s.dir, fmt.Sprintf("redis%d", i))
		_ = os.MkdirAll(d, 0o755)
		args := []string{"--bind", h, "--port", p, "--save", "", "--appendonly", "yes", "--appendfsync", "always", "--dir", d}
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
			case <-ctx.Done():
				t.Fatalf("sentinel %s: replicas %d, other sentinels %d after 30 s", a, len(reps), len(sens))
			case <-time.After(100 * time.Millisecond):
			}
		}
		sc.Close()
	}
	return s
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
	for _, p := range s.procs {
		_ = p.Process.Kill()
		_, _ = p.Process.Wait()
	}
	s.procs = nil
}

// A Redis primary fails over to its replica in the middle of a bridged
// transfer: ariflow, connected through the sentinels, follows the new
// primary, and the caller still comes back when the shipper hangs up.
func TestSentinelFailoverMidCall(t *testing.T) {
	ctx := callTest(t, 90*time.Second)
	set := startSentinelSet(t)

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
