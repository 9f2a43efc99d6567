package flows

import (
	"strings"
	"testing"
)

func loadShipping(t testing.TB) *Flow {
	t.Helper()
	set, err := LoadFiles(LoadOptions{}, "examples/shipping.yaml")
	if err != nil {
		t.Fatal(err)
	}
	f, _ := set.Flow("shipping")
	return f
}

func TestMermaid(t *testing.T) {
	f := loadShipping(t)
	got := Mermaid(f)
	if got != Mermaid(f) {
		t.Fatal("Mermaid output not stable")
	}
	for _, want := range []string{
		"flowchart TD\n",
		`    n0["greet<br/>PlayPrompt"]`,
		`    n3[["to_shipper<br/>TransferToPhoneNumber"]]`,
		"    n0 -->|Next| n1\n",
		"    n3 -->|Success| n5\n",
		"    n3 -->|CallFailed| n6\n",
		"    n5 -->|1| n8\n",
		"    style n0 stroke-width:3px\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("Mermaid output lacks %q:\n%s", want, got)
		}
	}
	if !strings.HasPrefix(got, "flowchart TD\n") {
		t.Errorf("does not start with flowchart TD")
	}
	// Every block is a node and every branch an edge.
	edges := 0
	for _, b := range f.Blocks {
		edges += len(b.Branches)
	}
	if n := strings.Count(got, " -->|"); n != edges {
		t.Errorf("%d edges, want %d", n, edges)
	}
	if n := strings.Count(got, "<br/>"); n != len(f.Blocks) {
		t.Errorf("%d nodes, want %d", n, len(f.Blocks))
	}
}

func TestDOT(t *testing.T) {
	f := loadShipping(t)
	got := DOT(f)
	for _, want := range []string{
		"digraph \"shipping\" {\n",
		`    "greet" [label="greet\nPlayPrompt", penwidth=3];`,
		`    "to_shipper" -> "ask_solved" [label="Success"];`,
		`    "ask_solved" -> "goodbye" [label="1"];`,
		`    "bye" [label="bye\nDisconnect", shape=oval];`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("DOT output lacks %q:\n%s", want, got)
		}
	}
	if !strings.HasSuffix(got, "}\n") || got != DOT(f) {
		t.Error("DOT output not closed or not stable")
	}
}

func TestGraphEscaping(t *testing.T) {
	f := &Flow{Name: "x", Version: "1", Start: "end", Blocks: map[string]*Block{
		"end": {ID: "end", Type: TypeDisconnect},
	}}
	if got := Mermaid(f); !strings.Contains(got, `n0(["end<br/>Disconnect"])`) {
		t.Errorf("Mermaid keyword id not wrapped:\n%s", got)
	}
	if got := dotQuote("a\"b\\c\nd"); got != `"a\"b\\c\nd"` {
		t.Errorf("dotQuote = %s", got)
	}
}
