package controller

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/ariflow/ariflow/internal/ari"
	"github.com/ariflow/ariflow/transfer"
)

// Run campaigns for the lease and, while this process holds it, keeps the
// app's event websocket connected and serves calls; it returns when ctx
// ends. A standby does not connect the websocket: Asterisk gives an app to
// the newest connection, so connecting would take the app from the
// active process.
func (a *App) Run(ctx context.Context) error {
	defer a.resign()
	for ctx.Err() == nil {
		a.metrics.Role.Set(0)
		epoch, sent, ok := a.campaign(ctx)
		if !ok {
			return nil
		}
		cause := a.term(ctx, epoch, sent)
		if ctx.Err() != nil {
			return nil
		}
		a.log.WithError(cause).Error("no longer active: calls left to the process that took over; standing by")
		if errors.Is(cause, errARILost) {
			// Resigned for want of ARI: a standby that reaches it takes
			// over; this process campaigns again only once it reaches ARI
			// itself, and not before a standby had its chance.
			a.resign()
			select {
			case <-ctx.Done():
			case <-time.After(2 * a.cfg.LeaseTTL):
			}
		}
		if errors.Is(cause, errReplaced) {
			// Whoever took the app did so without the lease (another
			// version, another configuration): taking it back at once
			// would make the two fight over it.
			a.resign()
			select {
			case <-ctx.Done():
			case <-time.After(5 * a.cfg.LeaseTTL):
			}
		}
	}
	return nil
}

// term is one term as the active process: from taking the lease to losing
// it (or ctx ending). Calls run under the term's context: when it ends they
// stop at their next wait, and stay in Stasis and in the store for the
// next active process. Nothing of theirs is done by this process
// afterwards: the ARI client and the store refuse a process without a
// valid lease.
func (a *App) term(ctx context.Context, epoch int64, sent time.Time) error {
	began := time.Now()
	a.metrics.Role.Set(1)
	a.metrics.Takeovers.Inc()
	a.logTerm(epoch).Info("lease: active")
	tctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	go a.keepLease(tctx, stop, epoch, sent)
	go a.watchARI(tctx, stop)
	go a.keepFlows(tctx)
	go a.lookPBX(tctx)

	s := &session{epoch: epoch, began: began, first: true, backoff: firstBackoff, stop: stop}
	for tctx.Err() == nil {
		ws, err := a.ari.Events(tctx)
		if err != nil {
			if tctx.Err() != nil {
				break
			}
			a.log.WithError(err).WithField("retry_in", s.backoff).Warn("ARI websocket connect failed")
			a.pause(tctx, &s.backoff)
			continue
		}
		a.serveConnection(ctx, tctx, ws, s)
	}
	a.setConnected(false)
	cause := context.Cause(tctx)
	// Wait for the calls to stop before giving the lease up, so that the
	// next process does not adopt a call this one still runs.
	a.wg.Wait()
	return cause
}

// firstBackoff is the first pause before connecting again.
const firstBackoff = 100 * time.Millisecond

// session is a term's state across its websocket connections.
type session struct {
	epoch int64
	began time.Time
	first bool // no connection of this term has been proven yet
	// unproven counts the connections in a row whose first probe did not
	// come back: each is given twice as long as the last.
	unproven int
	backoff  time.Duration
	stop     context.CancelCauseFunc
}

// serveConnection serves one websocket of the term tctx: proven first,
// then reconciled and watched until it is lost, the term ends, or (ctx
// ending: the process stops) the calls are handed over.
func (a *App) serveConnection(ctx, tctx context.Context, ws *ari.EventConn, s *session) {
	// Until reconcile has adopted the calls it finds, their events have no
	// call to go to: they wait (parkEvents).
	a.parkEvents()
	a.pathSince.Store(time.Now().UnixNano())
	a.path.Store(ws)
	if err := a.ari.SetEventFilter(tctx, ari.EventTypes); err != nil {
		a.log.WithError(err).Warn("ARI event filter not set; receiving every event until it is")
		go a.setEventFilterLater(tctx, ws)
	}
	readDone := make(chan error, 1)
	go func() { readDone <- a.read(tctx, ws, s.stop) }()
	// An open websocket is not yet an event path: Asterisk can leave the
	// app inactive under it (docs/ari-event-path.md). Only an event that
	// comes back through it proves it.
	if err := a.prove(tctx, readDone, a.freshProofTimeout(s.unproven)); err != nil {
		s.unproven++
		// The broken socket goes first: connecting again while it is open,
		// then closing it, would leave the app inactive again.
		ws.Close()
		<-readDone
		a.unparkEvents()
		if tctx.Err() == nil {
			a.metrics.ProbeFailures.Inc()
			a.log.WithError(err).WithField("retry_in", s.backoff).Error("ARI event path not working; connecting again")
			a.pause(tctx, &s.backoff)
		}
		return
	}
	s.backoff, s.unproven = firstBackoff, 0
	a.setConnected(true)
	if s.first {
		a.log.Info("ARI websocket connected")
	} else {
		a.metrics.Reconnects.Inc()
		a.log.Info("ARI websocket reconnected")
	}
	// Events missed while we were away: find out what still exists.
	go func(first bool) {
		a.reconcileRetry(tctx)
		a.unparkEvents()
		if first {
			a.metrics.TakeoverSeconds.Observe(time.Since(s.began).Seconds())
			a.logTerm(s.epoch).WithField("took", time.Since(s.began).Round(time.Millisecond)).Info("takeover complete")
		}
	}(s.first)
	s.first = false
	err := a.watchPath(tctx, readDone)
	a.setConnected(false)
	switch {
	case tctx.Err() == nil:
		ws.Close()
		if errors.Is(err, errPathLost) {
			<-readDone
		} else {
			err = <-readDone
		}
		a.log.WithError(err).Warn("ARI websocket lost; reconnecting")
	case ctx.Err() != nil && a.handover(readDone):
		ws.Close()
	default:
		ws.Close()
		<-readDone
	}
}

// pathHeard is when the current websocket last received anything (zero
// before the first).
func (a *App) pathHeard() time.Time {
	if ws := a.path.Load(); ws != nil {
		return ws.Heard()
	}
	return time.Time{}
}

// pingPath has a ping sent on the current websocket now.
func (a *App) pingPath() {
	if ws := a.path.Load(); ws != nil {
		ws.PingSoon()
	}
}

// setConnected says whether the event path is up (proven), and since when
// it is down.
func (a *App) setConnected(up bool) {
	a.pathMu.Lock()
	defer a.pathMu.Unlock()
	was := a.connected.Load()
	if !up && was {
		a.pathDown.Store(time.Now().UnixNano())
	}
	a.connected.Store(up)
	if up != was {
		a.pathChanges.changed()
	}
}

// pathChanged is closed when the event path next goes up or down.
func (a *App) pathChanged() <-chan struct{} {
	a.pathMu.Lock()
	defer a.pathMu.Unlock()
	return a.pathChanges.next()
}

// pause waits backoff (or until ctx ends) and doubles it, up to 5 s.
func (a *App) pause(ctx context.Context, backoff *time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(*backoff):
	}
	*backoff = min(*backoff*2, 5*time.Second)
}

// errPathLost: a probe sent on a working connection did not come back.
var errPathLost = errors.New("ARI event path lost: a probe did not come back")

// prove sends a probe to the app and waits for it on the websocket
// (read hands it over), within timeout.
func (a *App) prove(ctx context.Context, readDone chan error, timeout time.Duration) error {
	token := newID("probe")
	a.probeToken.Store(&token)
	sent := time.Now()
	if err := a.ari.Probe(ctx, token); err != nil {
		return fmt.Errorf("sending a probe: %w", err)
	}
	bound := time.NewTimer(timeout)
	defer bound.Stop()
	for {
		select {
		case got := <-a.probes:
			if got == token {
				a.probeRTTs.add(time.Since(sent))
				return nil
			}
		case err := <-readDone:
			readDone <- err // for the caller, which waits for the reader
			return fmt.Errorf("websocket ended before the probe came back: %w", err)
		case <-bound.C:
			return fmt.Errorf("probe not back within %v", timeout)
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

// freshProofMin is the least a new connection's first probe is given.
const freshProofMin = 500 * time.Millisecond

// freshProofTimeout bounds a new connection's first probe: ten times the
// slowest recent round trip (at least freshProofMin), at most
// Config.ProbeTimeout, which is also the bound before any probe came
// back. An app Asterisk leaves inactive under a new socket (an old
// session's cleanup racing the registration: docs/ari-event-path.md)
// sends nothing, so the wait is only ever the bound; connecting again
// cures it. A probe slow for want of CPU stays within the bound, which
// grows with the round trips seen, and doubles with each connection in a
// row whose first probe did not come back (unproven): a machine much
// busier than when the round trips were seen still proves a connection.
func (a *App) freshProofTimeout(unproven int) time.Duration {
	slowest, ok := a.probeRTTs.max()
	if !ok {
		return a.cfg.ProbeTimeout
	}
	return min(max(10*slowest, freshProofMin)<<min(unproven, 8), a.cfg.ProbeTimeout)
}

// rttWindow keeps the last few probes' round trips.
type rttWindow struct {
	mu   sync.Mutex
	last [8]time.Duration
	n    int
}

func (w *rttWindow) add(d time.Duration) {
	w.mu.Lock()
	w.last[w.n%len(w.last)] = d
	w.n++
	w.mu.Unlock()
}

// max is the slowest of the kept round trips; false before the first.
func (w *rttWindow) max() (time.Duration, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Max(w.last[:]), w.n > 0
}

// setEventFilterLater tries the event filter again, backing off, while ws
// is the connection in use: a request refused in a moment when the lease
// lapsed here (a busy machine) or Asterisk was slow would otherwise leave
// every event of every channel coming for as long as the connection
// lasts, at a cost to the PBX and to ariflow.
func (a *App) setEventFilterLater(ctx context.Context, ws *ari.EventConn) {
	wait := 250 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		if a.path.Load() != ws {
			return
		}
		err := a.ari.SetEventFilter(ctx, ari.EventTypes)
		if err == nil {
			a.log.Info("ARI event filter set")
			return
		}
		if ctx.Err() != nil {
			return
		}
		a.log.WithError(err).WithField("retry_in", wait).Debug("ARI event filter still not set")
		wait = min(2*wait, 5*time.Second)
	}
}

// watchPath proves the event path again every Config.ProbeInterval while
// the connection lasts; it returns when the connection ends (the
// reader's error), the path fails a proof (errPathLost), or ctx ends.
func (a *App) watchPath(ctx context.Context, readDone chan error) error {
	tick := time.NewTicker(a.cfg.ProbeInterval)
	defer tick.Stop()
	for {
		select {
		case err := <-readDone:
			readDone <- err // for the caller, which waits for the reader
			return err
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		if err := a.prove(ctx, readDone, a.cfg.ProbeTimeout); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			a.metrics.ProbeFailures.Inc()
			a.log.WithError(err).Error("ARI event path lost under an open websocket; connecting again")
			return fmt.Errorf("%w: %v", errPathLost, err)
		}
	}
}

// keepFlows keeps the loaded flows' sources in the store while active.
func (a *App) keepFlows(ctx context.Context) {
	tick := time.NewTicker(time.Hour)
	defer tick.Stop()
	for {
		a.publishFlows(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// watchARI ends the term (errARILost) when this process has not had a
// working event path to Asterisk for Config.ARILossResign: an active
// process that cannot reach ARI but still reaches Redis would otherwise
// keep the lease for ever, and no standby could serve the callers.
func (a *App) watchARI(ctx context.Context, stop context.CancelCauseFunc) {
	start := time.Now() // a term begins without a path
	for {
		// Taken before the state is read: a change after the read
		// closes it.
		changed := a.pathChanged()
		var lapse *time.Timer
		var lapsed <-chan time.Time
		if !a.connected.Load() {
			since := time.Unix(0, a.pathDown.Load())
			if since.Before(start) {
				since = start
			}
			d := time.Since(since)
			if d >= a.cfg.ARILossResign {
				a.metrics.ARILost.Inc()
				a.log.WithField("for", d.Round(time.Millisecond)).Error("no working ARI event path; resigning the lease so that a standby can serve")
				stop(errARILost)
				return
			}
			lapse = time.NewTimer(a.cfg.ARILossResign - d)
			lapsed = lapse.C
		}
		select {
		case <-ctx.Done():
		case <-changed:
		case <-lapsed:
		}
		if lapse != nil {
			lapse.Stop()
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// handover ends a term because the process stops: the calls stop (they
// stay in Stasis and in the store), the lease is given up at once, and
// the websocket stays connected, acting on nothing, until the next active
// process takes the app (ApplicationReplaced) or Config.HandoverWait passes.
// Asterisk thus always has the app: a far end answering meanwhile, or a
// caller arriving, enters Stasis instead of being hung up for want of an
// app, and the next process finds them by reconciling. With no standby
// to take the lease (none within two lease lifetimes), it does not wait.
// It tells whether it consumed the reader's end.
func (a *App) handover(readDone <-chan error) bool {
	a.wg.Wait()
	a.resign()
	if a.cfg.HandoverWait < 0 {
		return false
	}
	deadline := time.NewTimer(a.cfg.HandoverWait)
	defer deadline.Stop()
	standbyCheck := time.NewTimer(2 * a.cfg.LeaseTTL)
	defer standbyCheck.Stop()
	for {
		select {
		case err := <-readDone:
			if errors.Is(err, errReplaced) {
				a.log.Info("handover: the next active process has the app")
			}
			return true
		case <-standbyCheck.C:
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			holder, err := a.elector.Holder(ctx)
			cancel()
			if err != nil || holder == "" {
				a.log.Info("handover: no standby took the lease; leaving the app")
				return false
			}
		case <-deadline.C:
			a.log.Warn("handover: the next active process did not take the app in time; leaving it")
			return false
		}
	}
}

// read reads events until the connection fails or the app is taken over.
// Events are acted on while the term runs: an event that arrives while
// the lease has lapsed for a moment (a slow renewal) is delivered all the
// same, and the call acts on it once the lease is back (lease.await).
func (a *App) read(ctx context.Context, ws *ari.EventConn, stop context.CancelCauseFunc) error {
	for {
		ev, err := ws.Next()
		if errors.Is(err, ari.ErrUndecodable) {
			a.log.WithError(err).Debug("undecodable ARI event")
			continue
		}
		if err != nil {
			return err
		}
		if ue, ok := ev.(*ari.UserEvent); ok && ue.Eventname == ari.ProbeEvent {
			if t := a.probeToken.Load(); t != nil && ari.IsProbe(ev, *t) {
				select {
				case a.probes <- *t:
				default:
				}
			}
			continue
		}
		if _, ok := ev.(*ari.ApplicationReplaced); ok {
			// Asterisk sends nothing more on this socket: the app is
			// another connection's now. Stop acting at once.
			if ctx.Err() == nil {
				a.metrics.Replaced.Inc()
				a.resign()
				stop(errReplaced)
			}
			return errReplaced
		}
		if ctx.Err() != nil {
			continue
		}
		a.dispatch(ctx, ev)
	}
}

// dispatch hands an event to the call that owns one of its entities, or
// starts a call. It never blocks: one slow call cannot delay the others.
func (a *App) dispatch(ctx context.Context, ev ari.Event) {
	if ss, ok := ev.(*ari.StasisStart); ok {
		a.onStasisStart(ctx, ss)
		return
	}
	var target *call
	// One lock for the look-up and the parking: a call that takes the
	// channel on in between claims the parked events before any later one.
	a.mu.Lock()
	for _, k := range ev.Keys() {
		if c := a.owners[k.ID]; c != nil {
			target = c
			break
		}
	}
	parked := target == nil && a.parkLocked(ev)
	a.mu.Unlock()
	if parked {
		return
	}
	if target == nil {
		if sp, ok := ev.(*ari.StasisEnd); ok {
			a.log.WithField("channel", sp.Channel.ID).Debug("StasisEnd for a channel no call owns")
		}
		return
	}
	target.deliver(ev)
}

// maxParked bounds the events kept for calls reconcile has not adopted
// yet.
const maxParked = 10000

// parkedEvent is an event kept for a call not yet adopted.
type parkedEvent struct {
	ev      ari.Event
	seq     int // arrival order
	claimed bool
}

// parkEvents keeps, from now until unparkEvents, the events of channels
// and bridges no call owns: after a (re)connect, reconcile adopts the
// calls it finds one by one, and a key a caller presses meanwhile (or the
// far end's hangup) must reach the call once adopted, not be lost.
func (a *App) parkEvents() {
	a.mu.Lock()
	a.parked, a.nparked = map[string][]*parkedEvent{}, 0
	a.mu.Unlock()
}

// parkLocked keeps ev while events are parked (a.mu held); it tells
// whether it did.
func (a *App) parkLocked(ev ari.Event) bool {
	keys := ev.Keys()
	if a.parked == nil || a.nparked >= maxParked || len(keys) == 0 {
		return false
	}
	a.nparked++
	pe := &parkedEvent{ev: ev, seq: a.nparked}
	for _, k := range keys {
		a.parked[k.ID] = append(a.parked[k.ID], pe)
	}
	return true
}

// unparkEvents stops parking; what no adopted call claimed is dropped.
func (a *App) unparkEvents() {
	a.mu.Lock()
	left := 0
	for _, evs := range a.parked {
		for _, pe := range evs {
			if !pe.claimed {
				left++
			}
		}
	}
	a.parked = nil
	a.mu.Unlock()
	if left > 0 {
		a.log.WithField("events", left).Debug("events of channels no call claimed after reconcile: dropped")
	}
}

// claimParkedLocked hands c the parked events of its ids, in the order
// they came, before any later event can reach it (a.mu is held).
func (a *App) claimParkedLocked(c *call, ids []string) {
	if a.parked == nil {
		return
	}
	var evs []*parkedEvent
	for _, id := range ids {
		evs = append(evs, a.parked[id]...)
		delete(a.parked, id)
	}
	if len(evs) == 0 {
		return
	}
	// Parked in arrival order per ID; merged by arrival order overall.
	slices.SortStableFunc(evs, func(x, y *parkedEvent) int { return cmp.Compare(x.seq, y.seq) })
	for _, pe := range evs {
		if !pe.claimed {
			pe.claimed = true
			c.deliver(pe.ev)
		}
	}
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
	if len(e.Args) > 0 && e.Args[0] == BackArg {
		// Back from the PBX's Dial() with no call waiting here: its
		// process stopped, or this one took over since.
		go a.pbxReturn(ctx, id, log)
		return
	}
	if len(e.Args) > 0 && e.Args[0] == transfer.LegArg {
		// An outbound leg no local call owns: answered just as this
		// process took over (its call is adopted now, and finds it up), or
		// its call is gone (nobody will bridge it: hang it up).
		go a.strayLeg(context.WithoutCancel(ctx), id, e.Args, log)
		return
	}
	if a.draining.Load() {
		log.Warn("draining: new call sent to the fallback")
		go a.toFallback(context.WithoutCancel(ctx), id, "draining", log)
		return
	}
	a.startCall(ctx, e)
}

func (a *App) strayLeg(ctx context.Context, id string, args []string, log *logrus.Entry) {
	if len(args) > 1 {
		if rec, err := a.store.Load(ctx, args[1]); err == nil && rec.Outbound == id {
			log.WithField("call_id", rec.CallID).Info("answered leg of a call not running here; adopting the call")
			a.adoptRecord(ctx, rec)
			return
		}
	}
	log.Warn("outbound leg without a call; hanging up")
	a.metrics.OrphanLegs.Inc()
	_ = a.ari.Hangup(ctx, id, "normal")
}
