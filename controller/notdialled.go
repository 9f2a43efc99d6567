package controller

import "time"

// A leg this process made and never dialled, noted as a term of the
// process stops acting for its call, so that the next term, adopting the
// call and finding the leg gone, dials the number again rather than take
// it for one that failed (transfer/notdialled.go).

// notDialledKept bounds how long such a note is kept: a new term adopts
// its calls within moments.
const notDialledKept = 5 * time.Minute

// NotDialled notes leg as made and never dialled by this process.
func (c *call) NotDialled(leg string) {
	a := c.app
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.notDialled == nil {
		a.notDialled = map[string]time.Time{}
	}
	for id, at := range a.notDialled {
		if now.Sub(at) > notDialledKept {
			delete(a.notDialled, id)
		}
	}
	a.notDialled[leg] = now
}

// WasNotDialled tells whether this process noted leg as never dialled,
// and forgets it.
func (c *call) WasNotDialled(leg string) bool {
	a := c.app
	a.mu.Lock()
	defer a.mu.Unlock()
	at, ok := a.notDialled[leg]
	delete(a.notDialled, leg)
	return ok && time.Since(at) <= notDialledKept
}
