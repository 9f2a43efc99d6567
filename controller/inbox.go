package controller

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/ariflow/ariflow/internal/ari"
	"github.com/ariflow/ariflow/transfer"
)

// A call's event queue: the websocket reader delivers to it without
// waiting, and the call's goroutine waits on it, with a deadline.

// deliver queues an event for the call's goroutine without blocking the
// websocket reader: a call whose queue is full is stuck or flooded, and is
// ended (see next) rather than allowed to delay every other call.
func (c *call) deliver(ev ari.Event) {
	if c.staleTrip(ev) {
		return
	}
	if c.callerGone(ev) {
		c.hungUp.Store(true)
	}
	select {
	case c.events <- ev:
	default:
		c.overflowOnce.Do(func() {
			c.app.metrics.DroppedEvents.Inc()
			c.log.WithField("event", ev.GetType()).Error("call event queue full; ending the call")
			close(c.overflow)
		})
	}
}

// callerGone tells whether ev says the caller left.
func (c *call) callerGone(ev ari.Event) bool { return endsChannel(ev, c.id) }

// endsChannel tells whether ev says channel id is ending or gone.
func endsChannel(ev ari.Event, id string) bool {
	switch e := ev.(type) {
	case *ari.StasisEnd:
		return e.Channel.ID == id
	case *ari.ChannelDestroyed:
		return e.Channel.ID == id
	case *ari.ChannelHangupRequest:
		return e.Channel.ID == id
	}
	return false
}

// next waits for the call's next event. A caller hangup is returned as
// ErrCallerGone so that every wait ends with it.
func (c *call) next(ctx context.Context, timeout <-chan time.Time) (ari.Event, error) {
	c.waits++
	if c.gone {
		return nil, ErrCallerGone
	}
	c.paced()
	for {
		ev, late, err := c.receive(ctx, timeout)
		if err != nil {
			return nil, err
		}
		if late {
			timeout = passed
		}
		if ev = c.internal(ctx, ev); ev == nil {
			continue
		}
		if c.callerGone(ev) {
			c.gone = true
			return ev, ErrCallerGone
		}
		return ev, nil
	}
}

// receive takes the next event off the queue. Events queued before the
// deadline passed still go first: a call running late must not take the
// deadline for what had already happened (the second key of a return
// key); late says the deadline has passed.
func (c *call) receive(ctx context.Context, timeout <-chan time.Time) (ev ari.Event, late bool, err error) {
	if len(c.pending) > 0 {
		ev, c.pending = c.pending[0], c.pending[1:]
		return ev, false, nil
	}
	select {
	case <-c.overflow:
		return nil, false, errOverflow
	case ev := <-c.events:
		return ev, false, nil
	case <-timeout:
		select {
		case ev := <-c.events:
			return ev, true, nil
		default:
			return nil, true, errTimeout
		}
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
}

// passed is a deadline that has passed: it is always ready.
var passed = func() <-chan time.Time {
	c := make(chan time.Time)
	close(c)
	return c
}()

// internal handles the controller's own queue entries (a check after a
// reconnect, a rewrite of the record): it returns the event the call
// should see, or nil.
func (c *call) internal(ctx context.Context, ev ari.Event) ari.Event {
	if c.ahead != nil && c.ahead.Observe(ev) {
		return nil
	}
	switch e := ev.(type) {
	case *checkChannels:
		c.verifyAhead(ctx, e)
		return c.verifyChannels(ctx, e)
	case *pbxSeen:
		return nil // a look for a wait that has ended
	case *resave:
		if c.saved {
			if err := c.save(ctx); err != nil {
				c.log.WithError(err).Warn("rewriting the call record failed")
			}
		}
		return nil
	}
	return ev
}

// queuedEnd tells whether the end of channel id is already in the call's
// queue: then it was not lost, and comes with its real cause. The queue
// is moved to pending to be looked at; its order stays.
func (c *call) queuedEnd(id string) bool {
	for drained := false; !drained; {
		select {
		case ev := <-c.events:
			c.pending = append(c.pending, ev)
		default:
			drained = true
		}
	}
	return slices.ContainsFunc(c.pending, func(ev ari.Event) bool { return endsChannel(ev, id) })
}

var (
	errTimeout  = transfer.ErrDeadline
	errOverflow = errors.New("call event queue overflowed; events lost")
)

// Next is next with a deadline (zero: none).
func (c *call) Next(ctx context.Context, deadline time.Time) (ari.Event, error) {
	if deadline.IsZero() {
		return c.next(ctx, nil)
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	return c.next(ctx, t.C)
}
