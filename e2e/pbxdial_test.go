package e2e

import (
	"testing"
	"time"
)

// dial_via: pbx (e2e/testdata/flows/pbxdial.yaml): the PBX's Dial()
// carries the transfer, and the caller comes back to the flow.
const pbxDialDID = "+4930555110"

func TestPBXDialSuccessResumesFlow(t *testing.T) {
	ctx := callTest(t, 30*time.Second)
	caller, s, from := transferToShipper(ctx, t, pbxDialDID, shipper)
	agent := carrier.ExpectFrom(agentOK, from)
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
	// The agent, dialled by the PBX too, sees the caller's own number
	// (ExpectFrom), not the shipper's caller ID.
	a := recv(ctx, t, agent, "agent after Success")
	if !caller.Up() {
		t.Error("caller is not connected when the agent call arrives")
	}
	a.AnswerAndHangup()
	if err := caller.WaitHangup(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestPBXDialFailures(t *testing.T) {
	t.Run("busy", func(t *testing.T) {
		ctx := callTest(t, 30*time.Second)
		caller, s, from := transferToShipper(ctx, t, pbxDialDID, shipper)
		agent := carrier.ExpectFrom(agentFailed, from)
		if err := s.Reject("busy"); err != nil {
			t.Fatal(err)
		}
		a := recv(ctx, t, agent, "agent after CallFailed")
		a.AnswerAndHangup()
		if err := caller.WaitHangup(ctx); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("no answer within the timeout", func(t *testing.T) {
		ctx := callTest(t, 30*time.Second)
		caller, s, from := transferToShipper(ctx, t, pbxDialDID, shipper)
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

// The caller hangs up while the PBX carries its transfer: the far end is
// hung up by the PBX, and ariflow, told nothing, finds the caller gone
// and leaves nothing behind (callTest's check).
func TestPBXDialCallerHangsUp(t *testing.T) {
	ctx := callTest(t, 30*time.Second)
	caller, s, _ := transferToShipper(ctx, t, pbxDialDID, shipper)
	_ = s.Answer()
	if d, err := s.Digits(ctx, 6); err != nil {
		t.Fatalf("digits %q: %v", d, err)
	}
	if err := caller.Hangup(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WaitHangup(ctx); err != nil {
		t.Fatal(err)
	}
}

// ariflow restarts while the PBX carries the transfer: the caller, never
// in the app meanwhile, does not notice; the next process adopts the call
// and takes the caller back when the shipper hangs up.
func TestPBXDialSurvivesRestart(t *testing.T) {
	ctx := callTest(t, 60*time.Second)
	caller, s, from := transferToShipper(ctx, t, pbxDialDID, shipper)
	agent := carrier.ExpectFrom(agentOK, from)
	_ = s.Answer()
	if d, err := s.Digits(ctx, 6); err != nil {
		t.Fatalf("digits %q: %v", d, err)
	}
	if err := af.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	waitMetric(ctx, t, "ariflow_adopted_calls_total", 1)
	if !caller.Up() {
		t.Fatal("caller lost across the restart")
	}
	_ = s.Hangup()
	a := recv(ctx, t, agent, "agent after the restart")
	a.AnswerAndHangup()
	if err := caller.WaitHangup(ctx); err != nil {
		t.Fatal(err)
	}
}

// The active process is killed (SIGKILL) while the PBX carries the
// transfer, and the far end hangs up at once, before the standby holds
// the app: the caller's Stasis() fails and is tried again by the dialplan
// until the standby takes it back from its record.
func TestPBXDialSurvivesKill(t *testing.T) {
	ctx := callTest(t, 60*time.Second)
	standby, kill := standbyBeside(ctx, t, "pbxdial")
	caller, s, from := transferToShipper(ctx, t, pbxDialDID, shipper)
	agent := carrier.ExpectFrom(agentOK, from)
	_ = s.Answer()
	if d, err := s.Digits(ctx, 6); err != nil {
		t.Fatalf("digits %q: %v", d, err)
	}
	killed := kill()
	_ = s.Hangup()
	if _, err := waitReadyTime(ctx, standby, killed); err != nil {
		t.Fatalf("standby not ready after the kill: %v", err)
	}
	a := recv(ctx, t, agent, "agent after the kill")
	if !caller.Up() {
		t.Error("caller lost across the kill")
	}
	a.AnswerAndHangup()
	if err := caller.WaitHangup(ctx); err != nil {
		t.Fatal(err)
	}
}
