package controller

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/ariflow/ariflow/internal/ari"
)

// Elector is the leadership lease for one (Asterisk, app) pair, kept in
// the store so that every process of the pair sees the same one.
type Elector interface {
	// Campaign takes the lease for owner when it is free, or renews it
	// when owner holds it, for ttl. It returns the epoch owner holds, or
	// 0 when another process holds the lease. Every new holder gets a
	// higher epoch than the last.
	Campaign(ctx context.Context, owner string, ttl time.Duration) (int64, error)
	// Renew is the holder's renewal: it renews the lease while owner
	// holds it and takes it back, with a new epoch, when it is gone from
	// the store; 0 when another process holds it.
	Renew(ctx context.Context, owner string, ttl time.Duration) (int64, error)
	// Resign gives the lease up if owner still holds it at epoch.
	Resign(ctx context.Context, owner string, epoch int64) error
	// Holder is the process holding the lease now ("" when free).
	Holder(ctx context.Context) (string, error)
}

// lease is this process's view of its lease: the epoch it holds and until
// when, by its own monotonic clock, it may act on it. validUntil is
// computed from when the renewal was sent, so it ends before the lease
// ends in the store; a process stopped (SIGSTOP) past it wakes up unable
// to act until a renewal says whether the lease is still its own.
//
// A lapse is not a loss: while the term runs, a call that wants to act
// while the lease has lapsed waits for the renewal under way (await), and
// acts once it is back; only a lost lease (another holder, or no renewal
// for a whole lease lifetime) ends the term, and the call with it.
type lease struct {
	mu         sync.Mutex
	epoch      int64
	validUntil time.Time
	changes    changes // at each renewal or loss
}

// renewal is closed at the next change of the lease.
func (l *lease) renewal() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.changes.next()
}

func (l *lease) valid() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.epoch != 0 && time.Now().Before(l.validUntil)
}

// until is when the lease lapses here unless renewed.
func (l *lease) until() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.validUntil
}

// fence returns the epoch to write with, or ErrFenced, without waiting.
func (l *lease) fence() (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.epoch == 0 || !time.Now().Before(l.validUntil) {
		return 0, ErrFenced
	}
	return l.epoch, nil
}

// await returns the epoch to act with. While the lease has lapsed but is
// not lost (a renewal is slow), it waits for the renewal, at most bound;
// a lost lease, or ctx ending, is ErrFenced.
func (l *lease) await(ctx context.Context, bound time.Duration) (int64, error) {
	return l.wait(ctx, bound, true)
}

// wait is await; with lostFinal false a lease not held is waited for as
// a lapsed one is.
func (l *lease) wait(ctx context.Context, bound time.Duration, lostFinal bool) (int64, error) {
	var timeout <-chan time.Time
	for {
		l.mu.Lock()
		epoch, ok := l.epoch, time.Now().Before(l.validUntil)
		changed := l.changes.next()
		l.mu.Unlock()
		switch {
		case epoch == 0 && lostFinal:
			return 0, ErrFenced
		case epoch != 0 && ok:
			return epoch, nil
		}
		if timeout == nil {
			t := time.NewTimer(bound)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-changed:
		case <-timeout:
			return 0, fmt.Errorf("lease lapsed and not renewed within %v: %w", bound, ErrFenced)
		case <-ctx.Done():
			return 0, fmt.Errorf("%w (%v)", ErrFenced, context.Cause(ctx))
		}
	}
}

func (l *lease) set(epoch int64, until time.Time) {
	l.mu.Lock()
	l.epoch, l.validUntil = epoch, until
	l.changes.changed()
	l.mu.Unlock()
}

func (l *lease) clear() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.epoch
	l.epoch, l.validUntil = 0, time.Time{}
	l.changes.changed()
	return e
}

// allowed is the ARI client's gate: no REST request leaves a process that
// does not hold a valid lease. A request made while the lease has lapsed
// waits for the renewal under way.
func (a *App) allowed(ctx context.Context) error {
	if _, err := a.lease.await(ctx, a.cfg.LapseWait); err != nil {
		a.metrics.FencedActions.Inc()
		return err
	}
	return nil
}

// takeBack reconciles once the lease is valid again: a call that met the
// fence (a request refused as the lease lapsed here for a moment) left its
// record and its caller for the next active process, and while this
// process stays active that is this one. A lease really lost ends the term
// instead, and whoever takes over adopts the call. Calls that leave
// together share one reconcile.
func (a *App) takeBack(ctx context.Context) {
	if !a.takingBack.CompareAndSwap(false, true) {
		return
	}
	go func() {
		// Not held at this instant may be a moment's (a renewal under
		// way); a lease really lost ends the term, and ctx with it.
		_, err := a.lease.wait(ctx, a.cfg.LapseWait, false)
		a.takingBack.Store(false)
		if err != nil || ctx.Err() != nil {
			return
		}
		a.log.Info("lease: valid again after calls met the fence; taking them back")
		a.reconcileRetry(ctx)
	}()
}

// Why a term as active ended.
var (
	errLeaseLost = errors.New("leadership lease lost")
	errReplaced  = errors.New("another process took the ARI app (ApplicationReplaced)")
	errARILost   = errors.New("no working ARI event path")
	// errLeaseRenewedLate: the lease ran out in the store before this
	// process renewed it; it holds it again, in a new term.
	errLeaseRenewedLate = errors.New("lease ran out in the store before it was renewed")
)

// campaign blocks until this process holds the lease, or ctx ends.
func (a *App) campaign(ctx context.Context) (epoch int64, sent time.Time, ok bool) {
	ttl := a.cfg.LeaseTTL
	every := max(ttl/8, 20*time.Millisecond)
	logged, unreachable := false, false
	var checked time.Time
	for {
		// Only a process that reaches ARI campaigns: taking the lease
		// without it would leave the callers to nobody.
		if time.Since(checked) >= time.Second {
			checked = time.Now()
			cctx, cancel := context.WithTimeout(ctx, min(ttl, 2*time.Second))
			err := a.reachARI(cctx)
			cancel()
			if err != nil && !unreachable && ctx.Err() == nil {
				a.log.WithError(err).Warn("lease: ARI unreachable; not campaigning until it answers")
			}
			unreachable = err != nil
		}
		if unreachable {
			select {
			case <-ctx.Done():
				return 0, time.Time{}, false
			case <-time.After(every):
			}
			continue
		}
		sent := time.Now()
		cctx, cancel := context.WithTimeout(ctx, ttl/2)
		epoch, err := a.elector.Campaign(cctx, a.owner, ttl)
		cancel()
		switch {
		case err != nil && ctx.Err() == nil:
			a.metrics.LeaseFailures.Inc()
			if !logged {
				a.log.WithError(err).Warn("lease: campaign failed (Redis?); standing by")
				logged = true
			}
		case err == nil && epoch != 0:
			a.lease.set(epoch, sent.Add(ttl-ttl/8))
			return epoch, sent, true
		case err == nil && !logged:
			a.log.Info("lease: another process is active; standing by")
			logged = true
		}
		select {
		case <-ctx.Done():
			return 0, time.Time{}, false
		case <-time.After(every):
		}
	}
}

// reachARI asks Asterisk for a sign of life, without the lease (a
// standby has none).
func (a *App) reachARI(ctx context.Context) error {
	_, err := a.probeARI.Ping(ctx)
	return err
}

// keepLease renews the lease until ctx ends, and ends the term (stop)
// when the lease is lost: another process holds it. A renewal that is
// slow, or a process starved of CPU for a moment, lets the lease lapse
// here: calls then wait (lease.await) instead of giving up, and go on
// once a renewal says the lease is still this process's. Safety does not
// rest on this loop's timing: no request or write leaves while the lease
// has lapsed here, and a process that took over takes the app
// (ApplicationReplaced) and the store's fence.
func (a *App) keepLease(ctx context.Context, stop context.CancelCauseFunc, epoch int64, sent time.Time) {
	ttl := a.cfg.LeaseTTL
	tick := time.NewTicker(ttl / 4)
	defer tick.Stop()
	lastOK := sent // when the last successful renewal (or the campaign) was sent
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		until := a.lease.until()
		r := renewal{epoch: epoch, sent: time.Now()}
		// A generous bound: a renewal that is slow (a busy Redis, a process
		// starved of CPU) is better late than given up.
		cctx, cancel := context.WithTimeout(ctx, 2*ttl)
		r.got, r.err = a.elector.Renew(cctx, a.owner, ttl)
		cancel()
		r.unrenewed = r.sent.Sub(lastOK)
		next, end := a.afterRenewal(ctx, r)
		if end != nil {
			stop(end)
			return
		}
		if r.err != nil {
			continue
		}
		epoch, lastOK = next, r.sent
		if late := time.Since(until); late > 0 {
			a.metrics.LeaseLapses.Inc()
			a.logTerm(epoch).WithField("late", late.Round(time.Millisecond)).Warn("lease: renewed after it had lapsed here; calls that waited go on")
			if late >= a.cfg.LapseWait {
				// Calls that gave up waiting left their records: this
				// process is still active, so it takes them again.
				go a.reconcileRetry(ctx)
			}
		}
	}
}

// renewal is one renewal of the lease: the term's epoch before it, what
// the store answered, when it was sent, and how long since the last one
// that succeeded was sent.
type renewal struct {
	epoch, got int64
	err        error
	sent       time.Time
	unrenewed  time.Duration
}

// afterRenewal acts on a renewal's answer: it returns the term's epoch
// after it, or end, the cause that ends the term.
func (a *App) afterRenewal(ctx context.Context, r renewal) (epoch int64, end error) {
	ttl := a.cfg.LeaseTTL
	valid := r.sent.Add(ttl - ttl/8)
	lapsed := r.unrenewed >= ttl
	switch {
	case r.err != nil && lapsed:
		// Redis has not renewed the lease for a lifetime: it is down or
		// refuses writes (NOREPLICAS). No process can act meanwhile; this
		// one lets go of the app, so that callers arriving now meet the
		// dialplan's fallback instead of a silent app.
		a.metrics.LeaseFailures.Inc()
		a.lease.clear()
		a.logTerm(r.epoch).WithError(r.err).Error("lease: not renewed for a lease lifetime; letting go")
		return 0, fmt.Errorf("%w: %v", errLeaseLost, r.err)
	case r.err != nil:
		a.metrics.LeaseFailures.Inc()
		a.log.WithError(r.err).Debug("lease: renewal failed")
		return r.epoch, nil
	case r.got == 0:
		a.metrics.LeaseFailures.Inc()
		a.lease.clear()
		return 0, errLeaseLost
	case r.got > r.epoch+1, r.got != r.epoch && r.got != r.epoch+1 && lapsed:
		// Epochs were handed out besides this process's (the store's
		// counter went past ours), or the lease was not renewed for a
		// whole lifetime and came back under another epoch: another
		// process may have held it and acted. A renewal sent in time but
		// answered late can find so without a lapse here. What this
		// process knows of its calls may be stale: a new term, which takes
		// them over from the store again. Until it begins, the lease is
		// not this process's to act with: a call of the ending term that
		// has not yet seen its end must not act on what it knows under the
		// new epoch (the new term campaigns, and gets the lease back).
		a.metrics.LeaseFailures.Inc()
		a.lease.clear()
		a.logTerm(r.got).WithField("unrenewed", r.unrenewed.Round(time.Millisecond)).Warn("lease: ran out in the store and taken again after another holder; beginning a new term")
		return 0, errLeaseRenewedLate
	case r.got == r.epoch+1 && lapsed:
		// Ran out in the store while this process was slow, and taken back
		// with the very next epoch: nobody else held it between.
		a.metrics.LeaseFailures.Inc()
		a.logTerm(r.got).WithField("unrenewed", r.unrenewed.Round(time.Millisecond)).Warn("lease: ran out in the store and taken again; nobody else held it")
	case r.got != r.epoch:
		// The lease was gone from the store though renewed in time (Redis
		// flushed, or restarted without persistence) and is ours again
		// under a new epoch: nobody else acted meanwhile, or it would hold
		// it. The calls this process runs write their records again from
		// memory, so that what Redis lost is back at once.
		a.metrics.LeaseFailures.Inc()
		a.logTerm(r.got).Warn("lease: lost from the store and taken again; rewriting call records")
		a.lease.set(r.got, valid)
		a.resaveAll()
		// What the store holds may also be older than what happened (a
		// Sentinel failover loses writes the replica had not received,
		// such as a deleted record): check it against Asterisk.
		go a.reconcileRetry(ctx)
		return r.got, nil
	default:
		a.metrics.LeaseRenewals.Inc()
	}
	a.lease.set(r.got, valid)
	return r.got, nil
}

// resaveAll asks every call this process runs to write its record again.
func (a *App) resaveAll() { a.tellCalls(func() ari.Event { return &resave{} }) }

// tellCalls queues an event made by ev for every call this process runs.
func (a *App) tellCalls(ev func() ari.Event) {
	a.mu.Lock()
	local := make([]*call, 0, len(a.calls))
	for _, c := range a.calls {
		local = append(local, c)
	}
	a.mu.Unlock()
	for _, c := range local {
		c.deliver(ev())
	}
}

// resave asks a call to write its record again (see resaveAll).
type resave struct{ ari.EventData }

func (*resave) Keys() ari.Keys { return nil }

// resign gives the lease up at once, so that a standby takes over without
// waiting for it to expire.
func (a *App) resign() {
	epoch := a.lease.clear()
	if epoch == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := a.elector.Resign(ctx, a.owner, epoch); err != nil {
		a.log.WithError(err).Warn("lease: resign failed; a standby takes over when it expires")
		return
	}
	a.log.WithField("epoch", epoch).Info("lease: resigned")
}

func (a *App) logTerm(epoch int64) *logrus.Entry {
	return a.log.WithFields(logrus.Fields{"owner": a.owner, "epoch": epoch})
}
