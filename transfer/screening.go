package transfer

import (
	"context"
	"time"

	"github.com/ariflow/ariflow/internal/ari"
	"github.com/ariflow/ariflow/record"
)

// screenGuard bounds the wait for a whisper or confirmation prompt to end,
// should its PlaybackFinished be lost.
const screenGuard = 2 * time.Minute

// screening plays the whisper and asks for the confirmation, to the far
// end alone: it is answered and in Stasis, not yet bridged, and the caller
// still hears ringback. A far end that does not confirm in time (a
// voicemail box) or hangs up meanwhile ends as not answered (Timeout). It
// is not saved: a process taking over finds the leg up in state dialing
// and screens it again.
type screening struct {
	prompts []string // still to play
	playing string   // the playback under way
	until   time.Time
	opened  time.Time // when the confirmation window opened
	asked   bool      // the confirmation was asked again after a gap
}

func (s *screening) name() record.TransferState     { return record.StateScreening }
func (s *screening) deadline(t *Transfer) time.Time { return s.until }

func (s *screening) onDeadline(ctx context.Context, t *Transfer) (state, error) {
	if cf := t.plan.Options.Confirm; cf != nil && !s.asked && s.playing == "" && !s.opened.IsZero() && t.pathSince().After(s.opened) {
		// The event path began anew while the window was open: a key the
		// far end pressed may be lost with the last websocket. It is
		// asked once more, with a window of its own.
		s.asked, s.opened = true, time.Time{}
		s.prompts, s.until = []string{cf.Prompt}, time.Now().Add(screenGuard)
		t.leg.log.WithField("phase", "confirm-asked-again").Info("transfer: the event path changed while the far end could confirm; asking again")
		if err := s.play(ctx, t); err != nil {
			return t.notConfirmed(ctx, "screen-failed")
		}
		return s, nil
	}
	s.done(t)
	return t.notConfirmed(ctx, "not-confirmed")
}

func (s *screening) onEvent(ctx context.Context, t *Transfer, ev ari.Event) (state, error) {
	cf := t.plan.Options.Confirm
	switch e := ev.(type) {
	case *ari.PlaybackFinished:
		if e.Playback.ID != s.playing {
			break
		}
		t.call.Disown(s.playing)
		s.playing = ""
		if len(s.prompts) > 0 {
			if err := s.play(ctx, t); err != nil {
				return t.notConfirmed(ctx, "screen-failed")
			}
			break
		}
		if cf == nil {
			return t.bridge(ctx) // whisper only
		}
		s.opened = time.Now()
		s.until = s.opened.Add(cf.Timeout)
	case *ari.ChannelDtmfReceived:
		if cf != nil && e.Channel.ID == t.leg.id && e.Digit == cf.Key {
			if s.playing != "" {
				_ = t.env.ARI.StopPlayback(context.WithoutCancel(ctx), s.playing)
			}
			s.done(t)
			t.leg.log.WithField("phase", "confirmed").Info("transfer")
			return t.bridge(ctx)
		}
	}
	return s, nil
}

// screen enters screening when the block has a whisper or a
// confirmation, else bridges at once.
func (t *Transfer) screen(ctx context.Context) (state, error) {
	o := t.plan.Options
	if o.Whisper == "" && o.Confirm == nil {
		return t.bridge(ctx)
	}
	s := &screening{until: time.Now().Add(screenGuard)}
	if o.Whisper != "" {
		s.prompts = append(s.prompts, o.Whisper)
	}
	if o.Confirm != nil {
		s.prompts = append(s.prompts, o.Confirm.Prompt)
	}
	if err := s.play(ctx, t); err != nil {
		t.leg.log.WithError(err).WithField("phase", "screen-failed").Warn("transfer")
		return t.notConfirmed(ctx, "screen-failed")
	}
	t.leg.log.WithField("phase", "screening").Info("transfer")
	t.entered(record.StateScreening)
	return s, nil
}

// play starts the next prompt on the leg.
func (s *screening) play(ctx context.Context, t *Transfer) error {
	s.playing = t.env.NewID("screen")
	t.call.Own(s.playing)
	err := t.env.ARI.Play(ctx, t.leg.id, s.playing, s.prompts[0])
	s.prompts = s.prompts[1:]
	if err != nil {
		s.done(t)
	}
	return err
}

// done forgets the playback under way.
func (s *screening) done(t *Transfer) {
	if s.playing != "" {
		t.call.Disown(s.playing)
		s.playing = ""
	}
}

// notConfirmed ends a screened leg as not answered: the far end is hung
// up, and the list goes on.
func (t *Transfer) notConfirmed(ctx context.Context, phase string) (state, error) {
	t.leg.log.WithField("phase", phase).Info("transfer")
	t.res.Outcome = OutcomeTimeout
	t.hangupLeg(ctx)
	return t.next(ctx)
}
