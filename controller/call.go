package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ariflow/ariflow/internal/ari"
	"github.com/sirupsen/logrus"

	"github.com/ariflow/ariflow/flows"
)

// Outcomes of a block that end the flow rather than take a branch.
var (
	// ErrCallerGone: the caller hung up; the call is over.
	ErrCallerGone = errors.New("caller hung up")
	// errHandedOff: the caller left the flow for good (agent, resume off).
	errHandedOff = errors.New("caller handed off")
)

// call is one caller's run through a flow. Its goroutine owns every field;
// events reach it through events.
type call struct {
	app    *App
	id     string // the caller's channel ID
	flow   *flows.Flow
	rec    CallRecord
	events chan ari.Event
	log    *logrus.Entry
	gone   bool     // the caller's channel has left Stasis
	owned  []string // IDs registered for this call; guarded by app.mu
}

func (a *App) startCall(ctx context.Context, e *ari.StasisStart) {
	entry := ""
	if len(e.Args) > 0 {
		entry = e.Args[0]
	}
	c := a.newCall(e.Channel.ID)
	c.log = c.log.WithField("entry", entry)
	set := a.Flows()
	f, ok := set.ForEntry(entry)
	now := time.Now()
	c.rec = CallRecord{
		CallID: c.id, Channel: e.Channel.Name, Phase: PhaseFlow,
		Attributes: flows.Attributes{}, Owner: a.owner, Started: now,
	}
	sys := func(k, v string) { c.rec.Attributes.Set(flows.NSSystem, k, v) }
	if e.Channel.Caller != nil {
		sys(flows.SysCallerNumber, e.Channel.Caller.Number)
		sys(flows.SysCallerName, e.Channel.Caller.Name)
	}
	sys(flows.SysDialedNumber, entry)
	sys(flows.SysChannel, e.Channel.Name)
	sys(flows.SysCallID, c.id)
	if ok {
		c.flow = f
		c.rec.Flow, c.rec.Version, c.rec.Block = f.Name, f.Version, f.Start
	}
	a.launch(ctx, c, func(ctx context.Context) error { return c.runNew(ctx) })
}

func (a *App) newCall(id string) *call {
	return &call{
		app:    a,
		id:     id,
		events: make(chan ari.Event, 256),
		log:    a.log.WithFields(logrus.Fields{"call_id": id, "channel": id}),
	}
}

// launch registers the call and runs body on its own goroutine.
func (a *App) launch(ctx context.Context, c *call, body func(context.Context) error) {
	a.mu.Lock()
	if _, dup := a.calls[c.id]; dup {
		a.mu.Unlock()
		return
	}
	a.calls[c.id] = c
	a.owners[c.id] = c
	c.owned = append(c.owned, c.id)
	a.mu.Unlock()
	a.metrics.ActiveCalls.Inc()
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		defer a.metrics.ActiveCalls.Dec()
		err := body(ctx)
		c.finish(ctx, err)
	}()
}

// deliver queues an event for the call's goroutine. A full queue means the
// goroutine is stuck; waiting a little beats dropping a hangup.
func (c *call) deliver(ev ari.Event) {
	select {
	case c.events <- ev:
		return
	default:
	}
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case c.events <- ev:
	case <-t.C:
		c.app.metrics.DroppedEvents.Inc()
		c.log.WithField("event", ev.GetType()).Error("call event queue full; event dropped")
	}
}

func (c *call) runNew(ctx context.Context) error {
	if c.flow == nil {
		c.app.metrics.CallErrors.WithLabelValues("no_flow").Inc()
		c.log.Error("no flow for this entry; playing the error prompt and hanging up")
		_ = c.answer(ctx)
		return c.failCall(ctx, fmt.Errorf("no flow has entry %q", c.rec.Attributes[flows.NSSystem][flows.SysDialedNumber]))
	}
	c.log = c.log.WithFields(logrus.Fields{"flow": c.flow.Name, "version": c.flow.Version})
	c.log.WithField("caller", c.rec.Attributes[flows.NSSystem][flows.SysCallerNumber]).Info("call entered flow")
	c.app.metrics.Calls.Inc()
	if err := c.answer(ctx); err != nil {
		return err
	}
	return c.runFlow(ctx, c.rec.Block)
}

func (c *call) answer(ctx context.Context) error {
	return c.app.ari.Answer(ctx, c.id)
}

// runFlow executes blocks from id until the flow ends.
func (c *call) runFlow(ctx context.Context, id string) error {
	for steps := 0; ; steps++ {
		b, ok := c.flow.Blocks[id]
		if !ok {
			return c.failCall(ctx, fmt.Errorf("flow %s: no block %q", c.flow.Name, id))
		}
		c.rec.Block, c.rec.Phase = id, PhaseFlow
		if savesBeforeActing(b.Type) {
			if err := c.save(ctx); err != nil {
				return c.failCall(ctx, err)
			}
		}
		log := c.log.WithFields(logrus.Fields{"step": id, "type": b.Type})
		log.Info("step")
		branch, err := c.exec(ctx, b)
		switch {
		case errors.Is(err, ErrCallerGone), errors.Is(err, errHandedOff):
			return err
		case errors.Is(err, context.Canceled) && ctx.Err() != nil:
			return err
		case err != nil:
			c.app.metrics.CallErrors.WithLabelValues(string(b.Type)).Inc()
			log.WithError(err).Warn("block failed")
			branch = flows.BranchError
		}
		if branch == "" { // Disconnect
			return nil
		}
		next, ok := b.Next(branch)
		if !ok && branch != flows.BranchError {
			// A failure the flow has no branch for falls to its Error branch.
			next, ok = b.Next(flows.BranchError)
		}
		if !ok {
			return c.failCall(ctx, fmt.Errorf("block %s (%s) took branch %s, which the flow does not have", id, b.Type, branch))
		}
		log.WithField("branch", branch).Debug("branch")
		id = next
	}
}

func (c *call) exec(ctx context.Context, b *flows.Block) (string, error) {
	switch b.Type {
	case flows.TypePlayPrompt:
		return c.playPrompt(ctx, b.Play)
	case flows.TypeGetCustomerInput:
		return c.getInput(ctx, b.Input)
	case flows.TypeSetAttributes:
		return c.setAttributes(b.Set)
	case flows.TypeCheckAttribute:
		return b.Check.Evaluate(c.rec.Attributes)
	case flows.TypeInvokeWebhook:
		return c.invokeWebhook(ctx, b.Webhook)
	case flows.TypeTransferToPhoneNumber:
		return c.transferToPhone(ctx, b.Transfer)
	case flows.TypeTransferToAgent:
		return c.transferToAgent(ctx, b.Agent)
	case flows.TypeDisconnect:
		return "", c.app.ari.Hangup(ctx, c.id, "normal")
	default:
		return "", fmt.Errorf("unknown block type %q", b.Type)
	}
}

// failCall is the flow's error handling when no Error branch applies: an
// apology, then hang up. The caller is never dropped without a word.
func (c *call) failCall(ctx context.Context, cause error) error {
	c.app.metrics.CallErrors.WithLabelValues("flow").Inc()
	c.log.WithError(cause).Error("flow failed; apologising and hanging up")
	if !c.gone {
		if err := c.play(ctx, c.app.cfg.ErrorPrompt); err != nil && !errors.Is(err, ErrCallerGone) {
			c.log.WithError(err).Warn("error prompt failed")
		}
		_ = c.app.ari.Hangup(ctx, c.id, "normal")
	}
	return cause
}

func (c *call) save(ctx context.Context) error {
	c.rec.Updated = time.Now()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second) // as in App.do
	defer cancel()
	return c.app.store.Save(ctx, &c.rec)
}

// callerGone tells whether ev says the caller left.
func (c *call) callerGone(ev ari.Event) bool {
	switch e := ev.(type) {
	case *ari.StasisEnd:
		return e.Channel.ID == c.id
	case *ari.ChannelDestroyed:
		return e.Channel.ID == c.id
	case *ari.ChannelHangupRequest:
		return e.Channel.ID == c.id
	}
	return false
}

// next waits for the call's next event. A caller hangup is returned as
// ErrCallerGone so that every wait ends with it.
func (c *call) next(ctx context.Context, timeout <-chan time.Time) (ari.Event, error) {
	if c.gone {
		return nil, ErrCallerGone
	}
	for {
		select {
		case ev := <-c.events:
			if _, ok := ev.(*checkChannels); ok {
				if ev = c.verifyChannels(ctx); ev == nil {
					continue
				}
			}
			if c.callerGone(ev) {
				c.gone = true
				return ev, ErrCallerGone
			}
			return ev, nil
		case <-timeout:
			return nil, errTimeout
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

var errTimeout = errors.New("timed out")

// finish cleans up after the call's goroutine returns: whatever it still
// holds is hung up or destroyed, and the record goes, unless this process
// is stopping, in which case the record stays for the next one.
func (c *call) finish(ctx context.Context, err error) {
	a := c.app
	stopping := ctx.Err() != nil
	bg := context.WithoutCancel(ctx)
	if stopping {
		c.log.Info("process stopping: call left in place for another process")
	} else {
		if c.rec.Outbound != "" {
			if herr := a.ari.Hangup(bg, c.rec.Outbound, "normal"); herr != nil {
				c.log.WithError(herr).Warn("hangup of outbound leg failed")
			}
		}
		if c.rec.Bridge != "" {
			if derr := a.ari.DestroyBridge(bg, c.rec.Bridge); derr != nil {
				c.log.WithError(derr).Warn("bridge destroy failed")
			}
		}
		if !c.gone && !errors.Is(err, errHandedOff) {
			_ = a.ari.Hangup(bg, c.id, "normal")
		}
		if derr := a.store.Delete(bg, c.id); derr != nil {
			c.log.WithError(derr).Error("call record delete failed")
		}
	}
	a.mu.Lock()
	delete(a.calls, c.id)
	for _, id := range c.owned {
		if a.owners[id] == c {
			delete(a.owners, id)
		}
	}
	a.mu.Unlock()
	fields := logrus.Fields{"block": c.rec.Block, "duration": time.Since(c.rec.Started).Round(time.Millisecond)}
	switch {
	case err == nil, errors.Is(err, ErrCallerGone), errors.Is(err, errHandedOff), stopping:
		c.log.WithFields(fields).WithField("end", endReason(err)).Info("call ended")
	default:
		c.log.WithFields(fields).WithError(err).Error("call ended with error")
	}
}

func endReason(err error) string {
	switch {
	case err == nil:
		return "disconnected by flow"
	case errors.Is(err, ErrCallerGone):
		return "caller hung up"
	case errors.Is(err, errHandedOff):
		return "handed off"
	default:
		return "stopped"
	}
}

// savesBeforeActing tells whether the position must be written before a
// block runs. Blocks that only compute (set, check) have no side effect to
// protect, and transfers write their own record before dialling, so a
// write for them would be a wasted round trip.
func savesBeforeActing(t flows.BlockType) bool {
	switch t {
	case flows.TypeSetAttributes, flows.TypeCheckAttribute,
		flows.TypeTransferToPhoneNumber, flows.TypeTransferToAgent:
		return false
	}
	return true
}
