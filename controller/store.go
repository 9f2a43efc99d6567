package controller

import (
	"context"

	"github.com/ariflow/ariflow/record"
	"github.com/ariflow/ariflow/store"
)

// Store keeps call records (package store's Redis; tests use a map).
type Store interface {
	// Save writes the record if rec.Owner holds the lease at rec.Epoch;
	// else record.ErrFenced.
	Save(ctx context.Context, rec *record.Call) error
	// Load returns record.ErrNoRecord for a call without a record.
	Load(ctx context.Context, callID string) (*record.Call, error)
	// LoadMany reads many records at once: recs[i] is ids[i]'s, nil when
	// it has none, or bad[i] says why it could not be read.
	LoadMany(ctx context.Context, ids []string) (recs []*record.Call, bad []error, err error)
	// Delete removes the record if f holds the lease; else
	// record.ErrFenced.
	Delete(ctx context.Context, callID string, f record.Fence) error
	// Active lists the call IDs that have a record.
	Active(ctx context.Context) ([]string, error)
	// PutFlow keeps a flow's source under its digest, and GetFlow finds
	// it (record.ErrNoRecord when none): a process taking over a call
	// runs it on the flow it started on, even one it has not loaded.
	PutFlow(ctx context.Context, digest string, f store.ArchivedFlow) error
	GetFlow(ctx context.Context, digest string) (store.ArchivedFlow, error)
}

// ErrFenced is returned by a write of a process whose lease epoch is
// older than the record's or the lease's: another process owns the call.
var ErrFenced = record.ErrFenced
