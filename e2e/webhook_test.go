package e2e

import (
	"context"
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
	if r.URL.Path == "/slow" {
		// The fault matrix's webhook (ha.yaml): a fixed 2 s answer, apart
		// from what other tests set.
		time.Sleep(2 * time.Second)
		rw.Header().Set("Content-Type", "application/json")
		_, _ = rw.Write([]byte(`{"looked_up":"yes"}`))
		return
	}
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

// A transfer's outcome is recorded on the contact for later blocks: here a
// webhook after the transfer reports what it sees.
const outcomeFlow = `# Written by the e2e tests: the transfer's outcome, as later blocks see it.
name: outcome
version: "1"
entry: ["+4930555090"]
start: xfer
blocks:
  xfer:
    type: TransferToPhoneNumber
    number: "+4930123456"
    timeout: 5
    dtmf: "12"
    branches: {Success: report, CallFailed: report, Timeout: report, Error: report}
  report:
    type: InvokeWebhook
    url: %s
    branches: {Success: agent, Error: agent}
  agent:
    type: TransferToAgent
    endpoint: "+4930111000"
`

func TestTransferOutcomeIsRecorded(t *testing.T) {
	cases := []struct {
		name string
		act  func(ctx context.Context, t *testing.T, s *Remote)
		want map[string]string
	}{
		{"busy", func(_ context.Context, _ *testing.T, s *Remote) { _ = s.Reject("busy") },
			map[string]string{"Status": "call-failed", "Cause": "17", "CauseText": "user busy", "DigitsSent": "", "Number": shipper}},
		{"answered, digits sent, far end hung up", func(ctx context.Context, t *testing.T, s *Remote) {
			_ = s.Answer()
			if d, err := s.Digits(ctx, 2); err != nil {
				t.Errorf("digits %q: %v", d, err)
			}
			_ = s.Hangup()
		}, map[string]string{"Status": "success", "DigitsSent": "12", "Number": shipper}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := callTest(t, 30*time.Second)
			webhook.set(200, `{}`, 0)
			defer webhook.set(200, `{"route":"agent","agent":"+4930111000"}`, 0)
			from := nextCaller()
			ship := carrier.Expect(shipper)
			agent := carrier.ExpectFrom(agentOK, from)
			caller, err := carrier.Dial(ctx, from, "+4930555090")
			if err != nil {
				t.Fatal(err)
			}
			tc.act(ctx, t, recv(ctx, t, ship, "shipper"))
			a := recv(ctx, t, agent, "agent")
			attrs, _ := webhook.last()["attributes"].(map[string]any)
			tr, _ := attrs["Transfer"].(map[string]any)
			for k, v := range tc.want {
				if got, _ := tr[k].(string); got != v {
					t.Errorf("$.Transfer.%s = %q, want %q", k, got, v)
				}
			}
			if _, ok := tr["RingTime"]; !ok {
				t.Error("$.Transfer.RingTime missing")
			}
			a.AnswerAndHangup()
			_ = caller.WaitHangup(ctx)
		})
	}
}
