package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ariflow/ariflow/flows"
)

// Phase is where a call stands; a restarted ariflow reads it to decide what
// to do with a call it finds in Stasis.
type Phase string

const (
	PhaseFlow      Phase = "flow"       // running blocks
	PhaseDialing   Phase = "dialing"    // outbound leg created, not answered
	PhaseBridged   Phase = "bridged"    // caller and far end talking
	PhaseHandedOff Phase = "handed-off" // caller left the flow (resume off, agent)
)

// CallRecord is a call's position, as persisted before every side effect
// that depends on it.
type CallRecord struct {
	CallID     string           `json:"call_id"`
	Channel    string           `json:"channel"`
	Flow       string           `json:"flow"`
	Version    string           `json:"version"`
	Block      string           `json:"block"`
	Phase      Phase            `json:"phase"`
	Outbound   string           `json:"outbound,omitempty"`
	Bridge     string           `json:"bridge,omitempty"`
	Attributes flows.Attributes `json:"attributes"`
	Owner      string           `json:"owner"` // the ariflow process running the call
	Started    time.Time        `json:"started"`
	Updated    time.Time        `json:"updated"`
}

// ErrNoRecord is returned by Store.Load when a call has no record.
var ErrNoRecord = errors.New("no call record")

// Store keeps call records. It is satisfied by RedisStore; tests may use
// a map.
type Store interface {
	Save(ctx context.Context, rec *CallRecord) error
	Load(ctx context.Context, callID string) (*CallRecord, error)
	Delete(ctx context.Context, callID string) error
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
	return &rec, nil
}
