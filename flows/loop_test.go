package flows

import (
	"strings"
	"testing"
)

const loopFlow = `name: retry
version: "1"
entry: ["retry"]
start: tries
blocks:
  tries:
    type: Loop
    count: COUNT
    branches: {ContinueLooping: ask, DoneLooping: bye, Error: bye}
  ask:
    type: GetCustomerInput
    prompts: ["sound:vm-enter-num-to-call"]
    values: ["1"]
    branches: {"1": bye, NoMatch: tries, Timeout: tries}
  bye: {type: Disconnect}
`

func TestLoopParse(t *testing.T) {
	for _, tc := range []struct{ count, want, err string }{
		{"3", "3", ""},
		{"0", "0", ""},
		{"100", "100", ""},
		{"$.Attributes.tries", "$.Attributes.tries", ""},
		{"101", "", "count: invalid loop count: 101 is out of range 0..100"},
		{"-1", "", "count: invalid loop count: -1 is out of range 0..100"},
		{"three", "", `count: invalid loop count "three": want a whole number 0..100`},
	} {
		f, err := Parse("retry.yaml", []byte(strings.Replace(loopFlow, "COUNT", tc.count, 1)), LoadOptions{})
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("count %s: got %v, want %q", tc.count, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("count %s: %v", tc.count, err)
			continue
		}
		if got := f.Blocks["tries"].Loop.Count.String(); got != tc.want {
			t.Errorf("count %s: read as %q", tc.count, got)
		}
	}
	// Both branches are required.
	_, err := Parse("retry.yaml", []byte(strings.Replace(strings.Replace(loopFlow, "COUNT", "2", 1), "DoneLooping: bye, ", "", 1)), LoadOptions{})
	if err == nil || !strings.Contains(err.Error(), `block "tries": missing required branch "DoneLooping"`) {
		t.Errorf("without DoneLooping: %v", err)
	}
}

// Connect's Loop: ContinueLooping count times, DoneLooping once, then
// afresh.
func TestLoopNext(t *testing.T) {
	l := &Loop{Count: Value{Literal: "2"}}
	done := 0
	var got []string
	for i := 0; i < 7; i++ {
		var br string
		var err error
		br, done, err = l.Next(nil, done)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, br)
	}
	want := "ContinueLooping ContinueLooping DoneLooping ContinueLooping ContinueLooping DoneLooping ContinueLooping"
	if strings.Join(got, " ") != want {
		t.Errorf("got %v\nwant %s", got, want)
	}
	zero := &Loop{Count: Value{Literal: "0"}}
	if br, n, _ := zero.Next(nil, 0); br != BranchDoneLooping || n != 0 {
		t.Errorf("count 0: %s %d, want DoneLooping at once", br, n)
	}
	ref := &Loop{Count: Value{Ref: &Ref{NSAttributes, "n"}}}
	a := Attributes{}
	if _, n, err := ref.Next(a, 1); err == nil || n != 1 {
		t.Errorf("missing count: %v, kept %d", err, n)
	}
	a.Set(NSAttributes, "n", "500")
	if _, _, err := ref.Next(a, 0); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Errorf("count 500: %v", err)
	}
	a.Set(NSAttributes, "n", "1")
	if br, n, err := ref.Next(a, 0); err != nil || br != BranchContinueLooping || n != 1 {
		t.Errorf("count from attribute: %s %d %v", br, n, err)
	}
}

// A loop that never waits is refused, unless it goes round through a
// Loop's ContinueLooping, which is taken at most count times.
func TestLoopBoundsSpin(t *testing.T) {
	const bounded = `name: poll
version: "1"
entry: ["poll"]
start: tries
blocks:
  tries:
    type: Loop
    count: 3
    branches: {ContinueLooping: ask, DoneLooping: bye}
  ask:
    type: InvokeWebhook
    url: https://crm.example.com/ready
    branches: {Success: tries, Error: tries}
  bye: {type: Disconnect}
`
	if _, err := Parse("poll.yaml", []byte(bounded), LoadOptions{}); err != nil {
		t.Errorf("a polling loop bounded by Loop: %v", err)
	}
	self := strings.Replace(bounded, "ContinueLooping: ask", "ContinueLooping: tries", 1)
	self = strings.Replace(self, "DoneLooping: bye", "DoneLooping: ask", 1)
	self = strings.Replace(self, "{Success: tries, Error: tries}", "{Success: bye, Error: bye}", 1)
	if _, err := Parse("poll.yaml", []byte(self), LoadOptions{}); err != nil {
		t.Errorf("a Loop continuing into itself is bounded: %v", err)
	}
	// DoneLooping leading back round is not bounded.
	unbounded := strings.Replace(bounded, "DoneLooping: bye", "DoneLooping: ask", 1)
	unbounded = strings.Replace(unbounded, "  bye: {type: Disconnect}\n", "", 1)
	_, err := Parse("poll.yaml", []byte(unbounded), LoadOptions{})
	if err == nil || !strings.Contains(err.Error(), `blocks "tries", "ask" form a loop that never waits for the caller`) {
		t.Errorf("DoneLooping back into the loop: %v", err)
	}
}
