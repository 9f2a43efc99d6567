package e2e

import (
	"context"
	"fmt"

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
