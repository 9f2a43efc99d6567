package flows

import (
	"fmt"
	"sort"
	"strings"
)

// What spans the flows of a set: TransferToFlow blocks name flows of the
// set, and flows that hand a call to each other must wait for the caller
// somewhere on the way round, or the call would spin.

// node is one block of one flow of a set.
type node struct {
	flow  *Flow
	block string
}

func (n node) b() *Block { return n.flow.Blocks[n.block] }

// checkJumps reports TransferToFlow blocks whose flow is not in the set,
// and cycles through TransferToFlow made only of blocks that do not wait
// for the caller (a cycle within one flow is the parser's to report).
func checkJumps(s *Set) ErrorList {
	var errs ErrorList
	names := make([]string, 0, len(s.byName))
	for n := range s.byName {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, f := range s.Flows {
		for _, id := range sortedBlockIDs(f) {
			b := f.Blocks[id]
			if b.Type != TypeTransferToFlow || b.Jump == nil || b.Jump.Flow == "" {
				continue
			}
			if _, ok := s.byName[b.Jump.Flow]; !ok {
				errs = append(errs, &Error{File: f.File, Line: b.Line,
					Msg: fmt.Sprintf("block %q: flow %q is not in the loaded set (flows: %s)", id, b.Jump.Flow, strings.Join(names, ", "))})
			}
		}
	}
	return append(errs, spinningJumps(s)...)
}

// sortedBlockIDs lists a flow's blocks in file order.
func sortedBlockIDs(f *Flow) []string {
	ids := make([]string, 0, len(f.Blocks))
	for id := range f.Blocks {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		return f.Blocks[ids[i]].Line < f.Blocks[ids[j]].Line || f.Blocks[ids[i]].Line == f.Blocks[ids[j]].Line && ids[i] < ids[j]
	})
	return ids
}

// spinningJumps finds the strongly connected components of the set's
// blocks that do not wait for the caller, where a TransferToFlow block
// leads to its flow's start block, and reports those that pass through a
// TransferToFlow.
func spinningJumps(s *Set) ErrorList {
	var roots []node
	for _, f := range s.Flows {
		for _, id := range sortedBlockIDs(f) {
			if n := (node{f, id}); busyNode(n) {
				roots = append(roots, n)
			}
		}
	}
	var errs ErrorList
	for _, comp := range stronglyConnected(roots, func(n node) []node { return busyNext(s, n) }) {
		if e := spinError(s, comp); e != nil {
			errs = append(errs, e)
		}
	}
	return errs
}

// busyNode tells whether n is a block that does not wait for the caller.
func busyNode(n node) bool {
	b := n.b()
	return b != nil && blockSettingsKnown(b.Type) && !waitsForCaller(b.Type)
}

// busyNext are the blocks that do not wait for the caller that n goes on
// to: its branches (but a Loop's bounded one) and, for a TransferToFlow,
// its flow's start block.
func busyNext(s *Set, n node) []node {
	b := n.b()
	var out []node
	for _, name := range sortedKeys(b.Branches) {
		if bounded(b, name) {
			continue
		}
		if _, ok := n.flow.Blocks[b.Branches[name]]; ok {
			out = append(out, node{n.flow, b.Branches[name]})
		}
	}
	if b.Type == TypeTransferToFlow && b.Jump != nil {
		if to, ok := s.byName[b.Jump.Flow]; ok {
			if _, ok := to.Blocks[to.Start]; ok {
				out = append(out, node{to, to.Start})
			}
		}
	}
	var kept []node
	for _, m := range out {
		if busyNode(m) {
			kept = append(kept, m)
		}
	}
	return kept
}

// spinError reports a component of blocks that do not wait for the
// caller at its first TransferToFlow that leads into it, nil when there
// is none (a loop within one flow: the parser reported it).
func spinError(s *Set, comp []node) *Error {
	in := map[node]bool{}
	for _, n := range comp {
		in[n] = true
	}
	var jump *node
	flowNames := map[string]bool{}
	for i, n := range comp {
		flowNames[n.flow.Name] = true
		b := n.b()
		if b.Type != TypeTransferToFlow || b.Jump == nil {
			continue
		}
		to, ok := s.byName[b.Jump.Flow]
		if ok && in[node{to, to.Start}] && (jump == nil || less(n, *jump)) {
			jump = &comp[i]
		}
	}
	if jump == nil {
		return nil
	}
	list := make([]string, 0, len(flowNames))
	for n := range flowNames {
		list = append(list, n)
	}
	sort.Strings(list)
	return &Error{File: jump.flow.File, Line: jump.b().Line,
		Msg: fmt.Sprintf("block %q: continues in flow %q, which comes back here without waiting for the caller (flows %s; only %s)", jump.block, jump.b().Jump.Flow, strings.Join(list, ", "), busyTypes)}
}

func less(a, b node) bool {
	if a.flow.File != b.flow.File {
		return a.flow.File < b.flow.File
	}
	return a.b().Line < b.b().Line
}
