package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/websocket"
)

// Asterisk 22 can leave a Stasis app inactive under a connected websocket
// (docs/ari-event-path.md): when the app's old websocket session ends
// while a new connection registers the app, the new registration sends
// ApplicationReplaced to the old session without the app's lock, the old
// session's cleanup deactivates the app meanwhile, and the registration,
// finding no handler left, returns without installing its own. The new
// socket is open and gets nothing; every caller meets "Stasis app not
// active". The tests here drive that sequence on purpose: the old
// session registers, before the app, many padding apps, whose
// unregistering holds the old session's lock long enough for the new
// registration to fall in the window every time.

// eventPathBound is how long after a (re)connect ariflow may take to find
// that Asterisk does not deliver its app's events, and to recover.
const eventPathBound = 10 * time.Second

// padApps sort before the apps under test ("ariflow-sec", "evp-...") in
// the session's sorted app list, so that the session's cleanup
// unregisters them first.
const padApps = 500

func padName(i int) string { return fmt.Sprintf("a%04d", i) }

// pbxREST sends one request to the PBX's ARI with the stack's
// credentials.
func pbxREST(ctx context.Context, method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, stack.Env["ARIFLOW_STACK_PBX_ARI_URL"]+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.SetBasicAuth(stack.Env["ARIFLOW_STACK_PBX_ARI_USER"], stack.Env["ARIFLOW_STACK_PBX_ARI_PASSWORD"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// appKnown tells whether Asterisk lists app (GET /applications/{app}).
func appKnown(ctx context.Context, app string) (bool, error) {
	code, body, err := pbxREST(ctx, http.MethodGet, "/applications/"+url.PathEscape(app), nil)
	switch {
	case err != nil:
		return false, err
	case code == http.StatusOK:
		return true, nil
	case code == http.StatusNotFound:
		return false, nil
	}
	return false, fmt.Errorf("GET /applications/%s: %d %s", app, code, body)
}

// sendProbe sends a user event carrying token to app.
func sendProbe(ctx context.Context, app, token string) error {
	code, body, err := pbxREST(ctx, http.MethodPost, "/events/user/evp-check?application="+url.QueryEscape(app),
		map[string]any{"variables": map[string]string{"token": token}})
	if err != nil {
		return err
	}
	if code != http.StatusNoContent {
		return fmt.Errorf("user event to %s: %d %s", app, code, body)
	}
	return nil
}

// eventSocket is an event websocket of the test's own, straight to the
// PBX, registering apps; it reads every message into msgs.
type eventSocket struct {
	ws   *websocket.Conn
	msgs chan string
	done chan struct{}
}

func openEventSocket(ctx context.Context, apps []string) (*eventSocket, error) {
	u, err := url.Parse(stack.Env["ARIFLOW_STACK_PBX_ARI_URL"])
	if err != nil {
		return nil, err
	}
	loc := "ws://" + u.Host + u.Path + "/events?" + url.Values{"app": {strings.Join(apps, ",")}}.Encode()
	cfg, err := websocket.NewConfig(loc, "http://localhost/")
	if err != nil {
		return nil, err
	}
	cfg.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString(
		[]byte(stack.Env["ARIFLOW_STACK_PBX_ARI_USER"]+":"+stack.Env["ARIFLOW_STACK_PBX_ARI_PASSWORD"])))
	ws, err := cfg.DialContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("event websocket for %d apps: %w", len(apps), err)
	}
	s := &eventSocket{ws: ws, msgs: make(chan string, 1024), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			var m string
			if err := websocket.Message.Receive(ws, &m); err != nil {
				return
			}
			select {
			case s.msgs <- m:
			default: // nobody reads: Asterisk must not block on us
			}
		}
	}()
	return s, nil
}

// waitFor waits up to d for a message containing sub.
func (s *eventSocket) waitFor(sub string, d time.Duration) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		select {
		case m := <-s.msgs:
			if strings.Contains(m, sub) {
				return true
			}
		case <-s.done:
			return false
		case <-deadline.C:
			return false
		}
	}
}

// open tells whether the socket is still connected.
func (s *eventSocket) open() bool {
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

func (s *eventSocket) close() {
	s.ws.Close()
	<-s.done
}

// holdApp opens a socket registering the padding apps and app, and
// checks with a probe that it is app's handler (Asterisk activated the
// app for it).
func holdApp(ctx context.Context, t *testing.T, app string) *eventSocket {
	t.Helper()
	apps := make([]string, 0, padApps+1)
	for i := range padApps {
		apps = append(apps, padName(i))
	}
	apps = append(apps, app)
	for try := 1; ; try++ {
		s, err := openEventSocket(ctx, apps)
		if err != nil {
			t.Fatal(err)
		}
		token := fmt.Sprintf("hold-%d-%d", os.Getpid(), time.Now().UnixNano())
		if err := sendProbe(ctx, app, token); err != nil {
			s.close()
			t.Fatal(err)
		}
		if s.waitFor(token, 2*time.Second) {
			return s
		}
		s.close()
		// The socket it replaced was ending at the same moment: the very
		// race under test. Take the app again.
		if try == 3 {
			t.Fatalf("a socket for %s got no probe in 3 tries", app)
		}
	}
}

// endDuringRegistration closes the holder and, once Asterisk is
// unregistering its padding apps (the first gone, the last still there:
// the holder's session lock held, app not reached yet), calls register,
// which must make a new registration of app reach Asterisk. It fails t
// if the window was missed.
func endDuringRegistration(ctx context.Context, t *testing.T, holder *eventSocket, register func()) {
	t.Helper()
	holder.ws.Close()
	first, last := padName(0), padName(padApps-1)
	start := time.Now()
	for {
		known, err := appKnown(ctx, first)
		if err != nil {
			t.Fatal(err)
		}
		if !known {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("%s still registered 10 s after its socket closed", first)
		}
		time.Sleep(time.Millisecond)
	}
	if known, err := appKnown(ctx, last); err != nil || !known {
		t.Fatalf("the old session unregistered its %d padding apps before the test could register (%v): more padding needed", padApps, err)
	}
	register()
	<-holder.done
}

// The Asterisk behaviour itself, without ariflow: a socket whose
// registration met the old session's cleanup is open and gets nothing,
// though Asterisk accepts user events for the app and lists it; a new
// connection makes the app active again.
func TestAsteriskLeavesAppInactiveUnderOpenSocket(t *testing.T) {
	ctx := callTest(t, 60*time.Second)
	app := fmt.Sprintf("evp-%d-%d", os.Getpid(), time.Now().UnixNano()%100000)
	holder := holdApp(ctx, t, app)
	// A channel in the app keeps Asterisk from cleaning the app up once it
	// is inactive, as ariflow's calls in progress do: new callers then
	// meet "not active" rather than "not registered".
	ch := app + "-ch"
	code, body, err := pbxREST(ctx, http.MethodPost, "/channels/create?"+url.Values{
		"endpoint": {"Local/s@ariflow-fallback"}, "app": {app}, "channelId": {ch}}.Encode(), nil)
	if err != nil || code != http.StatusOK {
		t.Fatalf("create a channel in %s: %d %s %v", app, code, body, err)
	}
	defer func() { _, _, _ = pbxREST(context.Background(), http.MethodDelete, "/channels/"+ch, nil) }()

	var socket *eventSocket
	endDuringRegistration(ctx, t, holder, func() {
		s, err := openEventSocket(ctx, []string{app})
		if err != nil {
			t.Fatal(err)
		}
		socket = s
	})
	defer socket.close()

	token := fmt.Sprintf("probe-%d", time.Now().UnixNano())
	if err := sendProbe(ctx, app, token); err != nil {
		t.Fatal(err)
	}
	if socket.waitFor(token, 2*time.Second) {
		t.Fatal("the new socket got the probe: Asterisk kept the app active (the sequence did not reproduce)")
	}
	if !socket.open() {
		t.Fatal("the new socket was closed; want it open and silent")
	}
	if known, err := appKnown(ctx, app); err != nil || !known {
		t.Errorf("Asterisk no longer lists %s (%v); want it listed, though inactive", app, err)
	}
	t.Logf("%s: socket open, user event accepted (204), nothing delivered: the app is inactive", app)

	// The cure: a new registration.
	again, err := openEventSocket(ctx, []string{app})
	if err != nil {
		t.Fatal(err)
	}
	defer again.close()
	token = fmt.Sprintf("probe-%d", time.Now().UnixNano())
	if err := sendProbe(ctx, app, token); err != nil {
		t.Fatal(err)
	}
	if !again.waitFor(token, 2*time.Second) {
		t.Error("a second new socket got no probe either")
	}
}

const eventPathFlow = `name: eventpath
version: "1"
entry: ["+4930556950", "+4930556951"]
start: pick
blocks:
  pick:
    type: CheckAttribute
    attribute: $.System.DialedNumber
    conditions:
      - {op: Equals, value: "+4930556951", branch: long}
    branches: {long: long, NoMatch: short}
  short:
    type: PlayPrompt
    prompts: ["sound:beep"]
    branches: {Next: agent, Error: agent}
  long:
    type: PlayPrompt
    prompts: ["sound:dir-instr"]
    branches: {Next: agent, Error: agent}
  agent:
    type: TransferToAgent
    endpoint: "+4930111000"
`

// ariflow's reconnect meets the end of the app's previous websocket
// session, and Asterisk leaves the app inactive under ariflow's new,
// open websocket (shown before ariflow gets the handshake's answer: a
// user event to the app does not come through). ariflow must find out
// within eventPathBound and recover: a caller is served again, and the
// caller in a prompt throughout reaches its agent.
func TestEventPathRecoversFromInactiveApp(t *testing.T) {
	ctx := callTest(t, 120*time.Second)
	const app = "ariflow-sec" // its own app: the suite's ariflow is left alone
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "eventpath.yaml"), []byte(eventPathFlow), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := StartAriflowWith(ctx, &Ariflow{Stack: stack, FlowsDir: dir, Env: []string{"ARIFLOW_APP=" + app}}, "ariflow-eventpath.log")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	// A caller in a long prompt throughout keeps Asterisk from cleaning
	// the app up, as in production.
	from := nextCaller()
	longAgent := carrier.ExpectFrom(agentOK, from)
	defer carrier.Forget(agentOK, longAgent)
	long, err := carrier.Dial(ctx, from, "+4930556951")
	if err != nil {
		t.Fatal(err)
	}
	// In the prompt before the fault: the carrier sees the answer before
	// ariflow has read the answer request's own reply, and a cut in
	// between would leave that request to a connection the proxy holds.
	waitFor(ctx, t, "the long prompt started", func() bool {
		return p.Metric(`ariflow_ari_answers_total{code="201",request="POST channels/play"}`) >= 1
	})

	// Cut ariflow's websocket; its reconnect waits at the proxy while
	// another session takes the app.
	reconnects := p.Metric("ariflow_ari_reconnects_total")
	p.Proxy.Hold()
	defer p.Proxy.Release()
	if p.Proxy.CutAll() == 0 {
		t.Fatal("no ARI connection to cut")
	}
	if _, err := p.Proxy.WaitHeld(ctx, "GET /ari/events", time.Time{}); err != nil {
		t.Fatal(err)
	}
	holder := holdApp(ctx, t, app)
	// Every event type through, whatever filter ariflow set: the probe
	// below must be filtered by nothing but the app's state.
	if code, body, err := pbxREST(ctx, http.MethodPut, "/applications/"+app+"/eventFilter", map[string]any{}); err != nil || code != http.StatusOK {
		t.Fatalf("reset the event filter: %d %s %v", code, body, err)
	}
	// ariflow gives a handshake up after ari.ReadIdle: take an attempt
	// made now.
	held, err := p.Proxy.WaitHeld(ctx, "GET /ari/events", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	endDuringRegistration(ctx, t, holder, func() { held.Forward(true) })
	if !held.WaitAnswer("101 Switching Protocols", 15*time.Second) {
		t.Fatal("Asterisk did not answer ariflow's websocket handshake")
	}
	token := fmt.Sprintf("probe-%d", time.Now().UnixNano())
	if err := sendProbe(ctx, app, token); err != nil {
		t.Fatal(err)
	}
	if held.WaitAnswer(token, 2*time.Second) {
		t.Fatal("a user event reached ariflow's new websocket: Asterisk kept the app active (the sequence did not reproduce)")
	}
	t.Logf("Asterisk answered ariflow's handshake and delivers nothing to %s: the app is inactive under an open websocket", app)

	// ariflow gets its answer now.
	held.Open()
	opened := time.Now()
	p.Proxy.Release()
	waitFor(ctx, t, "ariflow reconnected", func() bool { return p.Metric("ariflow_ari_reconnects_total") > reconnects })

	// Callers until one is served, for eventPathBound and a call's time.
	deadline := opened.Add(eventPathBound + 15*time.Second)
	var refused int
	for {
		if time.Now().After(deadline) {
			t.Fatalf("%d callers refused and none served within %v of the reconnect (ready: %v): ariflow did not notice that Asterisk delivers nothing",
				refused, time.Since(opened).Round(time.Millisecond), p.Ready())
		}
		from := nextCaller()
		agent := carrier.ExpectFrom(agentOK, from)
		c, err := carrier.Dial(ctx, from, "+4930556950")
		if err != nil {
			// Stasis() failed and the dialplan hung up: the app is
			// inactive.
			carrier.Forget(agentOK, agent)
			refused++
			if err := sleepCtx(ctx, 500*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			continue
		}
		a := recv(ctx, t, agent, "the agent of a caller after the reconnect")
		a.AnswerAndHangup()
		if err := c.WaitHangup(ctx); err != nil {
			t.Fatal(err)
		}
		served := time.Since(opened)
		t.Logf("a caller was served %v after the reconnect, %d refused before", served.Round(time.Millisecond), refused)
		if served > eventPathBound+10*time.Second {
			t.Errorf("first caller served %v after the reconnect, want within %v and a call's time", served, eventPathBound)
		}
		break
	}

	// The caller in the prompt throughout reaches its agent.
	a := recv(ctx, t, longAgent, "the agent of the caller in a prompt during the fault")
	a.AnswerAndHangup()
	if err := long.WaitHangup(ctx); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds.
func waitFor(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
