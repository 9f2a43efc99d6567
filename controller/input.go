package controller

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/ariflow/ariflow/flows"
	"github.com/ariflow/ariflow/internal/ari"
)

// defaultInputTimeout is a GetCustomerInput's wait for keys when its
// block names none.
const defaultInputTimeout = 5 * time.Second

// getInput plays the prompts and collects DTMF; a key stops the prompt
// and skips the rest (barge-in). The timeout runs from the end of the
// prompts and restarts with each key.
func (c *call) getInput(ctx context.Context, in *flows.GetCustomerInput) (string, error) {
	uris, err := c.resolveAll(ctx, in.Prompts)
	if err != nil {
		return "", err
	}
	keys := newKeys(in)
	for _, uri := range uris {
		barged, err := c.promptUntilKey(ctx, uri, keys)
		if err != nil {
			return "", err
		}
		if barged {
			break
		}
	}
	timedOut := false
	if !keys.done {
		if timedOut, err = c.collectKeys(ctx, keys, in.Timeout); err != nil {
			return "", err
		}
	}
	got := keys.got.String()
	c.rec.Attributes.Set(flows.NSSystem, flows.SysLastInput, got)
	if in.StoreAs != "" {
		c.rec.Attributes.Set(flows.NSAttributes, in.StoreAs, got)
	}
	c.log.WithField("digits", len(got)).Info("input collected")
	return in.Branch(got, timedOut && got == ""), nil
}

// promptUntilKey plays one prompt until it ends or the caller presses a
// key, which stops it and is collected.
func (c *call) promptUntilKey(ctx context.Context, uri string, keys *keys) (barged bool, err error) {
	id, err := c.startPlayback(ctx, uri)
	if err != nil {
		return false, err
	}
	ev, err := c.waitPlaybackOr(ctx, id, c.isCallerKey)
	if err != nil || ev == nil {
		return false, err
	}
	c.stopPlayback(ctx, id)
	keys.add(ev.(*ari.ChannelDtmfReceived).Digit)
	return true, nil
}

// collectKeys collects keys until the terminator, the most the block
// takes, or the timeout since the prompts ended or the last key.
func (c *call) collectKeys(ctx context.Context, keys *keys, wait time.Duration) (timedOut bool, err error) {
	if wait <= 0 {
		wait = defaultInputTimeout
	}
	for !keys.done {
		ev, err := c.Next(ctx, time.Now().Add(wait))
		if errors.Is(err, errTimeout) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		if c.isCallerKey(ev) {
			keys.add(ev.(*ari.ChannelDtmfReceived).Digit)
		}
	}
	return false, nil
}

func (c *call) isCallerKey(ev ari.Event) bool {
	e, ok := ev.(*ari.ChannelDtmfReceived)
	return ok && e.Channel.ID == c.id
}

// keys are the keys a GetCustomerInput collected so far.
type keys struct {
	got        strings.Builder
	max        int
	terminator string
	done       bool // the terminator came, or the most the block takes
}

func newKeys(in *flows.GetCustomerInput) *keys {
	return &keys{max: max(in.MaxDigits, 1), terminator: in.Terminator}
}

func (k *keys) add(digit string) {
	if k.terminator != "" && digit == k.terminator {
		k.done = true
		return
	}
	k.got.WriteString(digit)
	k.done = k.got.Len() >= k.max
}
