package controller

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/ariflow/ariflow/flows"
	"github.com/ariflow/ariflow/internal/ari"
)

// getInput plays the prompts and collects DTMF; a digit stops the prompt
// (barge-in). The timeout runs from the end of the prompts and restarts
// with each digit.
func (c *call) getInput(ctx context.Context, in *flows.GetCustomerInput) (string, error) {
	uris, err := c.resolveAll(ctx, in.Prompts)
	if err != nil {
		return "", err
	}
	maxDigits := in.MaxDigits
	if maxDigits <= 0 {
		maxDigits = 1
	}
	wait := in.Timeout
	if wait <= 0 {
		wait = 5 * time.Second
	}
	var digits strings.Builder
	playing := ""
	next := 0
	startNext := func() error {
		if next >= len(uris) {
			playing = ""
			return nil
		}
		id, err := c.startPlayback(ctx, uris[next])
		next++
		playing = id
		return err
	}
	if err := startNext(); err != nil {
		return "", err
	}
	var timer *time.Timer
	var timeout <-chan time.Time
	armTimer := func() {
		if timer != nil {
			timer.Stop()
		}
		timer = time.NewTimer(wait)
		timeout = timer.C
	}
	if playing == "" {
		armTimer()
	}
	check := time.NewTicker(c.app.cfg.PlaybackCheck)
	defer check.Stop()
	defer func() {
		if timer != nil {
			timer.Stop()
		}
		if playing != "" {
			c.endPlayback(playing)
		}
	}()
	done := false
	timedOut := false
	for !done {
		wait := timeout
		if wait == nil && playing != "" {
			// While a prompt plays, its end is what we wait for; ask now
			// and then whether it still runs, in case its event was lost.
			wait = check.C
		}
		ev, err := c.next(ctx, wait)
		switch {
		case errors.Is(err, errTimeout) && timeout == nil:
			if playing == "" {
				continue
			}
			if lost, err := c.playbackLost(ctx, playing); err != nil {
				return "", err
			} else if !lost {
				continue
			}
			ev = &ari.PlaybackFinished{Playback: ari.PlaybackData{ID: playing, State: "done"}}
		case errors.Is(err, errTimeout):
			timedOut = true
			done = true
			continue
		case err != nil:
			return "", err
		}
		switch e := ev.(type) {
		case *ari.PlaybackFinished:
			if e.Playback.ID != playing {
				continue
			}
			c.endPlayback(playing)
			playing = ""
			if digits.Len() == 0 {
				if err := startNext(); err != nil {
					return "", err
				}
			}
			if playing == "" && timeout == nil {
				armTimer()
			}
		case *ari.ChannelDtmfReceived:
			if e.Channel.ID != c.id {
				continue
			}
			if playing != "" {
				c.stopPlayback(ctx, playing)
				c.endPlayback(playing)
				playing = ""
				next = len(uris)
			}
			if in.Terminator != "" && e.Digit == in.Terminator {
				done = true
				continue
			}
			digits.WriteString(e.Digit)
			if digits.Len() >= maxDigits {
				done = true
				continue
			}
			armTimer()
		}
	}
	got := digits.String()
	c.rec.Attributes.Set(flows.NSSystem, flows.SysLastInput, got)
	if in.StoreAs != "" {
		c.rec.Attributes.Set(flows.NSAttributes, in.StoreAs, got)
	}
	c.log.WithField("digits", len(got)).Info("input collected")
	return in.Branch(got, timedOut && got == ""), nil
}
