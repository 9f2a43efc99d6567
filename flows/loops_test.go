package flows

import (
	"strings"
	"testing"
)

// A loop the engine would run without waiting for the caller is refused
// at load. A transfer's Error branch counts as not waiting: a transfer the
// dial policy refuses, or whose settings are invalid, takes it at once and
// again on every round.
func TestLoopsThroughErrorRefused(t *testing.T) {
	const head = "name: l\nversion: \"1\"\nentry: [\"l\"]\nstart: a\nblocks:\n"
	xfer := func(id, errTo string) string {
		return "  " + id + ":\n    type: TransferToPhoneNumber\n    number: $.Attributes.n\n    resume: true\n" +
			"    branches: {Success: bye, CallFailed: bye, Timeout: bye, Error: " + errTo + "}\n"
	}
	const bye = "  bye: {type: Disconnect}\n"
	for _, tc := range []struct {
		name, blocks, want string // want "" when the flow loads
	}{
		{"transfer's Error to itself", xfer("a", "a") + bye,
			`l.yaml:6: block "a" loops to itself through an Error branch without waiting for the caller`},
		{"transfer's Error back through a SetAttributes", xfer("a", "s") +
			"  s: {type: SetAttributes, set: {n: \"+4930123456\"}, branches: {Next: a}}\n" + bye,
			`l.yaml:6: blocks "a", "s" form a loop through an Error branch that never waits for the caller`},
		// Not certain to spin (a prompt's error may pass): bounded at run time.
		{"input's Error to itself loads", "  a:\n    type: GetCustomerInput\n    prompts: [$.Attributes.p]\n    branches: {Success: bye, Timeout: bye, Error: a}\n" + bye, ""},
		{"agent's Error back through a webhook", "  a:\n    type: TransferToAgent\n    endpoint: $.Attributes.ep\n    branches: {Error: w}\n" +
			"  w: {type: InvokeWebhook, url: \"http://127.0.0.1:9/x\", branches: {Success: a, Error: bye}}\n" + bye,
			`l.yaml:6: blocks "a", "w" form a loop through an Error branch that never waits for the caller`},
		{"Error back through a prompt waits", xfer("a", "sorry") +
			"  sorry: {type: PlayPrompt, prompts: [\"sound:sorry\"], branches: {Next: a}}\n" + bye, ""},
		{"a retry after CallFailed waits (the dial)", strings.Replace(xfer("a", "bye"), "CallFailed: bye", "CallFailed: a", 1) + bye, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("l.yaml", []byte(head+tc.blocks), LoadOptions{})
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}
