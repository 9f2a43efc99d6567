package e2e

import (
	"encoding/json"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

const webhookFlow = `# Written by the e2e tests: a webhook decides where the caller goes.
name: webhook
version: "1"
entry: ["+4930555050"]
start: lookup
blocks:
  lookup:
    type: InvokeWebhook
    url: %s
    timeout: 2
    branches: {Success: route, Error: error}
  route:
    type: CheckAttribute
    attribute: $.External.route
    conditions:
      - {op: Equals, value: agent, branch: agent}
    branches: {agent: agent, NoMatch: error}
  agent:
    type: TransferToAgent
    endpoint: $.External.agent
  error:
    type: TransferToAgent
    endpoint: "+4930111003"
`

// webhookServer is the flow's webhook: it records what it was sent and
// answers with what the test set.
type webhookServer struct {
	srv    *http.Server
	ln     net.Listener
	mu     sync.Mutex
	reqs   []map[string]any
	status int
	body   string
	delay  time.Duration
}

func startWebhookServer() *webhookServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	w := &webhookServer{ln: ln, status: 200, body: `{"route":"agent","agent":"+4930111000"}`}
	w.srv = &http.Server{Handler: http.HandlerFunc(w.serve)}
	go func() { _ = w.srv.Serve(ln) }()
	return w
}

func (w *webhookServer) URL() string { return "http://" + w.ln.Addr().String() + "/lookup" }
func (w *webhookServer) Close()      { w.srv.Close() }

func (w *webhookServer) set(status int, body string, delay time.Duration) {
	w.mu.Lock()
	w.status, w.body, w.delay = status, body, delay
	w.mu.Unlock()
}

func (w *webhookServer) last() map[string]any {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.reqs) == 0 {
		return nil
	}
	return w.reqs[len(w.reqs)-1]
}

func (w *webhookServer) serve(rw http.ResponseWriter, r *http.Request) {
	var m map[string]any
	_ = json.NewDecoder(r.Body).Decode(&m)
	w.mu.Lock()
	w.reqs = append(w.reqs, m)
	status, body, delay := w.status, w.body, w.delay
	w.mu.Unlock()
	time.Sleep(delay) // the slow-server case: the flow's timeout must fire
	rw.Header().Set("Content-Type", "application/json")
	rw.WriteHeader(status)
	_, _ = rw.Write([]byte(body))
}

func TestWebhook(t *testing.T) {
	cases := []struct {
		name   string
		status int
		body   string
		delay  time.Duration
		agent  string
	}{
		{"response routes the caller", 200, `{"route":"agent","agent":"+4930111000"}`, 0, agentOK},
		{"non-2xx takes Error", 500, `{"route":"agent"}`, 0, agentError},
		{"bad JSON takes Error", 200, `not json`, 0, agentError},
		{"slower than the timeout takes Error", 200, `{"route":"agent","agent":"+4930111000"}`, 2500 * time.Millisecond, agentError},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := callTest(t, 30*time.Second)
			webhook.set(tc.status, tc.body, tc.delay)
			defer webhook.set(200, `{"route":"agent","agent":"+4930111000"}`, 0)
			from := nextCaller()
			agent := carrier.ExpectFrom(tc.agent, from)
			caller, err := carrier.Dial(ctx, from, "+4930555050")
			if err != nil {
				t.Fatal(err)
			}
			a := recv(ctx, t, agent, tc.agent)
			req := webhook.last()
			attrs, _ := req["attributes"].(map[string]any)
			sys, _ := attrs["System"].(map[string]any)
			if sys["CallerNumber"] != from {
				t.Errorf("webhook got System.CallerNumber %v, want %s", sys["CallerNumber"], from)
			}
			a.AnswerAndHangup()
			if err := caller.WaitHangup(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}
