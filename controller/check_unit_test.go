package controller

import (
	"context"
	"testing"
	"time"

	"github.com/ariflow/ariflow/internal/ari"
	"github.com/ariflow/ariflow/internal/ari/aritest"
	"github.com/ariflow/ariflow/record"
	"github.com/ariflow/ariflow/transfer"
)

// A reconnect's check of a call's channels (checkChannels) may be handled
// well after the reconnect. A leg the call made after the websocket opened
// had all its events delivered: found gone, it is not "ended unseen" (the
// fault matrix's ari-stall row: an agent leg made after the reconnect,
// answered and hung up at once, taken for CallFailed because the check
// said it had vanished before its queued answer was read). A leg from
// before whose end is already queued is not lost either: its real end, with
// its cause, comes next.
func TestReconnectCheckLooksOnlyAtWhatMayBeLost(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		legBefore  bool // the leg was taken on before the websocket opened
		queuedEnd  bool // its ChannelDestroyed is already in the call's queue
		wantLost   bool // the check reports it ended unseen
		wantQueued int  // the cause of the next event read, when one is queued
	}{
		{name: "leg made after the reconnect, gone", legBefore: false, wantLost: false},
		{name: "leg from before, gone, its end lost", legBefore: true, wantLost: true},
		{name: "leg from before, gone, its end queued", legBefore: true, queuedEnd: true, wantLost: false, wantQueued: 16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := run(t, []string{twoPrompts})
			ctx := context.Background()
			c := h.app.newCall("check-caller")
			c.rec.Outbound, c.rec.Phase = "check-leg", record.PhaseDialing
			since := time.Now()
			c.own(c.id, "check-leg")
			if tc.legBefore {
				h.app.mu.Lock()
				c.owned["check-leg"] = since.Add(-time.Second)
				h.app.mu.Unlock()
			}
			if tc.queuedEnd {
				c.deliver(&ari.ChannelStateChange{Channel: ari.ChannelData{ID: "check-leg", State: "Up"}})
				c.deliver(ari.NewChannelDestroyed("check-leg", 16, "normal"))
			}
			got := c.verifyChannels(ctx, &checkChannels{since: since})
			if lost := got != nil; lost != tc.wantLost {
				t.Fatalf("check returned %#v; want lost=%v", got, tc.wantLost)
			}
			if tc.wantLost {
				if d, ok := got.(*ari.ChannelDestroyed); !ok || d.Channel.ID != "check-leg" || d.Cause != 0 {
					t.Fatalf("check returned %#v; want the leg destroyed with cause 0", got)
				}
			}
			if tc.queuedEnd {
				// The queue keeps its order: the answer, then the end.
				first, _, err := c.receive(ctx, nil)
				if sc, ok := first.(*ari.ChannelStateChange); err != nil || !ok || sc.Channel.State != "Up" {
					t.Fatalf("first queued event %#v (%v); want the answer", first, err)
				}
				second, _, err := c.receive(ctx, nil)
				if d, ok := second.(*ari.ChannelDestroyed); err != nil || !ok || d.Cause != tc.wantQueued {
					t.Fatalf("second queued event %#v (%v); want the end with cause %d", second, err, tc.wantQueued)
				}
			}
		})
	}
}

// A leg from before the reconnect that exists, down, in the dialing phase
// may have entered the app with its StasisStart sent on the replaced
// socket: the check passes the reconnect's word on to the transfer.
func TestReconnectCheckTellsALegWaitingToEnter(t *testing.T) {
	t.Parallel()
	h := run(t, []string{twoPrompts})
	ctx := context.Background()
	c := h.app.newCall("check-caller")
	c.rec.Outbound, c.rec.Phase = "check-leg", record.PhaseDialing
	since := time.Now() // the caller is taken on after it: not checked
	// Owned before it is made, as a transfer does: its StasisStart goes to
	// the call, not to the app as a new caller's.
	c.own(c.id, "check-leg")
	if err := h.app.ari.Create(ctx, ari.CreateRequest{Endpoint: "PJSIP/+4930000001@trunk", App: aritest.App,
		AppArgs: transfer.LegArg + "," + c.id, ChannelID: "check-leg"}); err != nil {
		t.Fatal(err)
	}
	h.app.mu.Lock()
	c.owned["check-leg"] = since.Add(-time.Second)
	h.app.mu.Unlock()
	got := c.verifyChannels(ctx, &checkChannels{since: since})
	if p, ok := got.(*transfer.PathRenewed); !ok || p.Leg != "check-leg" {
		t.Fatalf("check returned %#v; want the leg's PathRenewed", got)
	}
}
