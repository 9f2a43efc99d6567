package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/CyCoreSystems/ari/v6"
)

// Numbers on the carrier. The test flows send each branch to its own
// agent number, so the branch a caller took is seen from outside.
const (
	shipper      = "+4930123456"
	shipperDyn   = "+4930123457"
	shipperConc  = "+4930123458"
	agentOK      = "+4930111000" // Success
	agentFailed  = "+4930111001" // CallFailed
	agentTimeout = "+4930111002" // Timeout
	agentError   = "+4930111003" // Error
)

func TestWalkingSkeleton(t *testing.T) {
	ctx := callTest(t, 20*time.Second)
	caller, err := carrier.Dial(ctx, nextCaller(), "+4930555002")
	if err != nil {
		t.Fatal(err)
	}
	answered := time.Now()
	// The call is in Redis while it lasts.
	for {
		keys, err := stack.RDB.Keys(ctx, "ariflow:*:call:*").Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) > 0 {
			break
		}
		if time.Since(answered) > 2*time.Second {
			t.Fatal("no call record in Redis while the call lasts")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := caller.WaitHangup(ctx); err != nil {
		t.Fatal(err)
	}
	// hello-world.gsm lasts about 1.2 s: the prompt was played, not skipped.
	if d := time.Since(answered); d < 800*time.Millisecond || d > 5*time.Second {
		t.Errorf("call lasted %v after answer; the prompt is about 1.2 s", d)
	}
}

// transferToShipper dials the static flow and returns the caller and the
// shipper's ringing call.
func transferToShipper(ctx context.Context, t *testing.T, did, number string) (*Caller, *Remote, string) {
	t.Helper()
	from := nextCaller()
	ship := carrier.Expect(number)
	caller, err := carrier.Dial(ctx, from, did)
	if err != nil {
		t.Fatal(err)
	}
	return caller, recv(ctx, t, ship, "shipper "+number), from
}

// staticVias are static.yaml's transfer as ariflow dials it, and the
// same carried by the PBX's Dial() (pbxdial.yaml, dial_via: pbx, whose
// agent after Success is dialled by the PBX too).
var staticVias = []struct{ name, did string }{{"ari", "+4930555010"}, {"pbx", pbxDialDID}}

func TestTransferSuccessResumesFlow(t *testing.T) {
	for _, via := range staticVias {
		t.Run(via.name, func(t *testing.T) { transferSuccessResumesFlow(t, via.did) })
	}
}

func transferSuccessResumesFlow(t *testing.T, did string) {
	ctx := callTest(t, 30*time.Second)
	from := nextCaller()
	agent := carrier.ExpectFrom(agentOK, from)
	ship := carrier.Expect(shipper)
	caller, err := carrier.Dial(ctx, from, did)
	if err != nil {
		t.Fatal(err)
	}
	s := recv(ctx, t, ship, "shipper")
	if s.CallerNum != "+4930555000" || s.CallerName != "ACME Support" {
		t.Errorf("shipper saw caller ID %q <%s>, want \"ACME Support\" <+4930555000>", s.CallerName, s.CallerNum)
	}
	if err := s.Answer(); err != nil {
		t.Fatal(err)
	}
	digits, err := s.Digits(ctx, 6)
	if err != nil || digits != "12345#" {
		t.Fatalf("shipper got digits %q (%v), want 12345#", digits, err)
	}
	more, _ := s.Digits(shortCtx(ctx, 700*time.Millisecond), 1)
	if more != "" {
		t.Errorf("shipper got extra digits %q", more)
	}
	if err := s.Hangup(); err != nil {
		t.Fatal(err)
	}
	a := recv(ctx, t, agent, "agent after Success")
	if !caller.Up() {
		t.Error("caller is not connected when the agent call arrives")
	}
	if err := a.Answer(); err != nil {
		t.Fatal(err)
	}
	a.AnswerAndHangup()
	if err := caller.WaitHangup(ctx); err != nil {
		t.Fatal(err)
	}
}

func shortCtx(ctx context.Context, d time.Duration) context.Context {
	c, cancel := context.WithTimeout(ctx, d)
	go func() { <-c.Done(); cancel() }()
	return c
}

func TestTransferDynamicValues(t *testing.T) {
	t.Run("number, DTMF and caller ID from attributes", func(t *testing.T) {
		ctx := callTest(t, 30*time.Second)
		caller, s, from := transferToShipper(ctx, t, "+4930555020", shipperDyn)
		agent := carrier.ExpectFrom(agentOK, from)
		if s.CallerNum != "+4930555099" || s.CallerName != "Dyn Amic" {
			t.Errorf("shipper saw %q <%s>, want \"Dyn Amic\" <+4930555099>", s.CallerName, s.CallerNum)
		}
		_ = s.Answer()
		start := time.Now()
		digits, err := s.Digits(ctx, 4)
		if err != nil || digits != "9876" {
			t.Fatalf("digits %q (%v), want 9876", digits, err)
		}
		// "98,76": the comma is a 500 ms pause.
		if d := time.Since(start); d < 500*time.Millisecond {
			t.Errorf("the four digits took %v; the pause is missing", d)
		}
		_ = s.Hangup()
		a := recv(ctx, t, agent, "agent")
		a.AnswerAndHangup()
		_ = caller.WaitHangup(ctx)
	})
	t.Run("timeout from attribute", func(t *testing.T) {
		ctx := callTest(t, 30*time.Second)
		caller, s, from := transferToShipper(ctx, t, "+4930555020", shipperDyn)
		agent := carrier.ExpectFrom(agentTimeout, from)
		_ = s.Ring()
		end, err := s.WaitHangup(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if d := end.Sub(s.Arrived); d < 6*time.Second || d > 8*time.Second {
			t.Errorf("rang for %v, want 7 s ± 1 s", d)
		}
		a := recv(ctx, t, agent, "agent after Timeout")
		a.AnswerAndHangup()
		_ = caller.WaitHangup(ctx)
	})
}

func TestTransferFailures(t *testing.T) {
	for _, via := range staticVias {
		t.Run(via.name, func(t *testing.T) { transferFailures(t, via.did) })
	}
}

func transferFailures(t *testing.T, did string) {
	for _, reason := range []string{"busy", "congestion", "unallocated", "rejected"} {
		t.Run(reason, func(t *testing.T) {
			ctx := callTest(t, 30*time.Second)
			caller, s, from := transferToShipper(ctx, t, did, shipper)
			agent := carrier.ExpectFrom(agentFailed, from)
			if err := s.Reject(reason); err != nil {
				t.Fatal(err)
			}
			a := recv(ctx, t, agent, "agent after CallFailed")
			a.AnswerAndHangup()
			if err := caller.WaitHangup(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Run("no answer within the timeout", func(t *testing.T) {
		ctx := callTest(t, 30*time.Second)
		caller, s, from := transferToShipper(ctx, t, did, shipper)
		agent := carrier.ExpectFrom(agentTimeout, from)
		_ = s.Ring()
		end, err := s.WaitHangup(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if d := end.Sub(s.Arrived); d < 4*time.Second || d > 6*time.Second {
			t.Errorf("rang for %v, want 5 s ± 1 s", d)
		}
		a := recv(ctx, t, agent, "agent after Timeout")
		a.AnswerAndHangup()
		_ = caller.WaitHangup(ctx)
	})
}

func TestTransferBadSettingsTakeError(t *testing.T) {
	cases := map[string]string{
		"injected dial string": "+4930555021",
		"51 DTMF characters":   "+4930555022",
		"missing attribute":    "+4930555023",
		"quote in caller name": "+4930555024",
		"timeout over 600 s":   "+4930555025",
	}
	for name, did := range cases {
		t.Run(name, func(t *testing.T) {
			ctx := callTest(t, 20*time.Second)
			from := nextCaller()
			ship := carrier.Expect(shipperDyn)
			agent := carrier.ExpectFrom(agentError, from)
			caller, err := carrier.Dial(ctx, from, did)
			if err != nil {
				t.Fatal(err)
			}
			a := recv(ctx, t, agent, "agent after Error")
			none(t, ship, "the shipper (nothing may be dialled)")
			a.AnswerAndHangup()
			_ = caller.WaitHangup(ctx)
			// Take back the unused Expect so a later test is not confused.
			carrier.Forget(shipperDyn, ship)
		})
	}
}

func TestTransferResumeOff(t *testing.T) {
	t.Run("far end hangs up: caller is hung up", func(t *testing.T) {
		ctx := callTest(t, 20*time.Second)
		caller, s, _ := transferToShipper(ctx, t, "+4930555030", shipper)
		_ = s.Answer()
		// Both talk; the flow is done with the caller.
		time.Sleep(300 * time.Millisecond) // hold the conversation briefly; nothing to await
		_ = s.Hangup()
		if err := caller.WaitHangup(ctx); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("caller hangs up: far end is hung up", func(t *testing.T) {
		ctx := callTest(t, 20*time.Second)
		caller, s, _ := transferToShipper(ctx, t, "+4930555030", shipper)
		_ = s.Answer()
		time.Sleep(300 * time.Millisecond) // hold the conversation briefly; nothing to await
		_ = caller.Hangup()
		if _, err := s.WaitHangup(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

func TestTransferRaces(t *testing.T) {
	// The caller leaves at some point of the transfer; the far end must be
	// hung up (or cancelled) within a second, whatever is in progress.
	callerLeaves := []struct {
		name, did, number string
		answer            bool
		digits            int // digits the shipper receives before the caller leaves
	}{
		{"caller hangs up while ringing", "+4930555010", shipper, false, 0},
		{"caller hangs up during DTMF", "+4930555010", shipper, true, 1},
		{"caller hangs up during a DTMF pause", "+4930555020", shipperDyn, true, 2}, // digits "98,76"
		{"caller hangs up while bridged", "+4930555010", shipper, true, 6},
	}
	for _, tc := range callerLeaves {
		t.Run(tc.name, func(t *testing.T) {
			ctx := callTest(t, 20*time.Second)
			caller, s, _ := transferToShipper(ctx, t, tc.did, tc.number)
			if tc.answer {
				_ = s.Answer()
			} else {
				_ = s.Ring()
			}
			if tc.digits > 0 {
				if d, err := s.Digits(ctx, tc.digits); err != nil {
					t.Fatalf("digits before the hangup: %q %v", d, err)
				}
			}
			hung := time.Now()
			_ = caller.Hangup()
			end, err := s.WaitHangup(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if d := end.Sub(hung); d > time.Second {
				t.Errorf("far end hung up %v after the caller; want within 1 s", d)
			}
		})
	}
	t.Run("far end hangs up during DTMF", func(t *testing.T) {
		ctx := callTest(t, 20*time.Second)
		caller, s, from := transferToShipper(ctx, t, "+4930555010", shipper)
		agent := carrier.ExpectFrom(agentOK, from)
		_ = s.Answer()
		if d, err := s.Digits(ctx, 1); err != nil {
			t.Fatalf("first digit: %q %v", d, err)
		}
		_ = s.Hangup()
		a := recv(ctx, t, agent, "agent after Success")
		a.AnswerAndHangup()
		_ = caller.WaitHangup(ctx)
	})
}

func TestConcurrentTransfers(t *testing.T) {
	ctx := callTest(t, 60*time.Second)
	type fate struct {
		name  string
		agent string
		act   func(r *Remote)
	}
	fates := []fate{
		{"success", agentOK, func(r *Remote) { _ = r.Answer(); _, _ = r.Digits(ctx, 1); _ = r.Hangup() }},
		{"busy", agentFailed, func(r *Remote) { _ = r.Reject("busy") }},
		{"no answer", agentTimeout, func(r *Remote) { _ = r.Ring() }},
		{"congestion", agentFailed, func(r *Remote) { _ = r.Reject("congestion") }},
	}
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		f := fates[i%len(fates)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			from := nextCaller()
			ship := carrier.ExpectFrom(shipperConc, from)
			agent := carrier.ExpectFrom(f.agent, from)
			caller, err := carrier.Dial(ctx, from, "+4930555040")
			if err != nil {
				errs <- err
				return
			}
			select {
			case r := <-ship:
				f.act(r)
			case <-ctx.Done():
				errs <- fmt.Errorf("%s (%s): shipper never called", from, f.name)
				return
			}
			select {
			case a := <-agent:
				a.AnswerAndHangup()
			case <-ctx.Done():
				errs <- fmt.Errorf("%s (%s): did not reach %s", from, f.name, f.agent)
				_ = caller.Hangup()
				return
			}
			if err := caller.WaitHangup(ctx); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// What the caller hears while a transfer's far end rings: the PBX's
// ringing tone (ringback "ring", the default), here on the second transfer
// of a call, ended by the far end's answer. Without a tone zone
// (asterisk-conf/indications.conf) the caller heard silence. The far ends
// send nothing: anything loud is the PBX's own sound.
func TestRingbackHeardAndStopped(t *testing.T) {
	ctx := callTest(t, 40*time.Second)
	caller, s, from := transferToShipper(ctx, t, "+4930555010", shipper)
	agent := carrier.ExpectFrom(agentOK, from)
	rec, err := listenAtPBX(ctx, from)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Answer(); err != nil {
		t.Fatal(err)
	}
	if d, err := s.Digits(ctx, 6); err != nil || d != "12345#" {
		t.Fatalf("shipper got digits %q (%v)", d, err)
	}
	if err := s.Hangup(); err != nil {
		t.Fatal(err)
	}
	a := recv(ctx, t, agent, "agent after Success")
	// The agent answers within the tone's first on-phase (the US cadence:
	// 2 s on, 4 s off), so that a tone not stopped at the answer goes on
	// for the whole of it.
	const ringFor = 1200 * time.Millisecond
	select {
	case <-time.After(ringFor):
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	if err := a.Answer(); err != nil {
		t.Fatal(err)
	}
	if err := a.SendDTMF("7"); err != nil {
		t.Fatal(err)
	}
	if !keyHeard(ctx, caller, "7", 5*time.Second) {
		t.Fatal("the agent's key did not reach the caller: not bridged")
	}
	// Bridged with the agent a while: the tone, had it gone on, would be
	// heard here.
	select {
	case <-time.After(time.Second):
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	if err := a.Hangup(); err != nil {
		t.Fatal(err)
	}
	if err := caller.WaitHangup(ctx); err != nil {
		t.Fatal(err)
	}
	heard, err := rec.Heard(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The last loud stretch is the agent's ringing: most of the time the
	// agent let it ring, ended by the answer well before the on-phase's
	// end, and followed by the agent's silence.
	segs := heard.Segments()
	t.Logf("what the caller heard, in 100 ms stretches: %v", segs)
	last := -1
	for i, sg := range segs {
		if sg.Loud {
			last = i
		}
	}
	switch {
	case last < 0:
		t.Fatalf("the caller heard no ringing at all (stretches %v)", segs)
	case segs[last].Len < 5 || segs[last].Len > 17:
		t.Errorf("the caller heard the agent's ringing for %d ms; the agent answered after %v, within the tone's 2 s on-phase (stretches %v)",
			segs[last].Len*100, ringFor, segs)
	case last == len(segs)-1 || segs[last+1].Len < 8:
		t.Errorf("the caller did not hear the agent's silence after the ringing (stretches %v)", segs)
	case last == 0 || segs[last-1].Len < 8:
		t.Errorf("no silence with the shipper before the agent's ringing (stretches %v)", segs)
	}
}

// keyHeard waits up to d for digit to reach the caller.
func keyHeard(ctx context.Context, cl *Caller, digit string, d time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for {
		ev, err := cl.Event(ctx)
		if err != nil {
			return false
		}
		if e, ok := ev.(*ari.ChannelDtmfReceived); ok && e.Digit == digit {
			return true
		}
	}
}
