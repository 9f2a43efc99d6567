package controller

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/ariflow/ariflow/callrecord"
	"github.com/ariflow/ariflow/flows"
	"github.com/ariflow/ariflow/observe"
	"github.com/ariflow/ariflow/record"
	"github.com/ariflow/ariflow/transfer"
)

// A call's trace (package observe) and its call record (package
// callrecord), both optional (Config.Tracer, Config.Records). The hooks
// below are called from the call's goroutine at its start, at every
// block's start and branch, at every transfer state (transfer.Observer),
// at an adoption and at its end; with neither on, each returns at its
// first check.

// callObs is what a call keeps for its trace: the open spans.
type callObs struct {
	call, block, phase observe.Span
	state              record.TransferState // the open phase's state and leg
	leg                string
	// resumeFrom is when the far end's hangup was seen, until the next
	// block begins (ariflow_resume_seconds).
	resumeFrom time.Time
}

// epochNow is the lease epoch held now (0: none), for the history.
func (a *App) epochNow() int64 { e, _ := a.lease.fence(); return e }

// observing tells whether a process traces or records calls.
func (a *App) observing() bool { return a.cfg.Tracer != nil || a.cfg.Records != nil }

// callerTraceWait bounds how long past its first record a call waits for
// the caller's traceparent: a slow answer to it starts a new trace instead.
const callerTraceWait = 500 * time.Millisecond

// observeNew starts a new call's trace and history: the caller's
// INVITE's traceparent is asked for now, only when tracing is on, beside
// the call's first record; the returned func waits for it (a bounded
// while) and starts both.
func (c *call) observeNew(ctx context.Context) func() {
	a := c.app
	if !a.observing() {
		return func() {}
	}
	var header chan string
	if a.cfg.Tracer.Enabled() {
		header = make(chan string, 1)
		go func() {
			v, err := a.ari.Variable(ctx, c.id, "PJSIP_HEADER(read,"+a.cfg.TraceInviteHeader+")")
			if err != nil {
				v = "" // not set, or not a PJSIP channel: a new trace
			}
			header <- v
		}()
	}
	return func() {
		if h := c.history(); h != nil {
			h.Serve(a.owner, a.epochNow(), c.rec.Started, false)
		}
		if header == nil {
			return
		}
		parent := ""
		select {
		case parent = <-header:
		case <-time.After(callerTraceWait):
		}
		c.startTrace(parent, c.rec.Started, false)
	}
}

// startTrace starts the call's span under parent, and names it in the
// record unless the record names the call's trace already.
func (c *call) startTrace(parent string, at time.Time, adopted bool) {
	ci := observe.CallInfo{CallID: c.id, Channel: c.rec.Channel, Flow: c.rec.Flow, Version: c.rec.Version, Process: c.app.owner}
	if sys := c.rec.Attributes[flows.NSSystem]; sys != nil {
		ci.Caller, ci.Dialed = sys[flows.SysCallerNumber], sys[flows.SysDialedNumber]
	}
	if adopted {
		ci.Adopted, ci.AdoptedFrom = true, c.rec.Owner
	}
	c.obs.call = c.app.cfg.Tracer.StartCall(parent, at, ci)
	if c.rec.Trace == "" {
		c.rec.Trace = c.obs.call.Traceparent()
	}
}

// history is the call's history, begun when records are on; nil when off.
func (c *call) history() *record.History {
	if c.app.cfg.Records == nil {
		return nil
	}
	if c.rec.History == nil {
		c.rec.History = &record.History{}
	}
	return c.rec.History
}

// observeAdopted continues an adopted call's trace and history: its span
// is a child of the call span the record names, and a transfer it is in
// goes on in the block visit and transfer the record holds.
func (c *call) observeAdopted() {
	a := c.app
	if !a.observing() {
		return
	}
	now := time.Now()
	inTransfer := c.rec.Phase == record.PhaseDialing || c.rec.Phase == record.PhaseBridged
	if h := c.history(); h != nil {
		if !inTransfer {
			// The block the last process was in starts again.
			h.Left("", errTakenOver, now)
		}
		h.Serve(a.owner, a.epochNow(), now, true)
	}
	if a.cfg.Tracer.Enabled() {
		c.startTrace(c.rec.Trace, now, true)
		if inTransfer && c.flow != nil {
			if b := c.flow.Blocks[c.rec.Block]; b != nil {
				c.obs.block = a.cfg.Tracer.StartBlock(c.obs.call, b.ID, string(b.Type))
			}
		}
	}
}

// errTakenOver: a block another process was running when it stopped.
var errTakenOver = errors.New("the process running it stopped; another took the call over")

// blockStarted opens block b's span and visit; one left open (a
// TransferToFlow moves on without a branch) is closed first.
func (c *call) blockStarted(b *flows.Block) {
	a := c.app
	if !c.obs.resumeFrom.IsZero() {
		a.metrics.ResumeSeconds.Observe(time.Since(c.obs.resumeFrom).Seconds())
		c.obs.resumeFrom = time.Time{}
	}
	if !a.observing() {
		return
	}
	now := time.Now()
	observe.EndBlock(c.obs.block, "", nil)
	c.obs.block = a.cfg.Tracer.StartBlock(c.obs.call, b.ID, string(b.Type))
	if h := c.history(); h != nil {
		h.Left("", nil, now)
		flow := ""
		if c.flow != nil {
			flow = c.flow.Name
		}
		h.Visit(flow, b.ID, string(b.Type), now)
	}
}

// blockLeft closes the open block's span and visit with the branch it
// took (and the error that sent it to its Error branch).
func (c *call) blockLeft(branch string, err error) {
	if !c.app.observing() {
		return
	}
	observe.EndBlock(c.obs.block, branch, err)
	c.obs.block = observe.Span{}
	if h := c.rec.History; h != nil {
		h.Left(branch, err, time.Now())
	}
}

// observeEnd ends the call's spans and sends its record. A call left to
// another process (stopping) sends none: the process that ends it does.
func (c *call) observeEnd(err error, stopping bool) {
	a := c.app
	if !a.observing() {
		return
	}
	now := time.Now()
	end := c.endOutcome(err, stopping)
	var spanErr error
	if end.Reason == callrecord.EndError || end.Reason == callrecord.EndFallback {
		spanErr = err
	}
	c.phaseOver()
	observe.EndBlock(c.obs.block, "", spanErr)
	observe.EndCall(c.obs.call, end.Reason, spanErr)
	c.obs.call, c.obs.block = observe.Span{}, observe.Span{}
	if stopping || a.cfg.Records == nil {
		return
	}
	if c.rec.History == nil {
		c.history().Serve(a.owner, a.epochNow(), c.rec.Started, false)
	}
	c.rec.History.Left("", nil, now)
	traceID := ""
	if sc, ok := observe.ParseTraceparent(c.rec.Trace); ok {
		traceID = sc.TraceID().String()
	}
	r := callrecord.Build(&c.rec, a.cfg.App, end, now, traceID)
	ctx := context.Background()
	if sc, ok := observe.ParseTraceparent(c.rec.Trace); ok {
		ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
	}
	a.cfg.Records.Send(ctx, r)
}

// endOutcome is how the call ended, as its record says.
func (c *call) endOutcome(err error, stopping bool) callrecord.End {
	e := callrecord.End{Block: c.rec.Block}
	switch {
	case stopping:
		e.Reason = "left-to-another-process"
	case err == nil:
		e.Reason = callrecord.EndDisconnected
	case errors.Is(err, errEndedInPBX):
		// Left with its last transfer, as a caller continued to a queue.
		e.Reason = callrecord.EndHandedOff
	case errors.Is(err, ErrCallerGone):
		e.Reason = callrecord.EndCallerHangup
	case errors.Is(err, errHandedOff):
		e.Reason = callrecord.EndHandedOff
	case c.handedOff:
		e.Reason, e.Error = callrecord.EndFallback, fallbackReason(err)+": "+err.Error()
	default:
		e.Reason, e.Error = callrecord.EndError, err.Error()
	}
	return e
}

// phaseOver ends the open transfer phase's span.
func (c *call) phaseOver() {
	c.obs.phase.End()
	c.obs.phase, c.obs.state, c.obs.leg = observe.Span{}, "", ""
}

// legEventSpan is the trace context a leg event of call id carries: the
// transfer phase it happened in. Leg events are sent from the call's own
// goroutine (transfer.Env.LegEvents), so its spans may be read.
func (a *App) legEventSpan(id string) trace.SpanContext {
	if !a.cfg.Tracer.Enabled() {
		return trace.SpanContext{}
	}
	a.mu.Lock()
	c := a.calls[id]
	a.mu.Unlock()
	if c == nil {
		return trace.SpanContext{}
	}
	if c.obs.phase.Recording() {
		return c.obs.phase.SpanContext()
	}
	return c.obs.block.SpanContext()
}

// xferObserver is the transfers' Observer: their phases as spans under
// the block's, their numbers and outcome in the call's history, and the
// far end's hangup that starts a resume (always, for
// ariflow_resume_seconds).
type xferObserver struct{ a *App }

func (o xferObserver) TransferState(tc transfer.Call, s transfer.StateChange) {
	c, ok := tc.(*call)
	if !ok || !o.a.observing() {
		return
	}
	if c.obs.state == s.State && c.obs.leg == s.Leg {
		return // told twice (a leg's ringing)
	}
	c.phaseOver()
	c.obs.phase = o.a.cfg.Tracer.StartPhase(c.obs.block, s)
	c.obs.state, c.obs.leg = s.State, s.Leg
	if h := c.rec.History; h != nil {
		h.Transfer(c.rec.Block, c.rec.Transfer != nil && c.rec.Transfer.Agent, time.Now())
	}
}

func (o xferObserver) NumberDone(tc transfer.Call, attempt int, res transfer.Result) {
	c, ok := tc.(*call)
	if !ok || !o.a.observing() {
		return
	}
	o.a.cfg.Tracer.NumberDone(c.obs.block, c.obs.phase, attempt, res)
	c.phaseOver()
	if h := c.rec.History; h != nil {
		t := h.Transfer(c.rec.Block, c.rec.Transfer != nil && c.rec.Transfer.Agent, time.Now())
		h.Tried(t, record.NumberTried{Number: res.Number, Attempt: attempt, Outcome: string(res.Outcome), Cause: res.Cause,
			SIPCode: res.SIPCode, DeniedBy: res.DeniedBy, EndedBy: res.EndedBy})
	}
}

func (o xferObserver) TransferEnded(tc transfer.Call, res transfer.Result, err error) {
	c, ok := tc.(*call)
	if !ok {
		return
	}
	if err == nil && res.EndedBy == flows.EndedByFarEnd && !res.Answered.IsZero() {
		c.obs.resumeFrom = res.Answered.Add(res.TalkTime) // when the far end hung up
	}
	if !o.a.observing() {
		return
	}
	c.phaseOver()
	if leavingErr(err) {
		return // the process taking the call over carries the transfer on
	}
	o.a.cfg.Tracer.Ended(c.obs.block, res, err)
	if h := c.rec.History; h != nil {
		t := h.Transfer(c.rec.Block, c.rec.Transfer != nil && c.rec.Transfer.Agent, time.Now())
		t.End, t.Outcome, t.Number, t.Cause, t.SIPCode = time.Now(), string(res.Outcome), res.Number, res.Cause, res.SIPCode
		t.DeniedBy, t.EndedBy, t.Answered, t.Digits, t.Attempts = res.DeniedBy, res.EndedBy, res.Answered, res.Digits, res.Attempts
		t.RingMs, t.TalkMs = res.RingTime.Milliseconds(), res.TalkTime.Milliseconds()
	}
}

func (o xferObserver) Traceparent(tc transfer.Call) string {
	c, ok := tc.(*call)
	if !ok || !o.a.cfg.Tracer.Enabled() {
		return ""
	}
	if c.obs.phase.Recording() {
		return c.obs.phase.Traceparent()
	}
	return c.obs.block.Traceparent()
}

// leavingErr tells an error that leaves the call to another process (see
// leaving) without the context.
func leavingErr(err error) bool {
	return errors.Is(err, ErrFenced) || errors.Is(err, context.Canceled)
}
