package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

var (
	stack   *Stack
	carrier *Carrier
	af      *Ariflow
	// flowsDir holds flows/examples and e2e/testdata/flows, copied so that
	// tests may change them.
	flowsDir string
	webhook  *webhookServer
	observer *Observer
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	s, err := LoadStack()
	if err != nil {
		if os.Getenv("ARIFLOW_E2E_REQUIRED") != "" {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			return 1
		}
		// Without a stack only the tests that need none run: TestOffline...
		// (within -run, if given).
		flag.Parse()
		run := flag.Lookup("test.run")
		pattern := "^TestOffline"
		if p := run.Value.String(); p != "" {
			pattern += ".*(?:" + p + ")"
		}
		if err := run.Value.Set(pattern); err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			return 1
		}
		fmt.Fprintln(os.Stderr, "e2e: only the offline tests run:", err)
		return m.Run()
	}
	stack = s
	webhook = startWebhookServer()
	defer webhook.Close()
	flowsDir, err = os.MkdirTemp("", "ariflow-e2e-flows-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(flowsDir)
	if err := prepareFlows(flowsDir, webhook.URL()); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	bin, err := BuildAriflow("..", flowsDir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	s.Env["ARIFLOW_STACK_ARIFLOW_BIN"] = bin
	// The bound starts after the build: on a busy machine with a cold
	// build cache the build alone can take most of a minute.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	carrier, err = NewCarrier(ctx, s)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer carrier.Close()
	carrier.Start(context.Background())
	observer, err = NewObserver(ctx, s)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer observer.Close()
	af, err = StartAriflow(ctx, s, flowsDir, "ariflow-e2e.log")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer af.Proxy.Close()
	v, _ := s.PBX.Asterisk().Info(nil)
	if v != nil {
		fmt.Printf("e2e: against Asterisk %s (PBX) with ariflow log %s\n", v.SystemInfo.Version, af.LogPath)
	}
	code := m.Run()
	if err := af.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		code = 1
	}
	if code != 0 {
		fmt.Fprintf(os.Stderr, "e2e: logs in %s\n", s.Env["ARIFLOW_STACK_LOGS"])
	}
	return code
}

func prepareFlows(dir, webhookURL string) error {
	for _, glob := range []string{"../flows/examples/*.yaml", "testdata/flows/*.yaml"} {
		files, err := filepath.Glob(glob)
		if err != nil {
			return err
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				return err
			}
			// Flows that call the tests' webhook server name it so.
			b = []byte(strings.ReplaceAll(string(b), "http://webhook.invalid", strings.TrimSuffix(webhookURL, "/lookup")))
			if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644); err != nil {
				return err
			}
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "outcome.yaml"), []byte(fmt.Sprintf(outcomeFlow, webhookURL)), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "webhook.yaml"), []byte(fmt.Sprintf(webhookFlow, webhookURL)), 0o644)
}

var callerSeq atomic.Int64

// nextCaller is a fresh caller number per call, so that calls in the
// carrier's logs and in Redis can be told apart.
func nextCaller() string {
	return fmt.Sprintf("+4917%08d", 10000000+callerSeq.Add(1)+int64(os.Getpid()%1000)*1000)
}

// callTest gives a test a deadline and checks, when it ends, that the PBX
// and Redis hold nothing of it.
func callTest(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(func() {
		defer cancel()
		// A test that failed before its calls came leaves waiters at the
		// carrier; each would take a later test's call, and fail it.
		carrier.ForgetAll()
		cctx, c2 := context.WithTimeout(context.Background(), 30*time.Second)
		defer c2()
		if err := stack.WaitClean(cctx, 10*time.Second); err != nil {
			t.Errorf("after the test: %v", err)
			// One failing test must not fail every later one by what it
			// left behind: clear the stack and say what was cleared.
			if err := stack.ForceClean(cctx); err != nil {
				t.Errorf("clearing the stack after the test: %v", err)
			}
		}
	})
	return ctx
}

// recv waits for a call to arrive at the carrier.
func recv(ctx context.Context, t *testing.T, ch <-chan *Remote, what string) *Remote {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-ctx.Done():
		t.Fatalf("no call to %s: %v", what, ctx.Err())
		return nil
	}
}

// none asserts that no call arrived.
func none(t *testing.T, ch <-chan *Remote, what string) {
	t.Helper()
	select {
	case r := <-ch:
		t.Errorf("unexpected call to %s from %s", what, r.CallerNum)
		_ = r.Hangup()
	default:
	}
}
