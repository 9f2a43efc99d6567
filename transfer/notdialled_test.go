package transfer

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/ariflow/ariflow/internal/ari"
	"github.com/ariflow/ariflow/record"
)

// termCall is a fakeCall whose notes of legs never dialled are the
// process's: shared by the calls of its terms.
type termCall struct {
	*fakeCall
	noted map[string]bool
}

func (c *termCall) NotDialled(leg string) { c.noted[leg] = true }
func (c *termCall) WasNotDialled(leg string) bool {
	ok := c.noted[leg]
	delete(c.noted, leg)
	return ok
}

// A term of the process that stops acting while its leg enters the app,
// the "dialing" write made and the dial not sent, notes the leg. The next
// term, adopting the call with that leg gone (Asterisk hangs up a leg that
// enters the app while the app has no connection), dials the number
// again. A process without the note (another one) takes the gone leg for
// a number that failed, as it cannot know whether the dial left.
func TestLegGoneUndialledIsDialledAgainByTheNextTerm(t *testing.T) {
	for _, tc := range []struct {
		name    string
		noted   bool
		outcome Outcome
	}{
		{"noted by this process's last term", true, OutcomeSuccess},
		{"not noted: another process", false, OutcomeCallFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			noted := map[string]bool{}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			first := &termCall{fakeCall: newFakeCall(), noted: noted}
			first.onPhase = func(p record.Phase) {
				if p == record.PhaseDialing {
					cancel() // the term ends as the leg enters the app
				}
			}
			plan := Plan{Resume: true, Targets: []record.Target{{Number: "+4930123456", Dial: "PJSIP/+4930123456@trunk", TimeoutS: 5}}}
			a := newFakeARI()
			if _, err := Run(ctx, first, testEnv(a), &fakeGate{}, plan, 0); !errors.Is(err, context.Canceled) {
				t.Fatalf("first term: %v; want it stopped", err)
			}
			if slices.ContainsFunc(a.requests(), func(r string) bool { return strings.HasPrefix(r, "dial ") }) || !noted["leg-1"] {
				t.Fatalf("first term: requests %q, noted %v; want leg-1 noted, no dial", a.requests(), noted)
			}
			if !tc.noted {
				clear(noted)
			}

			next := &termCall{fakeCall: newFakeCall(), noted: noted}
			next.rec = first.rec
			if next.rec.Phase != record.PhaseDialing || next.rec.Outbound != "leg-1" {
				t.Fatalf("record left: phase %s outbound %q; want dialing leg-1", next.rec.Phase, next.rec.Outbound)
			}
			a = newFakeARI() // leg-1 is gone
			a.bridges[next.rec.Bridge] = nil
			env := testEnv(a)
			env.NewID = func(kind string) string { return kind + "-t2" }
			next.events = []ari.Event{
				&ari.StasisStart{Channel: ari.ChannelData{ID: "leg-t2"}},
				&ari.ChannelStateChange{Channel: ari.ChannelData{ID: "leg-t2", State: "Up"}},
				destroyed("leg-t2", 16, "Up"),
			}
			res, err := Adopt(context.Background(), next, env, &fakeGate{})
			if err != nil && err != errNoMoreEvents {
				t.Fatalf("next term: %v", err)
			}
			dialled := slices.Contains(a.requests(), "dial leg-t2 5s")
			if res.Outcome != tc.outcome || dialled != tc.noted {
				t.Errorf("next term: %s, requests %q; want %s, the number dialled again: %v", res.Outcome, a.requests(), tc.outcome, tc.noted)
			}
		})
	}
}
