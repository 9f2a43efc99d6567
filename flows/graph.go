package flows

import (
	"fmt"
	"sort"
	"strings"
)

// graphOrder lists block IDs breadth-first from the start block, following
// branches in name order, then any remaining blocks by ID, so output is
// stable across runs.
func graphOrder(f *Flow) []string {
	var order []string
	seen := map[string]bool{}
	visit := func(id string) {
		if _, ok := f.Blocks[id]; !ok || seen[id] {
			return
		}
		seen[id] = true
		order = append(order, id)
	}
	visit(f.Start)
	for i := 0; i < len(order); i++ {
		b := f.Blocks[order[i]]
		for _, name := range sortedBranches(b) {
			visit(b.Branches[name])
		}
	}
	rest := make([]string, 0, len(f.Blocks))
	for id := range f.Blocks {
		if !seen[id] {
			rest = append(rest, id)
		}
	}
	sort.Strings(rest)
	return append(order, rest...)
}

// sortedBranches orders branch names: digit values first, then the
// outcome branches in a fixed order, Error last.
func sortedBranches(b *Block) []string {
	rank := func(n string) int {
		switch n {
		case BranchNext, BranchSuccess:
			return 1
		case BranchNoMatch:
			return 2
		case BranchCallFailed:
			return 3
		case BranchTimeout:
			return 4
		case BranchError:
			return 5
		}
		return 0
	}
	names := sortedKeys(b.Branches)
	sort.SliceStable(names, func(i, j int) bool { return rank(names[i]) < rank(names[j]) })
	return names
}

// Mermaid renders the flow as a Mermaid flowchart. Node ids are n0, n1, …
// because block ids such as "end" are Mermaid keywords.
func Mermaid(f *Flow) string {
	order := graphOrder(f)
	node := make(map[string]string, len(order))
	for i, id := range order {
		node[id] = fmt.Sprintf("n%d", i)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "flowchart TD\n    %%%% flow %s version %s\n", f.Name, f.Version)
	for _, id := range order {
		blk := f.Blocks[id]
		open, shut := "[", "]"
		switch blk.Type {
		case TypeCheckAttribute:
			open, shut = "{", "}"
		case TypeDisconnect:
			open, shut = "([", "])"
		case TypeTransferToPhoneNumber, TypeTransferToAgent:
			open, shut = "[[", "]]"
		}
		fmt.Fprintf(&b, "    %s%s\"%s<br/>%s\"%s\n", node[id], open, mermaidText(id), mermaidText(string(blk.Type)), shut)
	}
	for _, id := range order {
		blk := f.Blocks[id]
		for _, name := range sortedBranches(blk) {
			if to, ok := node[blk.Branches[name]]; ok {
				fmt.Fprintf(&b, "    %s -->|%s| %s\n", node[id], mermaidText(name), to)
			}
		}
	}
	if n, ok := node[f.Start]; ok {
		fmt.Fprintf(&b, "    style %s stroke-width:3px\n", n)
	}
	return b.String()
}

// mermaidText escapes characters Mermaid treats as syntax in labels.
func mermaidText(s string) string {
	r := strings.NewReplacer(`"`, "#quot;", "|", "#124;", "<", "#lt;", ">", "#gt;")
	return r.Replace(s)
}

// DOT renders the flow for Graphviz.
func DOT(f *Flow) string {
	order := graphOrder(f)
	var b strings.Builder
	fmt.Fprintf(&b, "digraph %s {\n", dotQuote(f.Name))
	fmt.Fprintf(&b, "    label=%s;\n    labelloc=t;\n    node [shape=box];\n", dotQuote(f.Name+" v"+f.Version))
	for _, id := range order {
		blk := f.Blocks[id]
		shape := ""
		switch blk.Type {
		case TypeCheckAttribute:
			shape = ", shape=diamond"
		case TypeDisconnect:
			shape = ", shape=oval"
		}
		if id == f.Start {
			shape += ", penwidth=3"
		}
		fmt.Fprintf(&b, "    %s [label=%s%s];\n", dotQuote(id), dotQuote(id+"\n"+string(blk.Type)), shape)
	}
	for _, id := range order {
		blk := f.Blocks[id]
		for _, name := range sortedBranches(blk) {
			to := blk.Branches[name]
			if _, ok := f.Blocks[to]; ok {
				fmt.Fprintf(&b, "    %s -> %s [label=%s];\n", dotQuote(id), dotQuote(to), dotQuote(name))
			}
		}
	}
	b.WriteString("}\n")
	return b.String()
}

func dotQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}
