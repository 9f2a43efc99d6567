package e2e

import (
	"testing"
	"time"
)

// dial_via: pbx (e2e/testdata/flows/pbxdial.yaml): the PBX's Dial()
// carries the transfer, and the caller comes back to the flow.
const pbxDialDID = "+4930555110"

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

// The active process is killed (SIGKILL) while the PBX carries the
// transfer, and the far end hangs up at once, before the standby holds
// the app: the PBX dials the agent chained to the transfer all the same,
// and the standby takes the caller back from its record when the agent's
// call ends (a Stasis() refused meanwhile is tried again by the
// dialplan).
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
