package e2e

import (
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/CyCoreSystems/ari/v6"
)

// TestCarrierDTMFDuplicateExperiment reproduces, on demand, the carrier
// Asterisk publishing one DTMF end twice (docs/chaos.md, "The far end
// reports a digit twice"): right after the far end answers, the carrier
// Asterisk is stopped (SIGSTOP) long enough to cover the flow's digits, so
// that its channel thread reads them in a burst. Opt-in
// (ARIFLOW_DTMF_DUP_EXPERIMENT=1): it stops the stack's carrier process.
// ARIFLOW_DTMF_DUP_CALLS sets the calls per arm (default 10).
func TestCarrierDTMFDuplicateExperiment(t *testing.T) {
	calls := experiment(t, "ARIFLOW_DTMF_DUP", "stops the stack's carrier Asterisk")
	pid, err := carrierAsteriskPID(stack.Env["ARIFLOW_STACK_DIR"])
	if err != nil {
		t.Fatal(err)
	}
	const stall = 1200 * time.Millisecond
	arms := []struct {
		name, did, far, want string
		stall                time.Duration
	}{
		{"12 with the carrier stopped", chaosKeyDID, chaosFarKey, "12", stall},
		{"12 without a stop", chaosKeyDID, chaosFarKey, "12", 0},
		{"1,2,3 with the carrier stopped", chaosDID, chaosFar, "123", stall},
	}
	for _, arm := range arms {
		t.Run(arm.name, func(t *testing.T) {
			withDup := 0
			for i := range calls {
				got := dupExperimentCall(t, pid, arm.did, arm.far, len(arm.want), arm.stall)
				sc := scoreFarDigits(arm.want, got)
				if len(sc.carrierDups) > 0 {
					withDup++
				}
				t.Logf("call %d: far end got %q: %s; carrier duplicates %d", i+1, digitString(got), formatFarDigits(got), len(sc.carrierDups))
				// Less the carrier's duplicates, every call carries the
				// flow's digits once; without a stall there are none.
				if sc.wire != arm.want {
					t.Errorf("call %d: far end got %q, less the carrier's duplicates %q, want %q", i+1, digitString(got), sc.wire, arm.want)
				}
				if arm.stall == 0 && len(sc.carrierDups) > 0 {
					t.Errorf("call %d without a stall: carrier duplicates %s", i+1, formatFarDigits(sc.carrierDups))
				}
			}
			t.Logf("%s: %d calls, %d with a digit reported twice", arm.name, calls, withDup)
		})
	}
}

// dupExperimentCall places one call to did, answers its far end, stops the
// carrier for stall, and returns every digit the far end reported.
func dupExperimentCall(t *testing.T, pid int, did, far string, n int, stall time.Duration) []Digit {
	t.Helper()
	ctx := callTest(t, 40*time.Second)
	from := nextCaller()
	farc := carrier.ExpectFrom(far, from)
	agent := carrier.ExpectFrom(agentOK, from)
	caller, err := carrier.Dial(ctx, from, did)
	if err != nil {
		t.Fatal(err)
	}
	r := recv(ctx, t, farc, "far end "+far)
	if err := r.Answer(); err != nil {
		t.Fatal(err)
	}
	if stall > 0 {
		// The digits start DTMFDelay after answer: the stop covers them.
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		time.Sleep(stall)
		if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
	}
	// Every digit the far end reports, until n arrived and 1.5 s passed
	// with no more.
	var got []Digit
	for {
		wait := 10 * time.Second
		if len(got) >= n {
			wait = 1500 * time.Millisecond
		}
		ev, err := r.Event(shortCtx(ctx, wait))
		if err != nil {
			if len(got) < n {
				t.Fatalf("far end got %d of %d digits: %v", len(got), n, err)
			}
			break
		}
		if e, ok := ev.(*ari.ChannelDtmfReceived); ok {
			got = append(got, Digit{Digit: e.Digit, At: EventTime(e), Duration: time.Duration(e.DurationMs) * time.Millisecond})
		}
	}
	if err := r.Hangup(); err != nil {
		t.Fatal(err)
	}
	a := recv(ctx, t, agent, "agent after Success")
	a.AnswerAndHangup()
	if err := caller.WaitHangup(ctx); err != nil {
		t.Fatal(err)
	}
	return got
}

// carrierAsteriskPID is the carrier Asterisk of the stack in dir.
func carrierAsteriskPID(dir string) (int, error) { return stackAsteriskPID(dir, "carrier") }

// experiment skips t unless <prefix>_EXPERIMENT=1 (what it does to the
// stack says why it is opt-in), and returns the calls per arm:
// <prefix>_CALLS, 10 by default.
func experiment(t *testing.T, prefix, why string) int {
	t.Helper()
	if os.Getenv(prefix+"_EXPERIMENT") != "1" {
		t.Skipf("opt-in: %s_EXPERIMENT=1 (%s)", prefix, why)
	}
	calls := 10
	if s := os.Getenv(prefix + "_CALLS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("%s_CALLS=%q: want a positive number", prefix, s)
		}
		calls = n
	}
	return calls
}
