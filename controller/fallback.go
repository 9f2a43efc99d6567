package controller

import (
	"context"
	"errors"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/ariflow/ariflow/internal/ari"
)

// toFallback sends a caller that ariflow cannot serve to the configured
// fallback: the dialplan target (e.g. an agents queue), or the error
// prompt and a hangup. why is a short reason for the metric ("draining",
// "no-record", "stuck", "spinning", "flow-failed", "overflow"); log
// carries the detail.
func (a *App) toFallback(ctx context.Context, channel, why string, log *logrus.Entry) {
	a.metrics.Fallbacks.WithLabelValues(why).Inc()
	bg := context.WithoutCancel(ctx)
	if fb := a.cfg.Fallback; fb.Context != "" {
		err := a.ari.Continue(bg, channel, fb.Context, fb.Extension, fb.Priority)
		if err == nil {
			log.WithFields(logrus.Fields{"fallback": fb.Context, "reason": why}).Warn("caller sent to the fallback")
			return
		}
		if code := ari.StatusCode(err); code == 404 || code == 409 {
			// Gone, or no longer in Stasis (handed to the dialplan
			// meanwhile): not ours to apologise to or hang up.
			log.WithError(err).Warn("caller left the app before the fallback; leaving it be")
			return
		}
		log.WithError(err).Error("sending the caller to the fallback failed; apologising and hanging up")
	}
	log.WithField("reason", why).Warn("apologising and hanging up")
	_ = a.ari.Answer(bg, channel)
	id := newID("pb")
	if err := a.ari.Play(bg, channel, id, a.cfg.ErrorPrompt); err == nil {
		// No call goroutine receives this playback's events: ask until it
		// is over, within a bound.
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			time.Sleep(200 * time.Millisecond)
			if ok, err := a.ari.PlaybackExists(bg, id); err != nil || !ok {
				break
			}
		}
	}
	_ = a.ari.Hangup(bg, channel, "normal")
}

// fallbackReason is the metric label for why a call went to the fallback.
func fallbackReason(err error) string {
	switch {
	case errors.Is(err, errOverflow):
		return "overflow"
	case errors.Is(err, errStuck):
		return "stuck"
	case errors.Is(err, errSpinning):
		return "spinning"
	default:
		return "flow-failed"
	}
}

// errStuck: a wait ran past its bound with nothing to show for it.
var errStuck = errors.New("call stuck")
