package flows

import (
	"fmt"
	"sort"
	"strings"
)

// branchRules returns the branches a block must have and the ones it may
// have. Error is always allowed: the engine has a default error handler.
func branchRules(b *Block) (required, allowed []string) {
	switch b.Type {
	case TypePlayPrompt, TypeSetAttributes:
		required = []string{BranchNext}
	case TypeGetCustomerInput:
		if b.Input != nil {
			required = b.Input.requiredBranches()
		}
	case TypeCheckAttribute:
		required = []string{BranchNoMatch}
		if b.Check != nil {
			for _, c := range b.Check.Conditions {
				if c.Branch != "" && !contains(required, c.Branch) {
					required = append(required, c.Branch)
				}
			}
		}
	case TypeInvokeWebhook:
		required = []string{BranchSuccess}
	case TypeTransferToPhoneNumber:
		if b.Transfer != nil && !b.Transfer.Resume {
			required = []string{BranchCallFailed, BranchTimeout}
		} else {
			required = []string{BranchSuccess, BranchCallFailed, BranchTimeout}
		}
	case TypeTransferToAgent:
		if b.Agent != nil && (b.Agent.Endpoint.Ref != nil || b.Agent.Endpoint.Literal != "") {
			allowed = []string{BranchCallFailed, BranchTimeout}
		}
	case TypeDisconnect:
		return nil, nil
	case TypeLoop:
		required = []string{BranchContinueLooping, BranchDoneLooping}
	case TypeSetWorkingQueue:
		required = []string{BranchNext}
	case TypeTransferToFlow, TypeTransferToQueue:
		// Only Error: the call leaves this flow.
	}
	allowed = append(append(allowed, required...), BranchError)
	return required, allowed
}

// waitsForCaller reports whether a block type takes time the caller
// controls; a loop without one of these spins the engine.
func waitsForCaller(t BlockType) bool {
	switch t {
	case TypeSetAttributes, TypeCheckAttribute, TypeInvokeWebhook,
		TypeLoop, TypeSetWorkingQueue, TypeTransferToFlow:
		return false
	}
	return true
}

// bounded reports whether a branch cannot make a loop spin for ever: a
// Loop's ContinueLooping is taken at most its count (0..100) times before
// DoneLooping.
func bounded(b *Block, branch string) bool {
	return b.Type == TypeLoop && branch == BranchContinueLooping
}

func (p *parser) checkGraph(f *Flow) {
	for _, id := range p.order {
		b := f.Blocks[id]
		lines := p.branchLines[id]
		names := sortedKeys(b.Branches)
		_, known := blockSettings[b.Type]
		required, allowed := branchRules(b)
		for _, name := range names {
			line := lines[name]
			if known && !contains(allowed, name) {
				if len(allowed) == 0 {
					p.errf(line, "block %q: branch %q is not allowed: %s has no branches", id, name, b.Type)
				} else {
					p.errf(line, "block %q: branch %q is not allowed for %s%s (allowed: %s)", id, name, b.Type, branchHint(b), strings.Join(allowed, ", "))
				}
				continue
			}
			if _, ok := f.Blocks[b.Branches[name]]; !ok {
				p.errf(line, "block %q: branch %s: target block %q does not exist", id, name, b.Branches[name])
			}
		}
		for _, name := range required {
			if _, ok := b.Branches[name]; !ok {
				p.errf(b.Line, "block %q: missing required branch %q", id, name)
			}
		}
	}
	if _, ok := f.Blocks[f.Start]; !ok {
		return
	}
	reached := map[string]bool{f.Start: true}
	queue := []string{f.Start}
	for len(queue) > 0 {
		b := f.Blocks[queue[0]]
		queue = queue[1:]
		for _, name := range sortedKeys(b.Branches) {
			t := b.Branches[name]
			if _, ok := f.Blocks[t]; ok && !reached[t] {
				reached[t] = true
				queue = append(queue, t)
			}
		}
	}
	for _, id := range p.order {
		if !reached[id] {
			p.errf(f.Blocks[id].Line, "block %q is not reachable from start block %q", id, f.Start)
		}
	}
	p.checkLoops(f)
}

func branchHint(b *Block) string {
	switch {
	case b.Type == TypeTransferToPhoneNumber && b.Transfer != nil && !b.Transfer.Resume:
		return " with resume: false"
	case b.Type == TypeGetCustomerInput && b.Input != nil && len(b.Input.Values) == 0:
		return " without values"
	case b.Type == TypeGetCustomerInput:
		return " with values"
	case b.Type == TypeTransferToAgent && b.Agent != nil && b.Agent.Endpoint.IsZero():
		return " with context"
	}
	return ""
}

// checkLoops finds cycles the engine would run without ever waiting for
// the caller: strongly connected components (Tarjan) of the graph of
// "busy" edges, which are every branch of a block that does not wait
// (SetAttributes, CheckAttribute, InvokeWebhook) and the Error branch of a
// transfer, which a transfer refused by the dial policy or invalid in its
// settings takes at once, and takes again on every round of the loop. A
// loop that retries a transfer after Error must wait (a prompt) on its way
// round. Other blocks' Error loops are not certain to spin (their errors
// pass); the engine bounds those at run time.
func (p *parser) checkLoops(f *Flow) {
	known := func(id string) bool {
		b, ok := f.Blocks[id]
		return ok && blockSettingsKnown(b.Type)
	}
	var roots []string
	for _, id := range p.order {
		if known(id) {
			roots = append(roots, id)
		}
	}
	comps := stronglyConnected(roots, func(id string) []string {
		var out []string
		for _, t := range busyTargets(f.Blocks[id]) {
			if known(t) {
				out = append(out, t)
			}
		}
		return out
	})
	for _, comp := range comps {
		if len(comp) == 1 && !contains(busyTargets(f.Blocks[comp[0]]), comp[0]) {
			continue
		}
		sort.Slice(comp, func(i, j int) bool { return f.Blocks[comp[i]].Line < f.Blocks[comp[j]].Line })
		quoted := make([]string, len(comp))
		for i, id := range comp {
			quoted[i] = fmt.Sprintf("%q", id)
		}
		via := ""
		if viaError(f, comp) {
			via = " through an Error branch"
		}
		why := "(only " + busyTypes + ")"
		if via != "" {
			why = "(a transfer refused by the dial policy or invalid takes Error at once, every time round; wait for the caller on the way, with a prompt)"
		}
		if len(comp) == 1 {
			p.errf(f.Blocks[comp[0]].Line, "block %q loops to itself%s without waiting for the caller %s", comp[0], via, why)
			continue
		}
		p.errf(f.Blocks[comp[0]].Line, "blocks %s form a loop%s that never waits for the caller %s", strings.Join(quoted, ", "), via, why)
	}
}

// busyTypes names the block types that do not wait for the caller, for
// messages.
var busyTypes = "SetAttributes, CheckAttribute, InvokeWebhook, SetWorkingQueue, TransferToFlow, Loop"

// busyTargets are the blocks b may go on to without waiting for the
// caller: any branch of a block that never waits, a transfer's Error; not
// a Loop's ContinueLooping, which its count bounds.
func busyTargets(b *Block) []string {
	var out []string
	for _, name := range sortedKeys(b.Branches) {
		if waitsForCaller(b.Type) && !(name == BranchError && errorsAtOnce(b.Type)) || bounded(b, name) {
			continue
		}
		out = append(out, b.Branches[name])
	}
	return out
}

// errorsAtOnce tells whether a block type takes its Error branch without
// waiting, the same way every time: a transfer whose number the dial
// policy refuses, or whose settings are invalid, dials nothing.
func errorsAtOnce(t BlockType) bool { return t.Dials() }

// viaError tells whether a loop goes through a transfer's Error branch.
func viaError(f *Flow, comp []string) bool {
	for _, id := range comp {
		b := f.Blocks[id]
		if t, ok := b.Branches[BranchError]; ok && waitsForCaller(b.Type) && errorsAtOnce(b.Type) && contains(comp, t) {
			return true
		}
	}
	return false
}

func blockSettingsKnown(t BlockType) bool {
	_, ok := blockSettings[t]
	return ok
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
