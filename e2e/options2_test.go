package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/CyCoreSystems/ari/v6"
)

// The transfer options of issue 11 items 6-8: leg events (events_url),
// ringback (moh, early-media) and $.Transfer.SIPCode. Every transfer's
// branches lead to the webhook that records $.Transfer.*, then to agentOK.
const options2Flow = `# Written by the e2e tests: ringback, events_url, SIPCode.
name: options2
version: "1"
entry: ["+4930555111", "+4930555112", "+4930555113", "+4930555114", "+4930555115", "+4930555116"]
start: pick
blocks:
  pick:
    type: CheckAttribute
    attribute: $.System.DialedNumber
    conditions:
      - {op: Equals, value: "+4930555111", branch: events}
      - {op: Equals, value: "+4930555112", branch: dead}
      - {op: Equals, value: "+4930555113", branch: moh}
      - {op: Equals, value: "+4930555114", branch: early}
      - {op: Equals, value: "+4930555115", branch: sip}
      - {op: Equals, value: "+4930555116", branch: late}
    branches: {events: events, dead: dead, moh: moh, early: early, sip: sip, late: late, NoMatch: report}
  events:
    type: TransferToPhoneNumber
    number: "+4930124011"
    timeout: 10
    events_url: %[2]s
    branches: {Success: report, CallFailed: report, Timeout: report, Error: report}
  dead:
    type: TransferToPhoneNumber
    number: "+4930124012"
    timeout: 10
    events_url: %[3]s
    branches: {Success: report, CallFailed: report, Timeout: report, Error: report}
  moh:
    type: TransferToPhoneNumber
    number: "+4930124022"
    timeout: 10
    ringback: moh:digits
    branches: {Success: report, CallFailed: report, Timeout: report, Error: report}
  early:
    type: TransferToPhoneNumber
    number: "+4930124020"
    timeout: 15
    ringback: early-media
    branches: {Success: report, CallFailed: report, Timeout: report, Error: report}
  sip:
    type: TransferToPhoneNumber
    number: "+4930124021"
    timeout: 10
    branches: {Success: report, CallFailed: report, Timeout: report, Error: report}
  late:
    type: TransferToPhoneNumber
    number: "+4930124023"
    timeout: 10
    answer_on_bridge: true
    branches: {Success: report, CallFailed: report, Timeout: report, Error: report}
  report:
    type: InvokeWebhook
    url: %[1]s
    branches: {Success: agent, Error: agent}
  agent:
    type: TransferToAgent
    endpoint: "+4930111000"
`

// legEventServer records the leg events it receives.
type legEventServer struct {
	srv  *http.Server
	ln   net.Listener
	mu   sync.Mutex
	evs  []map[string]any
	sigs []string
	got  chan struct{}
}

func startLegEventServer() *legEventServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	s := &legEventServer{ln: ln, got: make(chan struct{}, 100)}
	s.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		s.mu.Lock()
		s.evs = append(s.evs, m)
		s.sigs = append(s.sigs, r.Header.Get("X-Ariflow-Signature"))
		s.mu.Unlock()
		s.got <- struct{}{}
	})}
	go func() { _ = s.srv.Serve(ln) }()
	return s
}

func (s *legEventServer) URL() string { return "http://" + s.ln.Addr().String() + "/legs" }

func (s *legEventServer) wait(ctx context.Context, n int) []map[string]any {
	for {
		s.mu.Lock()
		if len(s.evs) >= n {
			out := append([]map[string]any(nil), s.evs...)
			s.mu.Unlock()
			return out
		}
		s.mu.Unlock()
		select {
		case <-s.got:
		case <-ctx.Done():
			s.mu.Lock()
			defer s.mu.Unlock()
			return append([]map[string]any(nil), s.evs...)
		}
	}
}

// silentServer accepts connections, reads each request and never
// answers: a dead events URL that costs the sender its whole timeout. It
// notes when each request arrived and when the sender gave up on it.
type silentServer struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	reqs  []*silentRequest
}

type silentRequest struct{ arrived, gaveUp time.Time }

func startSilentServer() *silentServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	s := &silentServer{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			go s.serve(c)
		}
	}()
	return s
}

// serve reads one request (a sender that gets no answer sends no other
// on the connection) and waits for the sender to close the connection.
func (s *silentServer) serve(c net.Conn) {
	if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
		return
	}
	r := &silentRequest{arrived: time.Now()}
	s.mu.Lock()
	s.reqs = append(s.reqs, r)
	s.mu.Unlock()
	_, _ = io.Copy(io.Discard, c)
	s.mu.Lock()
	r.gaveUp = time.Now()
	s.mu.Unlock()
}

func (s *silentServer) URL() string { return "http://" + s.ln.Addr().String() + "/never" }

// since lists the requests that arrived from t on.
func (s *silentServer) since(t time.Time) []silentRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []silentRequest
	for _, r := range s.reqs {
		if !r.arrived.Before(t) {
			out = append(out, *r)
		}
	}
	return out
}

func (s *silentServer) Close() {
	s.ln.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.Close()
	}
}

var (
	options2Once   sync.Once
	options2Events *legEventServer
	options2Dead   *silentServer
)

func options2Call(ctx context.Context, t *testing.T, did, number string) (*Caller, *Remote, string) {
	t.Helper()
	installOptions2(t)
	return transferToShipper(ctx, t, did, number)
}

// installOptions2 installs the options2 flow, once, by a reload.
func installOptions2(t *testing.T) {
	t.Helper()
	var err error
	options2Once.Do(func() {
		options2Events = startLegEventServer()
		options2Dead = startSilentServer()
		if err = os.WriteFile(filepath.Join(flowsDir, "options2.yaml"), []byte(fmt.Sprintf(options2Flow, webhook.URL(), options2Events.URL(), options2Dead.URL())), 0o644); err != nil {
			return
		}
		var code int
		var body string
		if code, body, err = af.Reload(); err == nil && code != 200 {
			err = fmt.Errorf("reload: %d %s", code, body)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestOptions2LegEvents(t *testing.T) {
	ctx := callTest(t, 30*time.Second)
	caller, s, from := options2Call(ctx, t, "+4930555111", "+4930124011")
	agent := carrier.ExpectFrom(agentOK, from)
	_ = s.Ring()
	time.Sleep(300 * time.Millisecond)
	_ = s.Answer()
	time.Sleep(500 * time.Millisecond)
	_ = s.Hangup()
	wantAttrs(t, finishAtAgent(ctx, t, caller, agent), map[string]string{"Status": "success"})
	evs := options2Events.wait(shortCtx(ctx, 5*time.Second), 3)
	var names []string
	for _, e := range evs {
		names = append(names, fmt.Sprint(e["event"]))
	}
	t.Logf("events: %v", names)
	if strings.Join(names, ",") != "ringing,answered,completed" {
		t.Fatalf("events %v, want ringing, answered, completed", names)
	}
	leg := evs[0]["leg"]
	for i, e := range evs {
		if e["leg"] != leg || !strings.HasPrefix(fmt.Sprint(leg), "ariflow-leg-") || e["number"] != "+4930124011" ||
			e["flow"] != "options2" || e["block"] != "events" || e["call_id"] == "" {
			t.Errorf("event %d: %v", i, e)
		}
		for _, k := range []string{"time", "dialed_at"} {
			if _, err := time.Parse(time.RFC3339Nano, fmt.Sprint(e[k])); err != nil {
				t.Errorf("event %d: %s %v: %v", i, k, e[k], err)
			}
		}
	}
	done := evs[2]
	if done["status"] != "success" || done["ended_by"] != "far-end" || done["answered_at"] == nil || done["ended_at"] == nil {
		t.Errorf("completed: %v", done)
	}
}

// A leg events receiver that never answers is not on the caller's path:
// the flow goes on after the far end's hangup while the sender still
// waits for the receiver. (How soon it goes on is a figure, logged here
// and measured by the benchmark's resume latency.)
func TestOptions2DeadEventsURLDelaysNothing(t *testing.T) {
	ctx := callTest(t, 30*time.Second)
	start := time.Now()
	caller, s, from := options2Call(ctx, t, "+4930555112", "+4930124012")
	agent := carrier.ExpectFrom(agentOK, from)
	_ = s.Ring()
	if err := s.Answer(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	hung := time.Now()
	_ = s.Hangup()
	a := recv(ctx, t, agent, "agent after the transfer")
	t.Logf("far end hung up → next block's call at the carrier: %v (the events URL never answers)", a.Stamp.Sub(hung).Round(time.Millisecond))
	a.AnswerAndHangup()
	if err := caller.WaitHangup(ctx); err != nil {
		t.Fatal(err)
	}
	wantAttrs(t, transferAttrs(t), map[string]string{"Status": "success", "EndedBy": "far-end"})
	// Had the flow waited for a leg event, the sender would have given
	// that request up (its timeout) before the flow went on.
	var reqs []silentRequest
	for len(reqs) == 0 && ctx.Err() == nil {
		reqs = options2Dead.since(start)
		time.Sleep(10 * time.Millisecond)
	}
	if len(reqs) == 0 {
		t.Fatal("no leg event reached the dead events URL")
	}
	for i, r := range reqs {
		if !r.gaveUp.IsZero() && r.gaveUp.Before(a.Stamp) {
			t.Errorf("request %d to the dead events URL given up %v before the flow went on", i+1, a.Stamp.Sub(r.gaveUp))
		}
	}
}

func TestOptions2RingbackMOH(t *testing.T) {
	ctx := callTest(t, 30*time.Second)
	caller, s, from := options2Call(ctx, t, "+4930555113", "+4930124022")
	agent := carrier.ExpectFrom(agentOK, from)
	bridged := bridgedWatch()
	defer observer.hub.unsubscribe(bridged)
	_ = s.Ring()
	time.Sleep(time.Second)
	if err := s.Answer(); err != nil {
		t.Fatal(err)
	}
	if _, err := bridged.next(ctx); err != nil {
		t.Fatal("not bridged after the answer:", err)
	}
	_ = s.Hangup()
	wantAttrs(t, finishAtAgent(ctx, t, caller, agent), map[string]string{"Status": "success"})
	if log, err := os.ReadFile(af.LogPath); err == nil && strings.Contains(string(log), "music on hold failed") {
		t.Error("ariflow could not start music on hold")
	}
}

func TestOptions2RingbackEarlyMedia(t *testing.T) {
	ctx := callTest(t, 40*time.Second)
	bridged := bridgedWatch()
	defer observer.hub.unsubscribe(bridged)
	legUp := observer.hub.subscribe(func(ev ari.Event) bool {
		e, ok := ev.(*ari.ChannelStateChange)
		return ok && strings.HasPrefix(e.Channel.ID, "ariflow-leg-") && e.Channel.State == "Up"
	})
	defer observer.hub.unsubscribe(legUp)
	// The far end arrives at the carrier's app only after its
	// announcement: the call is placed by hand, not by options2Call.
	installOptions2(t)
	from := nextCaller()
	ship := carrier.Expect("+4930124020")
	agent := carrier.ExpectFrom(agentOK, from)
	caller, err := carrier.Dial(ctx, from, "+4930555114")
	if err != nil {
		t.Fatal(err)
	}
	// The leg enters the caller's bridge before it is dialled, long before
	// the far end answers: the carrier plays its announcement as early
	// media (183, Playback noanswer, about 5 s) first.
	ev, err := bridged.next(ctx)
	if err != nil {
		t.Fatal("caller and leg never bridged:", err)
	}
	entered := ev.(*ari.ChannelEnteredBridge)
	var leg string
	for _, id := range entered.Bridge.ChannelIDs {
		if strings.HasPrefix(id, "ariflow-leg-") {
			leg = id
		}
	}
	bridgedAt := EventTime(ev)
	time.Sleep(2 * time.Second)
	rx, rxErr := stack.PBX.Channel().GetVariable(ari.NewKey(ari.ChannelKey, leg), "CHANNEL(rtcp,rxcount)")
	state := ""
	if d, err := stack.PBX.Channel().Data(ari.NewKey(ari.ChannelKey, leg)); err == nil {
		state = d.State
	}
	t.Logf("leg %s bridged with the caller; 2 s later state %q, RTP packets received from the far end %s (%v)", leg, state, rx, rxErr)
	if state == "Up" {
		t.Errorf("leg already up 2 s after the bridge; want ringing with early media")
	}
	if rxErr != nil || rx == "" || rx == "0" {
		t.Errorf("no early media received on the bridged leg before the answer: %q (%v)", rx, rxErr)
	}
	s := recv(ctx, t, ship, "the early-media number after its announcement")
	if err := s.Answer(); err != nil {
		t.Fatal(err)
	}
	up, err := legUp.next(ctx)
	if err != nil {
		t.Fatal("leg never up:", err)
	}
	t.Logf("bridged %v before the far end answered", EventTime(up).Sub(bridgedAt).Round(time.Millisecond))
	if EventTime(up).Sub(bridgedAt) < 3*time.Second {
		t.Errorf("answered %v after the bridge; the announcement lasts about 5 s", EventTime(up).Sub(bridgedAt))
	}
	time.Sleep(500 * time.Millisecond)
	_ = s.Hangup()
	tr := finishAtAgent(ctx, t, caller, agent)
	wantAttrs(t, tr, map[string]string{"Status": "success", "EndedBy": "far-end", "Number": "+4930124020"})
}

// answer_on_bridge: the caller's phone rings on the PBX's 180 while the far
// end rings, and the PBX answers the caller only once the far end has
// answered; the two then talk, and the flow goes on after the far end's
// hangup. A far end that is busy leaves the caller unanswered until the
// next block (the webhook) needs it.
func TestOptions2AnswerOnBridge(t *testing.T) {
	for _, busy := range []bool{false, true} {
		t.Run(map[bool]string{false: "answered", true: "busy"}[busy], func(t *testing.T) {
			ctx := callTest(t, 40*time.Second)
			bridged := bridgedWatch()
			defer observer.hub.unsubscribe(bridged)
			installOptions2(t)
			from := nextCaller()
			ship := carrier.Expect("+4930124023")
			agent := carrier.ExpectFrom(agentOK, from)
			caller, err := carrier.DialRinging(from, "+4930555116")
			if err != nil {
				t.Fatal(err)
			}
			s := recv(ctx, t, ship, "the far end")
			if err := s.Ring(); err != nil {
				t.Fatal(err)
			}
			// The PBX's 180 reaches the caller, and no answer comes while
			// the far end rings.
			waitFor(ctx, t, "the caller's channel ringing", func() bool {
				st, err := caller.State()
				if st == "Up" {
					t.Fatal("the PBX answered the caller while the far end rang")
				}
				return err == nil && st == "Ringing"
			})
			if busy {
				rejected := time.Now()
				_ = s.Reject("busy")
				answered, err := caller.Answered(ctx)
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("caller answered %v after the far end's 486", answered.Sub(rejected).Round(time.Millisecond))
				tr := finishAtAgent(ctx, t, caller, agent)
				wantAttrs(t, tr, map[string]string{"Status": "call-failed", "SIPCode": "486"})
				return
			}
			// What the PBX writes to the caller while the far end rings:
			// nothing (the caller's own phone makes the tone), where an
			// answered caller would hear the PBX's ringing tone. The far
			// end rings within the tone's first on-phase (2 s).
			rec, err := listenAtPBX(ctx, from)
			if err != nil {
				t.Fatal(err)
			}
			if err := sleepCtx(ctx, 1200*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			farAnswer := time.Now()
			if err := s.Answer(); err != nil {
				t.Fatal(err)
			}
			answered, err := caller.Answered(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if answered.Before(farAnswer) {
				t.Errorf("caller answered %v before the far end", farAnswer.Sub(answered))
			}
			if _, err := bridged.next(ctx); err != nil {
				t.Fatal("caller and far end never bridged:", err)
			}
			t.Logf("caller answered %v after the far end's answer was sent", answered.Sub(farAnswer).Round(time.Millisecond))
			_ = s.Hangup()
			tr := finishAtAgent(ctx, t, caller, agent)
			wantAttrs(t, tr, map[string]string{"Status": "success", "EndedBy": "far-end", "Number": "+4930124023"})
			heard, err := rec.Heard(ctx)
			if err != nil {
				t.Fatal(err)
			}
			segs := heard.Segments()
			t.Logf("what the PBX wrote to the caller, in 100 ms stretches: %v", segs)
			for _, sg := range segs {
				if sg.Loud && sg.Start < 10 {
					t.Errorf("the caller was sent sound while its far end rang: %+v", sg)
				}
			}
			if len(segs) == 0 || segs[0].Len < 10 {
				t.Errorf("recording %v; want at least 1 s of it from before the far end's answer", segs)
			}
		})
	}
}

func TestOptions2SIPCode(t *testing.T) {
	for reason, code := range map[string]string{"busy": "486", "unallocated": "404"} {
		t.Run(reason, func(t *testing.T) {
			ctx := callTest(t, 30*time.Second)
			caller, s, from := options2Call(ctx, t, "+4930555115", "+4930124021")
			agent := carrier.ExpectFrom(agentOK, from)
			_ = s.Reject(reason)
			tr := finishAtAgent(ctx, t, caller, agent)
			t.Logf("%s: %v", reason, tr)
			wantAttrs(t, tr, map[string]string{"Status": "call-failed", "SIPCode": code})
		})
	}
}
