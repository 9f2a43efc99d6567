package flows

import (
	"errors"
	"strings"
	"testing"
)

const mainFlow = `name: main
version: "1"
entry: ["+4930555820"]
start: greet
blocks:
  greet:
    type: PlayPrompt
    prompts: ["sound:dir-welcome"]
    branches: {Next: to_billing}
  to_billing:
    type: TransferToFlow
    flow: billing
    branches: {Error: bye}
  bye: {type: Disconnect}
`

const billingFlow = `name: billing
version: "2"
entry: ["billing"]
start: queue
blocks:
  queue:
    type: SetWorkingQueue
    queue: Billing VIP
    context: queues
    extension: billing
    branches: {Next: xfer}
  xfer:
    type: TransferToQueue
`

func yamlSet(t *testing.T, files ...string) (*Set, error) {
	t.Helper()
	var in []File
	for i, f := range files {
		in = append(in, File{Name: []string{"main.yaml", "billing.yaml", "third.yaml"}[i], Data: []byte(f)})
	}
	return ParseSet(LoadOptions{}, in...)
}

func TestTransferToFlowAcrossSet(t *testing.T) {
	set, err := yamlSet(t, mainFlow, billingFlow)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := set.Flow("main")
	if j := m.Blocks["to_billing"].Jump; j == nil || j.Flow != "billing" {
		t.Fatalf("jump %+v", j)
	}
	b, _ := set.Flow("billing")
	if q := b.Blocks["queue"].SetQueue; q.Name != "Billing VIP" || q.Context != "queues" || q.Extension != "billing" || q.Priority != 1 {
		t.Errorf("working queue %+v", q)
	}

	// Alone, main names a flow that is not there: refused at its block.
	_, err = yamlSet(t, mainFlow)
	var list ErrorList
	if !errors.As(err, &list) || len(list) != 1 || list[0].Error() != `main.yaml:10: block "to_billing": flow "billing" is not in the loaded set (flows: main)` {
		t.Errorf("missing flow: %v", err)
	}
	// One file checks alone (Parse): nothing to compare with.
	if _, err := Parse("main.yaml", []byte(mainFlow), LoadOptions{}); err != nil {
		t.Errorf("Parse of one file: %v", err)
	}
	_, err = yamlSet(t, strings.Replace(mainFlow, "flow: billing", "flow: Billing", 1), billingFlow)
	if err == nil || !strings.Contains(err.Error(), `block "to_billing": flow "Billing": a flow name may only hold a-z 0-9 _ -`) {
		t.Errorf("bad flow name: %v", err)
	}
	_, err = yamlSet(t, strings.Replace(mainFlow, "    branches: {Error: bye}\n", "    branches: {Next: bye}\n", 1), billingFlow)
	if err == nil || !strings.Contains(err.Error(), `branch "Next" is not allowed for TransferToFlow (allowed: Error)`) {
		t.Errorf("Next on TransferToFlow: %v", err)
	}
}

// Flows that hand a call back and forth without waiting would spin: the
// set is refused at the TransferToFlow that closes the circle. A wait on
// the way round, or a Loop's ContinueLooping, makes it fine.
func TestTransferToFlowSpin(t *testing.T) {
	const a = `name: a
version: "1"
entry: ["a"]
start: set
blocks:
  set:
    type: SetAttributes
    set: {seen: "yes"}
    branches: {Next: to_b}
  to_b:
    type: TransferToFlow
    flow: b
`
	const b = `name: b
version: "1"
entry: ["b"]
start: check
blocks:
  check:
    type: CheckAttribute
    attribute: $.Attributes.seen
    conditions: [{op: Equals, value: "yes", branch: again}]
    branches: {again: to_a, NoMatch: bye}
  to_a:
    type: TransferToFlow
    flow: a
  bye: {type: Disconnect}
`
	_, err := yamlSet(t, a, b)
	if err == nil || !strings.Contains(err.Error(), `billing.yaml:11: block "to_a": continues in flow "a", which comes back here without waiting for the caller (flows a, b;`) {
		t.Errorf("spinning pair: %v", err)
	}
	waits := strings.Replace(b, "branches: {again: to_a, NoMatch: bye}", "branches: {again: hello, NoMatch: bye}", 1) +
		"  hello:\n    type: PlayPrompt\n    prompts: [\"sound:hello-world\"]\n    branches: {Next: to_a}\n"
	if _, err := yamlSet(t, a, waits); err != nil {
		t.Errorf("with a prompt on the way round: %v", err)
	}
	// A flow that starts over in itself without waiting.
	self := strings.Replace(a, "flow: b", "flow: a", 1)
	if _, err := yamlSet(t, self); err == nil || !strings.Contains(err.Error(), `block "to_b": continues in flow "a", which comes back here`) {
		t.Errorf("self: %v", err)
	}
	counted := `name: a
version: "1"
entry: ["a"]
start: tries
blocks:
  tries:
    type: Loop
    count: 2
    branches: {ContinueLooping: again, DoneLooping: bye}
  again:
    type: TransferToFlow
    flow: a
  bye: {type: Disconnect}
`
	if _, err := yamlSet(t, counted); err != nil {
		t.Errorf("a restart bounded by Loop: %v", err)
	}
}

func TestWorkingQueueParse(t *testing.T) {
	for _, tc := range []struct{ from, to, want string }{
		{"    queue: Billing VIP\n", "", `block "queue": missing required setting "queue"`},
		{"context: queues", "context: que ues", `context: "que ues" may only hold A-Z a-z 0-9 + * # _ . -`},
		{"queue: Billing VIP", "queue: \"\"", `queue: "": want 1..128 bytes of text without control characters`},
		{"    branches: {Next: xfer}\n", "", `block "queue": missing required branch "Next"`},
		{"  xfer:\n    type: TransferToQueue\n", "  xfer:\n    type: TransferToQueue\n    branches: {Next: queue}\n", `branch "Next" is not allowed for TransferToQueue (allowed: Error)`},
	} {
		_, err := Parse("billing.yaml", []byte(strings.Replace(billingFlow, tc.from, tc.to, 1)), LoadOptions{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q -> %q: got %v, want %q", tc.from, tc.to, err, tc.want)
		}
	}
}

// A SetAttributes value with references inside its text is a template:
// Connect writes "$.Attributes.StreetNumber $.Attributes.Address1".
func TestSetAttributesTemplate(t *testing.T) {
	const flow = `name: t
version: "1"
entry: ["t"]
start: set
blocks:
  set:
    type: SetAttributes
    set:
      line: "$.Attributes.StreetNumber $.Attributes.Address1"
      label: "$.Attributes.journey | IA Branch"
      queue: "You are in $.Queue.Name."
      plain: "cost is $5"
      one: $.Attributes.journey
    branches: {Next: bye}
  bye: {type: Disconnect}
`
	f, err := Parse("t.yaml", []byte(flow), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a := Attributes{}
	a.Set(NSAttributes, "StreetNumber", "12")
	a.Set(NSAttributes, "Address1", "Main Street")
	a.Set(NSAttributes, "journey", "billing")
	a.Set(NSQueue, QueueName, "Billing VIP")
	want := map[string]string{"line": "12 Main Street", "label": "billing | IA Branch", "queue": "You are in Billing VIP.", "plain": "cost is $5", "one": "billing"}
	for _, as := range f.Blocks["set"].Set.Set {
		got, err := Resolve(as.Value, a)
		if err != nil || got != want[as.Key] {
			t.Errorf("%s: %q %v, want %q", as.Key, got, err, want[as.Key])
		}
		if template := as.Key == "line" || as.Key == "label" || as.Key == "queue"; template != as.Value.Template {
			t.Errorf("%s: template %v", as.Key, as.Value.Template)
		}
	}
	// A missing attribute in a template reads as nothing, as in Connect.
	if got, err := Resolve(f.Blocks["set"].Set.Set[0].Value, Attributes{}); err != nil || got != " " {
		t.Errorf("empty template: %q %v", got, err)
	}
	// A bad namespace alone is still an error.
	if _, err := Parse("t.yaml", []byte(strings.Replace(flow, "one: $.Attributes.journey", "one: $.Contact.journey", 1)), LoadOptions{}); err == nil {
		t.Error("$.Contact.journey accepted")
	}
}

func TestGraphSet(t *testing.T) {
	set, err := yamlSet(t, mainFlow, billingFlow)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := set.Flow("main")
	single := Mermaid(m)
	for _, want := range []string{`    n1[/"to_billing<br/>TransferToFlow"/]`, `    x0>"flow billing"]`, "    n1 -.->|flow| x0\n"} {
		if !strings.Contains(single, want) {
			t.Errorf("Mermaid lacks %q:\n%s", want, single)
		}
	}
	all := MermaidSet(set.Flows)
	for _, want := range []string{`    subgraph s0["main v1"]`, `    subgraph s1["billing v2"]`, `        s1n1[["xfer<br/>TransferToQueue"]]`, "    s0n1 -.->|flow| s1n0\n"} {
		if !strings.Contains(all, want) {
			t.Errorf("MermaidSet lacks %q:\n%s", want, all)
		}
	}
	dot := DOTSet(set.Flows)
	for _, want := range []string{`subgraph "cluster_1" {`, `"main/to_billing" -> "billing/queue" [label="flow", style=dashed];`} {
		if !strings.Contains(dot, want) {
			t.Errorf("DOTSet lacks %q:\n%s", want, dot)
		}
	}
	if d := DOT(m); !strings.Contains(d, `"to_billing" -> "flow:billing" [label="flow", style=dashed];`) {
		t.Errorf("DOT:\n%s", d)
	}
}
