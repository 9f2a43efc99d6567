package observe

import (
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/ariflow/ariflow/record"
	"github.com/ariflow/ariflow/transfer"
)

// Span names. A call's tree:
//
//	call                               the caller's time in the app, per process
//	├── <block type>                   one per block run (PlayPrompt, …)
//	│   ├── transfer.dialing           under a transfer block, one per phase
//	│   ├── transfer.ringing             of each number tried
//	│   ├── transfer.screening
//	│   ├── transfer.bridged
//	│   └── transfer.ended             the block's outcome
//	└── …
//
// A process that takes a call over starts its own call span as a child of
// the first process's, named in the record (record.Call.Trace): one trace
// for the whole call, one call span per process that served it.
const (
	SpanCall        = "call"
	SpanPhasePrefix = "transfer."
	SpanEnded       = "transfer.ended"
)

// Attribute keys an operator searches by.
const (
	AttrCallID      = attribute.Key("ariflow.call.id")
	AttrChannel     = attribute.Key("ariflow.channel")
	AttrCaller      = attribute.Key("ariflow.caller.number")
	AttrDialed      = attribute.Key("ariflow.dialed.number")
	AttrFlow        = attribute.Key("ariflow.flow.name")
	AttrFlowVersion = attribute.Key("ariflow.flow.version")
	AttrProcess     = attribute.Key("ariflow.process")
	AttrAdopted     = attribute.Key("ariflow.adopted")
	AttrAdoptedFrom = attribute.Key("ariflow.adopted.from")
	AttrEnd         = attribute.Key("ariflow.end.reason")
	AttrBlock       = attribute.Key("ariflow.block.id")
	AttrBlockType   = attribute.Key("ariflow.block.type")
	AttrBranch      = attribute.Key("ariflow.block.branch")
	AttrState       = attribute.Key("ariflow.transfer.state")
	AttrNumber      = attribute.Key("ariflow.transfer.number")
	AttrAttempt     = attribute.Key("ariflow.transfer.attempt")
	AttrLeg         = attribute.Key("ariflow.transfer.leg")
	AttrOutcome     = attribute.Key("ariflow.transfer.outcome")
	AttrCause       = attribute.Key("ariflow.transfer.cause")
	AttrCauseText   = attribute.Key("ariflow.transfer.cause_text")
	AttrSIPCode     = attribute.Key("ariflow.transfer.sip_code")
	AttrDeniedBy    = attribute.Key("ariflow.transfer.denied_by")
	AttrEndedBy     = attribute.Key("ariflow.transfer.ended_by")
	AttrAttempts    = attribute.Key("ariflow.transfer.attempts")
	AttrRingTime    = attribute.Key("ariflow.transfer.ring_time_s")
	AttrTalkTime    = attribute.Key("ariflow.transfer.talk_time_s")
	AttrDigits      = attribute.Key("ariflow.transfer.digits_sent")
)

// CallInfo is what a call span says of the call.
type CallInfo struct {
	CallID, Channel, Caller, Dialed, Flow, Version, Process string
	// Adopted: this process took the call over from AdoptedFrom.
	Adopted     bool
	AdoptedFrom string
}

// StartCall starts a call's span at start. parent is a W3C traceparent:
// the caller's INVITE's (a new call continues the caller's trace) or the
// record's (a call taken over continues its own); "" or a malformed one
// starts a new trace.
func (t *Tracer) StartCall(parent string, start time.Time, ci CallInfo) Span {
	if t == nil {
		return Span{}
	}
	psc, _ := ParseTraceparent(parent)
	kv := []attribute.KeyValue{AttrCallID.String(ci.CallID), AttrChannel.String(ci.Channel),
		AttrCaller.String(t.Number(ci.Caller)), AttrDialed.String(ci.Dialed),
		AttrFlow.String(ci.Flow), AttrFlowVersion.String(ci.Version), AttrProcess.String(ci.Process)}
	if ci.Adopted {
		kv = append(kv, AttrAdopted.Bool(true), AttrAdoptedFrom.String(ci.AdoptedFrom))
	}
	return t.start(psc, SpanCall, start, trace.SpanKindServer, kv...)
}

// EndCall ends a call's span with the end reason (Outcome codes of the
// call record) and the error that ended it, if any.
func EndCall(s Span, reason string, err error) {
	if !s.Recording() {
		return
	}
	s.Set(AttrEnd.String(reason))
	s.SetError(err)
	s.End()
}

// StartBlock starts a block's span under the call's.
func (t *Tracer) StartBlock(call Span, id, typ string) Span {
	if t == nil || !call.Recording() {
		return Span{}
	}
	return t.start(call.SpanContext(), typ, time.Time{}, trace.SpanKindInternal, AttrBlock.String(id), AttrBlockType.String(typ))
}

// EndBlock ends a block's span with the branch it took, or the error
// that ended the call in it.
func EndBlock(s Span, branch string, err error) {
	if !s.Recording() {
		return
	}
	if branch != "" {
		s.Set(AttrBranch.String(branch))
	}
	s.SetError(err)
	s.End()
}

// StartPhase starts a transfer phase's span under the block's.
func (t *Tracer) StartPhase(block Span, st transfer.StateChange) Span {
	if t == nil || !block.Recording() {
		return Span{}
	}
	kind := trace.SpanKindInternal
	if st.State == record.StateDialing {
		kind = trace.SpanKindClient // it makes the outbound call: the far end's INVITE carries it
	}
	return t.start(block.SpanContext(), SpanPhasePrefix+string(st.State), time.Time{}, kind,
		AttrState.String(string(st.State)), AttrNumber.String(t.Number(st.Number)),
		AttrAttempt.Int(st.Attempt), AttrLeg.String(st.Leg))
}

// NumberDone records a number's result on the phase span it ended in (if
// any) and as an event on the block's span, so that numbers the dial
// policy refused, which have no phase, show too.
func (t *Tracer) NumberDone(block, phase Span, attempt int, res transfer.Result) {
	if t == nil {
		return
	}
	kv := t.resultAttrs(res)
	kv = append(kv, AttrAttempt.Int(attempt))
	phase.Set(kv...)
	block.Event("number", kv...)
}

// Ended records a transfer block's end: a short transfer.ended span under
// the block's with its outcome, which the block's span carries too.
func (t *Tracer) Ended(block Span, res transfer.Result, err error) {
	if t == nil || !block.Recording() {
		return
	}
	kv := t.resultAttrs(res)
	kv = append(kv, AttrAttempts.Int(res.Attempts),
		AttrRingTime.Float64(res.RingTime.Seconds()), AttrTalkTime.Float64(res.TalkTime.Seconds()),
		AttrDigits.Int(len(res.Digits)))
	block.Set(kv...)
	s := t.start(block.SpanContext(), SpanEnded, time.Time{}, trace.SpanKindInternal, kv...)
	s.SetError(err)
	s.End()
}

func (t *Tracer) resultAttrs(res transfer.Result) []attribute.KeyValue {
	kv := []attribute.KeyValue{AttrOutcome.String(string(res.Outcome)), AttrNumber.String(t.Number(res.Number))}
	if res.Cause != 0 {
		kv = append(kv, AttrCause.Int(res.Cause), AttrCauseText.String(transfer.CauseText(res.Cause)))
	}
	if res.SIPCode != 0 {
		kv = append(kv, AttrSIPCode.Int(res.SIPCode))
	}
	if res.DeniedBy != "" {
		kv = append(kv, AttrDeniedBy.String(res.DeniedBy))
	}
	if res.EndedBy != "" {
		kv = append(kv, AttrEndedBy.String(res.EndedBy))
	}
	return kv
}
