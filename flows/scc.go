package flows

// stronglyConnected returns the strongly connected components (Tarjan) of
// the graph reachable from roots through next, each in the order the
// algorithm pops it, the components in the order it completes them; roots
// are walked in the order given, so the result is deterministic when next
// is.
func stronglyConnected[N comparable](roots []N, next func(N) []N) [][]N {
	t := &tarjan[N]{next: next, index: map[N]int{}, low: map[N]int{}, onStack: map[N]bool{}}
	for _, n := range roots {
		if _, seen := t.index[n]; !seen {
			t.visit(n)
		}
	}
	return t.comps
}

// tarjan is the state of one stronglyConnected walk.
type tarjan[N comparable] struct {
	next    func(N) []N
	index   map[N]int
	low     map[N]int
	onStack map[N]bool
	stack   []N
	counter int
	comps   [][]N
}

func (t *tarjan[N]) visit(n N) {
	t.index[n], t.low[n] = t.counter, t.counter
	t.counter++
	t.stack = append(t.stack, n)
	t.onStack[n] = true
	for _, m := range t.next(n) {
		if _, seen := t.index[m]; !seen {
			t.visit(m)
			t.low[n] = min(t.low[n], t.low[m])
		} else if t.onStack[m] {
			t.low[n] = min(t.low[n], t.index[m])
		}
	}
	if t.low[n] != t.index[n] {
		return
	}
	var comp []N
	for {
		m := t.stack[len(t.stack)-1]
		t.stack = t.stack[:len(t.stack)-1]
		t.onStack[m] = false
		comp = append(comp, m)
		if m == n {
			break
		}
	}
	t.comps = append(t.comps, comp)
}
