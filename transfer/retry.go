package transfer

import (
	"context"
	"errors"
	"time"

	"github.com/ariflow/ariflow/internal/ari"
)

// Backoff bounds the tries of a request that failed for want of an
// answer: Tries in all, waiting First, then twice as long each time.
type Backoff struct {
	Tries int
	First time.Duration
}

// DefaultRetry is used when Env.Retry is zero: five tries over about three
// seconds, enough for an Asterisk that is busy or briefly unreachable.
var DefaultRetry = Backoff{Tries: 5, First: 200 * time.Millisecond}

// errRetryable marks an error a retry loop tries again although Asterisk
// answered it.
type errRetryable struct{ error }

func (e errRetryable) Unwrap() error { return e.error }

// retry runs f until it succeeds, fails with an answer from Asterisk (a
// refusal, which trying again would not change), or the tries run out.
func (t *Transfer) retry(ctx context.Context, what string, f func() error) error {
	b := t.env.Retry
	if b.Tries <= 0 {
		b = DefaultRetry
	}
	wait := b.First
	var err error
	for try := 1; ; try++ {
		if err = f(); err == nil || !retryable(err) || try >= b.Tries || stopping(ctx, err) {
			return err
		}
		t.leg.log.WithError(err).WithField("try", try).Warn("transfer: " + what + " failed; trying again")
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait *= 2
	}
}

// unanswered tells a request that got no answer at all (the connection
// cut, a timeout) from a refusal, while the call is not being left: what
// it asked for may or may not have been done.
func unanswered(ctx context.Context, err error) bool {
	return err != nil && ari.StatusCode(err) == 0 && !stopping(ctx, err)
}

// retryable tells a failure for want of an answer (no connection, a
// timeout, Asterisk busy: 5xx) from a refusal.
func retryable(err error) bool {
	var r errRetryable
	if errors.As(err, &r) {
		return true
	}
	code := ari.StatusCode(err)
	return code == 0 || code >= 500
}
