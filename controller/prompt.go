package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/ariflow/ariflow/flows"
	"github.com/ariflow/ariflow/internal/ari"
	"github.com/ariflow/ariflow/tts"
)

func (c *call) playPrompt(ctx context.Context, p *flows.PlayPrompt) (string, error) {
	uris, err := c.resolveAll(ctx, p.Prompts)
	if err != nil {
		return "", err
	}
	if err := c.play(ctx, uris...); err != nil {
		return "", err
	}
	return flows.BranchNext, nil
}

func (c *call) resolveAll(ctx context.Context, vs []flows.Value) ([]string, error) {
	out := make([]string, 0, len(vs))
	for _, v := range vs {
		s, err := flows.Resolve(v, c.rec.Attributes)
		if err != nil {
			return nil, err
		}
		if v.Ref != nil {
			// From an attribute: no paths, no recordings (literals were
			// checked at load).
			if err := flows.ValidateMediaURIValue(s); err != nil {
				return nil, fmt.Errorf("prompt from %s: %w", v, err)
			}
		}
		if v.Ref == nil && flows.IsTextPrompt(s) { // text-to-speech, see tts.go
			if s, err = c.speak(ctx, s); err != nil {
				return nil, err
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// play plays media to the caller, one after another, and returns when the
// last finished.
func (c *call) play(ctx context.Context, uris ...string) error {
	for _, uri := range uris {
		id, err := c.startPlayback(ctx, uri)
		if err != nil {
			return err
		}
		if err := c.waitPlayback(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

func (c *call) startPlayback(ctx context.Context, uri string) (string, error) {
	c.Settle() // the last transfer's bridge gone first: the caller is out of it
	for try := 0; ; try++ {
		id := newID("pb")
		c.own(id)
		err := c.app.ari.Play(ctx, c.id, id, uri)
		if err == nil {
			c.playing, c.playStarted = id, time.Now()
			return id, nil
		}
		c.disown(id)
		if try > 0 || ari.StatusCode(err) != 0 || ctx.Err() != nil {
			return "", err
		}
		// No answer (the connection cut under the request): the
		// playback may have begun. It is stopped, should it have, and
		// started again under a new ID, rather than the block's Error
		// branch for a prompt the caller may hear twice.
		c.log.WithError(err).WithField("media", uri).Warn("playback got no answer; starting it again")
		if serr := c.app.ari.StopPlayback(context.WithoutCancel(ctx), id); serr != nil && !ari.IsNotFound(serr) {
			c.log.WithError(serr).Debug("stopping the unanswered playback failed")
		}
	}
}

// endPlayback forgets a playback that finished (or was stopped).
func (c *call) endPlayback(id string) {
	c.disown(id)
	if c.playing == id {
		c.playing = ""
	}
}

// waitPlayback waits for the playback to finish. Its bound is the media
// itself: every PlaybackCheck the call asks whether the playback still
// runs, so a PlaybackFinished lost on the way costs at most that much
// silence, never the rest of the call.
func (c *call) waitPlayback(ctx context.Context, id string) error {
	_, err := c.waitPlaybackOr(ctx, id, nil)
	return err
}

// waitPlaybackOr is waitPlayback that hands every other event to stop:
// when it says so, the wait ends at once with that event (the playback
// is still the caller's to stop). A nil stop ignores other events.
func (c *call) waitPlaybackOr(ctx context.Context, id string, stop func(ari.Event) bool) (ari.Event, error) {
	defer c.endPlayback(id)
	check := time.NewTicker(c.app.cfg.PlaybackCheck)
	defer check.Stop()
	for {
		ev, err := c.next(ctx, check.C)
		if errors.Is(err, errTimeout) {
			lost, err := c.playbackLost(ctx, id)
			if lost || err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		if e, ok := ev.(*ari.PlaybackFinished); ok && e.Playback.ID == id {
			if e.Playback.State == "failed" {
				return nil, fmt.Errorf("playback of %s failed", e.Playback.MediaURI)
			}
			return nil, nil
		}
		if stop != nil && stop(ev) {
			return ev, nil
		}
	}
}

// playbackLost tells whether a playback the call waits for has ended
// without its PlaybackFinished reaching us. A playback that runs past
// MaxPlayback (media that never ends, or an ARI that cannot say) is
// stopped and errStuck returned: the caller goes to the fallback rather
// than wait in a prompt for ever.
func (c *call) playbackLost(ctx context.Context, id string) (bool, error) {
	ok, err := c.app.ari.PlaybackExists(ctx, id)
	if err == nil && !ok {
		c.app.metrics.LostEvents.Inc()
		c.log.WithField("playback", id).Warn("playback ended without PlaybackFinished; going on")
		return true, nil
	}
	if took := time.Since(c.playStarted); took > c.app.cfg.MaxPlayback {
		c.stopPlayback(ctx, id)
		c.app.metrics.StuckCalls.WithLabelValues("playback").Inc()
		c.log.WithFields(logrus.Fields{"playback": id, "step": c.rec.Block, "took": took}).Error("prompt still playing past its bound; giving up on it")
		return false, fmt.Errorf("playback %s still running after %v: %w", id, took.Round(time.Second), errStuck)
	}
	return false, nil
}

func (c *call) stopPlayback(ctx context.Context, id string) {
	err := c.app.ari.StopPlayback(ctx, id)
	if err != nil && !ari.IsNotFound(err) {
		c.log.WithError(err).Debug("stop playback failed")
	}
}

// defaultTTS is the process's renderer, configured from the environment
// on first use.
var defaultTTS = sync.OnceValue(tts.FromEnv)

// speak renders a "text:" prompt for this call: attributes filled in,
// SSML reduced to text, voice and language from $.Attributes.tts_voice and
// tts_language. It returns the media URI to play.
func (c *call) speak(ctx context.Context, prompt string) (string, error) {
	text := flows.InterpolateText(strings.TrimPrefix(prompt, flows.TextPrefix), c.rec.Attributes)
	if flows.IsSSML(text) {
		var err error
		if text, err = flows.SSMLToText(text); err != nil {
			return "", err
		}
	}
	attrs := c.rec.Attributes[flows.NSAttributes]
	return defaultTTS().Render(ctx, text, attrs[flows.AttrTTSVoice], attrs[flows.AttrTTSLanguage])
}
