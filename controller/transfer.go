package controller

import (
	"context"

	"github.com/sirupsen/logrus"

	"github.com/ariflow/ariflow/flows"
	"github.com/ariflow/ariflow/policy"
	"github.com/ariflow/ariflow/transfer"
)

// transferToPhone runs a Transfer to phone number block: its settings
// resolved (a bad one takes Error with nothing dialled), then the
// transfer's state machine (package transfer).
func (c *call) transferToPhone(ctx context.Context, b *flows.TransferToPhoneNumber) (string, error) {
	if branch, ran, err := c.chainedRan(ctx, c.rec.Block, ""); ran {
		return branch, err
	}
	plan, err := transfer.Resolve(b, c.rec.Attributes, c.app.settings())
	if err != nil {
		c.rec.ListNext = 0
		c.log.WithError(err).WithFields(logrus.Fields{"step": c.rec.Block, "phase": "invalid"}).Warn("transfer settings invalid; nothing dialled")
		return c.transferDone(ctx, transfer.Result{Outcome: transfer.OutcomeError}, "", nil)
	}
	from := 0
	if n := c.rec.ListNext; n > 0 && n < len(plan.Targets) {
		// A record of an older version, taken over between two numbers of
		// the list: go on where the last process stopped.
		from = n
		c.log.WithFields(logrus.Fields{"step": c.rec.Block, "attempt": n + 1, "number": plan.Targets[n].Number}).Info("transfer: adopted between two numbers; going on with the next")
	}
	c.rec.ListNext = 0
	if c.viaPBX(b.DialVia) && from == 0 && !plan.BeyondConnect() {
		return c.transferViaPBX(ctx, plan, "")
	}
	res, err := transfer.Run(ctx, c, c.app.xfer, c.gate(), plan, from)
	return c.transferDone(ctx, res, "", err)
}

// transferDone records a transfer block's result in $.Transfer and the
// metrics, and names the branch it takes.
func (c *call) transferDone(ctx context.Context, res transfer.Result, kind string, err error) (string, error) {
	if leaving(ctx, err) {
		return "", err
	}
	res.Record(c.rec.Attributes)
	c.app.metrics.Transfers.WithLabelValues(kind + string(res.Outcome)).Inc()
	if err != nil {
		return "", err
	}
	return res.Outcome.Branch(), nil
}

// gate is the dial-out gate for this call: the operator's policy, narrowed
// by the flow's dial_policy when it has one. It shares the operator's
// counters, so a flow cannot widen a rate limit or the concurrency cap.
func (c *call) gate() *policy.Gate {
	g := c.app.cfg.Gate
	if c.flow != nil && c.flow.DialPolicy != nil {
		return g.WithPolicy(g.Policy().Narrow(c.flow.DialPolicy))
	}
	return g
}

// settings are the operator's settings transfer plans are resolved with.
func (a *App) settings() transfer.Settings {
	return transfer.Settings{DialTemplate: a.cfg.DialTemplate, DefaultRegion: a.cfg.DefaultRegion}
}

// viaPBX tells whether a block whose dial_via is v is carried by the
// PBX's Dial(): its own setting, else the operator's default.
func (c *call) viaPBX(v flows.DialVia) bool {
	if v == "" {
		v = c.app.cfg.DialVia
	}
	return v == flows.DialViaPBX
}
