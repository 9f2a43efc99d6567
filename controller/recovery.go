package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/ariflow/ariflow/flows"
	"github.com/ariflow/ariflow/internal/ari"
	"github.com/ariflow/ariflow/record"
	"github.com/ariflow/ariflow/transfer"
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

// reconcileLeft has a reconcile (reconcileRetry) handle what a call
// ending here left in the store. One runs at a time: calls ending while
// it runs (many, when Redis restarts) get a single one after it, which
// sees their records.
func (a *App) reconcileLeft(ctx context.Context) {
	a.leftAgain.Store(true)
	if !a.leftBehind.CompareAndSwap(false, true) {
		return
	}
	go func() {
		for a.leftAgain.Swap(false) && ctx.Err() == nil {
			a.reconcileRetry(ctx)
		}
		a.leftBehind.Store(false)
		if a.leftAgain.Load() {
			a.reconcileLeft(ctx) // asked for as this one ended
		}
	}()
}

// reconcile runs after every (re)connect. While the websocket was down,
// Asterisk sent us nothing: calls may have ended, legs may have been left,
// and after a takeover the calls in the store belong to nobody here. ARI's
// channel and bridge lists and the store together say what is real. The
// lists are a moment old by the time they are acted on: nothing is done
// to a caller on their word alone (see strayCaller).
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
	// Our own calls: each checks its own channels, in its own goroutine,
	// so that a leg it is creating right now is not taken for lost.
	since := time.Unix(0, a.pathSince.Load())
	a.tellCalls(func() ari.Event { return &checkChannels{since: since} })

	var n reconciled
	recorded, err := a.reconcileStored(ctx, chans, &n)
	if err != nil {
		return err
	}
	cleanup := a.reconcileChannels(ctx, chans, recorded, &n)
	// Adoption above registered the adopted calls' bridges: a bridge of
	// ours that no call owns now is an orphan.
	bg := context.WithoutCancel(ctx)
	for _, b := range bridges {
		if a.ours(b.ID, "br") && !a.isOwned(b.ID) {
			cleanup = append(cleanup, a.orphan("bridge", b.ID, func() error { return a.ari.DestroyBridge(bg, b.ID) }))
			n.orphanBridges++
		}
	}
	a.offPath(cleanup)
	a.log.WithFields(logrus.Fields{"channels": len(chans), "adopted": n.adopted, "cleaned": n.cleaned, "stale": n.stale,
		"without_record": n.stray, "orphan_legs": n.orphans, "orphan_bridges": n.orphanBridges,
		"took": time.Since(start).Round(time.Millisecond)}).Info("reconciled")
	a.metrics.Reconciles.Inc()
	return nil
}

// reconciled counts what a reconcile did, for its log line.
type reconciled struct {
	adopted, cleaned, stale, stray, orphans, orphanBridges int
}

// reconcileStored adopts the calls in the store that no goroutine runs
// and whose caller is in the app, and drops the others' records. It
// returns the calls with a readable record.
func (a *App) reconcileStored(ctx context.Context, chans []ari.Channel, n *reconciled) (map[string]bool, error) {
	ids, err := a.store.Active(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing stored calls: %w", err)
	}
	ids = slices.DeleteFunc(ids, a.isLocal)
	recs, bad, err := a.store.LoadMany(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("reading stored calls: %w", err)
	}
	present := make(map[string]ari.Channel, len(chans))
	for _, ch := range chans {
		present[ch.ID] = ch
	}
	recorded := make(map[string]bool, len(ids))
	var drops []func() // off the takeover's path, like the orphans
	for i, id := range ids {
		rec := recs[i]
		if bad[i] != nil {
			// Unreadable: the caller, if still there, is handled as one
			// without a record.
			a.log.WithError(bad[i]).WithField("call_id", id).Error("reconcile: call record unreadable")
			continue
		}
		if rec == nil {
			continue // ended meanwhile
		}
		recorded[id] = true
		ch, ok := present[id]
		switch {
		case ok && ch.InApp(a.cfg.App), ok && rec.Phase == record.PhasePBX:
			// In the app, or in the PBX's Dial() (dial_via: pbx), to come
			// back to it.
			a.adoptRecord(ctx, rec)
			n.adopted++
		case ok:
			// The caller is in the dialplan (the fallback desk, a queue):
			// the record outlived the call's time in the app. The caller is
			// not ours to touch.
			drops = append(drops, func() { a.dropRecord(ctx, rec, "caller outside the app") })
			n.stale++
		default:
			// The caller is gone: what it left behind goes too.
			drops = append(drops, func() { a.dropRecord(ctx, rec, "caller gone") })
			n.cleaned++
		}
	}
	// No caller waits for a record whose call is gone or back in the
	// dialplan.
	a.offPath(drops)
	return recorded, nil
}

// dropParallel bounds the clean-up requests a reconcile sends at once:
// each is a round trip or a few, and one after the other they held a
// takeover up (the callers without a record wait for it) when Redis or
// Asterisk is slow.
const dropParallel = 8

// offPath runs a reconcile's clean-up (stale records, orphan legs and
// bridges), dropParallel jobs at a time, on a goroutine of its own that
// the term's end waits for: no caller waits for it.
func (a *App) offPath(jobs []func()) {
	if len(jobs) == 0 {
		return
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		sem := make(chan struct{}, dropParallel)
		var wg sync.WaitGroup
		for _, job := range jobs {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				job()
			}()
		}
		wg.Wait()
	}()
}

// orphan is the job that removes an orphan leg or bridge; gone already
// counts as done.
func (a *App) orphan(what, id string, remove func() error) func() {
	return func() {
		if err := remove(); err != nil && !ari.IsNotFound(err) {
			a.log.WithError(err).WithField(what, id).Warn("reconcile: removing an orphan failed; the next reconcile tries again")
		}
	}
}

// reconcileChannels handles the channels no call runs and no record
// describes: a leg of ours is hung up; a caller in the app that entered
// while no process acted starts its call; one already answered (Redis
// lost its record: no persistence, eviction, a flush) goes to the
// fallback, never silence.
func (a *App) reconcileChannels(ctx context.Context, chans []ari.Channel, recorded map[string]bool, n *reconciled) (cleanup []func()) {
	bg := context.WithoutCancel(ctx)
	for _, ch := range chans {
		switch {
		case a.isOwned(ch.ID) || recorded[ch.ID] || a.isLocal(ch.ID):
		case a.ours(ch.ID, "leg"):
			cleanup = append(cleanup, a.orphan("channel", ch.ID, func() error { return a.ari.Hangup(bg, ch.ID, "normal") }))
			a.metrics.OrphanLegs.Inc()
			n.orphans++
		case ch.InApp(a.cfg.App) && ch.State != "Up":
			// Not answered yet: a caller that entered Stasis while no
			// process acted on the app (a handover): a new call.
			a.log.WithFields(logrus.Fields{"channel": ch.ID, "name": ch.Name}).Info("caller arrived while no process acted; starting its call")
			a.startCall(ctx, &ari.StasisStart{Args: ch.AppArgs(), Channel: ari.ChannelData{ID: ch.ID, Name: ch.Name, State: ch.State,
				Caller: &ari.CallerID{Name: ch.Caller.Name, Number: ch.Caller.Number}}})
		case ch.InApp(a.cfg.App):
			n.stray++
			go a.strayCaller(ctx, ch.ID, a.log.WithFields(logrus.Fields{"call_id": ch.ID, "channel": ch.ID, "name": ch.Name}))
		}
	}
	return cleanup
}

// dropRecord removes a record whose call is no longer ours, with the leg
// and bridge it names; the caller is never touched.
func (a *App) dropRecord(ctx context.Context, rec *record.Call, why string) {
	bg := context.WithoutCancel(ctx)
	if rec.Outbound != "" && !a.isOwned(rec.Outbound) {
		_ = a.ari.Hangup(bg, rec.Outbound, "normal")
	}
	if rec.Bridge != "" && !a.isOwned(rec.Bridge) {
		_ = a.ari.DestroyBridge(bg, rec.Bridge)
	}
	err := a.deleteRecord(bg, rec.CallID)
	log := a.log.WithFields(logrus.Fields{"call_id": rec.CallID, "phase": rec.Phase, "reason": why})
	if errors.Is(err, ErrFenced) {
		// The lease went in the store meanwhile (a renewal late on a busy
		// machine). Still active here, this process reconciles again once
		// it holds it; a lease really lost leaves it to the next holder.
		log.WithError(err).Info("reconcile: the stale call record met the fence; dropping it once the lease is valid again")
		a.takeBack(ctx)
		return
	}
	if err != nil {
		log.WithError(err).Warn("reconcile: dropping a stale call record failed")
		return
	}
	log.Info("reconcile: stale call record dropped")
}

// strayCaller sends a caller found in the app with no call and no record
// to the fallback, once a fresh look confirms it: the list it was found in
// is a moment old, and the caller may have been handed to the dialplan (or
// got a call or a record) since.
func (a *App) strayCaller(ctx context.Context, id string, log *logrus.Entry) {
	ch, err := a.ari.Channel(ctx, id)
	switch {
	case err != nil || !ch.InApp(a.cfg.App) || a.isOwned(id):
		return
	}
	if _, err := a.store.Load(ctx, id); !errors.Is(err, record.ErrNoRecord) {
		return // a record appeared (or the store cannot say): not a stray
	}
	log.Error("caller in the app without a call record")
	a.toFallback(ctx, id, "no-record", log)
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
// the websocket was down. since is when the working websocket opened:
// every event of a channel the call took on after it has reached the call
// (Asterisk registers the app before it answers the upgrade), so such a
// channel is not checked; the check may be handled well after the
// reconnect, and a leg made meanwhile (the call gone on to its next block)
// must not be taken for lost because it ended with its events still queued.
type checkChannels struct {
	ari.EventData
	since time.Time
}

func (*checkChannels) Keys() ari.Keys { return nil }

// verifyChannels returns the event the call missed, if any.
func (c *call) verifyChannels(ctx context.Context, chk *checkChannels) ari.Event {
	for _, id := range []string{c.id, c.rec.Outbound} {
		if id == "" || !c.ownedBefore(id, chk.since) {
			continue
		}
		state, err := c.app.ari.ChannelState(ctx, id)
		switch {
		case ari.IsNotFound(err) && c.queuedEnd(id):
			// Ended after the reconnect: its end is queued, with its cause.
			return nil
		case ari.IsNotFound(err):
			c.log.WithField("lost", id).Info("channel ended unseen (found at a reconcile)")
			// Its cause went with the lost events: 0, unknown.
			return ari.NewChannelDestroyed(id, 0, "ended while disconnected")
		case err == nil && id == c.rec.Outbound && c.rec.Phase == record.PhaseDialing && state == "Up":
			// Answered while the websocket was down.
			c.app.metrics.LostEvents.Inc()
			c.log.WithField("leg", id).Info("leg answered unseen (found at a reconcile)")
			return &ari.ChannelStateChange{Channel: ari.ChannelData{ID: id, State: state}}
		case err == nil && id == c.rec.Outbound && c.rec.Phase == record.PhaseDialing && state == "Down":
			// Made as the old socket went: its StasisStart may have gone
			// with it (a transfer waiting for it dials now).
			return &transfer.PathRenewed{Leg: id}
		}
	}
	if c.playing != "" && c.ownedBefore(c.playing, chk.since) {
		if ok, err := c.app.ari.PlaybackExists(ctx, c.playing); err == nil && !ok {
			c.app.metrics.LostEvents.Inc()
			c.log.WithField("playback", c.playing).Info("playback ended unseen (found at a reconcile)")
			return &ari.PlaybackFinished{Playback: ari.PlaybackData{ID: c.playing, State: "done"}}
		}
	}
	return nil
}

// ownedBefore tells whether the call took id on before t (or does not
// know when: then it is checked).
func (c *call) ownedBefore(id string, t time.Time) bool {
	c.app.mu.Lock()
	at, ok := c.owned[id]
	c.app.mu.Unlock()
	return !ok || at.Before(t)
}

// adoptRecord runs a call another process (or this one, in an earlier
// term) left in the store, from where its record says it was: a transfer
// enters its state machine at the state the record names, prompts and
// input restart at their block.
func (a *App) adoptRecord(ctx context.Context, rec *record.Call) {
	c := a.newCall(rec.CallID)
	c.rec = *rec
	c.saved, c.savedBlock = true, rec.Block
	if rec.Bridge != "" && rec.Phase != record.PhaseDialing && rec.Phase != record.PhaseBridged {
		// Kept by the last transfer, likely with the caller in it. How it
		// was made is not known here: the next block lets it go.
		c.kept = rec.Bridge
	}
	if c.rec.Attributes == nil {
		c.rec.Attributes = flows.Attributes{}
	}
	if f := a.flowFor(ctx, rec); f != nil {
		c.flow = f
		c.log = c.log.WithFields(logrus.Fields{"flow": f.Name, "version": f.Version})
	}
	c.adoptSlot()
	launched := a.launch(ctx, c, func(ctx context.Context) error {
		if err := c.paceAdoption(ctx); err != nil {
			return err
		}
		c.observeAdopted()
		// A caller not answered yet (its process stopped before the
		// answer, or its transfer answers on the bridge) is answered
		// where a fresh call would be: by the block that needs its audio,
		// or by its transfer as the far end is bridged.
		var b *flows.Block
		if c.flow != nil {
			b = c.flow.Blocks[c.rec.Block]
		}
		switch {
		case c.rec.Phase == record.PhaseEnding:
			// Over, but its caller's hangup got no answer: the call's end
			// (finish) hangs it up and deletes the record.
			c.log.Info("adopted a call that had ended; hanging its caller up")
			return nil
		case c.rec.Phase == record.PhasePBX:
			// The PBX's Dial() carries the transfer: wait for the caller's
			// return (or find it back already), whatever the flow says now.
			branch, err := c.adoptPBX(ctx)
			if err != nil || branch == "" {
				return err
			}
			return c.follow(ctx, b, branch)
		case c.rec.Phase == record.PhaseDialing, c.rec.Phase == record.PhaseBridged:
			// The transfer goes on from its record, whatever the flow
			// says now; the flow decides only what follows it.
			kind := ""
			if c.rec.Transfer != nil && c.rec.Transfer.Agent {
				kind = "agent-"
			}
			c.fillTargets(b)
			res, err := transfer.Adopt(ctx, c, a.xfer, c.gate())
			branch, err := c.transferDone(ctx, res, kind, err)
			if err != nil {
				return err
			}
			return c.follow(ctx, b, branch)
		case b == nil && c.flow == nil:
			return c.failCall(ctx, errors.New("adopted call's flow is no longer loaded"))
		case b == nil:
			return c.failCall(ctx, errors.New("adopted call's block is no longer in the flow"))
		case c.rec.Phase == record.PhaseDialplan:
			// Written before the hand-off to the dialplan, yet the caller
			// is still in the app: the hand-off did not happen. Again.
			c.rec.Phase = record.PhaseFlow
			return c.runFlow(ctx, b.ID)
		case b.Type == flows.TypeInvokeWebhook && !b.Webhook.Idempotent:
			// The request may have been sent, and its effect may not bear
			// repeating: the flow decides what follows, on Error.
			c.log.WithField("step", b.ID).Warn("adopted during a webhook that is not idempotent; taking its Error branch")
			return c.follow(ctx, b, flows.BranchError)
		default:
			// Prompts and input restart at their block.
			return c.runFlow(ctx, b.ID)
		}
	}, rec.Outbound, rec.Bridge)
	if launched {
		c.log.WithFields(logrus.Fields{"step": rec.Block, "phase": rec.Phase, "from": rec.Owner, "from_epoch": rec.Epoch}).Info("adopted call")
		a.metrics.Adopted.Inc()
	}
}

// fillTargets gives a record of an older version, which kept only the
// number that rang, its block's list: the list goes on after it.
func (c *call) fillTargets(b *flows.Block) {
	ts := c.rec.Transfer
	if ts == nil || len(ts.Targets) > 0 || b == nil || b.Transfer == nil {
		return
	}
	if plan, err := transfer.Resolve(b.Transfer, c.rec.Attributes, c.app.settings()); err == nil {
		ts.Targets = plan.Targets
	}
}

// paceAdoption holds an adopted call until fewer than
// Config.AdoptConcurrency adoptions are under way: a takeover of hundreds
// of calls would otherwise send all their first requests to Asterisk at
// once. The call gives its place back at its first wait (next).
func (c *call) paceAdoption(ctx context.Context) error {
	select {
	case c.app.adoptions <- struct{}{}:
		c.pacing = true
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// paced gives back an adopted call's place among the adoptions under way.
func (c *call) paced() {
	if c.pacing {
		c.pacing = false
		<-c.app.adoptions
	}
}

// follow continues the flow at b's branch.
func (c *call) follow(ctx context.Context, b *flows.Block, branch string) error {
	if b == nil {
		return c.failCall(ctx, fmt.Errorf("block %s is no longer in flow %s", c.rec.Block, c.rec.Flow))
	}
	c.blockLeft(branch, nil)
	next, ok := b.Next(branch)
	if !ok {
		next, ok = b.Next(flows.BranchError)
	}
	if !ok {
		return c.failCall(ctx, errors.New("block "+b.ID+" has no "+branch+" branch"))
	}
	return c.runFlow(ctx, next)
}
