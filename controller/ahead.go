package controller

import (
	"github.com/ariflow/ariflow/flows"
	"github.com/ariflow/ariflow/transfer"
)

// A transfer that resumes the caller makes, while it talks, the leg of the
// transfer its Success branch leads to (transfer/ahead.go). The call keeps
// that leg between the two blocks, takes its events meanwhile, and hangs
// it up when the flow goes elsewhere, the event path is made again, or
// the call ends here. The record never names it: a process taking the
// call over hangs it up as an orphan.

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
	case next.Type == flows.TypeTransferToPhoneNumber && next.Transfer != nil:
		p, err := transfer.Resolve(next.Transfer, c.rec.Attributes, c.app.settings())
		return p, err == nil
	case next.Type == flows.TypeTransferToAgent && next.Agent != nil && next.Agent.Context == "":
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
