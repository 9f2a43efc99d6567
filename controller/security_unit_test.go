package controller

import (
	"net/http"
	"net/http/httptest"
	"strings"
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

// A webhook URL's user info and query values appear in no log line: the
// failed request is logged with the URL redacted, for an error status and
// for a host that cannot be reached.
func TestWebhookURLSecretsNotLogged(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) }))
	t.Cleanup(srv.Close)
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	withCreds := func(base string) string {
		return strings.Replace(base, "http://", "http://alice:pa55word@", 1) + "/hook?token=s3cret-t0ken"
	}
	for i, u := range []string{withCreds(srv.URL), withCreds(down.URL)} {
		h := run(t, []string{webhookFlow(u, 2)})
		h.caller("c1", "hook")
		pb := h.wantPlayed("c1", mError)
		h.waitLog("block failed", nil)
		h.fake.FinishPlayback(pb)
		h.ended("c1")
		h.logs.mu.Lock()
		logged := h.logs.buf.String()
		h.logs.mu.Unlock()
		if !strings.Contains(logged, "[redacted]@") {
			t.Errorf("URL %d: no redacted URL in the log:\n%s", i, logged)
		}
		for _, leak := range []string{"alice", "pa55word", "s3cret-t0ken"} {
			if strings.Contains(logged, leak) {
				t.Errorf("URL %d: the log holds %q:\n%s", i, leak, logged)
			}
		}
	}
}
