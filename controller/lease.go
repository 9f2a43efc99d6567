package controller

import (
	"context"
	"errors"
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
// ends in the store; a process stopped (SIGSTOP) past it wakes up fenced.
type lease struct {
	mu         sync.Mutex
	epoch      int64
	validUntil time.Time
	renewed    chan struct{} // closed at each renewal, then replaced
}

// renewal is closed at the next renewal of the lease.
func (l *lease) renewal() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.renewed == nil {
		l.renewed = make(chan struct{})
	}
	return l.renewed
}

func (l *lease) valid() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.epoch != 0 && time.Now().Before(l.validUntil)
}

// fence returns the epoch to write with, or ErrFenced.
func (l *lease) fence() (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.epoch == 0 || !time.Now().Before(l.validUntil) {
		return 0, ErrFenced
	}
	return l.epoch, nil
}

// fenceOf is the Fence to write and delete with, or ErrFenced.
func (a *App) fenceOf() (Fence, error) {
	e, err := a.lease.fence()
	return Fence{Owner: a.owner, Epoch: e}, err
}

func (l *lease) set(epoch int64, until time.Time) {
	l.mu.Lock()
	l.epoch, l.validUntil = epoch, until
	if l.renewed != nil {
		close(l.renewed)
		l.renewed = nil
	}
	l.mu.Unlock()
}

func (l *lease) clear() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.epoch
	l.epoch, l.validUntil = 0, time.Time{}
	return e
}

// allowed is the ARI client's gate: no REST request leaves a process that
// does not hold a valid lease.
func (a *App) allowed() error {
	if _, err := a.lease.fence(); err != nil {
		a.metrics.FencedActions.Inc()
		return err
	}
	return nil
}

// Why a term as active ended.
var (
	errLeaseLost = errors.New("leadership lease lost")
	errReplaced  = errors.New("another process took the ARI app (ApplicationReplaced)")
)

// campaign blocks until this process holds the lease, or ctx ends.
func (a *App) campaign(ctx context.Context) bool {
	ttl := a.cfg.LeaseTTL
	every := max(ttl/8, 20*time.Millisecond)
	logged := false
	for {
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
			return true
		case err == nil && !logged:
			a.log.Info("lease: another process is active; standing by")
			logged = true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(every):
		}
	}
}

// keepLease renews the lease until ctx ends, and ends the term (stop)
// when the lease is lost: another process holds it, or it could not be
// renewed before it ran out.
func (a *App) keepLease(ctx context.Context, stop context.CancelCauseFunc) {
	ttl := a.cfg.LeaseTTL
	every := ttl / 4
	epoch, _ := a.lease.fence()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if !a.lease.valid() {
			a.metrics.LeaseFailures.Inc()
			stop(errLeaseLost)
			return
		}
		sent := time.Now()
		cctx, cancel := context.WithTimeout(ctx, ttl/2)
		got, err := a.elector.Renew(cctx, a.owner, ttl)
		cancel()
		switch {
		case err != nil:
			// Keep trying until the lease runs out; the check above ends
			// the term then.
			a.metrics.LeaseFailures.Inc()
			a.log.WithError(err).Debug("lease: renewal failed")
		case got != 0 && got != epoch:
			// The lease was gone from the store (Redis flushed, or
			// restarted without persistence) and is ours again under a new
			// epoch: nobody else acted meanwhile, or it would hold it. The
			// calls this process runs write their records again from
			// memory, so that what Redis lost is back at once.
			a.metrics.LeaseFailures.Inc()
			a.logTerm(got).Warn("lease: lost from the store and taken again; rewriting call records")
			a.lease.set(got, sent.Add(ttl-ttl/8))
			epoch = got
			a.resaveAll()
			// What the store holds may also be older than what happened
			// (a Sentinel failover loses writes the replica had not
			// received, such as a deleted record): check it against
			// Asterisk.
			go a.reconcileRetry(ctx)
		case got == 0:
			a.metrics.LeaseFailures.Inc()
			a.lease.clear()
			stop(errLeaseLost)
			return
		default:
			a.metrics.LeaseRenewals.Inc()
			a.lease.set(epoch, sent.Add(ttl-ttl/8))
		}
	}
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
