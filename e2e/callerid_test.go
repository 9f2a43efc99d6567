package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/CyCoreSystems/ari/v6"
)

// The far end of the caller-ID tests (flow e2e/testdata/flows/callerid.yaml).
const cidFarEnd = "+4930123470"

// farEndPrivate is the identity the far end announces mid-call (a
// connected-line update towards the PBX); the caller must never be shown it.
var farEndPrivate = Party{"Far End Private", "+4930123479"}

// TestCallerIDWholeCall asserts what the far end sees of the call, at
// ringing and again just before it hangs up (after the bridge, the DTMF
// and the connected-line exchange that follows a bridge), for each
// combination of caller_id_number and caller_id_name; what the agent sees
// of the caller afterwards; and that the caller is not shown the far
// end's identity, not even when the far end announces one mid-call.
// Each case runs dialled by ariflow and by the PBX's Dial() (dial_via:
// pbx).
func TestCallerIDWholeCall(t *testing.T) {
	cases := []struct {
		name, did, didPBX, from string
		want                    func(from string) Party // the far end's caller
		agent                   func(from string) Party // the agent's caller
	}{
		{"number and name set", "+4930555101", "+4930555121", "",
			func(string) Party { return Party{"ACME Support", "+4930555000"} }, callerSelf},
		{"number set, name unset: no name, never the caller's", "+4930555102", "+4930555122", "",
			func(string) Party { return Party{"", "+4930555000"} }, callerSelf},
		{"name set, number unset: the caller's number under the block's name", "+4930555103", "+4930555123", "",
			func(from string) Party { return Party{"ACME Support", from} }, callerSelf},
		{"both unset: the caller's identity", "+4930555104", "+4930555124", "",
			callerSelf, callerSelf},
		{"both unset, caller number not E.164: anonymous", "+4930555104", "+4930555124", "0301234567",
			func(from string) Party { return Party{"Caller " + from, "anonymous"} },
			func(from string) Party { return Party{"Caller " + from, "anonymous"} }},
	}
	for _, tc := range cases {
		for _, via := range []struct{ name, did string }{{"ari", tc.did}, {"pbx", tc.didPBX}} {
			t.Run(tc.name+"/"+via.name, func(t *testing.T) { callerIDWholeCall(t, via.did, tc.from, tc.want, tc.agent) })
		}
	}
}

// callerIDWholeCall is one case of TestCallerIDWholeCall: a call to did
// from from (a fresh caller when empty).
func callerIDWholeCall(t *testing.T, did, from string, wantFar, wantAgentOf func(from string) Party) {
	ctx := callTest(t, 30*time.Second)
	if from == "" {
		from = nextCaller()
	}
	want, wantAgent := wantFar(from), wantAgentOf(from)
	far := carrier.Expect(cidFarEnd)
	agent := carrier.Expect(agentOK)
	mark := len(carrier.Seen())
	caller, err := carrier.Dial(ctx, from, did)
	if err != nil {
		t.Fatal(err)
	}
	_, callerSees, err := caller.Identity()
	if err != nil {
		t.Fatal(err)
	}
	r := recv(ctx, t, far, "the far end")

	// Ringing.
	ringCaller, ringConn, err := r.Identity()
	if err != nil {
		t.Fatal(err)
	}
	if ringCaller != want {
		t.Errorf("far end at ringing: caller %v, want %v", ringCaller, want)
	}
	checkNotLeaked(t, "far end at ringing", want, from, ringCaller, ringConn)

	// Bridged: the PBX would send its connected-line update now;
	// the digit comes after it (ariflow's DTMF delay).
	if err := r.Answer(); err != nil {
		t.Fatal(err)
	}
	updates, digit := watchFarEnd(ctx, t, r)
	if digit != "1" {
		t.Fatalf("far end got digit %q, want 1", digit)
	}
	// Just before the far end hangs up.
	endCaller, endConn, err := r.Identity()
	if err != nil {
		t.Fatal(err)
	}
	if endCaller != want {
		t.Errorf("far end before hangup: caller %v, want %v (at ringing %v)", endCaller, want, ringCaller)
	}
	if endConn != ringConn {
		t.Errorf("far end before hangup: connected line %v, at ringing %v", endConn, ringConn)
	}
	checkNotLeaked(t, "far end before hangup", want, from, endCaller, endConn)
	if updates > 0 {
		t.Errorf("far end received %d connected-line updates while bridged; want none", updates)
	}
	// The far end announces an identity of its own; the PBX must
	// neither take it nor pass it to the caller. Nothing arriving
	// has no event: watch the caller for a bounded time.
	if err := r.PushConnectedLine(farEndPrivate); err != nil {
		t.Fatal(err)
	}
	if p, ok := connectedLineUpdate(ctx, caller, 1500*time.Millisecond); ok {
		t.Errorf("caller received a connected-line update to %v: the far end's identity crossed the bridge", p)
	}
	if err := r.Hangup(); err != nil {
		t.Fatal(err)
	}

	// Back in the flow, the caller goes to the agent, who sees the
	// caller's own identity (number only when E.164).
	a := recv(ctx, t, agent, "the agent")
	agentCaller, _, err := a.Identity()
	if err != nil {
		t.Fatal(err)
	}
	if agentCaller != wantAgent {
		t.Errorf("agent: caller %v, want %v", agentCaller, wantAgent)
	}
	// What the caller is shown: what the PBX answered with, never
	// the far end (its number, or the identity it announced).
	_, callerEnd, err := caller.Identity()
	if err != nil {
		t.Fatal(err)
	}
	if callerEnd != callerSees {
		t.Errorf("caller's connected line changed from %v to %v during the transfer", callerSees, callerEnd)
	}
	for _, leak := range []string{cidFarEnd, farEndPrivate.Number, farEndPrivate.Name} {
		if strings.Contains(callerEnd.Name+callerEnd.Number, leak) {
			t.Errorf("caller is shown %v: the far end's identity", callerEnd)
		}
	}
	a.AnswerAndHangup()
	if err := caller.WaitHangup(ctx); err != nil {
		t.Fatal(err)
	}
	if got := carrier.SeenSince(mark); len(got) != 2 {
		t.Errorf("carrier received %v; want the far end and the agent only", got)
	}
	t.Logf("far end: caller %v, connected line %v at ringing, %v before hangup; caller shown %v; agent sees %v", endCaller, ringConn, endConn, callerEnd, agentCaller)
}

func callerSelf(from string) Party { return Party{"Caller " + from, from} }

// checkNotLeaked: where the block presents the company's number, neither
// the caller's name nor its number may appear on the far end's channel.
func checkNotLeaked(t *testing.T, where string, want Party, from string, parties ...Party) {
	t.Helper()
	if want.Number == from || want.Name == "Caller "+from {
		return // the caller's number or name is presented on purpose
	}
	for _, p := range parties {
		if strings.Contains(p.Name+" "+p.Number, from) {
			t.Errorf("%s: %v shows the caller (%s)", where, p, from)
		}
	}
}

// watchFarEnd reads the far end's events until it receives a digit, and
// counts the connected-line updates that arrived before it.
func watchFarEnd(ctx context.Context, t *testing.T, r *Remote) (updates int, digit string) {
	t.Helper()
	for {
		ev, err := r.Event(ctx)
		if err != nil {
			t.Fatalf("far end: waiting for the digit: %v", err)
		}
		switch e := ev.(type) {
		case *ari.ChannelConnectedLine:
			updates++
			if e.Channel.Connected != nil {
				t.Logf("far end: connected-line update to %q <%s>", e.Channel.Connected.Name, e.Channel.Connected.Number)
			}
		case *ari.ChannelDtmfReceived:
			return updates, e.Digit
		case *ari.ChannelDestroyed:
			t.Fatal("far end: call ended before the digit")
		}
	}
}

// TestCallerIDInvisibleCharactersRefused: a caller name with a bidi
// override or a zero-width character (here from an attribute) takes
// Error and dials nothing.
func TestCallerIDInvisibleCharactersRefused(t *testing.T) {
	for name, did := range map[string]string{"bidi override U+202E": "+4930555105", "zero width U+200B": "+4930555106"} {
		t.Run(name, func(t *testing.T) {
			ctx := callTest(t, 20*time.Second)
			from := nextCaller()
			mark := len(carrier.Seen())
			agent := carrier.ExpectFrom(agentError, from)
			caller, err := carrier.Dial(ctx, from, did)
			if err != nil {
				t.Fatal(err)
			}
			a := recv(ctx, t, agent, "the Error branch's agent")
			if got := carrier.SeenSince(mark); len(got) != 1 {
				t.Errorf("carrier received %v; want only the Error branch's agent", got)
			}
			a.AnswerAndHangup()
			_ = caller.WaitHangup(ctx)
		})
	}
}

// connectedLineUpdate waits up to d for a connected-line update on the
// caller's channel.
func connectedLineUpdate(ctx context.Context, cl *Caller, d time.Duration) (Party, bool) {
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for {
		ev, err := cl.Event(wctx)
		if err != nil {
			return Party{}, false
		}
		if e, ok := ev.(*ari.ChannelConnectedLine); ok {
			var p Party
			if e.Channel.Connected != nil {
				p = Party{e.Channel.Connected.Name, e.Channel.Connected.Number}
			}
			return p, true
		}
	}
}
