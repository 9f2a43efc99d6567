// Package record is a call's persisted position: what a process taking a
// call over reads to carry it on. It holds data and its wire form only; it
// knows nothing of Redis or ARI.
package record

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ariflow/ariflow/flows"
)

// Phase is where a call stands; a process taking a call over reads it to
// decide what to do with a call it finds in Stasis. Each phase means one
// thing, and only the transitions in phaseNext are made.
type Phase string

const (
	PhaseFlow     Phase = "flow"     // running blocks; the caller is in Stasis
	PhaseDialing  Phase = "dialing"  // an outbound leg made and dialled, not yet bridged (Transfer.State says more)
	PhaseBridged  Phase = "bridged"  // answered: caller and far end bridged (Transfer.Resume says what follows)
	PhaseDialplan Phase = "dialplan" // the caller is being handed to the dialplan: not ours any more
	PhasePBX      Phase = "pbx"      // the PBX's Dial() carries the transfer (Transfer says which); the caller comes back to the app
	PhaseEnding   Phase = "ending"   // the call is over, but the caller's hangup got no answer: still to be made
)

// phaseNext lists the transitions a call makes. Dialplan goes back to
// flow only when the hand-off failed (the caller is still in Stasis).
var phaseNext = map[Phase][]Phase{
	"":            {PhaseFlow},
	PhaseFlow:     {PhaseFlow, PhaseDialing, PhaseDialplan, PhasePBX, PhaseEnding},
	PhaseDialing:  {PhaseDialing, PhaseBridged, PhaseFlow, PhaseEnding},
	PhaseBridged:  {PhaseBridged, PhaseDialing, PhaseFlow, PhaseEnding},
	PhaseDialplan: {PhaseFlow},
	PhasePBX:      {PhasePBX, PhaseFlow, PhaseEnding},
	PhaseEnding:   {PhaseEnding},
}

// ErrBadTransition is a phase change the call state machine does not make.
var ErrBadTransition = errors.New("phase transition not allowed")

// CheckTransition refuses a transition that should not happen, instead of
// writing it silently.
func CheckTransition(from, to Phase) error {
	for _, p := range phaseNext[from] {
		if p == to {
			return nil
		}
	}
	return fmt.Errorf("%w: %s -> %s", ErrBadTransition, from, to)
}

// Call is a call's position, as persisted before every side effect that
// depends on it.
type Call struct {
	CallID  string `json:"call_id"`
	Channel string `json:"channel"`
	Flow    string `json:"flow"`
	Version string `json:"version"`
	// Digest names the exact flow source the call runs (flows.Flow.Digest):
	// a process taking the call over runs the same one.
	Digest    string    `json:"digest,omitempty"`
	Block     string    `json:"block"`
	Phase     Phase     `json:"phase"`
	Outbound  string    `json:"outbound,omitempty"`
	Bridge    string    `json:"bridge,omitempty"`
	Transfer  *Transfer `json:"transfer,omitempty"`
	Transfers int       `json:"transfers,omitempty"` // outbound legs dialled so far (dial-out policy cap)
	// ListNext, in the flow phase at a transfer block, is the number (from
	// 0) its list goes on with. Written by versions that saved between two
	// numbers; this version keeps the list in Transfer.
	ListNext   int              `json:"list_next,omitempty"`
	Attributes flows.Attributes `json:"attributes"`
	// Loops are the Loop blocks' counts, by flow/block, and Queue the
	// working queue: call state that survives a takeover and goes with
	// the call into another flow.
	Loops map[string]int `json:"loops,omitempty"`
	Queue *WorkingQueue  `json:"queue,omitempty"`
	// Owner is the process that wrote the record and Epoch its lease
	// epoch: the store refuses a write whose epoch is older than the
	// record's (fencing), and a process taking over logs whose call it
	// adopts.
	Owner   string    `json:"owner"`
	Epoch   int64     `json:"epoch"`
	Started time.Time `json:"started"`
	Updated time.Time `json:"updated"`
	// Unanswered: written before the caller was answered (the call's
	// first write, made before the answer so that an answered caller
	// always has a record, and every write until the answer): a process
	// adopting the call answers it where this one would have, at the
	// first block that needs its audio or as its transfer's far end is
	// bridged.
	Unanswered bool `json:"unanswered,omitempty"`
	// Trace is the call span's W3C traceparent (package observe): a
	// process taking the call over continues its trace.
	Trace string `json:"trace,omitempty"`
	// History is what the call did so far, kept while call records are on.
	History *History `json:"history,omitempty"`
}

// WorkingQueue is the queue a SetWorkingQueue block set: the dialplan
// place TransferToQueue continues the caller in.
type WorkingQueue struct {
	Name      string `json:"name"`
	Context   string `json:"context"`
	Extension string `json:"extension"`
	Priority  int    `json:"priority,omitempty"`
}

// TransferState names a transfer's state machine state (package transfer).
type TransferState string

// The states a record can name. Created is saved before the leg is made
// and dialing before it is dialled, so that a process taking over knows
// whether to dial it. A transfer that ends answered is not saved (a
// process taking over finds the leg gone and resumes just the same); one
// that ends unanswered is (Ended, with its outcome and cause: they went
// with the leg). The next block's write clears Transfer.
const (
	StateCreated   TransferState = "created"
	StateDialing   TransferState = "dialing"
	StateRinging   TransferState = "ringing"
	StateScreening TransferState = "screening"
	StateBridged   TransferState = "bridged"
	StateEnded     TransferState = "ended"
)

// Transfer is the running transfer block, enough for another process to
// carry it on in the same state machine: keep ringing, bridge an answer it
// missed, continue the digits from the one reached, go on with the next
// number of the list.
type Transfer struct {
	// State is the machine's state when the record was written; empty in
	// records of older versions (the phase tells then).
	State        TransferState `json:"state,omitempty"`
	Number       string        `json:"number"`
	Resume       bool          `json:"resume"`
	Agent        bool          `json:"agent,omitempty"`
	Digits       string        `json:"digits,omitempty"`      // validated; ',' is a pause
	DigitsDone   int           `json:"digits_done,omitempty"` // characters of Digits sent (or paused)
	Dialed       time.Time     `json:"dialed"`
	RingDeadline time.Time     `json:"ring_deadline"`
	Answered     time.Time     `json:"answered,omitzero"`
	// Attempt is the leg's place (from 1) in its block's list of numbers.
	Attempt int `json:"attempt,omitempty"`
	// Created: the leg was made in Stasis and dialled; false for legs
	// versions before 2026-11 originated into the app.
	Created bool `json:"created,omitempty"`
	// Targets is the block's whole list, resolved when the block began
	// (number, dial string, ring timeout): the list goes on from Attempt
	// even if the flow changed meanwhile.
	Targets []Target `json:"targets,omitempty"`
	// CallerIDNumber and CallerIDName are what the far end is shown.
	CallerIDNumber string `json:"cid_num,omitempty"`
	CallerIDName   string `json:"cid_name,omitempty"`
	// Options are the block's options a transfer still needs after a
	// takeover (DTMF cadence, return key, time limit, screening).
	Options *TransferOptions `json:"options,omitempty"`
	// Outcome, Cause and SIPCode are an ended transfer's result.
	Outcome string `json:"outcome,omitempty"`
	Cause   int    `json:"cause,omitempty"`
	SIPCode int    `json:"sip_code,omitempty"`
	// Next is the transfer the PBX dials right after this one when it was
	// answered and has ended (phase pbx, dial_via: pbx): the block its
	// Success branch leads to.
	Next *Chained `json:"next,omitempty"`
}

// Chained is a transfer handed to the PBX's Dial() with the one before
// it, to run when that one has been answered and has ended.
type Chained struct {
	Block  string `json:"block"`
	Number string `json:"number"`
	Agent  bool   `json:"agent,omitempty"`
	Resume bool   `json:"resume"`
	Digits string `json:"digits,omitempty"`
	// Slot is its leg's concurrency slot ("": not counted).
	Slot string `json:"slot,omitempty"`
}

// Target is one number of a transfer block's list, resolved.
type Target struct {
	Number   string `json:"number"`
	Dial     string `json:"dial"`
	TimeoutS int    `json:"timeout_s"`
	// Ungated: an agent's endpoint, which the dial policy's number rules
	// do not apply to (its technology was checked when resolved).
	Ungated bool `json:"ungated,omitempty"`
}

// TransferOptions are the options beyond Amazon Connect's that a process
// taking a transfer over needs to carry it on.
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
	// Ringback early-media says the leg is bridged before it is dialled.
	Ringback  string   `json:"ringback,omitempty"`
	MOHClass  string   `json:"moh_class,omitempty"`
	EventsURL string   `json:"events_url,omitempty"`
	Headers   []Header `json:"headers,omitempty"`
	// TraceHeader names the X- header that carries the trace context.
	TraceHeader string `json:"trace_header,omitempty"`
}

// Header is an X- header put on the outbound INVITE.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Fence is a lease holder and its epoch: the store writes only for the
// current one.
type Fence struct {
	Owner string
	Epoch int64
}

// ErrNoRecord is returned by a store's Load when a call has no record.
var ErrNoRecord = errors.New("no call record")

// ErrFenced is returned by a write of a process whose lease epoch is
// older than the record's or the lease's: another process owns the call.
var ErrFenced = errors.New("fenced: another process owns this call")

// Encode and Decode are the record's wire form.
func Encode(rec *Call) ([]byte, error) {
	b, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("encode call record %s: %w", rec.CallID, err)
	}
	return b, nil
}

func Decode(b []byte) (*Call, error) {
	var rec Call
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("decode call record: %w", err)
	}
	if rec.Phase == "handed-off" {
		// Written before the phases were split: a bridged transfer without
		// resume, or a caller sent to the dialplan.
		rec.Phase = PhaseDialplan
		if rec.Outbound != "" {
			rec.Phase = PhaseBridged
		}
	}
	if t := rec.Transfer; t != nil && t.State == "" {
		// Written by a version without the state machine: the phase says.
		t.State = StateDialing
		if rec.Phase == PhaseBridged {
			t.State = StateBridged
		}
	}
	return &rec, nil
}
