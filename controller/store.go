package controller

import (
	"context"
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
	PhaseDialing  Phase = "dialing"  // outbound leg originated, ringing
	PhaseBridged  Phase = "bridged"  // answered: caller and far end bridged (Transfer.Resume says what follows)
	PhaseDialplan Phase = "dialplan" // the caller was handed to the dialplan: not ours any more
)

// phaseNext lists the transitions a call makes.
var phaseNext = map[Phase][]Phase{
	"":            {PhaseFlow},
	PhaseFlow:     {PhaseFlow, PhaseDialing, PhaseDialplan},
	PhaseDialing:  {PhaseBridged, PhaseFlow},
	PhaseBridged:  {PhaseBridged, PhaseFlow},
	PhaseDialplan: {},
}

// ErrBadTransition is a phase change the call state machine does not make.
var ErrBadTransition = errors.New("phase transition not allowed")

// checkTransition refuses a transition that should not happen, instead of
// writing it silently.
func checkTransition(from, to Phase) error {
	for _, p := range phaseNext[from] {
		if p == to {
			return nil
		}
	}
	return fmt.Errorf("%w: %s -> %s", ErrBadTransition, from, to)
}

// CallRecord is a call's position, as persisted before every side effect
// that depends on it.
type CallRecord struct {
	CallID    string         `json:"call_id"`
	Channel   string         `json:"channel"`
	Flow      string         `json:"flow"`
	Version   string         `json:"version"`
	Block     string         `json:"block"`
	Phase     Phase          `json:"phase"`
	Outbound  string         `json:"outbound,omitempty"`
	Bridge    string         `json:"bridge,omitempty"`
	Transfer  *TransferState `json:"transfer,omitempty"`
	Transfers int            `json:"transfers,omitempty"` // outbound legs dialled so far (dial-out policy cap)
	// ListNext, in the flow phase at a transfer block with a list of
	// numbers, is the number (from 0) the list goes on with: a process
	// taking over between two numbers does not ring the first again.
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
}

// TransferState is the running transfer, enough for another process to
// carry it on: keep ringing, bridge an answer it missed, continue the
// digits from the one reached.
type TransferState struct {
	Number       string    `json:"number"`
	Resume       bool      `json:"resume"`
	Agent        bool      `json:"agent,omitempty"`
	Digits       string    `json:"digits,omitempty"`      // validated; ',' is a pause
	DigitsDone   int       `json:"digits_done,omitempty"` // characters of Digits sent (or paused)
	Dialed       time.Time `json:"dialed"`
	RingDeadline time.Time `json:"ring_deadline"`
	Answered     time.Time `json:"answered,omitzero"`
	// Attempt is the leg's place (from 1) in its block's list of numbers.
	Attempt int `json:"attempt,omitempty"`
	// Created: the leg was made in Stasis and dialled (its answer is a
	// state change, not a StasisStart); false for legs older versions
	// originated into the app.
	Created bool `json:"created,omitempty"`
	// Options are the block's options a bridged transfer still needs
	// (DTMF cadence, return key, time limit).
	Options *TransferOptions `json:"options,omitempty"`
}

// Fence is a lease holder and its epoch: the store writes only for the
// current one.
type Fence struct {
	Owner string
	Epoch int64
}

// ErrNoRecord is returned by Store.Load when a call has no record.
var ErrNoRecord = errors.New("no call record")

// ErrFenced is returned by a write of a process whose lease epoch is
// older than the record's or the lease's: another process owns the call.
var ErrFenced = errors.New("fenced: another process owns this call")

// Store keeps call records. It is satisfied by RedisStore; tests use a
// map.
type Store interface {
	// Save writes the record if rec.Owner holds the lease at rec.Epoch;
	// else ErrFenced.
	Save(ctx context.Context, rec *CallRecord) error
	Load(ctx context.Context, callID string) (*CallRecord, error)
	// Delete removes the record if f holds the lease; else ErrFenced.
	Delete(ctx context.Context, callID string, f Fence) error
	// Active lists the call IDs that have a record.
	Active(ctx context.Context) ([]string, error)
}

// EncodeRecord and DecodeRecord are the record's wire form.
func EncodeRecord(rec *CallRecord) ([]byte, error) {
	b, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("encode call record %s: %w", rec.CallID, err)
	}
	return b, nil
}

func DecodeRecord(b []byte) (*CallRecord, error) {
	var rec CallRecord
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
	return &rec, nil
}
