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
		case BranchNext, BranchSuccess, BranchContinueLooping:
			return 1
		case BranchNoMatch, BranchDoneLooping:
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
// because block ids such as "end" are Mermaid keywords. A TransferToFlow
// block points at a node standing for the flow it continues in.
func Mermaid(f *Flow) string {
	var b strings.Builder
	fmt.Fprintf(&b, "flowchart TD\n    %%%% flow %s version %s\n", f.Name, f.Version)
	nodes := mermaidNodes(&b, f, "n", "    ")
	mermaidEdges(&b, f, nodes)
	external := map[string]string{}
	for _, id := range graphOrder(f) {
		if j := f.Blocks[id].Jump; j != nil {
			x, ok := external[j.Flow]
			if !ok {
				x = fmt.Sprintf("x%d", len(external))
				external[j.Flow] = x
				fmt.Fprintf(&b, "    %s>\"flow %s\"]\n", x, mermaidText(j.Flow))
			}
			fmt.Fprintf(&b, "    %s -.->|flow| %s\n", nodes[id], x)
		}
	}
	if n, ok := nodes[f.Start]; ok {
		fmt.Fprintf(&b, "    style %s stroke-width:3px\n", n)
	}
	return b.String()
}

// MermaidSet renders several flows as one Mermaid flowchart, a subgraph
// per flow, with each TransferToFlow block joined to the start block of
// the flow it continues in (a dotted arrow).
func MermaidSet(set []*Flow) string {
	var b strings.Builder
	b.WriteString("flowchart TD\n")
	nodes := make([]map[string]string, len(set))
	byName := map[string]int{}
	for i, f := range set {
		byName[f.Name] = i
		fmt.Fprintf(&b, "    subgraph s%d[\"%s v%s\"]\n", i, mermaidText(f.Name), mermaidText(f.Version))
		nodes[i] = mermaidNodes(&b, f, fmt.Sprintf("s%dn", i), "        ")
		b.WriteString("    end\n")
	}
	external := map[string]string{}
	for i, f := range set {
		mermaidEdges(&b, f, nodes[i])
		for _, id := range graphOrder(f) {
			j := f.Blocks[id].Jump
			if j == nil {
				continue
			}
			to := ""
			if k, ok := byName[j.Flow]; ok {
				to = nodes[k][set[k].Start]
			}
			if to == "" {
				if to = external[j.Flow]; to == "" {
					to = fmt.Sprintf("x%d", len(external))
					external[j.Flow] = to
					fmt.Fprintf(&b, "    %s>\"flow %s\"]\n", to, mermaidText(j.Flow))
				}
			}
			fmt.Fprintf(&b, "    %s -.->|flow| %s\n", nodes[i][id], to)
		}
		if n, ok := nodes[i][f.Start]; ok {
			fmt.Fprintf(&b, "    style %s stroke-width:3px\n", n)
		}
	}
	return b.String()
}

// mermaidNodes writes a flow's nodes, ids prefix0, prefix1, …, and
// returns them by block id.
func mermaidNodes(b *strings.Builder, f *Flow, prefix, indent string) map[string]string {
	order := graphOrder(f)
	node := make(map[string]string, len(order))
	for i, id := range order {
		node[id] = fmt.Sprintf("%s%d", prefix, i)
	}
	for _, id := range order {
		blk := f.Blocks[id]
		open, shut := "[", "]"
		switch blk.Type {
		case TypeCheckAttribute:
			open, shut = "{", "}"
		case TypeLoop:
			open, shut = "{{", "}}"
		case TypeDisconnect:
			open, shut = "([", "])"
		case TypeTransferToPhoneNumber, TypeTransferToAgent, TypeTransferToQueue:
			open, shut = "[[", "]]"
		case TypeTransferToFlow:
			open, shut = "[/", "/]"
		}
		fmt.Fprintf(b, "%s%s%s\"%s<br/>%s\"%s\n", indent, node[id], open, mermaidText(id), mermaidText(string(blk.Type)), shut)
	}
	return node
}

func mermaidEdges(b *strings.Builder, f *Flow, node map[string]string) {
	for _, id := range graphOrder(f) {
		blk := f.Blocks[id]
		for _, name := range sortedBranches(blk) {
			if to, ok := node[blk.Branches[name]]; ok {
				fmt.Fprintf(b, "    %s -->|%s| %s\n", node[id], mermaidText(name), to)
			}
		}
	}
}

// mermaidText escapes characters Mermaid treats as syntax in labels.
func mermaidText(s string) string {
	r := strings.NewReplacer(`"`, "#quot;", "|", "#124;", "<", "#lt;", ">", "#gt;")
	return r.Replace(s)
}

// DOT renders the flow for Graphviz; a TransferToFlow block points at a
// node standing for the flow it continues in.
func DOT(f *Flow) string {
	var b strings.Builder
	fmt.Fprintf(&b, "digraph %s {\n", dotQuote(f.Name))
	fmt.Fprintf(&b, "    label=%s;\n    labelloc=t;\n    node [shape=box];\n", dotQuote(f.Name+" v"+f.Version))
	dotFlow(&b, f, "", "    ")
	for _, id := range graphOrder(f) {
		if j := f.Blocks[id].Jump; j != nil {
			fmt.Fprintf(&b, "    %s [label=%s, shape=cds];\n", dotQuote("flow:"+j.Flow), dotQuote("flow "+j.Flow))
			fmt.Fprintf(&b, "    %s -> %s [label=\"flow\", style=dashed];\n", dotQuote(id), dotQuote("flow:"+j.Flow))
		}
	}
	b.WriteString("}\n")
	return b.String()
}

// DOTSet renders several flows for Graphviz, a cluster per flow, with each
// TransferToFlow block joined to the start block of the flow it continues
// in (a dashed arrow). Node ids are flow/block.
func DOTSet(set []*Flow) string {
	var b strings.Builder
	b.WriteString("digraph flows {\n    node [shape=box];\n")
	byName := map[string]*Flow{}
	for i, f := range set {
		byName[f.Name] = f
		fmt.Fprintf(&b, "    subgraph %s {\n        label=%s;\n", dotQuote(fmt.Sprintf("cluster_%d", i)), dotQuote(f.Name+" v"+f.Version))
		dotFlow(&b, f, f.Name+"/", "        ")
		b.WriteString("    }\n")
	}
	for _, f := range set {
		for _, id := range graphOrder(f) {
			j := f.Blocks[id].Jump
			if j == nil {
				continue
			}
			to := "flow:" + j.Flow
			if t, ok := byName[j.Flow]; ok {
				to = t.Name + "/" + t.Start
			} else {
				fmt.Fprintf(&b, "    %s [label=%s, shape=cds];\n", dotQuote(to), dotQuote("flow "+j.Flow))
			}
			fmt.Fprintf(&b, "    %s -> %s [label=\"flow\", style=dashed];\n", dotQuote(f.Name+"/"+id), dotQuote(to))
		}
	}
	b.WriteString("}\n")
	return b.String()
}

// dotFlow writes a flow's nodes and edges, node ids prefixed.
func dotFlow(b *strings.Builder, f *Flow, prefix, indent string) {
	order := graphOrder(f)
	for _, id := range order {
		blk := f.Blocks[id]
		shape := ""
		switch blk.Type {
		case TypeCheckAttribute:
			shape = ", shape=diamond"
		case TypeLoop:
			shape = ", shape=hexagon"
		case TypeDisconnect:
			shape = ", shape=oval"
		case TypeTransferToFlow:
			shape = ", shape=parallelogram"
		}
		if id == f.Start {
			shape += ", penwidth=3"
		}
		fmt.Fprintf(b, "%s%s [label=%s%s];\n", indent, dotQuote(prefix+id), dotQuote(id+"\n"+string(blk.Type)), shape)
	}
	for _, id := range order {
		blk := f.Blocks[id]
		for _, name := range sortedBranches(blk) {
			to := blk.Branches[name]
			if _, ok := f.Blocks[to]; ok {
				fmt.Fprintf(b, "%s%s -> %s [label=%s];\n", indent, dotQuote(prefix+id), dotQuote(prefix+to), dotQuote(name))
			}
		}
	}
}

func dotQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}
