package controller

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/ariflow/ariflow/internal/ari"
	"github.com/sirupsen/logrus"

	"github.com/ariflow/ariflow/flows"
)

// reconcile runs after every (re)connect. While the websocket was down,
// Asterisk sent us nothing: calls may have ended, legs may have been left,
// and after a restart the calls in the store belong to nobody. ARI's
// channel list and the store together say what is real.
func (a *App) reconcile(ctx context.Context) {
	start := time.Now()
	chans, err := a.ari.Channels(ctx)
	if err != nil {
		a.log.WithError(err).Warn("reconcile: listing channels failed")
		return
	}
	present := make(map[string]bool, len(chans))
	for _, ch := range chans {
		present[ch.ID] = true
	}

	// Our own calls: each checks its own channels, in its own goroutine,
	// so that a leg it is creating right now is not taken for lost.
	a.mu.Lock()
	local := make([]*call, 0, len(a.calls))
	for _, c := range a.calls {
		local = append(local, c)
	}
	owned := make(map[string]bool, len(a.owners))
	for id := range a.owners {
		owned[id] = true
	}
	a.mu.Unlock()
	for _, c := range local {
		c.deliver(&checkChannels{})
	}

	// Calls in the store that no goroutine runs: adopt or clean up.
	ids, err := a.store.Active(ctx)
	if err != nil {
		a.log.WithError(err).Warn("reconcile: listing stored calls failed")
		return
	}
	adopted, cleaned := 0, 0
	for _, id := range ids {
		a.mu.Lock()
		_, mine := a.calls[id]
		a.mu.Unlock()
		if mine {
			continue
		}
		rec, err := a.store.Load(ctx, id)
		if errors.Is(err, ErrNoRecord) {
			_ = a.store.Delete(ctx, id) // expired record, stale index entry
			continue
		}
		if err != nil {
			a.log.WithError(err).WithField("call_id", id).Warn("reconcile: loading call failed")
			continue
		}
		if present[id] {
			a.adopt(ctx, rec, present)
			adopted++
			continue
		}
		bg := context.WithoutCancel(ctx)
		if rec.Outbound != "" {
			_ = a.ari.Hangup(bg, rec.Outbound, "normal")
		}
		if rec.Bridge != "" {
			_ = a.ari.DestroyBridge(bg, rec.Bridge)
		}
		_ = a.store.Delete(bg, id)
		cleaned++
	}

	// Legs and bridges of ours that no call owns any more.
	orphans := 0
	for id := range present {
		if strings.HasPrefix(id, "ariflow-leg-") && !owned[id] {
			a.mu.Lock()
			_, nowOwned := a.owners[id]
			a.mu.Unlock()
			if !nowOwned {
				_ = a.ari.Hangup(context.WithoutCancel(ctx), id, "normal")
				orphans++
			}
		}
	}
	a.log.WithFields(logrus.Fields{"channels": len(chans), "adopted": adopted, "cleaned": cleaned,
		"orphan_legs": orphans, "took": time.Since(start).Round(time.Millisecond)}).Info("reconciled")
}

// checkChannels asks a call to verify that its channels still exist: an
// event about them may have been lost while the websocket was down.
type checkChannels struct{ ari.EventData }

func (*checkChannels) Keys() ari.Keys { return nil }

// verifyChannels returns the ChannelDestroyed the call missed, if any.
func (c *call) verifyChannels(ctx context.Context) ari.Event {
	for _, id := range []string{c.id, c.rec.Outbound} {
		if id == "" {
			continue
		}
		if ok, err := c.app.ari.ChannelExists(ctx, id); err == nil && !ok {
			c.log.WithField("lost", id).Info("channel ended while the websocket was down")
			return &ari.ChannelDestroyed{Channel: ari.ChannelData{ID: id}, Cause: CauseNormalClearing, CauseTxt: "ended while disconnected"}
		}
	}
	return nil
}

// adopt runs a call another process (or this one, before a restart) left
// in the store, from where its record says it was.
func (a *App) adopt(ctx context.Context, rec *CallRecord, present map[string]bool) {
	c := a.newCall(rec.CallID)
	c.rec = *rec
	c.rec.Owner = a.owner
	if c.rec.Attributes == nil {
		c.rec.Attributes = flows.Attributes{}
	}
	if f, ok := a.Flows().Flow(rec.Flow); ok {
		c.flow = f
		c.log = c.log.WithFields(logrus.Fields{"flow": f.Name, "version": f.Version})
	}
	c.log.WithFields(logrus.Fields{"step": rec.Block, "phase": rec.Phase}).Info("adopting call")
	a.metrics.Adopted.Inc()
	a.register(c, rec.Outbound, rec.Bridge)
	legUp := rec.Outbound != "" && present[rec.Outbound]
	a.launch(ctx, c, func(ctx context.Context) error {
		if c.flow == nil {
			return c.failCall(ctx, errors.New("adopted call's flow is no longer loaded"))
		}
		b, ok := c.flow.Blocks[c.rec.Block]
		if !ok {
			return c.failCall(ctx, errors.New("adopted call's block is no longer in the flow"))
		}
		switch c.rec.Phase {
		case PhaseBridged, PhaseHandedOff:
			if legUp {
				// Keep the caller with the far end; DTMF was already sent.
				l := leg{resume: c.rec.Phase == PhaseBridged}
				res, err := c.talk(ctx, l, TransferResult{Outcome: OutcomeSuccess}, time.Now(), c.log)
				c.recordTransfer(res)
				if err != nil {
					return err
				}
			} else {
				c.dropLeg(ctx)
				if c.rec.Phase == PhaseHandedOff {
					return c.app.ari.Hangup(ctx, c.id, "normal")
				}
				c.recordTransfer(TransferResult{Outcome: OutcomeSuccess})
			}
			return c.follow(ctx, b, flows.BranchSuccess)
		case PhaseDialing:
			// What the leg did while nobody watched is unknown: cancel it and
			// let the flow's CallFailed branch decide.
			c.dropLeg(ctx)
			c.recordTransfer(TransferResult{Outcome: OutcomeCallFailed})
			return c.follow(ctx, b, flows.BranchCallFailed)
		default:
			return c.runFlow(ctx, c.rec.Block)
		}
	})
}

// follow continues the flow at b's branch.
func (c *call) follow(ctx context.Context, b *flows.Block, branch string) error {
	next, ok := b.Next(branch)
	if !ok {
		return c.failCall(ctx, errors.New("block "+b.ID+" has no "+branch+" branch"))
	}
	return c.runFlow(ctx, next)
}
