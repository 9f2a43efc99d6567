package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/ariflow/ariflow/flows"
	"github.com/ariflow/ariflow/policy"
	"github.com/ariflow/ariflow/record"
	"github.com/ariflow/ariflow/transfer"
)

// transferToAgent hands the caller to an agent for good: a bridged call to
// an endpoint or number, or the dialplan (e.g. a context running Queue()).
func (c *call) transferToAgent(ctx context.Context, t *flows.TransferToAgent) (string, error) {
	if t.Context != "" {
		return c.continueInDialplan(ctx, t)
	}
	if branch, ran, err := c.chainedRan(ctx, c.rec.Block, "agent-"); ran {
		return branch, err
	}
	plan, rule, err := c.agentPlan(t)
	if rule != "" {
		// Refused like a number the policy refuses: nothing dialled,
		// Error, and $.Transfer says why.
		c.app.metrics.Denied.WithLabelValues(rule).Inc()
		transfer.Result{Outcome: transfer.OutcomeDenied, DeniedBy: rule}.Record(c.rec.Attributes)
		c.log.WithError(err).WithFields(logrus.Fields{"step": c.rec.Block, "rule": rule}).Warn("agent endpoint refused; nothing dialled")
		return flows.BranchError, nil
	}
	if err != nil {
		return "", err
	}
	if c.viaPBX(t.DialVia) {
		return c.transferViaPBX(ctx, plan, "agent-")
	}
	res, err := transfer.Run(ctx, c, c.app.xfer, c.gate(), plan, 0)
	return c.transferDone(ctx, res, "agent-", err)
}

// agentPlan is the transfer an agent block makes: its endpoint resolved
// and checked. A refused endpoint names the rule (with err saying why);
// any other error is the block's failure.
func (c *call) agentPlan(t *flows.TransferToAgent) (plan transfer.Plan, rule string, err error) {
	raw, err := flows.Resolve(t.Endpoint, c.rec.Attributes)
	if err != nil {
		return plan, "", fmt.Errorf("agent endpoint: %w", err)
	}
	ep, isNumber := raw, raw != "" && (raw[0] == '+' || raw[0] >= '0' && raw[0] <= '9')
	pol := c.gate().Policy()
	if t.Endpoint.Ref != nil {
		// From an attribute: only the technologies the dial-out policy
		// names, and no dial-string syntax.
		ep, isNumber, err = flows.ParseEndpoint(raw, c.app.cfg.DefaultRegion, pol.EndpointTechs)
	}
	if err == nil && !isNumber {
		// Literal or not: the technology (a flow's own dial_policy may
		// name fewer than the operator's), and a Local endpoint's context.
		err = pol.CheckEndpoint(ep)
	}
	if err != nil {
		rule = "invalid-endpoint"
		var d *policy.Denied
		switch {
		case errors.As(err, &d):
			rule = d.Rule
		case strings.Contains(err.Error(), "is not allowed (allowed:"):
			rule = policy.RuleEndpointTechology
		}
		return plan, rule, err
	}
	timeout, err := transfer.RingTimeout(t.Timeout, c.rec.Attributes)
	if err != nil {
		return plan, "", fmt.Errorf("agent %w", err)
	}
	target := record.Target{Number: ep, Dial: ep, TimeoutS: int(timeout / time.Second), Ungated: !isNumber}
	if isNumber {
		target.Dial = transfer.DialString(c.app.cfg.DialTemplate, ep)
	}
	// The agent sees the caller: its number (From and P-Asserted-Identity)
	// only when it is a valid E.164 number, else "anonymous"; its name
	// only when it passes ValidateCallerName.
	plan = transfer.Plan{Targets: []record.Target{target}, Agent: true}
	plan.CallerIDNumber, plan.CallerIDName = transfer.CallerIdentity(c.rec.Attributes[flows.NSSystem][flows.SysCallerNumber], c.rec.Attributes[flows.NSSystem][flows.SysCallerName])
	return plan, "", nil
}

func (c *call) continueInDialplan(ctx context.Context, t *flows.TransferToAgent) (string, error) {
	ext := t.Extension
	if strings.HasPrefix(ext, "$.") {
		v, err := flows.Resolve(flows.Value{Literal: ext}, c.rec.Attributes)
		if err != nil {
			return "", err
		}
		ext = v
	}
	prio := t.Priority
	if prio == 0 {
		prio = 1
	}
	// Written before the caller leaves: a process taking over must find
	// a caller waiting in the dialplan (say, in Queue()) and leave it be.
	if err := c.setPhase(ctx, record.PhaseDialplan); err != nil {
		return "", err
	}
	c.releaseBridge()
	c.Settle() // the last transfer's bridge gone first
	err := c.app.ari.Continue(ctx, c.id, t.Context, ext, prio)
	if err != nil {
		return "", err
	}
	c.log.WithField("context", t.Context).Info("caller continued in the dialplan")
	return "", errHandedOff
}
