package controller

import (
	"context"

	"github.com/ariflow/ariflow/flows"
	"github.com/ariflow/ariflow/internal/ari"
	"github.com/ariflow/ariflow/transfer"
)

// A transfer that resumes the caller makes, while it talks, the leg of the
// transfer its Success branch leads to (transfer/ahead.go). The call keeps
// that leg between the two blocks, takes its events meanwhile, and hangs
// it up when the flow goes elsewhere or the call ends here. After the
// event path is made again, Asterisk is asked whether it is still there.
// The record never names it: a process taking the call over hangs it up
// as an orphan.

// NextPlan is the plan of the transfer the current block's Success branch
// leads to, resolved with the call's attributes as they are now (the
// transfer that takes the leg checks that its own plan makes the same).
func (c *call) NextPlan() (transfer.Plan, bool) {
	if c.flow == nil {
		return transfer.Plan{}, false
	}
	b, ok := c.flow.Blocks[c.rec.Block]
	if !ok {
		return transfer.Plan{}, false
	}
	id, ok := b.Next(flows.BranchSuccess)
	if !ok {
		return transfer.Plan{}, false
	}
	next, ok := c.flow.Blocks[id]
	if !ok {
		return transfer.Plan{}, false
	}
	switch {
	case next.Type == flows.TypeTransferToPhoneNumber && next.Transfer != nil && !c.viaPBX(next.Transfer.DialVia):
		p, err := transfer.Resolve(next.Transfer, c.rec.Attributes, c.app.settings())
		return p, err == nil
	case next.Type == flows.TypeTransferToAgent && next.Agent != nil && next.Agent.Context == "" && !c.viaPBX(next.Agent.DialVia):
		p, rule, err := c.agentPlan(next.Agent)
		return p, rule == "" && err == nil
	}
	return transfer.Plan{}, false
}

// KeepAhead keeps a leg made for the next transfer; one kept already goes.
func (c *call) KeepAhead(a *transfer.Ahead) {
	c.releaseAhead("a newer one was made")
	c.ahead = a
}

// TakeAhead hands the leg made ahead to the transfer starting now.
func (c *call) TakeAhead() *transfer.Ahead {
	a := c.ahead
	c.ahead = nil
	return a
}

// releaseAhead hangs up the leg made ahead, if any, off the caller's path.
func (c *call) releaseAhead(why string) {
	if a := c.ahead; a != nil {
		c.ahead = nil
		a.Drop(c, c.app.xfer, why)
	}
}

// verifyAhead asks Asterisk about the leg made ahead after the event path
// was made again: its entry into the app or its end may have gone with the
// old path. It stays owned meanwhile, so that reconcile leaves it alone;
// one Asterisk cannot tell about goes.
func (c *call) verifyAhead(ctx context.Context, chk *checkChannels) {
	a := c.ahead
	if a == nil || !c.ownedBefore(a.ID, chk.since) {
		return
	}
	_, err := c.app.ari.ChannelState(ctx, a.ID)
	switch {
	case err == nil:
		a.Found(true)
	case ari.IsNotFound(err):
		a.Found(false)
	default:
		c.releaseAhead("Asterisk could not say whether it is there after the event path was made again")
	}
}
