package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/ariflow/ariflow/flows"
	"github.com/ariflow/ariflow/internal/ari"
	"github.com/ariflow/ariflow/policy"
	"github.com/ariflow/ariflow/record"
	"github.com/ariflow/ariflow/transfer"
)

// A transfer with dial_via: pbx is carried by the PBX's own Dial(): the
// call counts the leg with the dial policy and writes the record (phase
// "pbx") as one step, and continues the caller into [ariflow-dial]
// (asterisk-conf/extensions.conf) with the transfer's fields in the
// extension (or in ARIFLOW_DIAL). Dial() rings, sends the digits,
// bridges, dials the transfer chained to it if any (its fields after
// the first's), and sends the caller back with
// Stasis(app,ariflow-back,DIALSTATUS,...); the call waits for that StasisStart and takes the branch it says. The
// PBX thus carries the caller through a restart, kill or takeover of
// ariflow: whichever process holds the app when the caller comes back
// adopts the call from its record. A caller who hangs up in the dialplan
// sends the app nothing: ariflow looks at every channel now and then
// (Config.PBXCheck; one request for all the waiting calls: lookPBX), and
// the waiting call at its caller after every reconnect.

const (
	// pbxContext is the dialplan context that carries the transfer.
	pbxContext = "ariflow-dial"
	// pbxVar holds the transfer's fields for it, '~'-separated, with
	// those of the transfer chained to it after them.
	pbxVar = "ARIFLOW_DIAL"
	// BackArg is the first Stasis argument of a caller coming back.
	BackArg = "ariflow-back"
)

// errPBXUnsaved: the record saying the PBX carries the transfer was not
// written (the leg was counted, or needs no count): nothing is dialled.
var errPBXUnsaved = errors.New("the pbx phase was not saved")

// errNotForPBX: the transfer has something Dial() cannot carry (a
// separator in a field, a list of numbers); it runs over ARI instead.
var errNotForPBX = errors.New("not for the PBX's Dial()")

// pbxOwn, as the number in Dial's f option ("<=>"), is the caller's
// own number ([ariflow-dial] puts it in): the common case costs the
// extension a few characters, not the number.
const pbxOwn = "="

// pbxFields is the value of ARIFLOW_DIAL for plan: dial string, ring
// timeout, and Dial's options (g: come back after an answered far end
// hangs up, left out when ends; D: the digits after the answer, delayed
// by whole w's of 500 ms; f: the caller ID the far end is shown, left
// out where it is the caller's own, ownNumber and ownName, which the leg
// then shows with the caller's presentation; pbxOwn for the caller's own
// number).
func pbxFields(plan transfer.Plan, dtmfDelay time.Duration, ownNumber, ownName string, ends bool) (string, error) {
	if len(plan.Targets) != 1 {
		return "", fmt.Errorf("%w: %d numbers", errNotForPBX, len(plan.Targets))
	}
	t := plan.Targets[0]
	opts := "g"
	if ends {
		opts = ""
	}
	if plan.Digits != "" {
		if strings.Contains(plan.Digits, ",") {
			return "", fmt.Errorf("%w: the digits hold the pause ','", errNotForPBX)
		}
		opts += "D(" + strings.Repeat("w", int((dtmfDelay+250*time.Millisecond)/(500*time.Millisecond))) + plan.Digits + ")"
	}
	if ownNumber == "" || plan.CallerIDNumber != ownNumber || plan.CallerIDName != ownName {
		// As the ARI path shows it: number and name, always (presentedID).
		if strings.ContainsAny(plan.CallerIDName+plan.CallerIDNumber, "()<>") {
			return "", fmt.Errorf("%w: the caller ID %q <%s> holds a bracket", errNotForPBX, plan.CallerIDName, plan.CallerIDNumber)
		}
		num := plan.CallerIDNumber
		if ownNumber != "" && num == ownNumber {
			num = pbxOwn
		}
		id := "<" + num + ">"
		if plan.CallerIDName != "" {
			id = plan.CallerIDName + " " + id
		}
		opts += "f(" + id + ")"
	}
	fields := []string{t.Dial, strconv.Itoa(t.TimeoutS), opts}
	for _, f := range fields {
		if strings.ContainsAny(f, "~,|\r\n") {
			return "", fmt.Errorf("%w: %q holds a separator", errNotForPBX, f)
		}
	}
	return strings.Join(fields, "~"), nil
}

// pbxFields is pbxFields for c's caller.
func (c *call) pbxFields(plan transfer.Plan) (string, error) {
	sys := c.rec.Attributes[flows.NSSystem]
	return pbxFields(plan, c.app.cfg.DTMFDelay, sys[flows.SysCallerNumber], sys[flows.SysCallerName], c.app.pbxEnds(plan.Agent, plan.Resume))
}

// pbxEnds tells whether the PBX ends the call itself after an answered
// transfer of an agent, or with resume off: the call ends with such a
// transfer (pbxEnded), so Dial() without g hangs the caller up as the
// far end hangs up, as the dialplan's own Dial() and Hangup() would,
// and the caller is not sent back to the app only to be hung up. The
// call learns of its end from a look (lookPBX). Config.PBXBackAlways:
// never.
func (a *App) pbxEnds(agent, resume bool) bool {
	return !a.cfg.PBXBackAlways && (agent || !resume)
}

// pbxEndsThere tells whether the PBX was asked to end the call after its
// last transfer (pbxEnds), the chained one if any.
func (c *call) pbxEndsThere() bool {
	t := c.rec.Transfer
	switch {
	case t == nil:
		return false
	case t.Next != nil:
		return c.app.pbxEnds(t.Next.Agent, t.Next.Resume)
	}
	return c.app.pbxEnds(t.Agent, t.Resume)
}

// errEndedInPBX: the caller was gone at a look after a hand-off whose last
// transfer ends the call (pbxEndsThere): the PBX ended it, after that
// transfer or because the caller hung up on the way; it cannot say which.
var errEndedInPBX = fmt.Errorf("%w: the call ended in the PBX's Dial()", ErrCallerGone)

// transferViaPBX runs a transfer block's plan in the PBX's Dial(); kind is
// "" or "agent-" for the metrics. A plan Dial() cannot carry runs over ARI.
func (c *call) transferViaPBX(ctx context.Context, plan transfer.Plan, kind string) (string, error) {
	fields, err := c.pbxFields(plan)
	if err != nil {
		c.log.WithError(err).WithField("step", c.rec.Block).Info("transfer: dial_via pbx not possible for this plan; dialling over ARI")
		res, err := transfer.Run(ctx, c, c.app.xfer, c.gate(), plan, 0)
		return c.transferDone(ctx, res, kind, err)
	}
	target := plan.Targets[0]
	gate := c.gate()
	res := transfer.Result{Number: target.Number, Attempts: 1}
	chain := c.chainable(plan)
	// The chained transfer's fields follow this one's, in the extension
	// when both fit, else in ARIFLOW_DIAL.
	all := fields
	if chain != nil {
		all += "~" + chain.fields
	}
	exten, inExten := pbxExten(all)
	var setVar chan error
	if !inExten {
		// Set beside the record's write: a variable on the caller does
		// nothing until the continue, which waits for both.
		setVar = make(chan error, 1)
		go func() { setVar <- c.app.ari.SetVariable(ctx, c.id, pbxVar, all) }()
	}
	slot, err := c.countPBX(ctx, gate, target, plan, chain)
	if setVar != nil {
		if serr := <-setVar; err == nil && serr != nil {
			err = fmt.Errorf("%w: %w", errPBXNotHanded, serr)
		}
	}
	if err == nil && chain != nil && c.rec.Transfer.Next == nil {
		// The chained transfer was not counted: the PBX must not dial it.
		if exten, inExten = pbxExten(fields); !inExten {
			if serr := c.app.ari.SetVariable(ctx, c.id, pbxVar, fields); serr != nil {
				err = fmt.Errorf("%w: %w", errPBXNotHanded, serr)
			}
		}
	}
	if errors.Is(err, errPBXNotHanded) {
		return c.pbxNotHanded(ctx, gate, slot, kind, res, err)
	}
	if err != nil {
		c.pbxBack(gate, "")
		var d *policy.Denied
		if leaving(ctx, err) || errors.Is(err, errPBXUnsaved) {
			// Nothing dialled; the flow decides what a record that
			// cannot be written means (blockOutcome).
			return "", err
		}
		res.Outcome, res.DeniedBy = transfer.OutcomeDenied, "policy-unavailable"
		if errors.As(err, &d) {
			res.DeniedBy = d.Rule
		}
		c.app.metrics.Denied.WithLabelValues(res.DeniedBy).Inc()
		c.log.WithError(err).WithFields(logrus.Fields{"step": c.rec.Block, "rule": res.DeniedBy}).Warn("transfer refused by the dial-out policy; nothing dialled")
		return c.transferDone(ctx, res, kind, nil)
	}
	// The caller leaves its bridge (and the app) with the continue; the
	// bridge goes first, as for any hand-off to the dialplan.
	c.releaseAhead("the next transfer is the PBX's")
	c.releaseBridge()
	c.Settle()
	c.forgetStale()
	unsure := false
	if err := c.app.ari.Continue(ctx, c.id, pbxContext, exten, 1); err != nil {
		if ari.StatusCode(err) != 0 || leaving(ctx, err) {
			return c.pbxNotHanded(ctx, gate, slot, kind, res, err)
		}
		// No answer (a cut connection): it may have been carried out.
		// Awaited as handed; a caller found still in the app is handed
		// again, once.
		c.log.WithError(err).WithField("step", c.rec.Block).Warn("transfer: the continue to the PBX's Dial() got no answer; awaiting the caller as handed")
		unsure = true
	}
	log := c.log.WithFields(logrus.Fields{"step": c.rec.Block, "number": target.Number})
	if next := c.rec.Transfer.Next; next != nil {
		log = log.WithField("chained", next.Block)
	}
	log.Info("transfer: caller handed to the PBX's Dial()")
	return c.awaitPBX(ctx, gate, slot, kind, false, unsure)
}

// pbxRelook is how long after a look found it still in the app a caller
// that may never have been continued (awaitPBX's unsure) is looked at
// again: a continue carried out would have taken it out by then.
const pbxRelook = time.Second

// errPBXNotHanded: the transfer's variable could not be set on the caller.
var errPBXNotHanded = errors.New("not handed to the PBX")

// pbxNotHanded ends a transfer whose caller never left for the PBX's
// Dial() (err says why): Error, or the caller gone.
func (c *call) pbxNotHanded(ctx context.Context, gate *policy.Gate, slot, kind string, res transfer.Result, err error) (string, error) {
	c.pbxBack(gate, slot)
	if leaving(ctx, err) {
		return "", err
	}
	if ari.IsNotFound(err) && !c.callerPresent(ctx) {
		c.gone = true
		return "", fmt.Errorf("%w: %w", ErrCallerGone, err)
	}
	c.log.WithError(err).WithField("step", c.rec.Block).Error("transfer: handing the caller to the PBX's Dial() failed")
	res.Outcome = transfer.OutcomeError
	return c.transferDone(ctx, res, kind, nil)
}

// pbxExtenPrefix starts the extension of [ariflow-dial] that carries the
// transfer's fields itself (_DIAL.), sparing the request that sets
// ARIFLOW_DIAL.
const pbxExtenPrefix = "DIAL"

// pbxExten is the extension of [ariflow-dial] to continue the caller to:
// the fields themselves when they fit an extension (79 bytes of plain
// characters), else "s", which reads ARIFLOW_DIAL. Fields beyond the
// third are the chained transfer's.
func pbxExten(fields string) (string, bool) {
	exten := pbxExtenPrefix + fields
	if len(exten) > 79 {
		return "s", false
	}
	for _, r := range exten {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune("+/@~()<>#*_.:= ", r):
		default:
			return "s", false
		}
	}
	return exten, true
}

// countPBX counts the leg with the dial policy and writes the record's
// "pbx" phase, in one step where the store can; it returns the leg's
// slot ("" when not counted).
func (c *call) countPBX(ctx context.Context, gate *policy.Gate, target record.Target, plan transfer.Plan, chain *pbxChain) (string, error) {
	kept := c.TakeSlot()
	c.rec.Transfer = &record.Transfer{Number: target.Number, Resume: plan.Resume, Agent: plan.Agent, Digits: plan.Digits,
		Dialed: time.Now(), Attempt: 1, Targets: plan.Targets, CallerIDNumber: plan.CallerIDNumber, CallerIDName: plan.CallerIDName}
	c.rec.Outbound = ""
	if gate == nil || target.Ungated {
		kept.ReleaseLater(c, c.log)
		if err := c.setPhase(ctx, record.PhasePBX, true); err != nil {
			return "", fmt.Errorf("%w: %w", errPBXUnsaved, err)
		}
		return "", nil
	}
	leg := c.pbxLeg(target.Number, c.rec.Transfers)
	if c.rec.Transfers > 0 {
		leg.Ended = transfer.Slot(c.id, c.rec.Transfers-1)
	}
	if kept.Slot != leg.Ended || kept.Gate != transfer.Gate(gate) {
		// Not the slot the count gives back: given back now.
		kept.ReleaseLater(c, c.log)
	}
	if err := gate.Check(leg); err != nil {
		return "", err
	}
	var next *policy.Leg
	if chain != nil {
		next = c.chainedLeg(gate, chain)
	}
	along, ok := gate.CountAlongThen(leg, next)
	ok = ok && c.CountsAlong()
	if !ok {
		// Counters not on Redis: each leg is counted on its own, this
		// transfer's first.
		if err := countOnce(ctx, gate, leg); err != nil {
			return "", err
		}
		if next != nil {
			if err := countOnce(ctx, gate, *next); err != nil {
				c.notChained(chain, err)
				next = nil
			}
		}
	}
	if next != nil {
		chain.rec.Slot = next.Slot
		c.rec.Transfer.Next = &chain.rec
	}
	c.rec.Transfers++
	chained := 0
	if c.rec.Transfer.Next != nil {
		chained = 1
		c.rec.Transfers++
	}
	undo := func() {
		c.rec.Transfers -= 1 + chained
		if next := c.rec.Transfer.Next; next != nil {
			transfer.EndedSlot{Slot: next.Slot, Gate: gate}.ReleaseLater(c, c.log)
			c.rec.Transfer.Next = nil
		}
	}
	if ok {
		var alt *record.Call
		if chained == 1 {
			// Written instead when the count refuses the chained leg.
			r := c.rec
			t := *r.Transfer
			t.Next = nil
			r.Transfer, r.Transfers = &t, r.Transfers-1
			alt = &r
		}
		wrote, err := c.setPhaseAlong(ctx, record.PhasePBX, along, alt)
		if err != nil {
			undo()
		} else if wrote.Else {
			c.notChained(chain, along.ThenVerdict(wrote.Code))
		}
		return leg.Slot, err
	}
	if err := c.setPhase(ctx, record.PhasePBX, true); err != nil {
		undo()
		c.pbxBack(gate, leg.Slot)
		return "", fmt.Errorf("%w: %w", errPBXUnsaved, err)
	}
	return leg.Slot, nil
}

// pbxLeg is the call's n-th counted leg, to number, as the dial policy
// sees it (transfer's policyLeg, for a leg the PBX dials).
func (c *call) pbxLeg(number string, n int) policy.Leg {
	sys := c.rec.Attributes[flows.NSSystem]
	return policy.Leg{Slot: transfer.Slot(c.id, n), Caller: sys[flows.SysCallerNumber], Entry: sys[flows.SysDialedNumber],
		Number: number, TransfersSoFar: n}
}

// pbxChain is the transfer a PBX-carried transfer's Success branch leads
// to, when the PBX can dial it right after (chainable).
type pbxChain struct {
	target record.Target
	fields string
	rec    record.Chained
}

// chainedLeg is the chained transfer's leg (its slot after this
// transfer's own), to be counted with it; nil when the dial policy
// refuses it at once: nothing is chained then.
func (c *call) chainedLeg(gate *policy.Gate, chain *pbxChain) *policy.Leg {
	leg := c.pbxLeg(chain.target.Number, c.rec.Transfers+1)
	if err := gate.Check(leg); err != nil {
		c.notChained(chain, err)
		return nil
	}
	return &leg
}

// notChained logs why the chained transfer was not counted: the caller
// comes back after this transfer, and the flow goes on from there.
func (c *call) notChained(chain *pbxChain, err error) {
	c.log.WithError(err).WithFields(logrus.Fields{"step": c.rec.Block, "next": chain.rec.Block}).Info("transfer: the next transfer not chained to this one: the dial policy did not count it")
}

// chainable is the transfer the PBX can dial right after this one, once
// it was answered and has ended: the block its Success branch leads to,
// when that block is carried by the PBX too, dials one counted number
// with Connect's settings only, and reads nothing this transfer's result
// changes ($.Transfer). Its plan is resolved now, as it would be then.
func (c *call) chainable(plan transfer.Plan) *pbxChain {
	if c.flow == nil || !plan.Resume || plan.Agent || plan.Targets[0].Ungated || c.gate() == nil {
		return nil
	}
	b := c.flow.Blocks[c.rec.Block]
	if b == nil {
		return nil
	}
	id, ok := b.Next(flows.BranchSuccess)
	next := c.flow.Blocks[id]
	if !ok || next == nil || next.ID == b.ID {
		return nil
	}
	var p transfer.Plan
	switch {
	case next.Type == flows.TypeTransferToPhoneNumber && next.Transfer != nil && c.viaPBX(next.Transfer.DialVia):
		t := next.Transfer
		if readsTransfer(append([]flows.Value{t.Number, t.Timeout, t.DTMF, t.CallerIDNumber, t.CallerIDName}, t.Timeouts...)...) {
			return nil
		}
		var err error
		if p, err = transfer.Resolve(t, c.rec.Attributes, c.app.settings()); err != nil || p.BeyondConnect() {
			return nil
		}
	case next.Type == flows.TypeTransferToAgent && next.Agent != nil && next.Agent.Context == "" && c.viaPBX(next.Agent.DialVia):
		if readsTransfer(next.Agent.Endpoint, next.Agent.Timeout) {
			return nil
		}
		var rule string
		var err error
		if p, rule, err = c.agentPlan(next.Agent); rule != "" || err != nil {
			return nil
		}
	default:
		return nil
	}
	fields, err := c.pbxFields(p)
	if err != nil || p.Targets[0].Ungated {
		return nil
	}
	t := p.Targets[0]
	return &pbxChain{target: t, fields: fields,
		rec: record.Chained{Block: next.ID, Number: t.Number, Agent: p.Agent, Resume: p.Resume, Digits: p.Digits}}
}

// readsTransfer tells whether any of vs reads $.Transfer (which the
// transfer before changes).
func readsTransfer(vs ...flows.Value) bool {
	for _, v := range vs {
		if v.Ref != nil && v.Ref.Namespace == flows.NSTransfer || v.Template && strings.Contains(v.Literal, "$."+string(flows.NSTransfer)) {
			return true
		}
	}
	return false
}

// countOnce counts leg with the policy's counters.
func countOnce(ctx context.Context, gate *policy.Gate, leg policy.Leg) error {
	_, err := gate.Count(ctx, leg)
	return err
}

// pbxBack puts the call back in the flow after a transfer the PBX carried
// (or that never left): the leg's slot is kept for the next count to give
// back.
func (c *call) pbxBack(gate *policy.Gate, slot string) {
	c.rec.Phase = record.PhaseFlow
	c.rec.Transfer = nil
	if slot != "" {
		c.KeepSlot(transfer.EndedSlot{Slot: slot, Gate: gate})
	}
}

// awaitPBX waits for the caller to come back from [ariflow-dial], and
// takes the branch its dial status says. A caller gone ends the call.
// unsure: the continue may not have been made (the call was adopted,
// and its process may have ended between the record's write and the
// continue; or the continue got no answer); a caller found twice in the
// app with the arguments it came in with is then handed over again
// (pbxHandAgain), once.
func (c *call) awaitPBX(ctx context.Context, gate *policy.Gate, slot, kind string, stayed, unsure bool) (string, error) {
	c.paced()
	left := false // the StasisEnd of the caller's leaving seen
	wait := c.app.pbxWaitBegin(c)
	defer c.app.pbxWaitEnd(c)
	// A caller found in the app with its entry's arguments while unsure
	// is looked at again soon, not at the next list: it may never have
	// left, and it hears nothing meanwhile.
	var relook <-chan time.Time
	for {
		if unsure && stayed && relook == nil {
			relook = time.After(pbxRelook)
		}
		ev, _, err := c.receive(ctx, relook)
		if errors.Is(err, errTimeout) {
			relook, ev, err = nil, &checkChannels{}, nil
		}
		if err != nil {
			return "", err
		}
		switch ev.(type) {
		case *checkChannels, *pbxSeen:
		default:
			// The controller's own entries (a rewrite of the record after
			// Redis lost it) are handled as anywhere else.
			if ev = c.internal(ctx, ev); ev == nil {
				continue
			}
		}
		var args []string
		back, gone, looked := false, false, false
		switch e := ev.(type) {
		case *pbxSeen:
			// lookPBX's look at every channel: the caller's return or
			// hangup may have gone unseen. A look for an earlier trip to
			// the PBX says nothing of this one.
			if e.wait != wait {
				continue
			}
			args, back, gone = c.pbxJudge(e.ch, nil, &stayed)
			looked = true
		case *checkChannels:
			// The event path made again: events may have been lost.
			args, back, gone = c.pbxLook(ctx, &stayed)
			looked = true
		case *ari.StasisStart:
			args, back = e.Args, e.Channel.ID == c.id
		case *ari.StasisEnd:
			if e.Channel.ID == c.id {
				// The caller left the app for the dialplan, as asked: not
				// its hangup (deliver took it for one). A hangup queued
				// after it still ends the call here or at the next wait.
				c.hungUp.Store(false)
				left, unsure = true, false
			}
		case *ari.ChannelDestroyed:
			gone = e.Channel.ID == c.id
		case *ari.ChannelHangupRequest:
			gone = e.Channel.ID == c.id
		}
		switch {
		case gone:
			c.gone = true
			c.pbxReleaseAll(gate, slot)
			if c.pbxEndsThere() {
				c.app.metrics.Transfers.WithLabelValues(c.pbxEndKind(kind) + pbxEndedOutcome).Inc()
				c.log.WithField("step", c.rec.Block).Info("transfer: the call ended in the PBX's Dial() (its last transfer answered and ended, or the caller hung up)")
				return "", errEndedInPBX
			}
			c.log.WithField("step", c.rec.Block).Info("transfer: the caller hung up while the PBX carried its transfer")
			return "", ErrCallerGone
		case back && looked && unsure && pbxArg(args, 0) != BackArg:
			unsure = false
			if err := c.pbxHandAgain(ctx, gate); err != nil {
				if leaving(ctx, err) {
					return "", err
				}
				// The next look decides: gone, left after all, or still
				// here (back, its dial status unknown: Error).
				c.log.WithError(err).WithField("step", c.rec.Block).Error("transfer: handing the caller to the PBX's Dial() again failed")
				continue
			}
			wait, stayed, left = c.app.pbxWaitBegin(c), false, false
		case back:
			if looked {
				// Found back before its events came (they may be late, or
				// lost with a replaced connection): the StasisEnd of its
				// leaving, if not seen, and the StasisStart of its return
				// are not news when they come.
				c.expectStale(!left, args)
			}
			return c.pbxReturned(ctx, gate, slot, kind, args)
		}
	}
}

// expectStale has deliver drop the caller's StasisEnd (end) and its
// StasisStart with args, of a return found by looking. A trip to the
// PBX begun later forgets them (forgetStale).
func (c *call) expectStale(end bool, args []string) {
	c.staleEnd.Store(end)
	joined := strings.Join(args, ",")
	c.staleStart.Store(&joined)
	// Those queued already go too, and the hangup their delivery noted
	// with them, unless a real one is queued.
	c.queuedEnd(c.id) // the queue moved to pending, in order
	gone := false
	c.pending = slices.DeleteFunc(c.pending, func(ev ari.Event) bool {
		if c.staleTrip(ev) {
			return true
		}
		gone = gone || c.callerGone(ev)
		return false
	})
	c.hungUp.Store(gone)
}

// forgetStale clears what expectStale kept: a lost event must not take a
// later one for it.
func (c *call) forgetStale() {
	c.staleEnd.Store(false)
	c.staleStart.Store(nil)
}

// staleTrip tells whether ev is one of the caller's events expectStale
// named; it is then dropped, once. A StasisEnd dropped so cannot hide a
// hangup: ChannelHangupRequest and ChannelDestroyed still say it.
func (c *call) staleTrip(ev ari.Event) bool {
	switch e := ev.(type) {
	case *ari.StasisEnd:
		return e.Channel.ID == c.id && c.staleEnd.CompareAndSwap(true, false)
	case *ari.StasisStart:
		if e.Channel.ID != c.id {
			return false
		}
		want := c.staleStart.Load()
		return want != nil && *want == strings.Join(e.Args, ",") && c.staleStart.CompareAndSwap(want, nil)
	}
	return false
}

// pbxLook asks Asterisk where the caller is (pbxJudge).
func (c *call) pbxLook(ctx context.Context, stayed *bool) (args []string, back, gone bool) {
	ch, err := c.app.ari.Channel(ctx, c.id)
	return c.pbxJudge(&ch, err, stayed)
}

// pbxJudge says where a look found the caller: back in the app (with
// its Stasis arguments), gone (ch nil, or 404), or still in the dialplan
// (neither). An error says neither: the next look decides. A caller in
// the app without BackArg may not have left it yet (a continue is carried
// out after its answer): it counts as back only when seen so twice
// (stayed). One still in the Stasis() of its previous return, with
// BackArg, is not looked at so soon (lookPBX).
func (c *call) pbxJudge(ch *ari.Channel, err error, stayed *bool) (args []string, back, gone bool) {
	switch {
	case ari.IsNotFound(err) || err == nil && ch == nil:
		return nil, false, true
	case err != nil:
		c.log.WithError(err).Warn("transfer: looking for the caller the PBX carries failed; looking again later")
		return nil, false, false
	case !ch.InApp(c.app.cfg.App):
		*stayed = false
		return nil, false, false
	}
	args = ch.AppArgs()
	if len(args) > 0 && args[0] == BackArg || *stayed {
		return args, true, false
	}
	*stayed = true
	return nil, false, false
}

// pbxSeen is what one look at every channel (lookPBX) found of a waiting
// call's caller: its channel, nil when it has none; wait is the trip to
// the PBX it was looked at for.
type pbxSeen struct {
	ari.EventData
	wait *pbxWait
	ch   *ari.Channel
}

func (*pbxSeen) Keys() ari.Keys { return nil }

// pbxWait is one trip of a call's caller to the PBX, as lookPBX sees it.
type pbxWait struct{ since time.Time }

// pbxWaitBegin adds c to the calls lookPBX looks after, for a new trip.
func (a *App) pbxWaitBegin(c *call) *pbxWait {
	w := &pbxWait{since: time.Now()}
	a.pbxMu.Lock()
	defer a.pbxMu.Unlock()
	a.pbxWaiting[c] = w
	return w
}

// pbxWaitEnd takes c out of the calls lookPBX looks after.
func (a *App) pbxWaitEnd(c *call) {
	a.pbxMu.Lock()
	defer a.pbxMu.Unlock()
	delete(a.pbxWaiting, c)
}

// lookPBX looks every Config.PBXCheck, while calls wait for callers the
// PBX's Dial() carries, at every channel Asterisk has, and tells each of
// those calls what became of its caller. One request serves all of them,
// however long their transfers last: a look per call, made again for
// every few seconds of every transfer, would cost the PBX more than the
// rest of the call does.
func (a *App) lookPBX(ctx context.Context) {
	tick := time.NewTicker(a.cfg.PBXCheck)
	defer tick.Stop()
	failed := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		// A caller is looked at from half a period after its trip began:
		// just after the continue it may still be in the app, in the
		// Stasis() it is leaving (pbxJudge).
		type looked struct {
			c *call
			w *pbxWait
		}
		var waiting []looked
		a.pbxMu.Lock()
		for c, w := range a.pbxWaiting {
			if time.Since(w.since) >= a.cfg.PBXCheck/2 {
				waiting = append(waiting, looked{c, w})
			}
		}
		a.pbxMu.Unlock()
		if len(waiting) == 0 {
			continue
		}
		// Listed after every one of them began to wait: a caller not in
		// the list is gone.
		cctx, cancel := context.WithTimeout(ctx, a.cfg.RESTTimeout)
		chans, err := a.ari.Channels(cctx)
		cancel()
		if err != nil {
			if !failed && ctx.Err() == nil {
				a.log.WithError(err).WithField("waiting", len(waiting)).Warn("transfer: looking for the callers the PBX carries failed; looking again later")
			}
			failed = true
			continue
		}
		failed = false
		byID := make(map[string]*ari.Channel, len(chans))
		for i := range chans {
			byID[chans[i].ID] = &chans[i]
		}
		for _, l := range waiting {
			l.c.deliver(&pbxSeen{wait: l.w, ch: byID[l.c.id]})
		}
	}
}

// pbxReturned takes the caller back from the PBX's Dial(): args are its
// Stasis arguments (BackArg, DIALSTATUS, DIALEDTIME_MS, ANSWEREDTIME_MS,
// HANGUPCAUSE, and the first transfer's "status~dialed~answered~cause"
// when the PBX went on to the chained one).
func (c *call) pbxReturned(ctx context.Context, gate *policy.Gate, slot, kind string, args []string) (string, error) {
	ts := c.rec.Transfer
	if ts == nil {
		ts = &record.Transfer{Resume: true}
	}
	if next := ts.Next; next != nil {
		if first := pbxArg(args, 5); first != "" && pbxArg(args, 0) == BackArg {
			// Both ran: this block's result first (Success, the chained
			// one's only way in), then the chained block's, which is kept
			// for that block to take (chainedRan).
			transfer.EndedSlot{Slot: slot, Gate: gate}.ReleaseLater(c, c.log)
			c.chained = &chainedResult{Chained: *next, args: args[:5]}
			return c.pbxEnded(ctx, gate, "", kind, append([]string{BackArg}, strings.Split(first, "~")...), ts.Number, ts.Digits, ts.Resume, ts.Agent)
		}
		// This one was not answered: the chained one was never dialled.
		transfer.EndedSlot{Slot: next.Slot, Gate: gate}.ReleaseLater(c, c.log)
	}
	return c.pbxEnded(ctx, gate, slot, kind, args, ts.Number, ts.Digits, ts.Resume, ts.Agent)
}

// pbxEndedOutcome is the outcome ariflow_transfers_total counts for the
// last transfer of a call that ended in the PBX (errEndedInPBX).
const pbxEndedOutcome = "ended-in-pbx"

// pbxEndKind is the metrics' kind ("" or "agent-") of the hand-off's last
// transfer; kind is the first's.
func (c *call) pbxEndKind(kind string) string {
	if t := c.rec.Transfer; t != nil && t.Next != nil {
		if t.Next.Agent {
			return "agent-"
		}
		return ""
	}
	return kind
}

// pbxArg is args[i], "" when there are fewer.
func pbxArg(args []string, i int) string {
	if i < len(args) {
		return args[i]
	}
	return ""
}

// pbxEnded ends a transfer the PBX's Dial() carried, from its Stasis
// arguments (see pbxReturned): the branch its status says, or the call's
// end for an answered transfer that does not resume the flow.
func (c *call) pbxEnded(ctx context.Context, gate *policy.Gate, slot, kind string, args []string, number, digits string, resume, agent bool) (string, error) {
	ms := func(i int) time.Duration {
		n, _ := strconv.Atoi(pbxArg(args, i))
		return time.Duration(n) * time.Millisecond
	}
	status := pbxArg(args, 1)
	if pbxArg(args, 0) != BackArg {
		status = "" // back by another way (a redirect): the status is not known
	}
	res := transfer.Result{Attempts: 1, Number: number}
	res.Cause, _ = strconv.Atoi(pbxArg(args, 4))
	res.Outcome = transfer.OutcomeForDialStatus(status)
	if res.Outcome == "" {
		res.Outcome = transfer.OutcomeError
	}
	if res.Outcome == transfer.OutcomeSuccess {
		talk := ms(3)
		res.TalkTime, res.RingTime = talk, max(ms(2)-talk, 0)
		res.Answered, res.Digits, res.EndedBy = time.Now().Add(-talk), digits, flows.EndedByFarEnd
		c.rec.Unanswered = false // Dial() answered the caller as it bridged
	}
	c.pbxBack(gate, slot)
	log := c.log.WithFields(logrus.Fields{"step": c.rec.Block, "dial_status": status, "outcome": res.Outcome})
	if res.Outcome == transfer.OutcomeSuccess && (!resume || agent) {
		// Connected, and not to come back to the flow: the call is over
		// once the far end has hung up.
		log.Info("transfer: the PBX's Dial() ended; the call ends with it")
		res.Record(c.rec.Attributes)
		c.app.metrics.Transfers.WithLabelValues(kind + string(res.Outcome)).Inc()
		return "", nil
	}
	log.Info("transfer: the caller is back from the PBX's Dial()")
	return c.transferDone(ctx, res, kind, nil)
}

// chainedResult is the result of a transfer the PBX dialled right after
// the one before it (record.Chained), for its block to take.
type chainedResult struct {
	record.Chained
	args []string // its Stasis arguments, as pbxEnded reads them
}

// chainedRan ends block b at once when the PBX has run it already,
// chained to the transfer before it (ran true); kind is "" or "agent-".
func (c *call) chainedRan(ctx context.Context, b string, kind string) (branch string, ran bool, err error) {
	ch := c.chained
	if ch == nil || ch.Block != b {
		return "", false, nil
	}
	c.chained = nil
	branch, err = c.pbxEnded(ctx, c.gate(), ch.Slot, kind, ch.args, ch.Number, ch.Digits, ch.Resume, ch.Agent)
	return branch, true, err
}

// adoptPBX takes over a call whose transfer the PBX carries: its caller
// is back already, gone, or still in the dialplan (then it is awaited).
func (c *call) adoptPBX(ctx context.Context) (string, error) {
	gate, slot, kind := c.gate(), "", ""
	if ts := c.rec.Transfer; ts != nil {
		if ts.Agent {
			kind = "agent-"
		}
		n := c.rec.Transfers - 1
		if ts.Next != nil {
			n-- // the chained transfer's slot is the last
		}
		if n >= 0 && gate != nil && (len(ts.Targets) == 0 || !ts.Targets[0].Ungated) {
			slot = transfer.Slot(c.id, n)
		}
	}
	stayed := false
	args, back, gone := c.pbxLook(ctx, &stayed)
	switch {
	case gone:
		c.gone = true
		c.pbxReleaseAll(gate, slot)
		return "", ErrCallerGone
	case back:
		c.expectStale(false, args)
		return c.pbxReturned(ctx, gate, slot, kind, args)
	}
	c.log.WithField("step", c.rec.Block).Info("transfer: adopted while the PBX carries it; awaiting the caller's return")
	return c.awaitPBX(ctx, gate, slot, kind, stayed, true)
}

// pbxHandAgain hands the caller to the PBX's Dial() once more: it never
// left the app (its process ended between the record's write and the
// continue, or the continue was cut). The fields are rebuilt from the
// record; the chained transfer goes with them when the flow still chains
// the same one, else it is given back, and the record says so before
// the continue.
func (c *call) pbxHandAgain(ctx context.Context, gate *policy.Gate) error {
	ts := c.rec.Transfer
	if ts == nil {
		return errors.New("the record holds no transfer")
	}
	plan := transfer.Plan{Targets: ts.Targets, Digits: ts.Digits, CallerIDNumber: ts.CallerIDNumber, CallerIDName: ts.CallerIDName,
		Resume: ts.Resume, Agent: ts.Agent}
	fields, err := c.pbxFields(plan)
	if err != nil {
		return fmt.Errorf("the transfer's fields from its record: %w", err)
	}
	all := fields
	if next := ts.Next; next != nil {
		if ch := c.chainable(plan); ch != nil && ch.rec.Block == next.Block && ch.target.Number == next.Number {
			all += "~" + ch.fields
		} else {
			transfer.EndedSlot{Slot: next.Slot, Gate: gate}.ReleaseLater(c, c.log)
			c.rec.Transfers--
			ts.Next = nil
			if err := c.save(ctx); err != nil {
				return fmt.Errorf("%w: %w", errPBXUnsaved, err)
			}
		}
	}
	exten, inExten := pbxExten(all)
	if !inExten {
		if err := c.app.ari.SetVariable(ctx, c.id, pbxVar, all); err != nil {
			return err
		}
	}
	c.forgetStale()
	if err := c.app.ari.Continue(ctx, c.id, pbxContext, exten, 1); err != nil {
		return err
	}
	c.log.WithFields(logrus.Fields{"step": c.rec.Block, "number": ts.Number}).Warn("transfer: the caller had not left for the PBX's Dial(); handed to it now")
	return nil
}

// pbxReturn handles a caller back from [ariflow-dial] that no call here
// awaits: its record says where it was.
func (a *App) pbxReturn(ctx context.Context, id string, log *logrus.Entry) {
	rec, err := a.store.Load(ctx, id)
	switch {
	case err == nil:
		log.WithField("call_id", id).Info("caller back from the PBX's Dial(); adopting its call")
		a.adoptRecord(ctx, rec)
	case errors.Is(err, record.ErrNoRecord):
		log.Error("caller back from the PBX's Dial() without a call record")
		a.toFallback(context.WithoutCancel(ctx), id, "no-record", log)
	default:
		// The store cannot say now: reconcile adopts it (or sends it to
		// the fallback) once it can.
		log.WithError(err).Warn("caller back from the PBX's Dial(); its record could not be read; reconciling")
		a.reconcileLeft(ctx)
	}
}

// pbxReleaseAll gives back, for a caller gone while the PBX carried its
// transfer, the slots of that transfer's leg and of the one chained to it.
func (c *call) pbxReleaseAll(gate *policy.Gate, slot string) {
	next := ""
	if ts := c.rec.Transfer; ts != nil && ts.Next != nil {
		next = ts.Next.Slot
	}
	if gate != nil {
		transfer.ReleaseLater(c, c.log, gate, slot, next) // one step for both; "" gives nothing back
	}
}
