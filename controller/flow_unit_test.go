package controller

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ariflow/ariflow/flows"
	"github.com/ariflow/ariflow/internal/ari/aritest"
	"github.com/ariflow/ariflow/record"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

const inputFlow = `
name: input
version: "1"
entry: ["input"]
start: ask
blocks:
  ask:
    type: GetCustomerInput
    prompts: ["sound:ask-1", "sound:ask-2"]
    max_digits: 4
    terminator: "#"
    timeout: 1
    store_as: got
    branches: {Success: ok, Timeout: timeout, Error: error}
  ok: {type: PlayPrompt, prompts: ["sound:br-success"], branches: {Next: bye}}
  timeout: {type: PlayPrompt, prompts: ["sound:br-timeout"], branches: {Next: bye}}
  error: {type: PlayPrompt, prompts: ["sound:br-error"], branches: {Next: bye}}
  bye: {type: Disconnect}
`

const menuFlow = `
name: menu
version: "1"
entry: ["menu"]
start: ask
blocks:
  ask:
    type: GetCustomerInput
    prompts: ["sound:menu"]
    values: ["1", "2"]
    timeout: 1
    branches: {"1": one, "2": two, NoMatch: nomatch, Timeout: timeout}
  one: {type: PlayPrompt, prompts: ["sound:one"], branches: {Next: bye}}
  two: {type: PlayPrompt, prompts: ["sound:two"], branches: {Next: bye}}
  nomatch: {type: PlayPrompt, prompts: ["sound:nomatch"], branches: {Next: bye}}
  timeout: {type: PlayPrompt, prompts: ["sound:br-timeout"], branches: {Next: bye}}
  bye: {type: Disconnect}
`

// shortInput replaces the input blocks' timeouts (1 s at least in a
// flow file) to keep the suite fast.
const shortInput = 250 * time.Millisecond

func (h *harness) shortInputTimeouts() {
	for _, f := range h.set.Flows {
		for _, b := range f.Blocks {
			if b.Input != nil {
				b.Input.Timeout = shortInput
			}
		}
	}
}

// lastInput reads $.System.LastInput from the record saved at the
// branch's block (while its prompt plays).
func (h *harness) lastInput(id string) string {
	rec, err := h.store.Load(h.t.Context(), id)
	if err != nil {
		h.t.Fatalf("record: %v", err)
	}
	return rec.Attributes[flows.NSSystem][flows.SysLastInput]
}

func TestGetCustomerInput(t *testing.T) {
	t.Parallel()
	type step struct {
		digit  string // a digit, or "finish" (the current prompt ends)
		during bool   // sent while the prompt plays (barge-in)
	}
	for _, tc := range []struct {
		name    string
		flow    string
		steps   func(h *harness, pb1 string)
		media   string
		input   string
		stopped bool // a DELETE /playbacks/... (barge-in)
	}{
		{"timeout after both prompts", "input", func(h *harness, pb1 string) {
			h.fake.FinishPlayback(pb1)
			_, pb2 := h.played("c1")
			h.fake.FinishPlayback(pb2)
		}, "sound:br-timeout", "", false},
		{"terminator", "input", func(h *harness, pb1 string) {
			h.fake.FinishPlayback(pb1)
			_, pb2 := h.played("c1")
			h.fake.FinishPlayback(pb2)
			h.fake.DTMF("c1", "1")
			h.fake.DTMF("c1", "2")
			h.fake.DTMF("c1", "#")
		}, "sound:br-success", "12", false},
		{"max digits", "input", func(h *harness, pb1 string) {
			h.fake.FinishPlayback(pb1)
			_, pb2 := h.played("c1")
			h.fake.FinishPlayback(pb2)
			for _, d := range []string{"4", "7", "1", "1"} {
				h.fake.DTMF("c1", d)
			}
		}, "sound:br-success", "4711", false},
		{"inter-digit timeout", "input", func(h *harness, pb1 string) {
			h.fake.FinishPlayback(pb1)
			_, pb2 := h.played("c1")
			h.fake.FinishPlayback(pb2)
			h.fake.DTMF("c1", "9")
		}, "sound:br-success", "9", false},
		{"only the terminator", "input", func(h *harness, pb1 string) {
			h.fake.DTMF("c1", "#")
		}, "sound:br-timeout", "", true},
		{"barge-in stops the prompt and skips the next", "input", func(h *harness, pb1 string) {
			h.fake.DTMF("c1", "5")
			h.req("DELETE", "/playbacks/"+pb1)
			h.fake.DTMF("c1", "#")
		}, "sound:br-success", "5", true},
		{"menu value", "menu", func(h *harness, pb1 string) {
			h.fake.DTMF("c1", "2")
		}, "sound:two", "2", true},
		{"menu no match", "menu", func(h *harness, pb1 string) {
			h.fake.DTMF("c1", "7")
		}, "sound:nomatch", "7", true},
		{"menu timeout", "menu", func(h *harness, pb1 string) {
			h.fake.FinishPlayback(pb1)
		}, "sound:br-timeout", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, []string{inputFlow, menuFlow})
			h.shortInputTimeouts()
			h.start()
			h.caller("c1", tc.flow)
			_, pb1 := h.played("c1")
			start := time.Now()
			tc.steps(h, pb1)
			pb := h.wantPlayed("c1", tc.media)
			if got := h.lastInput("c1"); got != tc.input {
				t.Errorf("LastInput %q, want %q", got, tc.input)
			}
			if tc.flow == "input" && tc.input != "" {
				rec := h.load("c1")
				if rec.Attributes[flows.NSAttributes]["got"] != tc.input {
					t.Errorf("store_as: %v", rec.Attributes[flows.NSAttributes])
				}
			}
			if tc.media == "sound:br-timeout" && !tc.stopped && time.Since(start) < shortInput {
				t.Errorf("timed out after %v, want ≥ %v", time.Since(start), shortInput)
			}
			if stopped := h.fake.Count("DELETE", "/playbacks/") > 0; stopped != tc.stopped {
				t.Errorf("playback stopped: %v, want %v", stopped, tc.stopped)
			}
			if tc.stopped && tc.flow == "input" {
				for _, m := range h.medias("c1") {
					if m == "sound:ask-2" {
						t.Errorf("the second prompt played after a barge-in")
					}
				}
			}
			h.fake.FinishPlayback(pb)
			h.ended("c1")
			h.clean("c1")
		})
	}
}

// A caller hanging up during input ends the call; its prompt is not
// played on.
func TestGetCustomerInputCallerHangup(t *testing.T) {
	t.Parallel()
	h := run(t, []string{inputFlow})
	h.caller("c1", "input")
	h.played("c1")
	h.fake.Hangup("c1", 16)
	h.ended("c1")
	h.clean("c1")
	if m := h.medias("c1"); len(m) != 1 {
		t.Errorf("played %v", m)
	}
}

// A caller gone before the answer (it gave up while a busy PBX handed the
// call over: the answer finds no channel) ended the call as a caller's
// hangup, not as an error.
func TestCallerGoneBeforeAnswer(t *testing.T) {
	t.Parallel()
	h := run(t, []string{inputFlow})
	h.fake.Intercept(func(r *aritest.Request) (int, string, time.Duration, bool) {
		if r.Method == "POST" && r.Path == "/channels/c1/answer" {
			return http.StatusNotFound, `{"message":"Channel not found"}`, 0, true
		}
		return 0, "", 0, false
	})
	h.caller("c1", "input")
	if err := h.ended("c1"); !errors.Is(err, ErrCallerGone) {
		t.Fatalf("ended with %v, want ErrCallerGone", err)
	}
	h.logs.mu.Lock()
	defer h.logs.mu.Unlock()
	var ended bool
	for _, l := range h.logs.entries {
		switch l.msg {
		case "call ended with error":
			t.Errorf("logged as an error: %v", l.fields)
		case "call ended":
			ended = l.fields["end"] == "caller hung up"
		}
	}
	if !ended {
		t.Error(`no "call ended" line with end "caller hung up"`)
	}
	if n := h.count("POST", "/channels/c1/play"); n != 0 {
		t.Errorf("%d prompts played to a caller gone", n)
	}
}

// A PlaybackFinished that never comes costs at most PlaybackCheck: the
// call asks, finds the playback gone, and goes on.
func TestLostPlaybackFinished(t *testing.T) {
	t.Parallel()
	for _, flow := range []string{"prompts", "input"} {
		t.Run(flow, func(t *testing.T) {
			t.Parallel()
			prompts := `
name: prompts
version: "1"
entry: ["prompts"]
start: one
blocks:
  one: {type: PlayPrompt, prompts: ["sound:one"], branches: {Next: two}}
  two: {type: PlayPrompt, prompts: ["sound:br-timeout"], branches: {Next: bye}}
  bye: {type: Disconnect}
`
			h := run(t, []string{prompts, inputFlow})
			lost := make(chan string, 1)
			h.fake.Intercept(func(r *aritest.Request) (int, string, time.Duration, bool) {
				// The first playback is gone, and its event was lost.
				select {
				case id := <-lost:
					lost <- id
					if r.Method == "GET" && r.Path == "/playbacks/"+id {
						return 404, `{"message":"Playback not found"}`, 0, true
					}
				default:
				}
				return 0, "", 0, false
			})
			h.caller("c1", flow)
			_, pb := h.played("c1")
			lost <- pb
			if flow == "input" {
				h.wantPlayed("c1", "sound:ask-2")
			} else {
				h.wantPlayed("c1", "sound:br-timeout")
			}
			// It went on at the first check that found the playback gone
			// (a check costs PlaybackCheck of silence at most).
			if n := h.answeredWith("GET", "/playbacks/"+pb, 404); n != 1 {
				t.Errorf("%d checks found the playback gone, want 1", n)
			}
			h.fake.Hangup("c1", 16)
			h.ended("c1")
		})
	}
}

// A prompt whose playback fails takes the block's Error branch.
func TestPlaybackFailed(t *testing.T) {
	t.Parallel()
	flow := `
name: pf
version: "1"
entry: ["pf"]
start: one
blocks:
  one: {type: PlayPrompt, prompts: ["sound:one"], branches: {Next: bye, Error: error}}
  error: {type: PlayPrompt, prompts: ["sound:br-error"], branches: {Next: bye}}
  bye: {type: Disconnect}
`
	h := run(t, []string{flow})
	h.caller("c1", "pf")
	_, pb := h.played("c1")
	h.fake.Emit(map[string]any{"type": "PlaybackFinished", "playback": map[string]any{"id": pb, "state": "failed", "media_uri": "sound:one"}})
	pb2 := h.wantPlayed("c1", mError)
	h.fake.FinishPlayback(pb2)
	h.ended("c1")
}

// call.owned and app.owners keep only what the call holds now, however
// many prompts it played.
func TestOwnedDoesNotGrowPerPrompt(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("name: many\nversion: \"1\"\nentry: [\"many\"]\nstart: p0\nblocks:\n")
	const n = 12
	for i := range n {
		next := fmt.Sprintf("p%d", i+1)
		if i == n-1 {
			next = "ask"
		}
		fmt.Fprintf(&b, "  p%d: {type: PlayPrompt, prompts: [\"sound:a\", \"sound:b\"], branches: {Next: %s}}\n", i, next)
	}
	b.WriteString(`  ask:
    type: GetCustomerInput
    prompts: ["sound:x", "sound:y"]
    timeout: 5
    branches: {Success: last, Timeout: last}
  last: {type: PlayPrompt, prompts: ["sound:last"], branches: {Next: bye}}
  bye: {type: Disconnect}
`)
	h := run(t, []string{b.String()})
	h.fake.AutoFinishPlayback(0)
	h.caller("c1", "many")
	for range 2 * n {
		h.played("c1")
	}
	// The input's prompts finish too (auto-finish stays on: switching it
	// off here would race the flow); the call then waits for a key with
	// nothing playing, and owns its own channel only.
	h.wantPlayed("c1", "sound:x")
	h.wantPlayed("c1", "sound:y")
	deadline := time.Now().Add(wait)
	for {
		var owned, owners int
		h.withCall("c1", func(c *call) {
			if c == nil {
				t.Fatal("call not running")
			}
			owned, owners = len(c.owned), len(h.app.owners)
		})
		if owned == 1 && owners == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %d prompts: call.owned %d entries, app.owners %d, want 1 (the caller)", 2*n+2, owned, owners)
		}
		time.Sleep(time.Millisecond) // the last playback's end is being handled
	}
	h.fake.DTMF("c1", "1")
	h.wantPlayed("c1", "sound:last")
	h.ended("c1")
	h.withCall("c1", func(c *call) {
		if c != nil || len(h.app.owners) != 0 {
			t.Errorf("after the end: call %v, owners %v", c, h.app.owners)
		}
	})
}

func webhookFlow(url string, timeout int) string {
	return fmt.Sprintf(`
name: hook
version: "1"
entry: ["hook"]
start: hook
blocks:
  hook:
    type: InvokeWebhook
    url: %q
    timeout: %d
    branches: {Success: ok, Error: error}
  ok: {type: PlayPrompt, prompts: ["sound:br-success"], branches: {Next: bye}}
  error: {type: PlayPrompt, prompts: ["sound:br-error"], branches: {Next: bye}}
  bye: {type: Disconnect}
`, url, timeout)
}

func TestWebhookBlock(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		status  int
		body    string
		delay   time.Duration
		timeout int
		media   string
		ext     map[string]string
	}{
		{"success sets External", 200, `{"status":"delivered","n":42}`, 0, 3, mSuccess, map[string]string{"status": "delivered", "n": "42"}},
		{"non-2xx is Error", 503, `{"status":"x"}`, 0, 3, mError, nil},
		{"not an object is Error", 200, `[1]`, 0, 3, mError, nil},
		{"slower than its timeout is Error", 200, `{}`, 600 * time.Millisecond, 0, mError, nil},
		// The same answer as above, within its block's timeout.
		{"a 30 s timeout is honoured", 200, `{"late":"yes"}`, 600 * time.Millisecond, 30, mSuccess, map[string]string{"late": "yes"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := make(chan webhookRequestBody, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, err := io.ReadAll(r.Body)
				if err != nil {
					t.Errorf("webhook request body: %v", err)
				}
				got <- webhookRequestBody{r.Header.Get("Content-Type"), string(b)}
				select {
				case <-time.After(tc.delay):
				case <-r.Context().Done():
					return
				}
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			}))
			t.Cleanup(srv.Close)
			h := newHarness(t, []string{webhookFlow(srv.URL, max(tc.timeout, 1))})
			if tc.timeout == 0 { // 1 s at least in a flow file
				h.set.Flows[0].Blocks["hook"].Webhook.Timeout = 200 * time.Millisecond
			}
			h.start()
			h.caller("c1", "hook")
			pb := h.wantPlayed("c1", tc.media)
			// A block that got an answer sent its request first; one whose
			// 200 ms ran out may not have reached the server at all (a
			// busy machine): its request is not awaited.
			select {
			case req := <-got:
				if req.contentType != "application/json" || !strings.Contains(req.body, `"call_id":"c1"`) || !strings.Contains(req.body, `"block":"hook"`) {
					t.Errorf("webhook request %+v", req)
				}
			default:
				if tc.timeout != 0 {
					t.Error("the block took a branch without its webhook request reaching the server")
				}
			}
			if tc.ext != nil {
				rec := h.load("c1")
				for k, v := range tc.ext {
					if rec.Attributes[flows.NSExternal][k] != v {
						t.Errorf("$.External = %v, want %v", rec.Attributes[flows.NSExternal], tc.ext)
					}
				}
			}
			h.fake.FinishPlayback(pb)
			h.ended("c1")
		})
	}
}

type webhookRequestBody struct{ contentType, body string }

// The webhook block uses its own client: a process-wide transport that
// is broken (or cut to 10 s) does not affect it.
func TestWebhookNotOnDefaultTransport(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"a":"b"}`)
	}))
	t.Cleanup(srv.Close)
	old := http.DefaultTransport
	http.DefaultTransport = roundTripFunc(func(*http.Request) (*http.Response, error) {
		return nil, fmt.Errorf("http.DefaultTransport used")
	})
	t.Cleanup(func() { http.DefaultTransport = old })
	h := run(t, []string{webhookFlow(srv.URL, 3)})
	h.caller("c1", "hook")
	pb := h.wantPlayed("c1", mSuccess)
	h.fake.FinishPlayback(pb)
	h.ended("c1")
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// CheckAttribute and SetAttributes route on attributes.
func TestCheckAttribute(t *testing.T) {
	t.Parallel()
	flow := `
name: check
version: "1"
entry: ["check", "other"]
start: set
blocks:
  set: {type: SetAttributes, set: {lang: "de", who: $.System.CallerNumber}, branches: {Next: check}}
  check:
    type: CheckAttribute
    attribute: $.System.DialedNumber
    conditions:
      - {op: Equals, value: "check", branch: yes}
    branches: {yes: yes, NoMatch: no}
  yes: {type: PlayPrompt, prompts: ["sound:yes"], branches: {Next: bye}}
  no: {type: PlayPrompt, prompts: ["sound:no"], branches: {Next: bye}}
  bye: {type: Disconnect}
`
	h := run(t, []string{flow})
	h.caller("c1", "check")
	h.caller("c2", "other")
	pb1 := h.wantPlayed("c1", "sound:yes")
	pb2 := h.wantPlayed("c2", "sound:no")
	rec := h.load("c1")
	if a := rec.Attributes[flows.NSAttributes]; a["lang"] != "de" || a["who"] != "+4917612345678" {
		t.Errorf("attributes %v", a)
	}
	h.fake.FinishPlayback(pb1)
	h.fake.FinishPlayback(pb2)
	h.ended("c1")
	h.ended("c2")
}

// An entry no flow has: the fallback.
func TestNoFlowForEntry(t *testing.T) {
	t.Parallel()
	h := run(t, []string{xferFlow}, func(c *Config) { c.Fallback = DialplanTarget{Context: "fallback"} })
	h.caller("c1", "nobody")
	r := h.req("POST", "/channels/c1/continue")
	if r.Query.Get("context") != "fallback" || r.Query.Get("extension") != "s" || r.Query.Get("priority") != "1" {
		t.Errorf("continue %v", r.Query)
	}
	h.ended("c1")
	if h.count("DELETE", "/channels/c1") != 0 {
		t.Error("caller sent to the fallback was hung up")
	}
}

// TransferToAgent with a context continues the caller in the dialplan:
// the record says dialplan first, the caller is not hung up.
func TestAgentDialplan(t *testing.T) {
	t.Parallel()
	flow := `
name: queue
version: "1"
entry: ["queue"]
start: agent
blocks:
  agent: {type: TransferToAgent, context: agents, extension: "100", priority: 2}
`
	h := run(t, []string{flow})
	phases := make(chan record.Phase, 1)
	h.fake.Intercept(func(r *aritest.Request) (int, string, time.Duration, bool) {
		if strings.HasSuffix(r.Path, "/continue") {
			rec, err := h.store.Load(t.Context(), "c1")
			switch {
			case err == nil:
				phases <- rec.Phase
			case errors.Is(err, record.ErrNoRecord):
				phases <- ""
			default:
				t.Errorf("call c1's record at the continue: %v", err)
				phases <- ""
			}
		}
		return 0, "", 0, false
	})
	h.caller("c1", "queue")
	r := h.req("POST", "/channels/c1/continue")
	if r.Query.Get("context") != "agents" || r.Query.Get("extension") != "100" || r.Query.Get("priority") != "2" {
		t.Errorf("continue %v", r.Query)
	}
	h.ended("c1")
	if phase := <-phases; phase != record.PhaseDialplan {
		t.Errorf("phase when continuing: %q, want dialplan", phase)
	}
	if h.count("DELETE", "/channels/c1") != 0 {
		t.Error("caller in the dialplan hung up")
	}
	if h.store.has("c1") {
		t.Error("record left")
	}
}

// TransferToAgent to an endpoint: the agent sees the caller's number and
// is bridged; when the agent hangs up the caller is hung up too.
func TestAgentEndpoint(t *testing.T) {
	t.Parallel()
	flow := `
name: agent
version: "1"
entry: ["agent"]
start: agent
blocks:
  agent: {type: TransferToAgent, endpoint: "PJSIP/agent1", timeout: 10, branches: {CallFailed: bye, Timeout: bye, Error: bye}}
  bye: {type: Disconnect}
`
	h := run(t, []string{flow})
	h.caller("c1", "agent")
	leg, br := h.leg()
	ch, _ := h.fake.Channel(leg)
	if ch.Endpoint != "PJSIP/agent1" || ch.ConnectedNumber != "+4917612345678" || ch.ConnectedName != "Alice" {
		t.Errorf("agent leg %+v", ch)
	}
	h.bridgedUntilHangup(leg, br)
	h.req("DELETE", "/channels/c1")
	h.ended("c1")
	h.clean("c1")
}

// A prompt that never ends (media without end, an ARI that cannot say) is
// stopped at MaxPlayback and the caller sent to the fallback: not silence
// for ever.
func TestPlaybackPastItsBound(t *testing.T) {
	t.Parallel()
	for _, flow := range []string{"pf", "input"} {
		t.Run(flow, func(t *testing.T) {
			t.Parallel()
			pf := `
name: pf
version: "1"
entry: ["pf"]
start: one
blocks:
  one: {type: PlayPrompt, prompts: ["sound:endless"], branches: {Next: bye, Error: error}}
  error: {type: PlayPrompt, prompts: ["sound:br-error"], branches: {Next: bye}}
  bye: {type: Disconnect}
`
			h := run(t, []string{pf, inputFlow}, func(c *Config) {
				c.PlaybackCheck, c.MaxPlayback = 20*time.Millisecond, 200*time.Millisecond
				c.Fallback = DialplanTarget{Context: "fallback"}
			})
			h.caller("c1", flow)
			_, pb := h.played("c1")
			h.req("DELETE", "/playbacks/"+pb)
			if r := h.req("POST", "/channels/c1/continue"); r.Query.Get("context") != "fallback" {
				t.Errorf("continue %v; want the fallback", r.Query)
			}
			if n := testutil.ToFloat64(h.app.metrics.StuckCalls.WithLabelValues("playback")); n != 1 {
				t.Errorf("ariflow_stuck_waits_total{wait=playback} = %v, want 1", n)
			}
			h.ended("c1")
		})
	}
}

// A hand-off to the dialplan that Asterisk refuses leaves the caller in
// the app: the call goes back to the flow phase and takes the block's
// Error branch (before, the record stayed "dialplan", from which no
// transition leads, and the caller got the fallback instead).
func TestAgentContextContinueFails(t *testing.T) {
	t.Parallel()
	flow := `
name: queue
version: "1"
entry: ["queue"]
start: agent
blocks:
  agent: {type: TransferToAgent, context: agents, extension: "100", branches: {Error: sorry}}
  sorry: {type: PlayPrompt, prompts: ["sound:br-error"], branches: {Next: bye}}
  bye: {type: Disconnect}
`
	h := run(t, []string{flow}, func(c *Config) { c.Fallback = DialplanTarget{Context: "fallback"} })
	h.fake.Intercept(func(r *aritest.Request) (int, string, time.Duration, bool) {
		if strings.HasSuffix(r.Path, "/continue") && r.Query.Get("context") == "agents" {
			return 500, `{"message":"Internal Server Error"}`, 0, true
		}
		return 0, "", 0, false
	})
	h.caller("c1", "queue")
	pb := h.wantPlayed("c1", "sound:br-error")
	rec, err := h.store.Load(t.Context(), "c1")
	if err != nil || rec.Phase != record.PhaseFlow || rec.Block != "sorry" {
		t.Errorf("record at the Error branch: %+v %v", rec, err)
	}
	h.fake.FinishPlayback(pb)
	h.req("DELETE", "/channels/c1")
	h.ended("c1")
	if n := h.count("POST", "/channels/c1/continue"); n != 1 {
		t.Errorf("%d continues, want 1 (no fallback)", n)
	}
}

// A prompt whose request is cut under it (no answer: the connection
// closed, as when the websocket and REST connections are cut together) is
// played again, not taken for the block's Error.
func TestPlaybackCutPlayedAgain(t *testing.T) {
	t.Parallel()
	const prompts = `
name: prompts
version: "1"
entry: ["prompts"]
start: one
blocks:
  one: {type: PlayPrompt, prompts: ["sound:one"], branches: {Next: two, Error: bye}}
  two: {type: PlayPrompt, prompts: ["sound:two"], branches: {Next: bye}}
  bye: {type: Disconnect}
`
	h := run(t, []string{prompts})
	var cut atomic.Int32
	h.fake.Intercept(func(r *aritest.Request) (int, string, time.Duration, bool) {
		if r.Method == "POST" && strings.HasPrefix(r.Path, "/channels/c1/play/") && cut.Add(1) == 1 {
			return aritest.Cut, "", 0, true
		}
		return 0, "", 0, false
	})
	h.caller("c1", "prompts")
	eventually(t, "sound:one played after the cuts", func() bool {
		for _, r := range h.fake.Requests() {
			if r.Method == "POST" && strings.HasPrefix(r.Path, "/channels/c1/play/") && r.Query.Get("media") == "sound:one" && r.Status == 201 {
				h.fake.FinishPlayback(strings.TrimPrefix(r.Path, "/channels/c1/play/"))
				return true
			}
		}
		return false
	})
	eventually(t, "sound:two played next", func() bool {
		for _, m := range h.medias("c1") {
			if m == "sound:two" {
				return true
			}
		}
		return false
	})
	h.fake.Hangup("c1", 16)
	h.ended("c1")
}
