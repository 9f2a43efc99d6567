package controller

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ariflow/ariflow/flows"
	"github.com/ariflow/ariflow/policy"
	"github.com/ariflow/ariflow/transfer"
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
	if tr := rec.Attributes[flows.NSTransfer]; tr[flows.TrStatus] != string(transfer.OutcomeDenied) || tr[flows.TrDeniedBy] != policy.RuleLocalContext {
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
		h.fake.FinishPlayback(pb)
		h.ended("c1") // after the call's last log line
		if n := testutil.ToFloat64(h.app.metrics.CallErrors.WithLabelValues(string(flows.TypeInvokeWebhook))); n != 1 {
			t.Errorf("URL %d: ariflow_call_errors_total{where=InvokeWebhook} = %v, want 1", i, n)
		}
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

// A transfer the dial policy refuses whose Error branch leads back to it
// (the loader refuses that flow now; here the loop is made after loading,
// as a flow of an older version would have it) loops without waiting.
// After maxBlocksWithoutWait blocks the caller goes to the fallback, with
// a log line and ariflow_flow_spins_total, and nothing was dialled.
func TestSpinningFlowGoesToFallback(t *testing.T) {
	t.Parallel()
	flow := `
name: spin
version: "1"
entry: ["spin"]
start: xfer
blocks:
  xfer:
    type: TransferToPhoneNumber
    number: "+19005550123"
    resume: true
    branches: {Success: bye, CallFailed: bye, Timeout: bye, Error: sorry}
  sorry: {type: PlayPrompt, prompts: ["sound:sorry"], branches: {Next: xfer}}
  bye: {type: Disconnect}
`
	h := newHarness(t, []string{flow}, func(c *Config) { c.Fallback = DialplanTarget{Context: "fallback"} })
	h.set.Flows[0].Blocks["xfer"].Branches[flows.BranchError] = "xfer"
	reg := prometheus.NewRegistry()
	reg.MustRegister(h.app.metrics.FlowSpins, h.app.metrics.Fallbacks, h.app.metrics.Denied)
	h.start()
	h.caller("c1", "spin")
	if r := h.req("POST", "/channels/c1/continue"); r.Query.Get("context") != "fallback" {
		t.Errorf("continue %v", r.Query)
	}
	h.ended("c1")
	if n := metricValue(t, reg, "ariflow_flow_spins_total"); n != 1 {
		t.Errorf("ariflow_flow_spins_total = %v, want 1", n)
	}
	if n := metricValue(t, reg, "ariflow_fallback_total"); n != 1 {
		t.Errorf("ariflow_fallback_total = %v, want 1 (reason spinning)", n)
	}
	// Every block run was the transfer, refused by the policy.
	if n := metricValue(t, reg, "ariflow_dialout_denied_total"); n != maxBlocksWithoutWait {
		t.Errorf("%v transfers refused, want %d blocks run", n, maxBlocksWithoutWait)
	}
	if n := h.count("POST", "/channels/create") + h.count("POST", "/channels"); n != 0 {
		t.Errorf("%d legs created for a number the policy refuses", n)
	}
}

// A caller who hangs up while blocks run that never read the call's
// events (a webhook, then attributes) is seen gone before the next block:
// the prompt after them is never started.
func TestHangupSeenBetweenBlocks(t *testing.T) {
	t.Parallel()
	inFlight, release := make(chan struct{}), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(inFlight)
		<-release
		_, _ = w.Write([]byte(`{"ok":"1"}`))
	}))
	t.Cleanup(srv.Close)
	flow := `
name: gone
version: "1"
entry: ["gone"]
start: hook
blocks:
  hook: {type: InvokeWebhook, url: "` + srv.URL + `", branches: {Success: set, Error: set}}
  set: {type: SetAttributes, set: {a: "1"}, branches: {Next: play}}
  play: {type: PlayPrompt, prompts: ["sound:after"], branches: {Next: bye}}
  bye: {type: Disconnect}
`
	h := run(t, []string{flow})
	h.caller("c1", "gone")
	<-inFlight
	queued := func() (n int) {
		h.withCall("c1", func(c *call) { n = len(c.events) })
		return n
	}
	before := queued()
	h.fake.Hangup("c1", 16)
	eventually(t, "the hangup queued for the call", func() bool { return queued() > before })
	close(release)
	if err := h.ended("c1"); !errors.Is(err, ErrCallerGone) {
		t.Errorf("call ended with %v, want the caller's hangup", err)
	}
	if m := h.medias("c1"); len(m) != 0 {
		t.Errorf("played %v to a caller who had hung up", m)
	}
}

// A call keeps at most MaxExternal bytes of a webhook's answer: a larger
// one takes Error and $.External stays as it was; one within the bound is
// kept. The bound is the configuration's.
func TestWebhookAnswerBounded(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		max   int // Config.MaxExternal; 0: the default
		value int // bytes of the answer's one value
		media string
	}{
		{"default bound, 1 MiB answer", 0, 1<<20 - 64, mError},
		{"default bound, just over", 0, DefaultMaxExternal, mError},
		{"default bound, within", 0, DefaultMaxExternal - 100, mSuccess},
		{"configured bound", 200, 300, mError},
		{"configured bound, within", 200, 100, mSuccess},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			body := `{"big":"` + strings.Repeat("x", tc.value) + `"}`
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(body)) }))
			t.Cleanup(srv.Close)
			h := run(t, []string{webhookFlow(srv.URL, 3)}, func(c *Config) { c.MaxExternal = tc.max })
			h.caller("c1", "hook")
			pb := h.wantPlayed("c1", tc.media)
			rec, err := h.store.Load(t.Context(), "c1")
			if err != nil {
				t.Fatal(err)
			}
			got := len(rec.Attributes[flows.NSExternal]["big"])
			if want := map[bool]int{true: tc.value, false: 0}[tc.media == mSuccess]; got != want {
				t.Errorf("$.External.big holds %d bytes, want %d", got, want)
			}
			h.fake.FinishPlayback(pb)
			h.ended("c1")
		})
	}
}

// Caller and leg join the transfer's bridge without a connected-line
// update (inhibitConnectedLineUpdates on every addChannel, with and
// without a return key), so that no trunk configuration shows the far
// end the caller's identity or the caller the far end's.
func TestBridgeJoinInhibitsConnectedLine(t *testing.T) {
	t.Parallel()
	withKey := xferYAML("retkey", "    return_key: \"*\"\n"+resumeOn)
	for _, entry := range []string{"xfer", "retkey"} {
		t.Run(entry, func(t *testing.T) {
			t.Parallel()
			h := run(t, []string{xferFlow, withKey})
			h.caller("c1", entry)
			leg, br := h.leg()
			h.fake.Answer(leg)
			joined := map[string]bool{}
			eventually(t, "the caller and the leg joined", func() bool {
				clear(joined)
				for _, r := range h.fake.Requests() {
					if r.Method == "POST" && r.Path == "/bridges/"+br+"/addChannel" {
						for _, ch := range strings.Split(r.Query.Get("channel"), ",") {
							joined[ch] = true
						}
					}
				}
				return joined["c1"] && joined[leg]
			})
			h.answered("POST", "/bridges/"+br+"/addChannel")
			for _, r := range h.fake.Requests() {
				if r.Method == "POST" && r.Path == "/bridges/"+br+"/addChannel" && r.Query.Get("inhibitConnectedLineUpdates") != "true" {
					t.Errorf("addChannel %v without inhibitConnectedLineUpdates", r.Query)
				}
			}
			h.fake.Hangup(leg, 16)
			pb := h.wantPlayed("c1", mSuccess)
			h.fake.FinishPlayback(pb)
			h.ended("c1")
		})
	}
}
