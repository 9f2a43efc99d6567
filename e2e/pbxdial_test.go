package e2e

import (
	"strings"
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
// and ends the call when the agent hangs up (the call ends with its
// agent); the standby, holding the record, finds the caller gone and
// leaves nothing behind (callTest's check).
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

// pbxOwnDID: pbxown.yaml, whose transfer and chained agent both fit the
// extension of [ariflow-dial].
const pbxOwnDID = "+4930555117"

// Both transfers' fields in the extension: the far ends see the caller's
// own number ("=" in the fields), the digits arrive, the PBX dials the
// agent chained to the transfer and hangs the caller up when the agent
// hangs up (the call ends with its agent), and ariflow asked Asterisk
// for one continue, no variable and no hangup to carry both.
func TestPBXDialChainInTheExtension(t *testing.T) {
	ctx := callTest(t, 30*time.Second)
	continues := requestsOfKind(t, af, "POST channels/continue")
	variables := requestsOfKind(t, af, "POST channels/variable")
	hangups := requestsOfKind(t, af, "DELETE channels")
	caller, s, from := transferToShipper(ctx, t, pbxOwnDID, shipper)
	agent := carrier.ExpectFrom(agentOK, from)
	if s.CallerNum != from {
		t.Errorf("shipper saw the number %q, want the caller's own %s", s.CallerNum, from)
	}
	_ = s.Answer()
	if d, err := s.Digits(ctx, 3); err != nil || d != "12#" {
		t.Fatalf("digits %q (%v), want 12#", d, err)
	}
	_ = s.Hangup()
	a := recv(ctx, t, agent, "agent chained to the transfer")
	if !caller.Up() {
		t.Error("caller is not connected when the agent call arrives")
	}
	a.AnswerAndHangup()
	if err := caller.WaitHangup(ctx); err != nil {
		t.Fatal(err)
	}
	if n := requestsOfKind(t, af, "POST channels/continue") - continues; n != 1 {
		t.Errorf("%v continues, want 1 (the PBX dials the agent chained to the transfer)", n)
	}
	if n := requestsOfKind(t, af, "POST channels/variable") - variables; n != 0 {
		t.Errorf("%v variables set, want none (both transfers in the extension)", n)
	}
	if n := requestsOfKind(t, af, "DELETE channels") - hangups; n != 0 {
		t.Errorf("%v hangups sent, want none (the PBX ends the call with its agent)", n)
	}
}

// requestsOfKind is how many ARI requests of kind (ari.Kind) a has sent
// that Asterisk answered.
func requestsOfKind(t *testing.T, a *Ariflow, kind string) float64 {
	t.Helper()
	return metricSumOf(t, a, func(line string) bool {
		return strings.HasPrefix(line, "ariflow_ari_answers_total{") && strings.Contains(line, `request="`+kind+`"`)
	})
}
