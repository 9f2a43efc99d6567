package controller

import (
	"testing"

	"github.com/ariflow/ariflow/flows"
	"github.com/ariflow/ariflow/policy"
)

// A Local endpoint from an attribute goes only into a context the
// operator's policy names: into any other it could dial a number around
// the policy. Refused: nothing created, Error, $.Transfer.DeniedBy
// local-context.
func TestAgentLocalOnlyIntoNamedContexts(t *testing.T) {
	t.Parallel()
	pol, err := policy.Parse("p.yaml", []byte("endpoint_technologies: [PJSIP, Local]\nlocal_contexts: [agents]\n"))
	if err != nil {
		t.Fatal(err)
	}
	gate := policy.NewGate(pol, policy.NewMemoryLimiter(), policy.NewMemorySlots())
	flow := `
name: local
version: "1"
entry: ["local"]
start: set
blocks:
  set: {type: SetAttributes, set: {ep: "Local/+19005550123@from-internal"}, branches: {Next: agent}}
  agent:
    type: TransferToAgent
    endpoint: $.Attributes.ep
    branches: {Error: error}
  error: {type: PlayPrompt, prompts: ["sound:br-error"], branches: {Next: bye}}
  bye: {type: Disconnect}
`
	h := run(t, []string{flow}, func(c *Config) { c.Gate = gate })
	h.caller("c1", "local")
	pb := h.wantPlayed("c1", mError)
	rec, err := h.store.Load(t.Context(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	if tr := rec.Attributes[flows.NSTransfer]; tr[flows.TrStatus] != string(OutcomeDenied) || tr[flows.TrDeniedBy] != policy.RuleLocalContext {
		t.Errorf("$.Transfer %v; want Status denied by %s", tr, policy.RuleLocalContext)
	}
	if n := h.count("POST", "/channels") + h.count("POST", "/channels/create"); n != 0 {
		t.Errorf("%d channel requests for a Local endpoint into a context the policy does not name", n)
	}
	h.fake.FinishPlayback(pb)
	h.req("DELETE", "/channels/c1")
	h.ended("c1")
	h.clean("c1")
}
