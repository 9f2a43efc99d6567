package controller

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ariflow/ariflow/internal/ari"
	"github.com/sirupsen/logrus"

	"github.com/ariflow/ariflow/flows"
)

// leg is a validated outbound leg: everything in it is safe to hand to
// Asterisk.
type leg struct {
	dial    string // dial string from the trunk template
	number  string // E.164, or the endpoint for agents
	timeout time.Duration
	digits  string // validated DTMF to send after answer; ',' is a pause
	cidNum  string
	cidName string
	resume  bool
}

// TransferResult is what the contact's Transfer attributes record.
type TransferResult struct {
	Outcome  Outcome
	Cause    int
	Number   string
	RingTime time.Duration
	TalkTime time.Duration
	Digits   string
}

// Transfer timeouts, in seconds (SPEC §2).
const (
	defaultTransferTimeout = 30
	maxTransferTimeout     = 600
)

func (c *call) transferToPhone(ctx context.Context, t *flows.TransferToPhoneNumber) (string, error) {
	l, err := c.resolveLeg(t)
	if err != nil {
		c.log.WithError(err).WithField("phase", "invalid").Warn("transfer settings invalid; nothing dialled")
		c.recordTransfer(TransferResult{Outcome: OutcomeError})
		c.app.metrics.Transfers.WithLabelValues(string(OutcomeError)).Inc()
		return flows.BranchError, nil
	}
	res, err := c.connect(ctx, l)
	c.recordTransfer(res)
	c.app.metrics.Transfers.WithLabelValues(string(res.Outcome)).Inc()
	if err != nil {
		return "", err
	}
	return res.Outcome.Branch(), nil
}

// resolveLeg turns the block's settings into a leg; any value that is not
// what it should be is an error and nothing is dialled.
func (c *call) resolveLeg(t *flows.TransferToPhoneNumber) (leg, error) {
	attrs := c.rec.Attributes
	raw, err := flows.Resolve(t.Number, attrs)
	if err != nil {
		return leg{}, fmt.Errorf("number: %w", err)
	}
	number, err := c.checked(t.Number, raw, c.normalizeNumber)
	if err != nil {
		return leg{}, fmt.Errorf("number: %w", err)
	}
	l := leg{number: number, dial: dialString(c.app.cfg.DialTemplate, number), resume: t.Resume}
	if l.timeout, err = c.ringTimeout(t.Timeout); err != nil {
		return leg{}, err
	}
	if !t.DTMF.IsZero() {
		s, err := flows.Resolve(t.DTMF, attrs)
		if err != nil {
			return leg{}, fmt.Errorf("dtmf: %w", err)
		}
		if l.digits, err = c.checked(t.DTMF, s, flows.ParseDTMF); err != nil {
			return leg{}, fmt.Errorf("dtmf: %w", err)
		}
	}
	if !t.CallerIDNumber.IsZero() {
		s, err := flows.Resolve(t.CallerIDNumber, attrs)
		if err != nil {
			return leg{}, fmt.Errorf("caller_id_number: %w", err)
		}
		if l.cidNum, err = c.checked(t.CallerIDNumber, s, c.normalizeNumber); err != nil {
			return leg{}, fmt.Errorf("caller_id_number: %w", err)
		}
	}
	if !t.CallerIDName.IsZero() {
		s, err := flows.Resolve(t.CallerIDName, attrs)
		if err != nil {
			return leg{}, fmt.Errorf("caller_id_name: %w", err)
		}
		if err := flows.ValidateCallerName(s); err != nil {
			return leg{}, fmt.Errorf("caller_id_name: %w", err)
		}
		l.cidName = s
	}
	return l, nil
}

// checked validates a value that came from an attribute. Literals were
// validated and normalised when the flow was loaded, so they are used as
// they are; checking them again per call is measurable CPU under load.
func (c *call) checked(v flows.Value, raw string, check func(string) (string, error)) (string, error) {
	if v.Ref == nil {
		return raw, nil
	}
	return check(raw)
}

func (c *call) normalizeNumber(raw string) (string, error) {
	return flows.NormalizeNumber(raw, c.app.cfg.DefaultRegion)
}

// ringTimeout resolves a block's ring timeout: whole seconds, 1 to 600,
// 30 when left out.
func (c *call) ringTimeout(v flows.Value) (time.Duration, error) {
	secs := defaultTransferTimeout
	if !v.IsZero() {
		s, err := flows.Resolve(v, c.rec.Attributes)
		if err != nil {
			return 0, fmt.Errorf("timeout: %w", err)
		}
		if secs, err = flows.ParseTimeoutSeconds(s, defaultTransferTimeout, 1, maxTransferTimeout); err != nil {
			return 0, fmt.Errorf("timeout: %w", err)
		}
	}
	return time.Duration(secs) * time.Second, nil
}

// dialString fills the trunk template; number is already validated.
func dialString(template, number string) string {
	return strings.ReplaceAll(template, "{number}", number)
}

func (c *call) recordTransfer(r TransferResult) {
	set := func(k, v string) { c.rec.Attributes.Set(flows.NSTransfer, k, v) }
	set(flows.TrStatus, string(r.Outcome))
	set(flows.TrCause, strconv.Itoa(r.Cause))
	set(flows.TrCauseText, CauseText(r.Cause))
	set(flows.TrRingTime, strconv.FormatFloat(r.RingTime.Seconds(), 'f', 3, 64))
	set(flows.TrTalkTime, strconv.FormatFloat(r.TalkTime.Seconds(), 'f', 3, 64))
	set(flows.TrDigitsSent, r.Digits)
	set(flows.TrNumber, r.Number)
}

// connect dials l, bridges it with the caller once answered, sends the
// digits, and returns when the far end hangs up (resume) or when either
// side does (no resume, errHandedOff). A caller hangup ends it with
// ErrCallerGone; finish then hangs up the leg and destroys the bridge.
func (c *call) connect(ctx context.Context, l leg) (TransferResult, error) {
	res := TransferResult{Number: l.number}
	c.rec.Phase, c.rec.Outbound, c.rec.Bridge = PhaseDialing, newID("ariflow-leg"), newID("ariflow-br")
	if err := c.save(ctx); err != nil {
		res.Outcome = OutcomeError
		c.rec.Outbound, c.rec.Bridge = "", ""
		return res, nil
	}
	c.app.register(c, c.rec.Outbound, c.rec.Bridge)
	plog := c.log.WithFields(logrus.Fields{"step": c.rec.Block, "number": l.number, "outbound": c.rec.Outbound})
	plog.WithFields(logrus.Fields{"phase": "dialing", "timeout": l.timeout}).Info("transfer")
	if err := c.dialLeg(ctx, l); err != nil {
		c.dropLeg(ctx)
		if errors.Is(err, ErrCallerGone) {
			plog.WithField("phase", "caller-hangup-dialing").Info("transfer")
			res.Outcome = OutcomeCallFailed
			return res, err
		}
		plog.WithError(err).WithField("phase", "dial-failed").Warn("transfer")
		res.Outcome = OutcomeError
		return res, nil
	}
	return c.awaitAnswer(ctx, l, res, time.Now(), plog)
}

// dialLeg creates the bridge and originates the outbound leg into our
// app. One request starts the far end ringing: the leg enters Stasis only
// once answered (its StasisStart is the answer), and its Dial and
// ChannelDestroyed events reach us before that because the app is
// subscribed to it. The bridge is created alongside, and the caller's
// ringback is sent without waiting.
func (c *call) dialLeg(ctx context.Context, l leg) error {
	a := c.app
	bridgeDone := make(chan error, 1)
	go func() {
		bridgeDone <- a.ari.CreateBridge(ctx, c.rec.Bridge, "ariflow-"+c.id)
	}()
	// The far end sees the leg's connected line as From and
	// P-Asserted-Identity: set it here rather than let it be copied from
	// the caller. Name and number are validated; neither holds a quote.
	req := ari.OriginateRequest{
		Endpoint: l.dial, App: a.cfg.App, AppArgs: legArg + "," + c.id,
		ChannelID: c.rec.Outbound, Originator: c.id, Timeout: int(l.timeout / time.Second),
		Variables: map[string]string{},
	}
	if l.cidNum != "" || l.cidName != "" {
		req.CallerID = fmt.Sprintf("\"%s\" <%s>", l.cidName, l.cidNum)
	}
	if l.cidNum != "" {
		req.Variables["CONNECTEDLINE(num,i)"] = l.cidNum
	}
	if l.cidName != "" {
		req.Variables["CONNECTEDLINE(name,i)"] = l.cidName
	}
	err := a.ari.Originate(ctx, req)
	if berr := <-bridgeDone; err == nil {
		err = berr
	}
	if err != nil {
		return err
	}
	go func() {
		_ = a.ari.Ring(context.WithoutCancel(ctx), c.id)
	}()
	return nil
}

// forgetLeg stops tracking an outbound leg that is hanging up by itself,
// so that dropLeg does not ask Asterisk to hang it up again.
func (c *call) forgetLeg() {
	c.app.unregister(c.rec.Outbound)
	c.rec.Outbound = ""
}

// dropLeg hangs up the outbound leg and destroys the bridge, and forgets
// both once Asterisk has.
func (c *call) dropLeg(ctx context.Context) {
	bg := context.WithoutCancel(ctx)
	if c.rec.Outbound != "" {
		if err := c.app.ari.Hangup(bg, c.rec.Outbound, "normal"); err != nil {
			c.log.WithError(err).Warn("outbound hangup failed")
			return
		}
	}
	if c.rec.Bridge != "" {
		if err := c.app.ari.DestroyBridge(bg, c.rec.Bridge); err != nil {
			c.log.WithError(err).Warn("bridge destroy failed")
			return
		}
	}
	c.app.unregister(c.rec.Outbound, c.rec.Bridge)
	c.rec.Outbound, c.rec.Bridge = "", ""
}

func (c *call) awaitAnswer(ctx context.Context, l leg, res TransferResult, started time.Time, plog *logrus.Entry) (TransferResult, error) {
	// Asterisk's Dial timeout ends the ringing; ours only guards against a
	// lost event.
	guard := time.NewTimer(l.timeout + 3*time.Second)
	defer guard.Stop()
	var failed Outcome
	for {
		ev, err := c.next(ctx, guard.C)
		switch {
		case errors.Is(err, ErrCallerGone):
			plog.WithField("phase", "caller-hangup-ringing").Info("transfer")
			res.Outcome, res.RingTime = OutcomeCallFailed, time.Since(started)
			c.dropLeg(ctx) // cancel the far end at once
			return res, ErrCallerGone
		case errors.Is(err, errTimeout):
			plog.WithField("phase", "timeout-guard").Warn("transfer")
			res.Outcome, res.RingTime = OutcomeTimeout, time.Since(started)
			c.dropLeg(ctx)
			return res, nil
		case err != nil:
			return res, err
		}
		switch e := ev.(type) {
		case *ari.StasisStart:
			// An originated leg enters the app when it is answered.
			if e.Channel.ID == c.rec.Outbound {
				return c.bridged(ctx, l, res, started, plog)
			}
		case *ari.Dial:
			if e.Peer.ID != c.rec.Outbound {
				continue
			}
			// ANSWER is followed by StasisStart, which is when the leg
			// can be bridged; only failures matter here.
			if o := OutcomeForDialStatus(e.Dialstatus); o != "" && o != OutcomeSuccess {
				failed = o
			}
		case *ari.ChannelDestroyed:
			if e.Channel.ID != c.rec.Outbound {
				continue
			}
			res.Cause, res.RingTime = e.Cause, time.Since(started)
			// The cause is precise; an originated leg's DIALSTATUS is not
			// (a 404 shows as NOANSWER), so it only fills in for a cause
			// that says nothing.
			res.Outcome = OutcomeForCause(e.Cause)
			if (e.Cause == 0 || e.Cause == CauseNormalClearing) && failed != "" {
				res.Outcome = failed
			}
			plog.WithFields(logrus.Fields{"phase": "not-answered", "outcome": res.Outcome, "cause": e.Cause, "cause_text": e.CauseTxt}).Info("transfer")
			c.dropLeg(ctx)
			return res, nil
		}
	}
}

// bridged runs the answered transfer until it ends.
func (c *call) bridged(ctx context.Context, l leg, res TransferResult, started time.Time, plog *logrus.Entry) (TransferResult, error) {
	a := c.app
	answered := time.Now()
	res.Outcome, res.RingTime = OutcomeSuccess, answered.Sub(started)
	c.rec.Phase = PhaseBridged
	if !l.resume {
		c.rec.Phase = PhaseHandedOff
	}
	if err := c.save(ctx); err != nil {
		plog.WithError(err).Warn("saving bridged phase failed")
	}
	plog.WithFields(logrus.Fields{"phase": "answered", "ring_time": res.RingTime.Round(time.Millisecond)}).Info("transfer")
	go func() {
		_ = a.ari.StopRing(context.WithoutCancel(ctx), c.id)
	}()
	if err := a.ari.AddToBridge(ctx, c.rec.Bridge, c.id, c.rec.Outbound); err != nil {
		// Answered and hung up at once is a very short call, not an error.
		if c.legVanished(ctx) {
			return c.farEndGone(ctx, l, res, 0, plog)
		}
		plog.WithError(err).WithField("phase", "bridge-failed").Warn("transfer")
		res.Outcome = OutcomeError
		c.dropLeg(ctx)
		return res, nil
	}
	return c.talk(ctx, l, res, answered, plog)
}

// talk waits, with caller and far end bridged, for one of them to hang up,
// sending the digits after the configured delay.
func (c *call) talk(ctx context.Context, l leg, res TransferResult, answered time.Time, plog *logrus.Entry) (TransferResult, error) {
	// Digits go one request each, paced by a timer here: a string handed
	// to Asterisk whole is played out by the leg's own thread, which then
	// answers a hangup only once it is done (seconds, with pauses).
	pending := l.digits
	var sent strings.Builder
	var dtmfC <-chan time.Time
	var dtmfTimer *time.Timer
	if pending != "" {
		dtmfTimer = time.NewTimer(c.app.cfg.DTMFDelay)
		defer dtmfTimer.Stop()
		dtmfC = dtmfTimer.C
	}
	for {
		ev, err := c.next(ctx, dtmfC)
		switch {
		case errors.Is(err, errTimeout):
			pending, dtmfC = c.sendNextDigit(ctx, pending, &sent, dtmfTimer, plog)
			if pending == "" {
				res.Digits = sent.String()
				plog.WithFields(logrus.Fields{"phase": "dtmf", "digits": sent.Len()}).Info("transfer")
			}
			continue
		case errors.Is(err, ErrCallerGone):
			res.TalkTime, res.Digits = time.Since(answered), sent.String()
			plog.WithField("phase", "caller-hangup-bridged").Info("transfer")
			c.dropLeg(ctx)
			return res, ErrCallerGone
		case err != nil:
			return res, err
		}
		cause, gone := legGone(ev, c.rec.Outbound)
		if !gone {
			continue
		}
		res.TalkTime, res.Digits = time.Since(answered), sent.String()
		return c.farEndGone(ctx, l, res, cause, plog)
	}
}

// DTMF pacing: each tone lasts dtmfTone and is followed by dtmfGap of
// silence; ',' is a pause of dtmfPause (Amazon Connect's comma).
const (
	dtmfTone  = 100 * time.Millisecond
	dtmfGap   = 100 * time.Millisecond
	dtmfPause = 500 * time.Millisecond
)

// sendNextDigit sends (or pauses for) the first character of pending and
// rearms the timer for the next; it returns what is left and the channel
// to wait on (nil when done).
func (c *call) sendNextDigit(ctx context.Context, pending string, sent *strings.Builder, t *time.Timer, plog *logrus.Entry) (string, <-chan time.Time) {
	ch, rest := pending[0], pending[1:]
	wait := dtmfTone + dtmfGap
	if ch == ',' {
		wait = dtmfPause
	} else if err := c.app.ari.SendDTMF(ctx, c.rec.Outbound, string(ch), dtmfGap, dtmfTone); err != nil {
		// The leg is probably hanging up; its events will say so.
		plog.WithError(err).WithField("phase", "dtmf-failed").Warn("transfer")
		return "", nil
	} else {
		sent.WriteByte(ch)
	}
	if rest == "" {
		return "", nil
	}
	t.Reset(wait)
	return rest, t.C
}

// legVanished tells whether the outbound channel no longer exists.
func (c *call) legVanished(ctx context.Context) bool {
	exists, err := c.app.ari.ChannelExists(ctx, c.rec.Outbound)
	return err == nil && !exists
}

// farEndGone ends an answered transfer after the far end hung up: back to
// the flow (resume) or, without resume, the caller is hung up too.
func (c *call) farEndGone(ctx context.Context, l leg, res TransferResult, cause int, plog *logrus.Entry) (TransferResult, error) {
	res.Cause = cause
	plog.WithFields(logrus.Fields{"phase": "far-end-hangup", "cause": cause, "talk_time": res.TalkTime.Round(time.Millisecond)}).Info("transfer")
	// The leg is already hanging up: no request to hang it up again.
	c.forgetLeg()
	if !l.resume {
		// Resume off: the caller went with the far end; it ends with it.
		c.dropLeg(ctx)
		_ = c.app.ari.Hangup(context.WithoutCancel(ctx), c.id, "normal")
		return res, errHandedOff
	}
	// No save here: a process that adopts this call with its leg gone
	// resumes it just the same. Destroying the bridge hands the caller
	// back to us in Stasis.
	c.dropLeg(ctx)
	plog.WithField("phase", "resumed").Info("transfer")
	return res, nil
}

// legGone tells whether ev ends the outbound leg, and with what cause.
func legGone(ev ari.Event, id string) (int, bool) {
	switch e := ev.(type) {
	case *ari.ChannelHangupRequest:
		return e.Cause, e.Channel.ID == id
	case *ari.ChannelDestroyed:
		return e.Cause, e.Channel.ID == id
	case *ari.StasisEnd:
		return 0, e.Channel.ID == id
	}
	return 0, false
}
