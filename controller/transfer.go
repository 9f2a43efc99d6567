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
	"github.com/ariflow/ariflow/policy"
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
	agent   bool // a TransferToAgent leg
	attempt int  // 1.. in the block's list of numbers
	legOptions
}

// TransferResult is what the contact's Transfer attributes record.
type TransferResult struct {
	Outcome  Outcome
	DeniedBy string // the policy rule, for OutcomeDenied
	Cause    int
	Number   string
	RingTime time.Duration
	TalkTime time.Duration
	Digits   string
	// Attempts is how many numbers of the block were tried (dialled or
	// refused by the policy).
	Attempts int
	// EndedBy says who ended an answered transfer (flows.EndedBy*).
	EndedBy  string
	Answered time.Time
	// SIPCode is the far end's final SIP response to a leg that was not
	// answered (486 busy, 404 unallocated, …), when Asterisk reports it
	// (ChannelDestroyed's tech_cause); 0 otherwise.
	SIPCode int
}

// Transfer ring timeouts, in seconds: Amazon Connect's range and default.
const (
	defaultTransferTimeout = 30
	maxTransferTimeout     = 600
)

func (c *call) transferToPhone(ctx context.Context, t *flows.TransferToPhoneNumber) (string, error) {
	l, targets, err := c.resolveLeg(t)
	if err != nil {
		c.rec.ListNext = 0
		c.log.WithError(err).WithField("phase", "invalid").Warn("transfer settings invalid; nothing dialled")
		c.recordTransfer(TransferResult{Outcome: OutcomeError})
		c.app.metrics.Transfers.WithLabelValues(string(OutcomeError)).Inc()
		return flows.BranchError, nil
	}
	from := 0
	if n := c.rec.ListNext; n > 0 && n < len(targets) {
		// Taken over between two numbers of the list: go on where the
		// last process stopped.
		from = n
		c.log.WithFields(logrus.Fields{"step": c.rec.Block, "attempt": n + 1, "number": targets[n].number}).Info("transfer: adopted between two numbers; going on with the next")
	}
	res, err := c.dialTargets(ctx, l, targets, from)
	c.recordTransfer(res)
	c.app.metrics.Transfers.WithLabelValues(string(res.Outcome)).Inc()
	if err != nil {
		return "", err
	}
	return res.Outcome.Branch(), nil
}

// dialChecked asks the dial-out policy before connecting l: a refused
// number dials nothing and ends as OutcomeDenied with the rule that
// refused it; a policy that cannot be asked (Redis down) refuses too.
func (c *call) dialChecked(ctx context.Context, l leg) (TransferResult, error) {
	sys := c.rec.Attributes[flows.NSSystem]
	release, err := c.gate().Acquire(ctx, policy.Leg{Slot: legSlot(c.id, c.rec.Transfers), Caller: sys[flows.SysCallerNumber],
		Entry: sys[flows.SysDialedNumber], Number: l.number, TransfersSoFar: c.rec.Transfers})
	if err != nil {
		res := TransferResult{Number: l.number, Outcome: OutcomeDenied}
		var d *policy.Denied
		if errors.As(err, &d) {
			res.DeniedBy = d.Rule
		} else {
			res.DeniedBy = "policy-unavailable"
		}
		c.app.metrics.Denied.WithLabelValues(res.DeniedBy).Inc()
		c.log.WithError(err).WithFields(logrus.Fields{"step": c.rec.Block, "number": l.number, "rule": res.DeniedBy}).Warn("transfer refused by the dial-out policy; nothing dialled")
		return res, nil
	}
	defer release()
	c.rec.Transfers++
	return c.connect(ctx, l)
}

// gate is the dial-out gate for this call: the operator's policy, narrowed
// by the flow's dial_policy when it has one. It shares the operator's
// counters, so a flow cannot widen a rate limit or the concurrency cap.
func (c *call) gate() *policy.Gate {
	g := c.app.cfg.Gate
	if c.flow != nil && c.flow.DialPolicy != nil {
		return g.WithPolicy(g.Policy().Narrow(c.flow.DialPolicy))
	}
	return g
}

// legSlot names the concurrency slot of a call's n-th outbound leg (from
// 0). The name follows from the record, so a process that takes the call
// over releases the slot when the adopted leg ends.
func legSlot(callID string, n int) string {
	return callID + ":" + strconv.Itoa(n)
}

// resolveLeg turns the block's settings into a leg; any value that is not
// what it should be is an error and nothing is dialled.
// The numbers of a list are all resolved before the first is dialled, so
// that a bad one takes Error with nothing dialled, like any bad setting.
func (c *call) resolveLeg(t *flows.TransferToPhoneNumber) (leg, []target, error) {
	attrs := c.rec.Attributes
	targets, err := c.resolveTargets(t)
	if err != nil {
		return leg{}, nil, err
	}
	l := leg{number: targets[0].number, dial: targets[0].dial, timeout: targets[0].timeout, resume: t.Resume}
	if err := c.resolveOptions(t, &l.legOptions); err != nil {
		return leg{}, nil, err
	}
	if !t.DTMF.IsZero() {
		s, err := flows.Resolve(t.DTMF, attrs)
		if err != nil {
			return leg{}, nil, fmt.Errorf("dtmf: %w", err)
		}
		if l.digits, err = c.checked(t.DTMF, s, flows.ParseDTMF); err != nil {
			return leg{}, nil, fmt.Errorf("dtmf: %w", err)
		}
	}
	if !t.CallerIDNumber.IsZero() {
		s, err := flows.Resolve(t.CallerIDNumber, attrs)
		if err != nil {
			return leg{}, nil, fmt.Errorf("caller_id_number: %w", err)
		}
		if l.cidNum, err = c.checked(t.CallerIDNumber, s, c.normalizeNumber); err != nil {
			return leg{}, nil, fmt.Errorf("caller_id_number: %w", err)
		}
	}
	if !t.CallerIDName.IsZero() {
		s, err := flows.Resolve(t.CallerIDName, attrs)
		if err != nil {
			return leg{}, nil, fmt.Errorf("caller_id_name: %w", err)
		}
		if err := flows.ValidateCallerName(s); err != nil {
			return leg{}, nil, fmt.Errorf("caller_id_name: %w", err)
		}
		l.cidName = s
	}
	return l, targets, nil
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
	set(flows.TrDeniedBy, r.DeniedBy)
	set(flows.TrAttempts, strconv.Itoa(max(r.Attempts, 1)))
	set(flows.TrEndedBy, r.EndedBy)
	answered := ""
	if !r.Answered.IsZero() {
		answered = r.Answered.UTC().Format(time.RFC3339Nano)
	}
	set(flows.TrAnswerTime, answered)
	sip := ""
	if r.SIPCode > 0 {
		sip = strconv.Itoa(r.SIPCode)
	}
	set(flows.TrSIPCode, sip)
}

// transfer is one outbound leg's run, from dialling to the far end's
// hangup: the call it belongs to, the leg, its result, its times and its
// logger. A process taking a call over builds the same object from the
// record and carries on where the record says.
type transfer struct {
	c        *call
	leg      leg
	res      TransferResult
	dialed   time.Time
	answered time.Time
	done     int // characters of leg.digits sent (or paused)
	log      *logrus.Entry
	legID    string // the outbound channel, kept after the record forgets it
	adopted  bool   // taken over from another process (or term)
	// created: the leg was made in Stasis and then dialled (every leg
	// this version dials), so its answer is a ChannelStateChange to Up;
	// false for a leg an older version originated into the app, which
	// enters Stasis (StasisStart) only once answered.
	created    bool
	sentEvents map[string]bool // leg events sent (events_url)
	talkState
}

func (c *call) newTransfer(l leg) *transfer {
	return &transfer{c: c, leg: l, res: TransferResult{Number: l.number}}
}

// connect dials l, bridges it with the caller once answered, sends the
// digits, and returns when the far end hangs up (resume) or when either
// side does (no resume, errHandedOff). A caller hangup ends it with
// ErrCallerGone; finish then hangs up the leg and destroys the bridge.
func (c *call) connect(ctx context.Context, l leg) (TransferResult, error) {
	t := c.newTransfer(l)
	err := t.run(ctx)
	t.legEvent(LegCompleted)
	return t.res, err
}

func (t *transfer) run(ctx context.Context) error {
	c := t.c
	t.dialed = time.Now()
	c.rec.Outbound, c.rec.Bridge = c.app.resourceID("leg"), c.app.resourceID("br")
	t.legID = c.rec.Outbound
	c.rec.Transfer = &TransferState{Number: t.leg.number, Resume: t.leg.resume, Agent: t.leg.agent,
		Digits: t.leg.digits, Dialed: t.dialed, RingDeadline: t.dialed.Add(t.leg.timeout), Attempt: t.leg.attempt,
		Created: true, Options: t.leg.legOptions.state()}
	t.created = true
	t.log = c.log.WithFields(logrus.Fields{"step": c.rec.Block, "number": t.leg.number, "outbound": c.rec.Outbound})
	// The record says "dialing" before the leg exists: a process taking
	// over finds the leg by it.
	if err := c.setPhase(ctx, PhaseDialing); err != nil {
		t.log.WithError(err).WithField("phase", "save-failed").Error("transfer: saving the call failed; nothing dialled")
		c.rec.Outbound, c.rec.Bridge, c.rec.Transfer = "", "", nil
		c.rec.Phase = PhaseFlow
		t.res.Outcome = OutcomeError
		return nil
	}
	c.own(c.rec.Outbound, c.rec.Bridge)
	t.log.WithFields(logrus.Fields{"phase": "dialing", "timeout": t.leg.timeout}).Info("transfer")
	if err := t.dial(ctx); err != nil {
		c.dropLeg(ctx)
		if ari.StatusCode(err) == 400 && !c.callerPresent(ctx) {
			// ARI refuses an originate whose originator is gone: the
			// caller hung up while we dialled.
			c.gone = true
			err = ErrCallerGone
		}
		if errors.Is(err, ErrCallerGone) {
			t.log.WithField("phase", "caller-hangup-dialing").Info("transfer")
			t.res.Outcome = OutcomeCallFailed
			return err
		}
		t.log.WithError(err).WithField("phase", "dial-failed").Warn("transfer")
		t.res.Outcome = OutcomeError
		return nil
	}
	return t.awaitAnswer(ctx)
}

// dial creates the bridge and makes the outbound leg in our app, then
// dials it. The leg is made in Stasis rather than originated into the
// app: an originated leg enters Stasis only when answered, and if no
// process has the app at that moment (the instant after a crash, before
// the standby connects) Asterisk hangs the answered far end up. A made
// leg is in Stasis from the start and waits, answered, for the process
// that takes over; its answer is a ChannelStateChange to Up. The bridge
// is created alongside, and the caller's ringback is sent without
// waiting.
func (t *transfer) dial(ctx context.Context) error {
	c := t.c
	a := c.app
	bridgeDone := make(chan error, 1)
	go func() {
		if t.leg.returnKey != "" {
			// The caller's keys must reach us while bridged.
			bridgeDone <- a.ari.CreateBridgeDTMFEvents(ctx, c.rec.Bridge, a.resourceName(c.id))
			return
		}
		bridgeDone <- a.ari.CreateBridge(ctx, c.rec.Bridge, a.resourceName(c.id))
	}()
	// The far end sees the leg's caller ID as From and its connected line
	// as P-Asserted-Identity. Both name and number are set on every leg
	// (an empty name clears it): whatever is left out Asterisk copies from
	// the originator, the caller. That the far end keeps this identity
	// once bridged is the trunk's send_connected_line = no (README,
	// Security). Name and number are validated; neither holds a quote.
	// Create takes no callerId: variables carry it.
	cidNum, cidName := presentedID(t.leg, c.rec.Attributes[flows.NSSystem][flows.SysCallerNumber], c.rec.Attributes[flows.NSSystem][flows.SysCallerName])
	vars := map[string]string{
		"CALLERID(num)": cidNum, "CALLERID(name)": cidName,
		"CONNECTEDLINE(num,i)": cidNum, "CONNECTEDLINE(name,i)": cidName,
	}
	// X- headers on the INVITE: names and values are validated (token
	// names, no CR/LF), and a variable is set as a value, never evaluated
	// as dialplan.
	for _, h := range t.leg.headers {
		vars["PJSIP_HEADER(add,"+h.name+")"] = h.value
	}
	create := func() error {
		return a.ari.Create(ctx, ari.CreateRequest{Endpoint: t.leg.dial, App: a.cfg.App, AppArgs: legArg + "," + c.id,
			ChannelID: c.rec.Outbound, Originator: c.id, Variables: vars})
	}
	early := t.leg.ringback == flows.RingbackEarlyMedia
	start := func() error {
		if !early {
			return t.dialWhenInApp(ctx)
		}
		// Bridged before it is dialled, so that whatever the far end sends
		// before it answers (its ringback, "the number you dialled is not
		// in service") reaches the caller.
		if err := t.awaitInApp(ctx); err != nil {
			return err
		}
		if err := t.joinBridge(ctx); err != nil {
			return err
		}
		return a.ari.Dial(ctx, c.rec.Outbound, t.leg.timeout)
	}
	err := create()
	if berr := <-bridgeDone; err == nil {
		err = berr
	}
	if err == nil {
		err = start()
	}
	// A leg made while the app had no connection (a create held up by a
	// stalled network, reaching Asterisk as the websocket reconnects) is
	// hung up by Asterisk before it is dialled. Nothing reached the far
	// end, so making it again is safe.
	for try := 1; errors.Is(err, errLegLost) && try <= maxRemakes; try++ {
		t.log.WithError(err).WithField("phase", "remake").Warn("transfer: the leg was lost before it was dialled; making it again")
		if err = t.renewLeg(ctx); err == nil {
			if err = create(); err == nil {
				err = start()
			}
		}
	}
	if err != nil || early {
		return err
	}
	go func() {
		bg := context.WithoutCancel(ctx)
		if t.leg.ringback == flows.RingbackMOH {
			if err := a.ari.StartMOH(bg, c.id, t.leg.mohClass); err != nil {
				t.log.WithError(err).Warn("music on hold failed; ringing instead")
				_ = a.ari.Ring(bg, c.id)
			}
			return
		}
		_ = a.ari.Ring(bg, c.id)
	}()
	return nil
}

// dialWhenInApp dials the made leg once it is in the app. Asterisk
// answers the create before the channel has entered the app and refuses a
// dial until it has (409 "Channel not in Stasis application"). Waiting
// for the StasisStart is faster than trying first: measured with make
// bench, a dial sent at once was mostly refused and cost resume p50 15 ms
// against 13 ms.
func (t *transfer) dialWhenInApp(ctx context.Context) error {
	if err := t.awaitInApp(ctx); err != nil {
		return err
	}
	return t.c.app.ari.Dial(ctx, t.c.rec.Outbound, t.leg.timeout)
}

// errLegLost: a made leg ended before it was dialled.
var errLegLost = errors.New("leg gone before it was dialled")

// maxRemakes bounds how often a leg lost before its dial is made again.
const maxRemakes = 2

// renewLeg gives the transfer a new leg ID, saved before the leg is made
// (a process taking over finds the leg by it).
func (t *transfer) renewLeg(ctx context.Context) error {
	c := t.c
	c.rec.Outbound = c.app.resourceID("leg")
	t.legID = c.rec.Outbound
	t.log = t.log.WithField("outbound", c.rec.Outbound)
	c.own(c.rec.Outbound)
	return c.save(ctx)
}

// awaitInApp waits for the made leg's StasisStart. Asterisk answers the
// create before the channel has entered the app, and refuses a dial or an
// addChannel until it has (409 "Channel not in Stasis application").
func (t *transfer) awaitInApp(ctx context.Context) error {
	c := t.c
	bound := time.NewTimer(c.app.cfg.RESTTimeout)
	defer bound.Stop()
	for {
		ev, err := c.next(ctx, bound.C)
		if errors.Is(err, errTimeout) {
			return fmt.Errorf("leg %s made but not in the app within %v", c.rec.Outbound, c.app.cfg.RESTTimeout)
		}
		if err != nil {
			return err
		}
		switch e := ev.(type) {
		case *ari.StasisStart:
			if e.Channel.ID == c.rec.Outbound {
				return nil
			}
		case *ari.ChannelDestroyed:
			if e.Channel.ID == c.rec.Outbound {
				c.forgetLeg()
				return fmt.Errorf("%w: %s (cause %d %s)", errLegLost, e.Channel.ID, e.Cause, e.CauseTxt)
			}
		}
	}
}

// ringbackOff ends the caller's music on hold when the leg rang with it
// (ring is ended by bridge, as before; early media ends with the bridge).
func (t *transfer) ringbackOff(ctx context.Context) {
	if t.leg.ringback != flows.RingbackMOH {
		return
	}
	_ = t.c.app.ari.StopMOH(context.WithoutCancel(ctx), t.c.id)
}

// forgetLeg stops tracking an outbound leg that is hanging up by itself,
// so that dropLeg does not ask Asterisk to hang it up again.
func (c *call) forgetLeg() {
	c.disown(c.rec.Outbound)
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
	c.disown(c.rec.Outbound, c.rec.Bridge)
	c.rec.Outbound, c.rec.Bridge = "", ""
}

// ringGuard is how long past the ring timeout a transfer waits for the
// leg's end before taking it for lost: Asterisk's originate timeout ends
// the ringing, and this only guards against a lost event.
const ringGuard = 3 * time.Second

func (t *transfer) awaitAnswer(ctx context.Context) error {
	c := t.c
	deadline := t.dialed.Add(t.leg.timeout + ringGuard)
	if c.rec.Transfer != nil && !c.rec.Transfer.RingDeadline.IsZero() {
		deadline = c.rec.Transfer.RingDeadline.Add(ringGuard)
	}
	guard := time.NewTimer(time.Until(deadline))
	defer guard.Stop()
	var dialStatus string
	for {
		ev, err := c.next(ctx, guard.C)
		switch {
		case errors.Is(err, ErrCallerGone):
			t.log.WithField("phase", "caller-hangup-ringing").Info("transfer")
			t.res.SIPCode = 0
			t.res.Outcome, t.res.RingTime = OutcomeCallFailed, time.Since(t.dialed)
			c.dropLeg(ctx) // cancel the far end at once
			return ErrCallerGone
		case errors.Is(err, errTimeout):
			t.log.WithField("phase", "timeout-guard").Warn("transfer")
			c.app.metrics.StuckCalls.WithLabelValues("ringing").Inc()
			t.res.Outcome, t.res.RingTime = OutcomeTimeout, time.Since(t.dialed)
			t.ringbackOff(ctx)
			c.dropLeg(ctx)
			return nil
		case err != nil:
			return err
		}
		switch e := ev.(type) {
		case *ari.StasisStart:
			// An originated leg enters the app when it is answered; a
			// created one when it is created, and is answered only if up
			// (a check after a takeover found it answered).
			if e.Channel.ID == c.rec.Outbound && (!t.created || e.Channel.State == "Up") {
				return t.bridge(ctx)
			}
		case *ari.ChannelStateChange:
			if e.Channel.ID != c.rec.Outbound {
				continue
			}
			switch e.Channel.State {
			case "Ringing":
				t.legEvent(LegRinging)
			case "Up":
				if t.created {
					return t.bridge(ctx)
				}
			}
		case *ari.Dial:
			if e.Peer.ID == c.rec.Outbound && e.Dialstatus != "" {
				dialStatus = e.Dialstatus
				if e.Dialstatus == "RINGING" {
					t.legEvent(LegRinging)
				}
			}
		case *ari.ChannelDestroyed:
			if e.Channel.ID != c.rec.Outbound {
				continue
			}
			if t.created && e.Channel.State == "Up" {
				return t.answeredAndGone(ctx, e.Cause)
			}
			t.res.Cause, t.res.RingTime, t.res.SIPCode = e.Cause, time.Since(t.dialed), e.TechCause
			t.res.Outcome = NotAnsweredOutcome(e.Cause, dialStatus)
			t.log.WithFields(logrus.Fields{"phase": "not-answered", "outcome": t.res.Outcome, "cause": e.Cause, "cause_text": e.CauseTxt,
				"sip_code": e.TechCause, "dialstatus": dialStatus}).Info("transfer")
			t.ringbackOff(ctx)
			c.forgetLeg()
			c.dropLeg(ctx)
			return nil
		}
	}
}

// answeredAndGone ends a made leg whose end arrived with no answer
// before it, though its last state was Up: the far end answered and hung
// up at once (the soak saw 8 in 8,622 calls, all agents that answered and
// hung up within milliseconds). That is a very short call, not a failed
// one: Success, and the caller resumes.
func (t *transfer) answeredAndGone(ctx context.Context, cause int) error {
	c := t.c
	t.answered = time.Now()
	t.res.Outcome, t.res.RingTime, t.res.Answered = OutcomeSuccess, t.answered.Sub(t.dialed), t.answered
	t.legEvent(LegAnswered)
	t.log.WithFields(logrus.Fields{"phase": "answered-and-gone", "ring_time": t.res.RingTime.Round(time.Millisecond)}).Info("transfer")
	switch t.leg.ringback {
	case flows.RingbackEarlyMedia:
	case flows.RingbackMOH:
		t.ringbackOff(ctx)
	default:
		_ = c.app.ari.StopRing(context.WithoutCancel(ctx), c.id)
	}
	c.forgetLeg()
	return t.farEndGone(ctx, cause)
}

// bridge runs the answered transfer until it ends.
func (t *transfer) bridge(ctx context.Context) error {
	c := t.c
	a := c.app
	t.answered = time.Now()
	t.res.Outcome, t.res.RingTime, t.res.Answered = OutcomeSuccess, t.answered.Sub(t.dialed), t.answered
	if c.rec.Transfer != nil {
		c.rec.Transfer.Answered = t.answered
	}
	t.legEvent(LegAnswered)
	// Whisper and confirmation before the bridge, in phase dialing: a
	// process taking over here screens the far end again.
	if ok, err := t.screen(ctx); !ok {
		return err
	}
	if err := c.setPhase(ctx, PhaseBridged); err != nil {
		// A process taking over finds the leg up and bridges it just the
		// same; the call goes on.
		t.log.WithError(err).Warn("saving the bridged phase failed")
	}
	t.log.WithFields(logrus.Fields{"phase": "answered", "ring_time": t.res.RingTime.Round(time.Millisecond)}).Info("transfer")
	go func() {
		switch t.leg.ringback {
		case flows.RingbackEarlyMedia:
		case flows.RingbackMOH:
			t.ringbackOff(ctx)
		default:
			_ = a.ari.StopRing(context.WithoutCancel(ctx), c.id)
		}
	}()
	if err := t.addToBridgeRetrying(ctx); err != nil {
		if !c.callerPresent(ctx) {
			// The caller hung up as the far end answered.
			t.log.WithField("phase", "caller-hangup-answered").Info("transfer")
			c.gone = true
			c.dropLeg(ctx)
			return ErrCallerGone
		}
		// Answered and hung up at once is a very short call, not an error.
		if c.legVanished(ctx) {
			c.forgetLeg()
			return t.farEndGone(ctx, 0)
		}
		t.log.WithError(err).WithField("phase", "bridge-failed").Warn("transfer")
		t.res.Outcome = OutcomeError
		c.dropLeg(ctx)
		return nil
	}
	return t.talk(ctx)
}

// bridgeRetries bound how often an addChannel refused with 422 is tried
// again, waiting 20, 40, 80 and 160 ms.
const bridgeRetries = 4

// addToBridgeRetrying adds caller and leg to the bridge. A leg dialled
// through ARI waits in an internal holding bridge while it rings, and in
// the instant after its answer Asterisk may refuse to move it (422,
// "Channel not in Stasis application"): the soak saw it in 62 of 12,370
// calls. The leg is still there, so the request goes again.
func (t *transfer) addToBridgeRetrying(ctx context.Context) error {
	wait := 20 * time.Millisecond
	for try := 0; ; try++ {
		err := t.addToBridge(ctx)
		if err == nil || ari.StatusCode(err) != 422 || try == bridgeRetries {
			return err
		}
		t.log.WithError(err).WithField("phase", "bridge-retry").Debug("transfer")
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
		wait *= 2
	}
}

// talk waits, with caller and far end bridged, for one of them to hang up,
// sending the digits after the configured delay, watching for the return
// key and keeping the time limit. One timer serves every deadline.
func (t *transfer) talk(ctx context.Context) error {
	c := t.c
	t.startTalk(c.app.cfg.DTMFDelay)
	wake := time.NewTimer(time.Hour)
	defer wake.Stop()
	defer t.stopWarning(ctx)
	for {
		var wakeC <-chan time.Time
		if at, ok := t.nextWake(); ok {
			wake.Reset(time.Until(at))
			wakeC = wake.C
		}
		ev, err := c.next(ctx, wakeC)
		switch {
		case errors.Is(err, errTimeout):
			if ended, by := t.due(ctx); ended {
				return t.endByUs(ctx, by)
			}
			continue
		case errors.Is(err, ErrCallerGone):
			t.res.TalkTime, t.res.Digits, t.res.EndedBy = t.talkTime(), t.sent(), flows.EndedByCaller
			t.log.WithField("phase", "caller-hangup-bridged").Info("transfer")
			c.dropLeg(ctx)
			return ErrCallerGone
		case err != nil:
			return err
		}
		if e, ok := ev.(*ari.ChannelDtmfReceived); ok && e.Channel.ID == c.id {
			if t.callerKey(ctx, e.Digit, e.DurationMs) {
				return t.endByUs(ctx, flows.EndedByCallerKey)
			}
			continue
		}
		cause, gone := legGone(ev, c.rec.Outbound)
		if !gone {
			continue
		}
		t.res.TalkTime, t.res.Digits = t.talkTime(), t.sent()
		// The leg is already hanging up: no request to hang it up again.
		c.forgetLeg()
		return t.farEndGone(ctx, cause)
	}
}

func (t *transfer) talkTime() time.Duration {
	if t.answered.IsZero() {
		return 0
	}
	return time.Since(t.answered)
}

// sent is the digits sent so far, pauses left out.
func (t *transfer) sent() string {
	return strings.Map(func(r rune) rune {
		if r == ',' || r == 'w' || r == 'W' {
			return -1
		}
		return r
	}, t.leg.digits[:t.done])
}

// sendNextDigit sends (or pauses for) the next character when it is due,
// records the progress so that a process taking over continues from the
// next one, and schedules the one after.
//
// Cadence: each digit is one request (a string handed to Asterisk whole is
// played out by the leg's own thread, which a takeover could not stop or
// continue exactly). Asterisk plays a request 100 ms after taking it, for
// the tone's duration, then waits `between` (1 ms here, its minimum): the
// requests are sent on a fixed schedule, tone+gap apart, and so leave the
// tones tone+gap apart on the wire. A pause adds its length to the
// schedule.
func (t *transfer) sendNextDigit(ctx context.Context) {
	c := t.c
	ch := t.leg.digits[t.done]
	at := t.digitAt
	if pause := flows.DTMFPause(ch); pause > 0 {
		t.digitAt = at.Add(time.Duration(pause) * time.Millisecond)
		t.done++
	} else {
		// Progress is written before the digit leaves, and a digit whose
		// progress could not be written is not sent (it is tried again a
		// moment later): a process taking over never sends a digit twice.
		// Only a process killed between the write and the request skips
		// one.
		if c.rec.Transfer != nil {
			c.rec.Transfer.DigitsDone = t.done + 1
			if err := c.save(ctx); err != nil {
				c.rec.Transfer.DigitsDone = t.done
				t.log.WithError(err).Warn("saving DTMF progress failed; digit held back")
				t.digitAt = time.Now().Add(200 * time.Millisecond)
				return
			}
		}
		if err := c.app.ari.SendDTMF(ctx, c.rec.Outbound, string(ch), time.Millisecond, t.leg.tone); err != nil {
			// The leg is probably hanging up; its events will say so.
			t.log.WithError(err).WithField("phase", "dtmf-failed").Warn("transfer")
			t.done = len(t.leg.digits)
			return
		}
		t.digitAt = at.Add(t.leg.tone + t.leg.gap)
		t.done++
	}
	if t.done >= len(t.leg.digits) {
		t.log.WithFields(logrus.Fields{"phase": "dtmf", "digits": len(t.sent())}).Info("transfer")
	}
}

// callerPresent tells whether the caller's channel still exists (an
// error counts as present: do not give up on a caller by guesswork).
func (c *call) callerPresent(ctx context.Context) bool {
	ok, err := c.app.ari.ChannelExists(ctx, c.id)
	return ok || err != nil
}

// legVanished tells whether the outbound channel no longer exists.
func (c *call) legVanished(ctx context.Context) bool {
	exists, err := c.app.ari.ChannelExists(ctx, c.rec.Outbound)
	return err == nil && !exists
}

// farEndGone ends an answered transfer after the far end hung up: back to
// the flow (resume) or, without resume, the caller is hung up too.
func (t *transfer) farEndGone(ctx context.Context, cause int) error {
	c := t.c
	t.res.Cause = cause
	if t.res.EndedBy == "" {
		t.res.EndedBy = flows.EndedByFarEnd
	}
	t.log.WithFields(logrus.Fields{"phase": "far-end-hangup", "cause": cause, "talk_time": t.res.TalkTime.Round(time.Millisecond)}).Info("transfer")
	if !t.leg.resume {
		// Resume off: the caller went with the far end; it ends with it.
		c.dropLeg(ctx)
		_ = c.app.ari.Hangup(context.WithoutCancel(ctx), c.id, "normal")
		return errHandedOff
	}
	// No save here: a process that adopts this call with its leg gone
	// resumes it just the same. Destroying the bridge hands the caller
	// back to us in Stasis.
	c.dropLeg(ctx)
	t.log.WithField("phase", "resumed").Info("transfer")
	return nil
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
