package controller

import (
	"testing"
	"time"
)

// A leg noted as never dialled is told once, to the next term's call of
// the same process, and a note older than notDialledKept is not.
func TestNotDialledToldOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, xferFlows)
	first, next := h.app.newCall("c1"), h.app.newCall("c1")
	first.NotDialled("leg-1")
	if next.WasNotDialled("leg-2") {
		t.Error("a leg never noted was told as never dialled")
	}
	if !next.WasNotDialled("leg-1") || next.WasNotDialled("leg-1") {
		t.Error("the noted leg was not told exactly once")
	}
	first.NotDialled("leg-3")
	h.app.mu.Lock()
	h.app.notDialled["leg-3"] = time.Now().Add(-notDialledKept - time.Second)
	h.app.mu.Unlock()
	if next.WasNotDialled("leg-3") {
		t.Error("a note older than notDialledKept was told")
	}
}
