package controller

import (
	"context"

	"github.com/ariflow/ariflow/record"
)

// Store keeps call records (package store's Redis; tests use a map).
type Store interface {
	// Save writes the record if rec.Owner holds the lease at rec.Epoch;
	// else record.ErrFenced.
	Save(ctx context.Context, rec *record.Call) error
	// Load returns record.ErrNoRecord for a call without a record.
	Load(ctx context.Context, callID string) (*record.Call, error)
	// Delete removes the record if f holds the lease; else
	// record.ErrFenced.
	Delete(ctx context.Context, callID string, f record.Fence) error
	// Active lists the call IDs that have a record.
	Active(ctx context.Context) ([]string, error)
}

// ErrFenced is returned by a write of a process whose lease epoch is
// older than the record's or the lease's: another process owns the call.
var ErrFenced = record.ErrFenced
