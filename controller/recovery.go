package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/ariflow/ariflow/flows"
	"github.com/ariflow/ariflow/internal/ari"
)

// reconcileRetry runs reconcile until it succeeds or ctx ends, with
// backoff: a reconcile that failed (ARI or Redis unreachable a moment)
// would leave callers nobody handles.
func (a *App) reconcileRetry(ctx context.Context) {
	backoff := 200 * time.Millisecond
	for ctx.Err() == nil {
		err := a.reconcile(ctx)
		if err == nil {
			return
		}
		a.metrics.ReconcileFailures.Inc()
		a.log.WithError(err).WithField("retry_in", backoff).Warn("reconcile failed")
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// reconcile runs after every (re)connect. While the websocket was down,
// Asterisk sent us nothing: calls may have ended, legs may have been left,
// and after a takeover the calls in the store belong to nobody here. ARI's
// channel and bridge lists and the store together say what is real.
func (a *App) reconcile(ctx context.Context) error {
	start := time.Now()
	chans, err := a.ari.Channels(ctx)
	if err != nil {
		return fmt.Errorf("listing channels: %w", err)
	}
	bridges, err := a.ari.Bridges(ctx)
	if err != nil {
		return fmt.Errorf("listing bridges: %w", err)
	}
	present := make(map[string]ari.Channel, len(chans))
	for _, ch := range chans {
		present[ch.ID] = ch
	}

	// Our own calls: each checks its own channels, in its own goroutine,
	// so that a leg it is creating right now is not taken for lost.
	a.tellCalls(func() ari.Event { return &checkChannels{} })

	// Calls in the store that no goroutine runs: adopt or clean up.
	ids, err := a.store.Active(ctx)
	if err != nil {
		return fmt.Errorf("listing stored calls: %w", err)
	}
	fence, err := a.fenceOf()
	if err != nil {
		return err
	}
	recorded := make(map[string]bool, len(ids))
	adopted, cleaned := 0, 0
	for _, id := range ids {
		recorded[id] = true
		if a.isLocal(id) {
			continue
		}
		rec, err := a.store.Load(ctx, id)
		if errors.Is(err, ErrNoRecord) {
			continue // ended meanwhile
		}
		if err != nil {
			// Unreadable: the caller, if still there, is handled below as
			// one without a record.
			recorded[id] = false
			a.log.WithError(err).WithField("call_id", id).Error("reconcile: call record unreadable")
			continue
		}
		if _, ok := present[id]; ok {
			a.adoptRecord(ctx, rec)
			adopted++
			continue
		}
		// The caller is gone: what it left behind goes too.
		bg := context.WithoutCancel(ctx)
		if rec.Outbound != "" {
			_ = a.ari.Hangup(bg, rec.Outbound, "normal")
		}
		if rec.Bridge != "" {
			_ = a.ari.DestroyBridge(bg, rec.Bridge)
		}
		_ = a.store.Delete(bg, id, fence)
		cleaned++
	}

	// Callers in the app that nobody runs and no record describes (Redis
	// lost it: no persistence, eviction, a flush): the fallback, never
	// silence. Legs and bridges of ours that no call owns: gone.
	stray, orphans, orphanBridges := 0, 0, 0
	for _, ch := range chans {
		switch {
		case a.isOwned(ch.ID) || recorded[ch.ID]:
		case a.ours(ch.ID, "leg"):
			_ = a.ari.Hangup(context.WithoutCancel(ctx), ch.ID, "normal")
			a.metrics.OrphanLegs.Inc()
			orphans++
		case ch.InApp(a.cfg.App) && ch.State != "Up":
			// Not answered yet: a caller that entered Stasis while no
			// process acted on the app (a handover): a new call.
			a.log.WithFields(logrus.Fields{"channel": ch.ID, "name": ch.Name}).Info("caller arrived while no process acted; starting its call")
			a.startCall(ctx, &ari.StasisStart{Args: ch.AppArgs(), Channel: ari.ChannelData{ID: ch.ID, Name: ch.Name, State: ch.State,
				Caller: &ari.CallerID{Name: ch.Caller.Name, Number: ch.Caller.Number}}})
		case ch.InApp(a.cfg.App):
			stray++
			log := a.log.WithFields(logrus.Fields{"call_id": ch.ID, "channel": ch.ID, "name": ch.Name})
			log.Error("caller in the app without a call record")
			go a.toFallback(ctx, ch.ID, "no-record", log)
		}
	}
	// Adoption above registered the adopted calls' bridges: a bridge of
	// ours that no call owns now is an orphan.
	for _, b := range bridges {
		if a.ours(b.ID, "br") && !a.isOwned(b.ID) {
			_ = a.ari.DestroyBridge(context.WithoutCancel(ctx), b.ID)
			orphanBridges++
		}
	}
	a.log.WithFields(logrus.Fields{"channels": len(chans), "adopted": adopted, "cleaned": cleaned,
		"without_record": stray, "orphan_legs": orphans, "orphan_bridges": orphanBridges,
		"took": time.Since(start).Round(time.Millisecond)}).Info("reconciled")
	a.metrics.Reconciles.Inc()
	return nil
}

func (a *App) isLocal(callID string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.calls[callID]
	return ok
}

func (a *App) isOwned(id string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.owners[id]
	return ok
}

// checkChannels asks a call to verify that its channels still exist and
// its prompt still plays: an event about them may have been lost while
// the websocket was down.
type checkChannels struct{ ari.EventData }

func (*checkChannels) Keys() ari.Keys { return nil }

// verifyChannels returns the event the call missed, if any.
func (c *call) verifyChannels(ctx context.Context) ari.Event {
	for _, id := range []string{c.id, c.rec.Outbound} {
		if id == "" {
			continue
		}
		state, err := c.app.ari.ChannelState(ctx, id)
		switch {
		case ari.IsNotFound(err):
			c.log.WithField("lost", id).Info("channel ended while the websocket was down")
			return ari.NewChannelDestroyed(id, CauseNormalClearing, "ended while disconnected")
		case err == nil && id == c.rec.Outbound && c.rec.Phase == PhaseDialing && state == "Up":
			// Answered while the websocket was down: an originated leg
			// that is up is in Stasis, its StasisStart lost.
			c.app.metrics.LostEvents.Inc()
			c.log.WithField("leg", id).Info("leg answered while the websocket was down")
			return &ari.StasisStart{Args: []string{legArg, c.id}, Channel: ari.ChannelData{ID: id, State: state}}
		}
	}
	if c.playing != "" {
		if ok, err := c.app.ari.PlaybackExists(ctx, c.playing); err == nil && !ok {
			c.app.metrics.LostEvents.Inc()
			c.log.WithField("playback", c.playing).Info("playback ended while the websocket was down")
			return &ari.PlaybackFinished{Playback: ari.PlaybackData{ID: c.playing, State: "done"}}
		}
	}
	return nil
}

// adoptRecord runs a call another process (or this one, in an earlier
// term) left in the store, from where its record says it was: ringing
// transfers keep ringing, bridged calls stay bridged and their digits go
// on from the one reached, prompts and input restart at their block.
func (a *App) adoptRecord(ctx context.Context, rec *CallRecord) {
	if rec.Phase == PhaseDialplan {
		// The caller is the dialplan's now (e.g. waiting in Queue()):
		// never touch it; the record only outlived its process.
		if f, err := a.fenceOf(); err == nil {
			_ = a.store.Delete(context.WithoutCancel(ctx), rec.CallID, f)
		}
		return
	}
	c := a.newCall(rec.CallID)
	c.rec = *rec
	c.saved = true
	if c.rec.Attributes == nil {
		c.rec.Attributes = flows.Attributes{}
	}
	if f, ok := a.Flows().Flow(rec.Flow); ok {
		c.flow = f
		c.log = c.log.WithFields(logrus.Fields{"flow": f.Name, "version": f.Version})
	}
	launched := a.launch(ctx, c, func(ctx context.Context) error {
		if c.flow == nil {
			return c.failCall(ctx, errors.New("adopted call's flow is no longer loaded"))
		}
		b, ok := c.flow.Blocks[c.rec.Block]
		if !ok {
			return c.failCall(ctx, errors.New("adopted call's block is no longer in the flow"))
		}
		switch {
		case c.rec.Phase == PhaseDialing, c.rec.Phase == PhaseBridged:
			return c.resumeTransfer(ctx, b)
		case b.Type == flows.TypeInvokeWebhook && !b.Webhook.Idempotent:
			// The request may have been sent, and its effect may not bear
			// repeating: the flow decides what follows, on Error.
			c.log.WithField("step", b.ID).Warn("adopted during a webhook that is not idempotent; taking its Error branch")
			return c.follow(ctx, b, flows.BranchError)
		default:
			// Prompts and input restart at their block.
			return c.runFlow(ctx, c.rec.Block)
		}
	}, rec.Outbound, rec.Bridge)
	if launched {
		c.log.WithFields(logrus.Fields{"step": rec.Block, "phase": rec.Phase, "from": rec.Owner, "from_epoch": rec.Epoch}).Info("adopted call")
		a.metrics.Adopted.Inc()
	}
}

// resumeTransfer carries on a transfer adopted in phase dialing or
// bridged, from what Asterisk says of its leg now.
func (c *call) resumeTransfer(ctx context.Context, b *flows.Block) error {
	ts := c.rec.Transfer
	if ts == nil { // written by an older version
		ts = &TransferState{Resume: c.rec.Phase == PhaseBridged}
		c.rec.Transfer = ts
	}
	l := ts.leg()
	t := c.newTransfer(l)
	t.dialed, t.answered, t.done = ts.Dialed, ts.Answered, min(ts.DigitsDone, len(ts.Digits))
	t.log = c.log.WithFields(logrus.Fields{"step": c.rec.Block, "number": ts.Number, "outbound": c.rec.Outbound, "adopted": true})
	t.legID, t.adopted = c.rec.Outbound, true
	t.created = ts.Created || ts.Options != nil && flows.Ringback(ts.Options.Ringback) == flows.RingbackEarlyMedia
	state, err := c.legState(ctx)
	if err != nil {
		return fmt.Errorf("adopting transfer: %w", err)
	}
	switch {
	case state == "":
		// The leg ended while nobody watched.
		c.forgetLeg()
		if c.rec.Phase == PhaseDialing {
			t.res.Outcome = OutcomeCallFailed
			if !ts.RingDeadline.IsZero() && time.Now().After(ts.RingDeadline) {
				t.res.Outcome = OutcomeTimeout
			}
			c.dropLeg(ctx)
			err = nil
		} else {
			t.res.Outcome = OutcomeSuccess
			err = t.farEndGone(ctx, 0)
		}
	case c.rec.Phase == PhaseDialing && state != "Up":
		t.log.WithField("phase", "ringing").Info("transfer: adopted while ringing; still ringing")
		err = t.awaitAnswer(ctx)
	case c.rec.Phase == PhaseDialing:
		t.log.WithField("phase", "answered").Info("transfer: answered while nobody watched; bridging")
		err = t.bridge(ctx)
	default:
		t.res.Outcome = OutcomeSuccess
		// Bridge whoever is not in the bridge yet (answered, not yet
		// bridged when the last process stopped).
		if aerr := c.app.ari.AddToBridge(ctx, c.rec.Bridge, c.id, c.rec.Outbound); aerr != nil && ari.StatusCode(aerr) != 409 && ari.StatusCode(aerr) != 422 {
			t.log.WithError(aerr).Debug("re-adding to the bridge")
		}
		err = t.talk(ctx)
	}
	t.legEvent(LegCompleted)
	t.res.Attempts = ts.Attempt
	c.recordTransfer(t.res)
	// The slot was taken by the process that dialled (Transfers was counted
	// before the leg's record was saved): it is this process's to give back.
	if rerr := c.releaseAdoptedSlot(); rerr != nil {
		t.log.WithError(rerr).Warn("transfer: releasing the adopted leg's concurrency slot; it lapses on its own")
	}
	if err != nil {
		return err
	}
	// The adopted leg was one of a list and did not answer: the list goes
	// on with the number after it, as it would have without the takeover.
	if b.Transfer != nil && ts.Attempt > 0 && tryNextNumber(t.res.Outcome) {
		l, targets, rerr := c.resolveLeg(b.Transfer)
		if rerr == nil && ts.Attempt < len(targets) {
			t.log.WithFields(logrus.Fields{"outcome": t.res.Outcome, "next": targets[ts.Attempt].number, "attempt": ts.Attempt}).Info("transfer: trying the next number")
			c.rec.ListNext = ts.Attempt
			if perr := c.setPhase(ctx, PhaseFlow, true); perr != nil {
				if errors.Is(perr, ErrFenced) {
					return perr
				}
				t.log.WithError(perr).Error("transfer: saving the call failed; next number not dialled")
				return c.follow(ctx, b, flows.BranchError)
			}
			res, derr := c.dialTargets(ctx, l, targets, ts.Attempt)
			c.recordTransfer(res)
			c.app.metrics.Transfers.WithLabelValues(string(res.Outcome)).Inc()
			if derr != nil {
				return derr
			}
			return c.follow(ctx, b, res.Outcome.Branch())
		}
	}
	return c.follow(ctx, b, t.res.Outcome.Branch())
}

func (c *call) releaseAdoptedSlot() error {
	if c.rec.Transfers == 0 {
		return nil
	}
	// The call's context may be ending; the slot must still go.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return c.app.cfg.Gate.Release(ctx, legSlot(c.id, c.rec.Transfers-1))
}

// legState is the outbound leg's channel state ("" when it is gone).
func (c *call) legState(ctx context.Context) (string, error) {
	if c.rec.Outbound == "" {
		return "", nil
	}
	st, err := c.app.ari.ChannelState(ctx, c.rec.Outbound)
	if ari.IsNotFound(err) {
		return "", nil
	}
	return st, err
}

// follow continues the flow at b's branch.
func (c *call) follow(ctx context.Context, b *flows.Block, branch string) error {
	next, ok := b.Next(branch)
	if !ok {
		next, ok = b.Next(flows.BranchError)
	}
	if !ok {
		return c.failCall(ctx, errors.New("block "+b.ID+" has no "+branch+" branch"))
	}
	return c.runFlow(ctx, next)
}
