package controller

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/ariflow/ariflow/flows"
	"github.com/ariflow/ariflow/internal/ari"
)

// legOptions are a transfer's options beyond Amazon Connect's, resolved
// and validated: everything in them is safe to hand to Asterisk.
type legOptions struct {
	tone, gap  time.Duration // DTMF cadence
	returnKey  string        // keys that end the far end and bring the caller back
	maxTalk    time.Duration // bridged time before the far end is hung up (0: none)
	warning    string        // media played to the caller warnBefore the limit
	warnBefore time.Duration
	headers    []sipHeader // X- headers on the INVITE
	whisper    string      // media for the far end before the bridge
	confirm    *confirm
	ringback   flows.Ringback // "" is ring
	mohClass   string
	eventsURL  string // leg events ("": none)
}

// confirm is a resolved flows.Confirm.
type confirm struct {
	prompt  string
	key     string
	timeout time.Duration
}

type sipHeader struct{ name, value string }

// target is one number of a block's list, with its ring timeout.
type target struct {
	number, dial string
	timeout      time.Duration
}

// The default DTMF cadence (a block's dtmf_tone and dtmf_gap) and the
// comma's pause.
const (
	dtmfTone  = flows.DefaultDTMFTone * time.Millisecond
	dtmfGap   = flows.DefaultDTMFGap * time.Millisecond
	dtmfPause = flows.PauseComma * time.Millisecond
)

// returnKeyHold is how long a key that begins the return key (the first
// '*' of "**") is held back before it is passed on to the far end after
// all.
const returnKeyHold = 2 * time.Second

// TransferOptions are the options a process taking a bridged transfer
// over needs to carry it on (the rest were used before the answer).
type TransferOptions struct {
	Whisper       string `json:"whisper,omitempty"`
	ConfirmPrompt string `json:"confirm_prompt,omitempty"`
	ConfirmKey    string `json:"confirm_key,omitempty"`
	ConfirmS      int    `json:"confirm_s,omitempty"`
	ToneMs        int    `json:"tone_ms,omitempty"`
	GapMs         int    `json:"gap_ms,omitempty"`
	ReturnKey     string `json:"return_key,omitempty"`
	MaxTalkS      int    `json:"max_talk_s,omitempty"`
	Warning       string `json:"warning,omitempty"`
	WarnBeforeS   int    `json:"warn_before_s,omitempty"`
	WarningPlayed bool   `json:"warning_played,omitempty"`
	// Ringback early-media says the leg was created in Stasis and bridged
	// before it was dialled: its answer is a ChannelStateChange to Up, and
	// it is in the bridge already.
	Ringback  string `json:"ringback,omitempty"`
	MOHClass  string `json:"moh_class,omitempty"`
	EventsURL string `json:"events_url,omitempty"`
}

func (o legOptions) state() *TransferOptions {
	s := &TransferOptions{
		ToneMs: int(o.tone / time.Millisecond), GapMs: int(o.gap / time.Millisecond), ReturnKey: o.returnKey,
		MaxTalkS: int(o.maxTalk / time.Second), Warning: o.warning, WarnBeforeS: int(o.warnBefore / time.Second),
		Whisper: o.whisper, MOHClass: o.mohClass, EventsURL: o.eventsURL,
	}
	if o.ringback != flows.RingbackRing {
		s.Ringback = string(o.ringback)
	}
	if o.confirm != nil {
		s.ConfirmPrompt, s.ConfirmKey, s.ConfirmS = o.confirm.prompt, o.confirm.key, int(o.confirm.timeout/time.Second)
	}
	if *s == (TransferOptions{}) {
		return nil
	}
	return s
}

// leg rebuilds the leg of a transfer from its record, for a process that
// takes the call over.
func (ts *TransferState) leg() leg {
	l := leg{number: ts.Number, digits: ts.Digits, resume: ts.Resume, agent: ts.Agent, timeout: time.Until(ts.RingDeadline), attempt: ts.Attempt}
	if o := ts.Options; o != nil {
		l.tone, l.gap = time.Duration(o.ToneMs)*time.Millisecond, time.Duration(o.GapMs)*time.Millisecond
		l.returnKey, l.warning = o.ReturnKey, o.Warning
		l.maxTalk, l.warnBefore = time.Duration(o.MaxTalkS)*time.Second, time.Duration(o.WarnBeforeS)*time.Second
		l.whisper = o.Whisper
		l.ringback, l.mohClass, l.eventsURL = flows.Ringback(o.Ringback), o.MOHClass, o.EventsURL
		if o.ConfirmPrompt != "" {
			l.confirm = &confirm{prompt: o.ConfirmPrompt, key: o.ConfirmKey, timeout: time.Duration(o.ConfirmS) * time.Second}
		}
	}
	return l
}

// resolveTargets resolves and checks every number of the block, with its
// ring timeout.
func (c *call) resolveTargets(t *flows.TransferToPhoneNumber) ([]target, error) {
	nums := t.Numbers()
	out := make([]target, 0, len(nums))
	for i, v := range nums {
		what := "number"
		if len(nums) > 1 {
			what = fmt.Sprintf("number %d", i+1)
		}
		raw, err := flows.Resolve(v, c.rec.Attributes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		number, err := c.checked(v, raw, c.normalizeNumber)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		tv := t.Timeout
		if i < len(t.Timeouts) {
			tv = t.Timeouts[i]
		}
		timeout, err := c.ringTimeout(tv)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, target{number: number, dial: dialString(c.app.cfg.DialTemplate, number), timeout: timeout})
	}
	return out, nil
}

// resolveOptions resolves the options beyond Connect's into o.
func (c *call) resolveOptions(t *flows.TransferToPhoneNumber, o *legOptions) error {
	attrs := c.rec.Attributes
	str := func(name string, v flows.Value, check func(string) (string, error)) (string, error) {
		if v.IsZero() {
			return "", nil
		}
		s, err := flows.Resolve(v, attrs)
		if err != nil {
			return "", fmt.Errorf("%s: %w", name, err)
		}
		if s, err = c.checked(v, s, check); err != nil {
			return "", fmt.Errorf("%s: %w", name, err)
		}
		return s, nil
	}
	number := func(def, min, max int, parse func(string, int, int, int) (int, error)) func(string) (string, error) {
		return func(s string) (string, error) {
			n, err := parse(s, def, min, max)
			return strconv.Itoa(n), err
		}
	}
	num := func(name string, v flows.Value, def, min, max int, parse func(string, int, int, int) (int, error)) (int, error) {
		s, err := str(name, v, number(def, min, max, parse))
		if err != nil || s == "" {
			return def, err
		}
		return strconv.Atoi(s)
	}
	tone, err := num("dtmf_tone", t.DTMFTone, flows.DefaultDTMFTone, flows.MinDTMFTone, flows.MaxDTMFTone, flows.ParseMillis)
	if err != nil {
		return err
	}
	gap, err := num("dtmf_gap", t.DTMFGap, flows.DefaultDTMFGap, flows.MinDTMFGap, flows.MaxDTMFGap, flows.ParseMillis)
	if err != nil {
		return err
	}
	o.tone, o.gap = time.Duration(tone)*time.Millisecond, time.Duration(gap)*time.Millisecond
	if o.returnKey, err = str("return_key", t.ReturnKey, flows.ParseReturnKey); err != nil {
		return err
	}
	talk, err := num("max_talk", t.MaxTalk, 0, 1, flows.MaxTalkSeconds, flows.ParseTimeoutSeconds)
	if err != nil {
		return err
	}
	o.maxTalk = time.Duration(talk) * time.Second
	if o.warning, err = str("warning", t.Warning, func(s string) (string, error) { return s, flows.ValidateMediaURIValue(s) }); err != nil {
		return err
	}
	lead, err := num("warning_before", t.WarningBefore, flows.DefaultWarning, 1, flows.MaxWarningBefore, flows.ParseTimeoutSeconds)
	if err != nil {
		return err
	}
	if o.warning != "" {
		if lead >= talk {
			return fmt.Errorf("warning_before: %d s is not less than max_talk %d s", lead, talk)
		}
		o.warnBefore = time.Duration(lead) * time.Second
	}
	mediaValue := func(s string) (string, error) { return s, flows.ValidateMediaURIValue(s) }
	if o.whisper, err = str("whisper", t.Whisper, mediaValue); err != nil {
		return err
	}
	if cf := t.Confirm; cf != nil {
		prompt, err := str("confirm: prompt", cf.Prompt, mediaValue)
		if err != nil {
			return err
		}
		o.confirm = &confirm{prompt: prompt, key: cf.Key, timeout: time.Duration(cf.Timeout) * time.Second}
	}
	o.ringback, o.mohClass, o.eventsURL = t.Ringback, t.MOHClass, t.EventsURL
	for _, h := range t.Headers {
		v, err := str("headers: "+h.Name, h.Value, func(s string) (string, error) { return s, flows.ValidateHeaderValue(s) })
		if err != nil {
			return err
		}
		o.headers = append(o.headers, sipHeader{name: h.Name, value: v})
	}
	return nil
}

// dialTargets tries the block's numbers in order until one answers; each
// leg asks the dial-out policy first. A number that was busy, failed, not
// answered or refused by the policy passes to the next; the outcome of a
// block where none answered is the last attempt's.
func (c *call) dialTargets(ctx context.Context, l leg, targets []target, from int) (TransferResult, error) {
	var res TransferResult
	var err error
	defer func() { c.rec.ListNext = 0 }() // the block is done with its list
	for i := from; i < len(targets); i++ {
		tg := targets[i]
		l.number, l.dial, l.timeout, l.attempt = tg.number, tg.dial, tg.timeout, i+1
		res, err = c.dialChecked(ctx, l)
		res.Attempts = i + 1
		if err != nil || i == len(targets)-1 || !tryNextNumber(res.Outcome) {
			break
		}
		c.log.WithFields(logrus.Fields{"step": c.rec.Block, "number": tg.number, "outcome": res.Outcome,
			"next": targets[i+1].number, "attempt": i + 1}).Info("transfer: trying the next number")
		// Back to the flow phase between two legs (a phase means one leg),
		// saying where the list goes on: a process taking over here rings
		// the next number, not the first again.
		c.rec.ListNext = i + 1
		if err := c.setPhase(ctx, PhaseFlow, true); err != nil {
			res.Outcome = OutcomeError
			return res, nil
		}
	}
	return res, err
}

// tryNextNumber tells whether a list of numbers goes on after a number
// that ended so: not answered, or refused by the dial policy.
func tryNextNumber(o Outcome) bool {
	return o == OutcomeCallFailed || o == OutcomeTimeout || o == OutcomeDenied
}

// talkState is what a bridged transfer keeps beside its digits: the
// deadlines of the time limit and its warning, and a prefix of the return
// key held back from the far end.
type talkState struct {
	digitAt time.Time // when the next DTMF character is due
	limitAt time.Time // max_talk
	warnAt  time.Time
	warned  bool
	warnID  string
	held    string // keys that may begin the return key, not yet passed on
	heldAt  time.Time
}

// startTalk sets the deadlines once bridged (or taken over bridged).
func (t *transfer) startTalk(dtmfDelay time.Duration) {
	if t.leg.tone <= 0 {
		t.leg.tone = dtmfTone
	}
	if t.leg.gap <= 0 {
		t.leg.gap = dtmfGap
	}
	now := time.Now()
	if t.res.Answered.IsZero() {
		t.res.Answered = t.answered // taken over bridged
	}
	if t.done < len(t.leg.digits) {
		if t.done > 0 {
			dtmfDelay = 0 // taken over mid-way: the far end is listening already
		}
		t.digitAt = now.Add(dtmfDelay)
	}
	if t.leg.maxTalk > 0 {
		from := t.answered
		if from.IsZero() {
			from = now
		}
		t.limitAt = from.Add(t.leg.maxTalk)
		if t.leg.warning != "" {
			t.warnAt = t.limitAt.Add(-t.leg.warnBefore)
			if o := t.c.rec.Transfer; o != nil && o.Options != nil && o.Options.WarningPlayed {
				t.warned = true
			}
		}
	}
}

// nextWake is the earliest deadline pending.
func (t *transfer) nextWake() (time.Time, bool) {
	var at time.Time
	take := func(d time.Time) {
		if !d.IsZero() && (at.IsZero() || d.Before(at)) {
			at = d
		}
	}
	if t.done < len(t.leg.digits) {
		take(t.digitAt)
	}
	if !t.warned {
		take(t.warnAt)
	}
	take(t.limitAt)
	if t.held != "" {
		take(t.heldAt)
	}
	return at, !at.IsZero()
}

// due does what is due now; ended says the time limit was reached.
func (t *transfer) due(ctx context.Context) (ended bool, by string) {
	now := time.Now()
	if !t.limitAt.IsZero() && !now.Before(t.limitAt) {
		return true, flows.EndedByTimeLimit
	}
	if t.done < len(t.leg.digits) && !now.Before(t.digitAt) {
		t.sendNextDigit(ctx)
	}
	if !t.warned && !t.warnAt.IsZero() && !now.Before(t.warnAt) {
		t.playWarning(ctx)
	}
	if t.held != "" && !now.Before(t.heldAt) {
		t.forward(ctx, t.held, 0)
		t.held = ""
	}
	return false, ""
}

// playWarning plays the warning to the caller alone: a playback on the
// caller's channel while it is in the bridge is heard by that channel
// only (a playback on the bridge would reach the far end too).
func (t *transfer) playWarning(ctx context.Context) {
	c := t.c
	t.warned = true
	t.warnID = c.app.resourceID("warn")
	c.own(t.warnID)
	if err := c.app.ari.Play(ctx, c.id, t.warnID, t.leg.warning); err != nil {
		t.log.WithError(err).WithField("phase", "warning-failed").Warn("transfer")
		c.disown(t.warnID)
		t.warnID = ""
		return
	}
	t.log.WithFields(logrus.Fields{"phase": "warning", "left": time.Until(t.limitAt).Round(time.Millisecond)}).Info("transfer")
	if ts := c.rec.Transfer; ts != nil && ts.Options != nil {
		ts.Options.WarningPlayed = true
		if err := c.save(ctx); err != nil {
			t.log.WithError(err).Warn("saving the warning's progress failed")
		}
	}
}

// stopWarning stops a warning still playing when the transfer ends, so
// that the caller's next prompt is not queued behind it.
func (t *transfer) stopWarning(ctx context.Context) {
	if t.warnID == "" {
		return
	}
	_ = t.c.app.ari.StopPlayback(context.WithoutCancel(ctx), t.warnID)
	t.c.disown(t.warnID)
	t.warnID = ""
}

// callerKey handles a key the caller pressed while bridged, when the
// block has a return key (the bridge absorbs the caller's keys then): it
// tells whether the return key is complete, and passes on to the far end
// every key that cannot be part of it. A key that may begin the return
// key is held until the next key, or returnKeyHold, shows it does not.
func (t *transfer) callerKey(ctx context.Context, digit string, durMs int) bool {
	key := t.leg.returnKey
	if key == "" || digit == "" {
		return false
	}
	fwd, held, matched := matchReturnKey(key, t.held, digit)
	if fwd != "" {
		t.forward(ctx, fwd, durMs)
	}
	t.held = held
	if held != "" {
		t.heldAt = time.Now().Add(returnKeyHold)
	}
	return matched
}

// matchReturnKey adds a key to those held back: it returns the keys to pass
// on to the far end (those that can no longer begin the return key), the
// keys still held (a beginning of the return key), and whether the return
// key is complete.
func matchReturnKey(key, held, digit string) (forward, stillHeld string, matched bool) {
	cand := held + digit
	i := 0
	for i < len(cand) && !strings.HasPrefix(key, cand[i:]) {
		i++
	}
	if cand[i:] == key {
		return cand[:i], "", true
	}
	return cand[:i], cand[i:], false
}

// forward passes caller keys on to the far end, as long as the caller
// pressed them (within the DTMF tone bounds).
func (t *transfer) forward(ctx context.Context, keys string, durMs int) {
	tone := time.Duration(durMs) * time.Millisecond
	tone = min(max(tone, flows.MinDTMFTone*time.Millisecond), flows.MaxDTMFTone*time.Millisecond)
	if durMs == 0 {
		tone = t.leg.tone
	}
	if err := t.c.app.ari.SendDTMF(ctx, t.c.rec.Outbound, keys, t.leg.gap, tone); err != nil {
		t.log.WithError(err).WithField("phase", "forward-failed").Warn("transfer")
	}
}

// addToBridge bridges caller and far end. With a return key the caller's
// keys are absorbed by the bridge (ARI's absorbDTMF), so that the far end
// never hears the return key; ariflow passes the other keys on itself.
func (t *transfer) addToBridge(ctx context.Context) error {
	if t.leg.ringback == flows.RingbackEarlyMedia {
		if !t.adopted {
			return nil // bridged before it was dialled
		}
		// Taken over: bridged already, unless the last process stopped
		// between create and bridge.
		if err := t.joinBridge(ctx); err != nil && ari.StatusCode(err) != 409 && ari.StatusCode(err) != 422 {
			return err
		}
		return nil
	}
	return t.joinBridge(ctx)
}

// joinBridge adds caller and leg to the bridge. Both join without a
// connected-line update, so that the identity the block presents holds
// for the whole call whatever the trunk's send_connected_line: the far
// end is never shown the caller, nor the caller the far end. Asterisk
// exchanges identities on the join that completes the bridge, and which
// join that is is not ours to fix: both carry the flag.
func (t *transfer) joinBridge(ctx context.Context) error {
	c := t.c
	join := ari.BridgeJoin{InhibitConnectedLine: true}
	if t.leg.returnKey == "" {
		return c.app.ari.AddToBridgeWith(ctx, c.rec.Bridge, join, c.id, c.rec.Outbound)
	}
	if err := c.app.ari.AddToBridgeWith(ctx, c.rec.Bridge, ari.BridgeJoin{AbsorbDTMF: true, InhibitConnectedLine: true}, c.id); err != nil {
		return err
	}
	return c.app.ari.AddToBridgeWith(ctx, c.rec.Bridge, join, c.rec.Outbound)
}

// endByUs ends an answered transfer that ariflow ends: the caller's
// return key or the time limit. The far end is hung up; the caller
// resumes at Success (resume on) or is hung up too (resume off).
func (t *transfer) endByUs(ctx context.Context, by string) error {
	c := t.c
	t.res.TalkTime, t.res.Digits, t.res.EndedBy = t.talkTime(), t.sent(), by
	t.res.Cause = CauseNormalClearing
	t.log.WithFields(logrus.Fields{"phase": by, "talk_time": t.res.TalkTime.Round(time.Millisecond)}).Info("transfer")
	c.dropLeg(ctx)
	if !t.leg.resume {
		_ = c.app.ari.Hangup(context.WithoutCancel(ctx), c.id, "normal")
		return errHandedOff
	}
	t.log.WithField("phase", "resumed").Info("transfer")
	return nil
}

// screenGuard bounds the wait for a whisper or confirmation prompt to end,
// should its PlaybackFinished be lost.
const screenGuard = 2 * time.Minute

// screen plays the whisper and asks for the confirmation, to the far end
// alone: it is answered and in Stasis, not yet bridged, and the caller
// still hears ringback. It tells whether the far end may be bridged; a
// far end that does not confirm in time (a voicemail box) or hangs up
// meanwhile ends as not answered (Timeout) and is hung up.
func (t *transfer) screen(ctx context.Context) (bool, error) {
	c := t.c
	cf := t.leg.confirm
	if t.leg.whisper == "" && cf == nil {
		return true, nil
	}
	var prompts []string
	if t.leg.whisper != "" {
		prompts = append(prompts, t.leg.whisper)
	}
	if cf != nil {
		prompts = append(prompts, cf.prompt)
	}
	notConfirmed := func(phase string) (bool, error) {
		t.log.WithField("phase", phase).Info("transfer")
		t.res.Outcome = OutcomeTimeout
		c.dropLeg(ctx)
		return false, nil
	}
	playing := ""
	play := func() error {
		playing = c.app.resourceID("screen")
		c.own(playing)
		err := c.app.ari.Play(ctx, c.rec.Outbound, playing, prompts[0])
		prompts = prompts[1:]
		return err
	}
	if err := play(); err != nil {
		t.log.WithError(err).WithField("phase", "screen-failed").Warn("transfer")
		return notConfirmed("screen-failed")
	}
	t.log.WithField("phase", "screening").Info("transfer")
	timer := time.NewTimer(screenGuard)
	defer timer.Stop()
	for {
		ev, err := c.next(ctx, timer.C)
		switch {
		case errors.Is(err, errTimeout):
			return notConfirmed("not-confirmed")
		case errors.Is(err, ErrCallerGone):
			t.log.WithField("phase", "caller-hangup-screening").Info("transfer")
			t.res.Outcome = OutcomeCallFailed
			c.dropLeg(ctx)
			return false, ErrCallerGone
		case err != nil:
			return false, err
		}
		switch e := ev.(type) {
		case *ari.PlaybackFinished:
			if e.Playback.ID != playing {
				continue
			}
			c.disown(playing)
			if len(prompts) > 0 {
				if err := play(); err != nil {
					return notConfirmed("screen-failed")
				}
				continue
			}
			if cf == nil {
				return true, nil // whisper only
			}
			timer.Reset(cf.timeout)
		case *ari.ChannelDtmfReceived:
			if cf != nil && e.Channel.ID == c.rec.Outbound && e.Digit == cf.key {
				if playing != "" {
					_ = c.app.ari.StopPlayback(context.WithoutCancel(ctx), playing)
				}
				t.log.WithField("phase", "confirmed").Info("transfer")
				return true, nil
			}
		default:
			if _, gone := legGone(ev, c.rec.Outbound); gone {
				c.forgetLeg()
				return notConfirmed("far-end-hangup-screening")
			}
		}
	}
}
