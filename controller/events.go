package controller

import (
	"context"
	"errors"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/ariflow/ariflow/internal/ari"
)

// Run keeps the event websocket connected until ctx ends, reconnecting with
// backoff and reconciling calls after every (re)connect.
func (a *App) Run(ctx context.Context) error {
	backoff := 100 * time.Millisecond
	first := true
	for ctx.Err() == nil {
		ws, err := a.ari.Events(ctx)
		if err != nil {
			a.log.WithError(err).WithField("retry_in", backoff).Warn("ARI websocket connect failed")
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		a.connected.Store(true)
		if first {
			a.log.Info("ARI websocket connected")
		} else {
			a.metrics.Reconnects.Inc()
			a.log.Info("ARI websocket reconnected")
		}
		first = false
		if err := a.ari.SetEventFilter(ctx, ari.EventTypes); err != nil {
			a.log.WithError(err).Warn("ARI event filter not set; receiving every event")
		}
		// Events missed while we were away: find out what still exists.
		go a.reconcile(ctx)
		err = a.read(ctx, ws)
		a.connected.Store(false)
		if ctx.Err() == nil {
			a.log.WithError(err).Warn("ARI websocket lost; reconnecting")
		}
	}
	return nil
}

func (a *App) read(ctx context.Context, ws *ari.EventConn) error {
	stop := context.AfterFunc(ctx, func() { ws.Close() })
	defer stop()
	defer ws.Close()
	for {
		ev, err := ws.Next()
		if errors.Is(err, ari.ErrUndecodable) {
			a.log.WithError(err).Debug("undecodable ARI event")
			continue
		}
		if err != nil {
			return err
		}
		a.dispatch(ctx, ev)
	}
}

// dispatch hands an event to the call that owns one of its entities, or
// starts a call. It never blocks on a slow call for long.
func (a *App) dispatch(ctx context.Context, ev ari.Event) {
	if ss, ok := ev.(*ari.StasisStart); ok {
		a.onStasisStart(ctx, ss)
		return
	}
	var target *call
	a.mu.Lock()
	for _, k := range ev.Keys() {
		if c := a.owners[k.ID]; c != nil {
			target = c
			break
		}
	}
	a.mu.Unlock()
	if target == nil {
		if sp, ok := ev.(*ari.StasisEnd); ok {
			a.log.WithField("channel", sp.Channel.ID).Debug("StasisEnd for a channel no call owns")
		}
		return
	}
	target.deliver(ev)
}

func (a *App) onStasisStart(ctx context.Context, e *ari.StasisStart) {
	id := e.Channel.ID
	a.mu.Lock()
	c := a.owners[id]
	a.mu.Unlock()
	if c != nil {
		c.deliver(e)
		return
	}
	log := a.log.WithFields(logrus.Fields{"channel": id, "name": e.Channel.Name})
	if len(e.Args) > 0 && e.Args[0] == legArg {
		// An outbound leg whose call is gone (the caller hung up, or this
		// process restarted): nobody will bridge it.
		log.Warn("outbound leg without a call; hanging up")
		a.metrics.OrphanLegs.Inc()
		go func() { _ = a.ari.Hangup(context.WithoutCancel(ctx), id, "normal") }()
		return
	}
	if a.draining.Load() {
		// The dialplan after Stasis() decides what happens to calls that
		// arrive while we shut down.
		log.Warn("draining: returning new call to the dialplan")
		go func() {
			_ = a.ari.Continue(context.WithoutCancel(ctx), id, "", "", 0)
		}()
		return
	}
	a.startCall(ctx, e)
}

// legArg tags outbound legs in their Stasis arguments.
const legArg = "ariflow-leg"
