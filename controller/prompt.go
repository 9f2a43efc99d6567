package controller

import (
	"context"
	"fmt"

	"github.com/ariflow/ariflow/internal/ari"

	"github.com/ariflow/ariflow/flows"
)

func (c *call) playPrompt(ctx context.Context, p *flows.PlayPrompt) (string, error) {
	uris, err := c.resolveAll(p.Prompts)
	if err != nil {
		return "", err
	}
	if err := c.play(ctx, uris...); err != nil {
		return "", err
	}
	return flows.BranchNext, nil
}

func (c *call) resolveAll(vs []flows.Value) ([]string, error) {
	out := make([]string, 0, len(vs))
	for _, v := range vs {
		s, err := flows.Resolve(v, c.rec.Attributes)
		if err != nil {
			return nil, err
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
	id := newID("pb")
	c.app.register(c, id)
	err := c.app.ari.Play(ctx, c.id, id, uri)
	if err != nil {
		c.app.unregister(id)
		return "", err
	}
	return id, nil
}

func (c *call) waitPlayback(ctx context.Context, id string) error {
	defer c.app.unregister(id)
	for {
		ev, err := c.next(ctx, nil)
		if err != nil {
			return err
		}
		if e, ok := ev.(*ari.PlaybackFinished); ok && e.Playback.ID == id {
			if e.Playback.State == "failed" {
				return fmt.Errorf("playback of %s failed", e.Playback.MediaURI)
			}
			return nil
		}
	}
}

func (c *call) stopPlayback(ctx context.Context, id string) {
	err := c.app.ari.StopPlayback(ctx, id)
	if err != nil && !ari.IsNotFound(err) {
		c.log.WithError(err).Debug("stop playback failed")
	}
}
