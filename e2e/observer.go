package e2e

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/CyCoreSystems/ari/v6"
)

// Observer watches every event on the PBX (subscribeAll) without taking
// part, so that a test can wait for, say, a prompt to start before the
// caller presses keys.
type Observer struct{ hub *hub }

// NewObserver connects to the PBX's ARI as a passive app.
func NewObserver(ctx context.Context, s *Stack) (*Observer, error) {
	e := s.Env
	h, err := connectHub(ctx, e["ARIFLOW_STACK_PBX_ARI_URL"], "e2e-observer", e["ARIFLOW_STACK_PBX_ARI_USER"], e["ARIFLOW_STACK_PBX_ARI_PASSWORD"], true)
	if err != nil {
		return nil, err
	}
	return &Observer{hub: h}, nil
}

// Close disconnects.
func (o *Observer) Close() { o.hub.close() }

// Prompts subscribes to the starts of playbacks of uri; call before the
// prompt can start.
func (o *Observer) Prompts(uri string) *PromptWatch {
	return &PromptWatch{o: o, s: o.hub.subscribe(func(ev ari.Event) bool {
		p, ok := ev.(*ari.PlaybackStarted)
		return ok && p.Playback.MediaURI == uri
	})}
}

// PromptWatch waits for a prompt.
type PromptWatch struct {
	o *Observer
	s *sub
}

// Wait returns when the next playback of the prompt starts.
func (w *PromptWatch) Wait(ctx context.Context) error {
	if _, err := w.s.next(ctx); err != nil {
		return fmt.Errorf("prompt never started: %w", err)
	}
	return nil
}

// Stop ends the watch.
func (w *PromptWatch) Stop() { w.o.hub.unsubscribe(w.s) }

// Playbacks watches the playbacks whose media URI starts with prefix,
// from start to end; call before they can start.
func (o *Observer) Playbacks(prefix string) *PlaybackWatch {
	return &PlaybackWatch{o: o, started: map[string]time.Time{}, s: o.hub.subscribe(func(ev ari.Event) bool {
		switch p := ev.(type) {
		case *ari.PlaybackStarted:
			return strings.HasPrefix(p.Playback.MediaURI, prefix)
		case *ari.PlaybackFinished:
			return strings.HasPrefix(p.Playback.MediaURI, prefix)
		}
		return false
	})}
}

// PlaybackWatch follows playbacks.
type PlaybackWatch struct {
	o       *Observer
	s       *sub
	started map[string]time.Time
}

// Played is one playback that ended.
type Played struct {
	URI, State string
	Took       time.Duration // from its start to its end, by Asterisk's clock
}

// Next returns the next playback that ended.
func (w *PlaybackWatch) Next(ctx context.Context) (Played, error) {
	for {
		ev, err := w.s.next(ctx)
		if err != nil {
			return Played{}, fmt.Errorf("no playback ended: %w", err)
		}
		switch p := ev.(type) {
		case *ari.PlaybackStarted:
			w.started[p.Playback.ID] = EventTime(p)
		case *ari.PlaybackFinished:
			return Played{URI: p.Playback.MediaURI, State: p.Playback.State, Took: EventTime(p).Sub(w.started[p.Playback.ID])}, nil
		}
	}
}

// Stop ends the watch.
func (w *PlaybackWatch) Stop() { w.o.hub.unsubscribe(w.s) }
