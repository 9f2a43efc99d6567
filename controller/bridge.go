package controller

import (
	"context"
	"time"

	"github.com/ariflow/ariflow/internal/ari"
)

// A transfer that ends with the far end's hangup leaves its bridge, the
// caller in it, to the call (KeepBridge): the next transfer of the same
// kind takes it (TakeBridge) instead of destroying one bridge and making
// another on the caller's way back. Any other block, the call's failure
// and its end let it go (releaseBridge). The record goes on naming it, so
// that a process taking over finds it (adopt).

// KeepBridge keeps the bridge the record names for the next transfer.
func (c *call) KeepBridge(kind string) {
	c.releaseBridge()
	c.kept, c.keptKind = c.rec.Bridge, kind
}

// TakeBridge hands the kept bridge to a transfer that needs one of kind;
// one of another kind goes.
func (c *call) TakeBridge(kind string) string {
	id, k := c.kept, c.keptKind
	c.kept, c.keptKind = "", ""
	if id == "" || k == kind {
		return id
	}
	c.dropBridge(id)
	return ""
}

// releaseBridge lets the kept bridge go, off the caller's path: the next
// request that touches the caller waits for it (Settle).
func (c *call) releaseBridge() {
	id := c.kept
	c.kept, c.keptKind = "", ""
	if id != "" {
		c.dropBridge(id)
	}
}

// dropBridge destroys a bridge of the call's off its path, tried again a
// few times; what still fails is logged, and reconcile finds it. The
// caller is taken out of it first: the next request for the caller waits
// for this (Settle), and only the removal's answer says the caller has
// left the bridge (a playback sent as it leaves is lost with the bridge).
func (c *call) dropBridge(id string) {
	c.disown(id)
	if c.rec.Bridge == id {
		c.rec.Bridge = ""
	}
	a, log, caller := c.app.ari, c.log.WithField("bridge", id), c.id
	c.Later(func(ctx context.Context) {
		// 400, 404: caller or bridge gone; 422: the caller is not in it (a
		// bridge kept by a transfer whose caller left it meanwhile).
		if err := a.RemoveFromBridge(ctx, id, caller); err != nil && !ari.IsNotFound(err) && ari.StatusCode(err) != 400 && ari.StatusCode(err) != 422 {
			log.WithError(err).Warn("taking the caller out of the kept bridge failed; destroying it all the same")
		}
		for try := 0; ; try++ {
			err := a.DestroyBridge(ctx, id)
			if err == nil || ari.IsNotFound(err) {
				return
			}
			if try == 2 {
				log.WithError(err).Warn("the kept bridge did not go; reconcile will find it")
				return
			}
			time.Sleep(time.Duration(try+1) * 100 * time.Millisecond)
		}
	})
}
