package transfer

import (
	"context"
	"time"

	"github.com/sirupsen/logrus"

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
	prompts []string  // still to play
	playing string    // the playback under way
	played  time.Time // when it began (given up screenGuard later)
	looked  time.Time // the event path whose start the playback was looked up for
	unsure  bool      // its request got no answer: it may or may not play
	until   time.Time
	askedAt time.Time // when the confirmation prompt began: keys count from then
	opened  time.Time // when the confirmation window opened
	closed  time.Time // when it closed (its deadline), once passed
	asked   bool      // the confirmation was asked again after a gap
	pinged  bool      // the event path was pinged as the window closed
}

func (s *screening) name() record.TransferState     { return record.StateScreening }
func (s *screening) deadline(t *Transfer) time.Time { return s.until }

func (s *screening) onDeadline(ctx context.Context, t *Transfer) (state, error) {
	cf := t.plan.Options.Confirm
	if s.playing != "" {
		return s.promptDue(ctx, t)
	}
	if cf == nil || s.opened.IsZero() {
		s.done(t)
		return t.notConfirmed(ctx, "not-confirmed")
	}
	if s.closed.IsZero() {
		s.closed = s.until
	}
	now := time.Now()
	if !t.pathHeardSince(s.closed) && now.Sub(s.closed) < pathSilenceBound {
		// Nothing came by the event path since the window closed: it may
		// be stalled with the far end's key in it. Looked at again until
		// the path shows life (every event before the close delivered) or
		// begins anew (asked again below).
		if !s.pinged {
			s.pinged = true
			t.pingPath()
			t.leg.log.WithField("phase", "confirm-wait").Info("transfer: the confirmation window closed while the event path was silent; waiting for it")
		}
		s.until = now.Add(pathRecheck)
		return s, nil
	}
	if !s.asked && t.pathSince().After(s.askedAt) {
		// The event path began anew since the far end was asked: a key it
		// pressed may be lost with the last websocket. It is asked once
		// more, with a window of its own.
		s.asked, s.opened, s.closed, s.pinged = true, time.Time{}, time.Time{}, false
		s.prompts = []string{cf.Prompt}
		t.leg.log.WithField("phase", "confirm-asked-again").Info("transfer: the event path changed while the far end could confirm; asking again")
		if err := s.play(ctx, t); err != nil {
			return t.notConfirmed(ctx, "screen-failed")
		}
		return s, nil
	}
	s.done(t)
	return t.notConfirmed(ctx, "not-confirmed")
}

// pathSilenceBound bounds the wait for a silent event path once a
// confirmation window has closed: the controller gives up a silent
// websocket and makes a new one well within it.
const pathSilenceBound = 15 * time.Second

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
	s := &screening{}
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

// promptCheck is how often a prompt under way looks whether the event
// path began anew since it started: its PlaybackFinished may have gone
// with the last websocket.
const promptCheck = time.Second

// promptDue looks after a prompt under way: once the event path has begun
// anew since it started, or when its request got no answer, Asterisk is
// asked whether it still plays (one that ended unseen, or never began, is
// taken as finished); one still playing at the guard is given up.
func (s *screening) promptDue(ctx context.Context, t *Transfer) (state, error) {
	now := time.Now()
	if !now.Before(s.played.Add(screenGuard)) {
		s.done(t)
		return t.notConfirmed(ctx, "not-confirmed")
	}
	if since := t.pathSince(); s.unsure || since.After(s.played) && !since.Equal(s.looked) {
		ok, err := t.env.ARI.PlaybackExists(ctx, s.playing)
		if err == nil {
			// Answered: looked again only on the next path. Unanswered:
			// at the next look.
			s.looked, s.unsure = since, false
		}
		if err == nil && !ok {
			t.leg.log.WithFields(logrus.Fields{"phase": "prompt-ended-unseen", "playback": s.playing}).Info("transfer: the far end's prompt ended while the event path was away")
			return s.onEvent(ctx, t, &ari.PlaybackFinished{Playback: ari.PlaybackData{ID: s.playing, State: "done"}})
		}
	}
	s.until = s.nextLook(now)
	return s, nil
}

// nextLook is when a prompt under way is next looked after.
func (s *screening) nextLook(now time.Time) time.Time {
	guard := s.played.Add(screenGuard)
	if next := now.Add(promptCheck); next.Before(guard) {
		return next
	}
	return guard
}

// play starts the next prompt on the leg.
func (s *screening) play(ctx context.Context, t *Transfer) error {
	s.playing = t.env.NewID("screen")
	s.played = time.Now()
	if len(s.prompts) == 1 && t.plan.Options.Confirm != nil {
		s.askedAt = s.played
	}
	s.until = s.nextLook(s.played)
	t.call.Own(s.playing)
	err := t.env.ARI.Play(ctx, t.leg.id, s.playing, s.prompts[0])
	s.prompts = s.prompts[1:]
	switch {
	case unanswered(ctx, err):
		// It may be playing (its PlaybackFinished to come) or not: it is
		// looked up at the next look (promptDue).
		s.unsure = true
		t.leg.log.WithError(err).WithFields(logrus.Fields{"phase": "prompt-unanswered", "playback": s.playing}).Warn("transfer: the far end's prompt got no answer; looking it up")
		return nil
	case err != nil:
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
