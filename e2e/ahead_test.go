package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/CyCoreSystems/ari/v6"
)

// aheadLeg waits for the leg ariflow makes ahead for the caller's next
// transfer (the agent, who sees the caller's own number): a leg of
// ariflow's in the PBX, down and undialled, whose caller ID is from.
func aheadLeg(ctx context.Context, t *testing.T, from string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		keys, err := stack.PBX.Channel().List(nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			if !strings.Contains(k.ID, "-leg-") {
				continue
			}
			d, err := stack.PBX.Channel().Data(k)
			if err == nil && d.Caller.Number == from && d.State == "Down" {
				return k.ID
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no leg made ahead for the caller %s while the shipper talked", from)
	return ""
}

// The agent's leg is made while the shipper talks, undialled (the agent
// hears nothing of it), and the same leg rings the agent once the shipper
// hangs up. The caller hanging up instead takes the leg made ahead with
// it; nothing is left either way (callTest).
func TestNextLegMadeAhead(t *testing.T) {
	t.Run("dialled when the caller comes back", func(t *testing.T) {
		ctx := callTest(t, 30*time.Second)
		caller, s, from := transferToShipper(ctx, t, "+4930555010", shipper)
		agent := carrier.ExpectFrom(agentOK, from)
		if err := s.Answer(); err != nil {
			t.Fatal(err)
		}
		if digits, err := s.Digits(ctx, 6); err != nil || digits != "12345#" {
			t.Fatalf("shipper got digits %q (%v), want 12345#", digits, err)
		}
		leg := aheadLeg(ctx, t, from)
		none(t, agent, "agent while the shipper talks")
		if err := s.Hangup(); err != nil {
			t.Fatal(err)
		}
		a := recv(ctx, t, agent, "agent after Success")
		if err := a.Answer(); err != nil {
			t.Fatal(err)
		}
		// The agent's answer is the leg made ahead's: it is up.
		up := false
		for deadline := time.Now().Add(3 * time.Second); !up && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			d, err := stack.PBX.Channel().Data(ari.NewKey(ari.ChannelKey, leg))
			up = err == nil && d.State == "Up"
		}
		if !up {
			t.Errorf("the leg made ahead, %s, is not the one the agent answered", leg)
		}
		if err := a.Hangup(); err != nil {
			t.Fatal(err)
		}
		if err := caller.WaitHangup(ctx); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("hung up with the caller", func(t *testing.T) {
		ctx := callTest(t, 30*time.Second)
		caller, s, from := transferToShipper(ctx, t, "+4930555010", shipper)
		if err := s.Answer(); err != nil {
			t.Fatal(err)
		}
		aheadLeg(ctx, t, from)
		if err := caller.Hangup(); err != nil {
			t.Fatal(err)
		}
		if _, err := s.WaitHangup(ctx); err != nil {
			t.Fatal(err)
		}
	})
}
