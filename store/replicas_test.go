package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ariflow/ariflow/record"
)

// A write Redis refuses for want of replicas (min-replicas-to-write) is
// ErrNoReplicas from every store operation that writes, saying what it
// is, with Redis's own words kept.
func TestRedisStoreNoReplicas(t *testing.T) {
	ctx := context.Background()
	s, mr := newRedisStoreTest(t)
	mr.FastForward(2 * time.Second) // past the empty Redis's grace
	if _, err := s.Campaign(ctx, "a", time.Second); err != nil {
		t.Fatal(err)
	}
	mr.FastForward(2 * time.Second)
	e, err := s.Campaign(ctx, "a", time.Second)
	if err != nil || e == 0 {
		t.Fatalf("campaign: %d %v", e, err)
	}
	mr.SetError("NOREPLICAS Not enough good replicas to write.")
	for name, op := range map[string]func() error{
		"save": func() error {
			return s.Save(ctx, &record.Call{CallID: "c1", Phase: record.PhaseFlow, Owner: "a", Epoch: e})
		},
		"delete":   func() error { return s.Delete(ctx, "c1", record.Fence{Owner: "a", Epoch: e}) },
		"renew":    func() error { _, err := s.Renew(ctx, "a", time.Second); return err },
		"campaign": func() error { _, err := s.Campaign(ctx, "b", time.Second); return err },
		"resign":   func() error { return s.Resign(ctx, "a", e) },
	} {
		err := op()
		if !errors.Is(err, ErrNoReplicas) || !strings.Contains(err.Error(), "min-replicas-to-write") || !strings.Contains(err.Error(), "Not enough good replicas") {
			t.Errorf("%s: %v; want ErrNoReplicas with Redis's words", name, err)
		}
	}
	mr.SetError("")
	if err := s.Save(ctx, &record.Call{CallID: "c1", Phase: record.PhaseFlow, Owner: "a", Epoch: e}); err != nil {
		t.Errorf("save once writes are taken again: %v", err)
	}
}
