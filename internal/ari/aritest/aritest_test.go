package aritest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/CyCoreSystems/ari/v6"
	"github.com/CyCoreSystems/ari/v6/client/native"
	"golang.org/x/net/websocket"
)

const wait = 2 * time.Second

// call sends one REST request with the right credentials.
func call(t *testing.T, s *Server, method, path string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.URL()+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(User, Password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

func dial(t *testing.T, s *Server, app, user, pass string) (*websocket.Conn, error) {
	t.Helper()
	u := "ws" + strings.TrimPrefix(s.URL(), "http") + "/events?" + url.Values{"app": {app}}.Encode()
	cfg, err := websocket.NewConfig(u, "http://localhost/")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(user+":"+pass)))
	ws, err := cfg.DialContext(t.Context())
	if err == nil {
		t.Cleanup(func() { ws.Close() })
	}
	return ws, err
}

func connect(t *testing.T, s *Server) *websocket.Conn {
	t.Helper()
	ws, err := dial(t, s, App, User, Password)
	if err != nil {
		t.Fatal(err)
	}
	s.WaitConnected(t, wait)
	return ws
}

// next reads one event and decodes it with the library's reference decoder.
func next(t *testing.T, ws *websocket.Conn) ari.Event {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(wait))
	var data []byte
	if err := websocket.Message.Receive(ws, &data); err != nil {
		t.Fatalf("no event: %v", err)
	}
	ev, err := ari.DecodeEvent(data)
	if err != nil {
		t.Fatalf("DecodeEvent(%s): %v", data, err)
	}
	var ed ari.EventData
	if err := json.Unmarshal(data, &ed); err != nil || ed.Application == "" || time.Time(ed.Timestamp).IsZero() {
		t.Errorf("event without application or timestamp: %s", data)
	}
	return ev
}

func types(t *testing.T, ws *websocket.Conn, n int) []string {
	t.Helper()
	var out []string
	for range n {
		out = append(out, next(t, ws).GetType())
	}
	return out
}

// silent asserts that no event arrives within d and the socket stays open.
func silent(t *testing.T, ws *websocket.Conn, d time.Duration) {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(d))
	var data []byte
	err := websocket.Message.Receive(ws, &data)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("want silence on an open socket, got %q, %v", data, err)
	}
}

func TestAuth(t *testing.T) {
	s := New(t)
	req, _ := http.NewRequest(http.MethodGet, s.URL()+"/asterisk/info", nil)
	req.SetBasicAuth(User, "wrong")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong password: %d, want 401", resp.StatusCode)
	}
	if _, err := dial(t, s, App, User, "wrong"); err == nil {
		t.Error("websocket with a wrong password connected")
	}
	if got := s.Count(http.MethodGet, "/events"); got != 1 {
		t.Errorf("recorded %d websocket attempts, want 1", got)
	}
	code, body := call(t, s, http.MethodGet, "/asterisk/info", nil)
	var info struct{ System struct{ Version string } }
	if code != 200 || json.Unmarshal(body, &info) != nil || info.System.Version != Version {
		t.Errorf("info: %d %s", code, body)
	}
}

func TestStatusCodes(t *testing.T) {
	s := New(t)
	connect(t, s)
	s.Caller("in", "+4917612345678", "Alice", "+4930555000")
	if code, _ := call(t, s, http.MethodPost, "/channels", map[string]any{"endpoint": "PJSIP/+4930123456@trunk", "app": App, "channelId": "out"}); code != 200 {
		t.Fatalf("originate: %d", code)
	}
	if code, _ := call(t, s, http.MethodPost, "/bridges/br?type=mixing&name=x", nil); code != 200 {
		t.Fatalf("bridge: %d", code)
	}
	// In order: each row may depend on the rows before it.
	for _, tc := range []struct {
		method, path string
		body         any
		want         int
	}{
		{"GET", "/asterisk/info", nil, 200},
		{"GET", "/channels", nil, 200},
		{"GET", "/channels/in", nil, 200},
		{"GET", "/channels/gone", nil, 404},
		{"DELETE", "/channels/gone?reason=normal", nil, 404},
		{"DELETE", "/channels/in?reason=bogus", nil, 400},
		{"POST", "/channels/gone/answer", nil, 404},
		{"POST", "/channels/out/answer", nil, 409},
		{"POST", "/channels/out/ring", nil, 409},
		{"POST", "/channels/out/play/p0?media=sound:x", nil, 409},
		{"POST", "/channels/out/continue", nil, 409},
		{"POST", "/channels/in/ring", nil, 204},
		{"DELETE", "/channels/in/ring", nil, 204},
		{"POST", "/channels/in/answer", nil, 204},
		{"POST", "/channels/in/dtmf", nil, 400},
		{"POST", "/channels/in/dtmf?dtmf=4711%23&between=100&duration=100", nil, 204},
		{"POST", "/channels/gone/dtmf?dtmf=1", nil, 404},
		{"POST", "/channels/in/play/p1?media=sound:hello", nil, 201},
		{"DELETE", "/playbacks/p1", nil, 204},
		{"DELETE", "/playbacks/p1", nil, 404},
		{"POST", "/channels", map[string]any{"app": App}, 400},
		{"POST", "/channels", map[string]any{"endpoint": "trunk", "app": App}, 400},
		{"POST", "/channels", map[string]any{"endpoint": "PJSIP/1@trunk"}, 400},
		{"POST", "/channels", map[string]any{"endpoint": "PJSIP/1@trunk", "app": App, "channelId": "out"}, 409},
		{"POST", "/channels", map[string]any{"endpoint": "PJSIP/1@trunk", "app": App, "originator": "gone"}, 400},
		{"POST", "/channels?endpoint=PJSIP/2@trunk&app=ariflow&channelId=q", nil, 200},
		{"POST", "/bridges/br", nil, 409},
		{"GET", "/bridges", nil, 200},
		{"GET", "/bridges/br", nil, 200},
		{"POST", "/bridges/nobr/addChannel?channel=in", nil, 404},
		{"POST", "/bridges/br/addChannel", nil, 400},
		{"POST", "/bridges/br/addChannel?channel=in,gone", nil, 400},
		{"POST", "/bridges/br/addChannel?channel=in,out", nil, 422},
		{"POST", "/bridges/br/addChannel?channel=in", nil, 204},
		{"POST", "/bridges/br/removeChannel?channel=in", nil, 204},
		{"POST", "/bridges/br/removeChannel?channel=in", nil, 422},
		{"DELETE", "/bridges/br", nil, 204},
		{"DELETE", "/bridges/br", nil, 404},
		{"PUT", "/applications/other/eventFilter", map[string]any{}, 404},
		{"PUT", "/applications/ariflow/eventFilter", map[string]any{"allowed": []any{}}, 200},
		{"GET", "/nothing/here", nil, 404},
		{"PATCH", "/channels", nil, 405},
		{"POST", "/channels/in/continue", nil, 204},
		{"POST", "/channels/in/answer", nil, 409}, // back in the dialplan
		{"DELETE", "/channels/in", nil, 204},
		{"DELETE", "/channels/in", nil, 404},
	} {
		code, body := call(t, s, tc.method, tc.path, tc.body)
		if code != tc.want {
			t.Errorf("%s %s: %d %s, want %d", tc.method, tc.path, code, body, tc.want)
		}
		if code >= 400 {
			var m struct{ Message string }
			if json.Unmarshal(body, &m) != nil || m.Message == "" {
				t.Errorf("%s %s: error body %q has no message", tc.method, tc.path, body)
			}
		}
	}
	reqs := s.Requests()
	if last := reqs[len(reqs)-1]; last.Method != "DELETE" || last.Path != "/channels/in" || last.Status != 404 {
		t.Errorf("last request recorded as %+v", last)
	}
	if got := s.Count("POST", "/channels/in/"); got != 7 {
		t.Errorf("Count(POST /channels/in/) = %d, want 7", got)
	}
}

func TestHangupSequence(t *testing.T) {
	s := New(t)
	ws := connect(t, s)
	s.Caller("in", "+4917612345678", "Alice", "+4930555000")
	call(t, s, "POST", "/channels", map[string]any{"endpoint": "PJSIP/+4930123456@trunk", "app": App, "appArgs": "ariflow-leg,in", "channelId": "out"})
	s.Answer("out")
	call(t, s, "POST", "/bridges/br?type=mixing", nil)
	call(t, s, "POST", "/bridges/br/addChannel?channel=in,out", nil)
	call(t, s, "POST", "/channels/in/play/p1?media=sound:hello", nil)
	got := types(t, ws, 8)
	want := []string{"StasisStart", "Dial", "ChannelStateChange", "Dial", "StasisStart", "ChannelEnteredBridge", "ChannelEnteredBridge", "PlaybackStarted"}
	if !reflect.DeepEqual(got[:8], want) {
		t.Fatalf("setup events %v, want %v", got[:8], want)
	}

	// The caller hangs up while bridged and hearing a prompt.
	s.Hangup("in", 16)
	hr := next(t, ws).(*ari.ChannelHangupRequest)
	if hr.Channel.ID != "in" || hr.Cause != 16 || hr.Soft {
		t.Errorf("ChannelHangupRequest %+v", hr)
	}
	if got := types(t, ws, 3); !reflect.DeepEqual(got, []string{"ChannelLeftBridge", "PlaybackFinished", "StasisEnd"}) {
		t.Errorf("then %v", got)
	}
	cd := next(t, ws).(*ari.ChannelDestroyed)
	if cd.Channel.ID != "in" || cd.Cause != 16 || cd.CauseTxt != "Normal Clearing" {
		t.Errorf("ChannelDestroyed %+v", cd)
	}
	if m, _ := s.Bridge("br"); !reflect.DeepEqual(m, []string{"out"}) {
		t.Errorf("bridge members %v, want [out]", m)
	}
	if _, ok := s.Channel("in"); ok {
		t.Error("hung-up channel still exists")
	}

	// ariflow hangs up the leg: a soft hangup request, then the cause of the reason.
	if code, _ := call(t, s, "DELETE", "/channels/out?reason=busy", nil); code != 204 {
		t.Fatalf("hangup: %d", code)
	}
	hr = next(t, ws).(*ari.ChannelHangupRequest)
	if !hr.Soft || hr.Cause != softhangupExplicit {
		t.Errorf("ARI hangup request %+v, want soft with cause 32", hr)
	}
	if got := types(t, ws, 2); !reflect.DeepEqual(got, []string{"ChannelLeftBridge", "StasisEnd"}) {
		t.Errorf("then %v", got)
	}
	if cd := next(t, ws).(*ari.ChannelDestroyed); cd.Cause != 17 || cd.CauseTxt != "User busy" {
		t.Errorf("ChannelDestroyed %+v", cd)
	}
	if len(s.Channels()) != 0 {
		t.Errorf("channels left: %v", s.Channels())
	}
}

func TestOriginateAndAnswer(t *testing.T) {
	s := New(t)
	ws := connect(t, s)
	code, body := call(t, s, "POST", "/channels", map[string]any{
		"endpoint": "PJSIP/+4930123456@trunk", "app": App, "appArgs": "ariflow-leg,call1",
		"channelId": "leg1", "callerId": `"ACME Support" <+4930555000>`, "timeout": 30,
		"variables": map[string]string{"CONNECTEDLINE(name,i)": "ACME"},
	})
	var ch struct {
		ID, State string
		Caller    struct{ Name, Number string }
		Connected struct{ Name, Number string }
	}
	if code != 200 || json.Unmarshal(body, &ch) != nil {
		t.Fatalf("originate: %d %s", code, body)
	}
	if ch.ID != "leg1" || ch.State != "Down" || ch.Caller.Number != "+4930555000" || ch.Caller.Name != "ACME Support" || ch.Connected.Name != "ACME" {
		t.Errorf("originated channel %+v", ch)
	}
	st, _ := s.Channel("leg1")
	if st.InStasis || !st.Originated || st.Timeout != 30 || st.Variables["CONNECTEDLINE(name,i)"] != "ACME" {
		t.Errorf("state %+v", st)
	}
	if d := next(t, ws).(*ari.Dial); d.Peer.ID != "leg1" || d.Dialstatus != "" {
		t.Errorf("dial begin %+v", d)
	}
	s.DialStatus("leg1", "RINGING")
	if e := next(t, ws).(*ari.ChannelStateChange); e.Channel.State != "Ringing" {
		t.Errorf("state change %+v", e)
	}
	if d := next(t, ws).(*ari.Dial); d.Dialstatus != "RINGING" {
		t.Errorf("dial %+v", d)
	}
	if code, _ := call(t, s, "POST", "/channels/leg1/answer", nil); code != 409 {
		t.Errorf("answer before Stasis: %d, want 409", code)
	}
	s.Answer("leg1")
	if e := next(t, ws).(*ari.ChannelStateChange); e.Channel.State != "Up" {
		t.Errorf("state change %+v", e)
	}
	if d := next(t, ws).(*ari.Dial); d.Dialstatus != "ANSWER" {
		t.Errorf("dial %+v", d)
	}
	ss := next(t, ws).(*ari.StasisStart)
	if ss.Channel.ID != "leg1" || !reflect.DeepEqual(ss.Args, []string{"ariflow-leg", "call1"}) {
		t.Errorf("StasisStart %+v", ss)
	}
}

func TestDecodedEvents(t *testing.T) {
	s := New(t)
	ws := connect(t, s)
	s.AutoFinishPlayback(0)
	for _, tc := range []struct {
		name  string
		do    func()
		check func(ari.Event) bool
	}{
		{"caller", func() { s.Caller("c1", "+4917612345678", "Alice", "+4930555000") }, func(e ari.Event) bool {
			ss, ok := e.(*ari.StasisStart)
			return ok && ss.Channel.ID == "c1" && ss.Channel.State == "Ring" && ss.Channel.Caller.Number == "+4917612345678" &&
				ss.Channel.Caller.Name == "Alice" && reflect.DeepEqual(ss.Args, []string{"+4930555000"}) && ss.GetApplication() == App
		}},
		{"dtmf", func() { s.DTMF("c1", "#") }, func(e ari.Event) bool {
			d, ok := e.(*ari.ChannelDtmfReceived)
			return ok && d.Digit == "#" && d.Channel.ID == "c1"
		}},
		{"play starts", func() { call(t, s, "POST", "/channels/c1/play/pb?media=sound:hello", nil) }, func(e ari.Event) bool {
			p, ok := e.(*ari.PlaybackStarted)
			return ok && p.Playback.ID == "pb" && p.Playback.TargetURI == "channel:c1" && p.Playback.State == "playing"
		}},
		{"play finishes at once", func() {}, func(e ari.Event) bool {
			p, ok := e.(*ari.PlaybackFinished)
			return ok && p.Playback.ID == "pb" && p.Playback.MediaURI == "sound:hello" && p.Playback.State == "done"
		}},
		{"emit", func() {
			s.Emit(map[string]any{"type": "ChannelDtmfReceived", "digit": "7", "channel": map[string]any{"id": "zz"}})
		}, func(e ari.Event) bool {
			d, ok := e.(*ari.ChannelDtmfReceived)
			return ok && d.Digit == "7" && d.Channel.ID == "zz" && d.GetApplication() == App
		}},
		{"destroyed", func() { s.Hangup("c1", 17) }, func(e ari.Event) bool {
			_, ok := e.(*ari.ChannelHangupRequest)
			return ok
		}},
	} {
		tc.do()
		if e := next(t, ws); !tc.check(e) {
			t.Errorf("%s: unexpected %T %+v", tc.name, e, e)
		}
	}
}

func TestEmitUnknownType(t *testing.T) {
	s := New(t)
	ws := connect(t, s)
	s.Emit(map[string]any{"type": "SomethingNew", "x": 1})
	_ = ws.SetReadDeadline(time.Now().Add(wait))
	var m map[string]any
	if err := websocket.JSON.Receive(ws, &m); err != nil {
		t.Fatal(err)
	}
	if m["type"] != "SomethingNew" || m["x"] != 1.0 || m["application"] != App || m["timestamp"] == "" {
		t.Errorf("emitted %v", m)
	}
}

func TestTakeover(t *testing.T) {
	s := New(t)
	first := connect(t, s)
	second, err := dial(t, s, App, User, Password)
	if err != nil {
		t.Fatal(err)
	}
	if e := next(t, first); e.GetType() != "ApplicationReplaced" || e.GetApplication() != App {
		t.Fatalf("first socket got %T %+v", e, e)
	}
	s.Caller("c1", "1", "", "x")
	if e := next(t, second); e.GetType() != "StasisStart" {
		t.Errorf("second socket got %s", e.GetType())
	}
	silent(t, first, 100*time.Millisecond)
	if s.Connections() != 2 {
		t.Errorf("Connections() = %d", s.Connections())
	}
}

func TestPauseResumeKeepsOrder(t *testing.T) {
	s := New(t)
	ws := connect(t, s)
	call(t, s, "POST", "/channels", map[string]any{"endpoint": "PJSIP/1@trunk", "app": App, "channelId": "leg"})
	next(t, ws) // Dial begin
	s.Pause()
	// The leg is destroyed before its StasisStart reaches the app.
	s.Answer("leg")
	s.Hangup("leg", 16)
	s.Emit(ari.ChannelDtmfReceived{EventData: ari.EventData{Type: "ChannelDtmfReceived"}, Digit: "1"})
	silent(t, ws, 50*time.Millisecond)
	s.Resume()
	want := []string{"ChannelStateChange", "Dial", "StasisStart", "ChannelHangupRequest", "StasisEnd", "ChannelDestroyed", "ChannelDtmfReceived"}
	if got := types(t, ws, len(want)); !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestEventFilter(t *testing.T) {
	s := New(t)
	ws := connect(t, s)
	code, _ := call(t, s, "PUT", "/applications/"+App+"/eventFilter", map[string]any{"allowed": []map[string]string{{"type": "StasisStart"}, {"type": "ChannelDestroyed"}}})
	if code != 200 {
		t.Fatalf("eventFilter: %d", code)
	}
	s.Caller("c1", "1", "", "x")
	s.DTMF("c1", "5")
	s.Hangup("c1", 16)
	if got := types(t, ws, 2); !reflect.DeepEqual(got, []string{"StasisStart", "ChannelDestroyed"}) {
		t.Errorf("filtered events %v", got)
	}
}

func TestInterceptAndWaitRequest(t *testing.T) {
	s := New(t)
	connect(t, s)
	s.Caller("c1", "1", "", "x")
	n := 0
	s.Intercept(func(r *Request) (int, string, time.Duration, bool) {
		if r.Method != "POST" || !strings.HasSuffix(r.Path, "/answer") {
			return 0, "", 0, false
		}
		n++
		if n == 1 {
			return 500, `{"message":"boom"}`, 0, true
		}
		return 0, "", 30 * time.Millisecond, false
	})
	if code, _ := call(t, s, "POST", "/channels/c1/answer", nil); code != 500 {
		t.Errorf("intercepted: %d", code)
	}
	if st, _ := s.Channel("c1"); st.State != "Ring" {
		t.Errorf("a handled request changed state: %s", st.State)
	}
	start := time.Now()
	if code, _ := call(t, s, "POST", "/channels/c1/answer", nil); code != 204 || time.Since(start) < 30*time.Millisecond {
		t.Errorf("delayed: %d after %v", code, time.Since(start))
	}
	r1 := s.WaitRequest(t, wait, "POST", "/channels/c1/answer")
	r2 := s.WaitRequest(t, wait, "POST", "/channels/c1/answer")
	if r1.Status != 500 || r2.Status != 204 || !r2.At.After(r1.At) {
		t.Errorf("stepped to %d then %d", r1.Status, r2.Status)
	}
	go func() {
		time.Sleep(20 * time.Millisecond)
		call(t, s, "DELETE", "/channels/c1", nil)
	}()
	if r := s.WaitRequest(t, wait, "DELETE", "/channels/"); r.Path != "/channels/c1" {
		t.Errorf("waited for %+v", r)
	}
}

func TestDropWebsocketAndClose(t *testing.T) {
	s := New(t)
	ws := connect(t, s)
	s.DropWebsocket()
	_ = ws.SetReadDeadline(time.Now().Add(wait))
	var b []byte
	if err := websocket.Message.Receive(ws, &b); err == nil {
		t.Fatal("dropped socket still delivers")
	}
	s.Caller("lost", "1", "", "x") // nobody connected: lost
	ws2 := connect(t, s)
	s.Caller("c2", "1", "", "x")
	if ss := next(t, ws2).(*ari.StasisStart); ss.Channel.ID != "c2" {
		t.Errorf("after reconnect got %s", ss.Channel.ID)
	}
	if s.Connections() != 2 {
		t.Errorf("Connections() = %d, want 2", s.Connections())
	}
	s.AutoFinishPlayback(time.Hour) // a timer Close must stop
	call(t, s, "POST", "/channels/c2/play/p?media=sound:x", nil)
	s.Close()
	_ = ws2.SetReadDeadline(time.Now().Add(wait))
	for {
		if err := websocket.Message.Receive(ws2, &b); err != nil {
			break
		}
	}
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	http.DefaultClient.CloseIdleConnections()
	base := runtime.NumGoroutine()
	s := New(t)
	ws := connect(t, s)
	s.Caller("c1", "1", "", "x")
	s.AutoFinishPlayback(time.Hour)
	call(t, s, "POST", "/channels/c1/play/p?media=sound:x", nil)
	s.Intercept(func(*Request) (int, string, time.Duration, bool) { return 0, "", time.Hour, false })
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, _ := http.NewRequest("GET", s.URL()+"/channels", nil)
		req.SetBasicAuth(User, Password)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	s.WaitRequest(t, wait, "GET", "/channels")
	s.Pause()
	s.Hangup("c1", 16) // held events are dropped at Close
	s.Close()
	<-done
	ws.Close()
	http.DefaultClient.CloseIdleConnections()
	deadline := time.Now().Add(wait)
	for runtime.NumGoroutine() > base && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > base {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines after Close, %d before:\n%s", n, base, buf[:runtime.Stack(buf, true)])
	}
}

// The library's REST client reads the fake's JSON as it reads Asterisk's.
func TestLibraryClientReadsState(t *testing.T) {
	s := New(t)
	connect(t, s)
	s.Caller("c1", "+4917612345678", "Alice", "x")
	call(t, s, "POST", "/channels", map[string]any{"endpoint": "PJSIP/1@trunk", "app": App, "channelId": "leg"})
	call(t, s, "POST", "/bridges/br?type=mixing", nil)
	call(t, s, "POST", "/bridges/br/addChannel?channel=c1", nil)
	cl := native.New(&native.Options{Application: App, URL: s.URL(), Username: User, Password: Password})
	keys, err := cl.Channel().List(nil)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, k := range keys {
		ids = append(ids, k.ID)
	}
	if !reflect.DeepEqual(ids, []string{"c1", "leg"}) {
		t.Errorf("listed %v", ids)
	}
	d, err := cl.Channel().Data(ari.NewKey(ari.ChannelKey, "c1"))
	if err != nil || d.Caller.Number != "+4917612345678" || d.State != "Ring" {
		t.Errorf("channel data %+v, %v", d, err)
	}
	bd, err := cl.Bridge().Data(ari.NewKey(ari.BridgeKey, "br"))
	if err != nil || !reflect.DeepEqual(bd.ChannelIDs, []string{"c1"}) {
		t.Errorf("bridge data %+v, %v", bd, err)
	}
	if _, err := cl.Channel().Data(ari.NewKey(ari.ChannelKey, "gone")); err == nil {
		t.Error("no error for a channel that does not exist")
	}
}

// A created channel is in Stasis at once (StasisStart, state Down), is
// dialled once, and its answer is a state change with no second
// StasisStart.
// A made PJSIP channel's header store (PJSIP_HEADER(add)) reads until it
// is dialled, as in Asterisk, which deletes it when the INVITE leaves: the
// sign that tells a leg never dialled.
func TestHeaderStoreUntilDialled(t *testing.T) {
	s := New(t)
	ws := connect(t, s)
	read := func(id, name string) (int, string) {
		code, body := call(t, s, "GET", "/channels/"+id+"/variable?variable="+url.QueryEscape(name), nil)
		var v struct{ Value string }
		_ = json.Unmarshal(body, &v)
		return code, v.Value
	}
	for id, vars := range map[string]map[string]string{
		"marked": {"PJSIP_HEADER(add,X-M)": "1", "PJSIP_HEADER(remove,X-M)": "", "CALLERID(num)": "+4930555000"},
		"plain":  {"CALLERID(num)": "+4930555000"},
	} {
		if code, body := call(t, s, "POST", "/channels/create", map[string]any{"endpoint": "PJSIP/+4930123456@trunk", "app": App, "channelId": id, "variables": vars}); code != 200 {
			t.Fatalf("create %s: %d %s", id, code, body)
		}
		next(t, ws) // StasisStart
	}
	if code, v := read("marked", "PJSIP_HEADERS()"); code != 200 || v != "" {
		t.Errorf("marked, undialled: %d %q, want 200 \"\"", code, v)
	}
	if code, _ := read("plain", "PJSIP_HEADERS()"); code != 500 {
		t.Errorf("no header: %d, want 500", code)
	}
	if code, v := read("plain", "CALLERID(num)"); code != 200 || v != "+4930555000" {
		t.Errorf("CALLERID(num): %d %q", code, v)
	}
	if code, _ := call(t, s, "POST", "/channels/marked/dial", nil); code != 204 {
		t.Fatalf("dial: %d", code)
	}
	if code, _ := read("marked", "PJSIP_HEADERS()"); code != 500 {
		t.Errorf("marked, dialled: %d, want 500", code)
	}
	if code, _ := read("gone", "PJSIP_HEADERS()"); code != 404 {
		t.Errorf("no channel: %d, want 404", code)
	}
}

func TestCreateDialAnswer(t *testing.T) {
	s := New(t)
	ws := connect(t, s)
	code, body := call(t, s, "POST", "/channels/create", map[string]any{
		"endpoint": "PJSIP/+4930123456@trunk", "app": App, "appArgs": "ariflow-leg,call1", "channelId": "leg1",
		"variables": map[string]string{"CALLERID(num)": "+4930555000", "CALLERID(name)": "ACME"},
	})
	if code != 200 {
		t.Fatalf("create: %d %s", code, body)
	}
	if ss := next(t, ws).(*ari.StasisStart); ss.Channel.ID != "leg1" || ss.Channel.State != "Down" ||
		!reflect.DeepEqual(ss.Args, []string{"ariflow-leg", "call1"}) {
		t.Errorf("StasisStart %+v", ss)
	}
	if st, _ := s.Channel("leg1"); !st.InStasis || !st.Made || st.CallerName != "ACME" || st.CallerNumber != "+4930555000" {
		t.Errorf("state %+v", st)
	}
	if code, _ := call(t, s, "POST", "/channels/create", map[string]any{"endpoint": "PJSIP/x", "channelId": "leg2"}); code != 400 {
		t.Errorf("create without app: %d, want 400", code)
	}
	if code, _ := call(t, s, "POST", "/channels/leg1/dial?timeout=7", nil); code != 204 {
		t.Fatalf("dial: %d", code)
	}
	if d := next(t, ws).(*ari.Dial); d.Peer.ID != "leg1" || d.Dialstatus != "" {
		t.Errorf("dial begin %+v", d)
	}
	if code, _ := call(t, s, "POST", "/channels/leg1/dial", nil); code != 409 {
		t.Errorf("second dial: %d, want 409", code)
	}
	if code, _ := call(t, s, "POST", "/channels/nope/dial", nil); code != 404 {
		t.Errorf("dial of no channel: %d, want 404", code)
	}
	s.Answer("leg1")
	if e := next(t, ws).(*ari.ChannelStateChange); e.Channel.State != "Up" {
		t.Errorf("state change %+v", e)
	}
	if d := next(t, ws).(*ari.Dial); d.Dialstatus != "ANSWER" {
		t.Errorf("dial %+v", d)
	}
	if st, _ := s.Channel("leg1"); st.Timeout != 7 {
		t.Errorf("dial timeout %d, want 7", st.Timeout)
	}
}

// An event produced the moment the client has its handshake answer must
// reach it: Asterisk registers the app before it answers the upgrade
// (res/ari/ari_websockets.c websocket_attempted_cb) and queues what comes
// before the socket is ready.
func TestEventRightAfterConnectIsDelivered(t *testing.T) {
	s := New(t)
	ws, err := dial(t, s, App, User, Password)
	if err != nil {
		t.Fatal(err)
	}
	if code, body := call(t, s, "POST", "/channels/create", map[string]any{"endpoint": "PJSIP/x@trunk", "app": App, "channelId": "leg"}); code != http.StatusOK {
		t.Fatalf("create: %d %s", code, body)
	}
	if ev := next(t, ws); ev.GetType() != "StasisStart" {
		t.Fatalf("first event %s, want StasisStart", ev.GetType())
	}
}

// A user event reaches the app as Asterisk 22 sends it: userevent is the
// variables with eventname added.
func TestUserEvent(t *testing.T) {
	s := New(t)
	if code, _ := call(t, s, "POST", "/events/user/ariflow-probe?application="+App, nil); code != http.StatusNotFound {
		t.Errorf("user event before the app registered: %d, want 404", code)
	}
	ws := connect(t, s)
	if code, _ := call(t, s, "POST", "/events/user/ariflow-probe", nil); code != http.StatusBadRequest {
		t.Errorf("user event without application: %d, want 400", code)
	}
	code, _ := call(t, s, "POST", "/events/user/ariflow-probe?application="+App, map[string]any{"variables": map[string]string{"ariflow_probe": "t1"}})
	if code != http.StatusNoContent {
		t.Fatalf("user event: %d", code)
	}
	ev, ok := next(t, ws).(*ari.ChannelUserevent)
	if !ok {
		t.Fatalf("got %T", ev)
	}
	want := map[string]any{"ariflow_probe": "t1", "eventname": "ariflow-probe"}
	if ev.Eventname != "ariflow-probe" || !reflect.DeepEqual(ev.Userevent, want) || ev.GetApplication() != App {
		t.Errorf("user event %+v", ev)
	}
}

func TestApplicationAndPing(t *testing.T) {
	s := New(t)
	if code, _ := call(t, s, "GET", "/applications/"+App, nil); code != http.StatusNotFound {
		t.Errorf("unknown app: %d, want 404", code)
	}
	ws := connect(t, s)
	call(t, s, "PUT", "/applications/"+App+"/eventFilter", map[string]any{"allowed": []map[string]string{{"type": "StasisStart"}}})
	s.Caller("c1", "1", "", "x")
	next(t, ws)
	code, body := call(t, s, "GET", "/applications/"+App, nil)
	var app struct {
		Name          string   `json:"name"`
		ChannelIDs    []string `json:"channel_ids"`
		EventsAllowed []struct {
			Type string `json:"type"`
		} `json:"events_allowed"`
	}
	if err := json.Unmarshal(body, &app); code != http.StatusOK || err != nil {
		t.Fatalf("GET application: %d %s %v", code, body, err)
	}
	if app.Name != App || !reflect.DeepEqual(app.ChannelIDs, []string{"c1"}) || len(app.EventsAllowed) != 1 || app.EventsAllowed[0].Type != "StasisStart" {
		t.Errorf("application %s", body)
	}
	code, body = call(t, s, "GET", "/asterisk/ping", nil)
	if code != http.StatusOK || !strings.Contains(string(body), `"ping":"pong"`) || !strings.Contains(string(body), entityID) {
		t.Errorf("ping: %d %s", code, body)
	}
}

// An app left inactive keeps its socket and gets nothing, probes
// included, and callers do not enter Stasis; the next connection for the
// app activates it again.
func TestDeactivateApp(t *testing.T) {
	s := New(t)
	old := connect(t, s)
	s.DeactivateApp(App)
	if s.AppActive(App) {
		t.Fatal("still active")
	}
	if code, _ := call(t, s, "POST", "/events/user/ariflow-probe?application="+App, nil); code != http.StatusNoContent {
		t.Errorf("user event to an inactive app: %d, want 204 as Asterisk answers", code)
	}
	s.Caller("c1", "1", "", "x")
	silent(t, old, 200*time.Millisecond)
	if st, _ := s.Channel("c1"); st.InStasis || st.App != "" {
		t.Errorf("a caller entered the inactive app: %+v", st)
	}
	ws, err := dial(t, s, App, User, Password)
	if err != nil {
		t.Fatal(err)
	}
	if !s.AppActive(App) {
		t.Fatal("a new connection did not activate the app")
	}
	call(t, s, "POST", "/events/user/ariflow-probe?application="+App, nil)
	if got := types(t, ws, 1); got[0] != "ChannelUserevent" {
		t.Errorf("after the reconnect: %v", got)
	}
	// The inactive socket got no ApplicationReplaced: when it closes, its
	// session unregisters the app under the new one.
	old.Close()
	eventually(t, "app inactive after the old socket closed", func() bool { return !s.AppActive(App) })
	call(t, s, "POST", "/events/user/ariflow-probe?application="+App, nil)
	silent(t, ws, 200*time.Millisecond)
	third, err := dial(t, s, App, User, Password)
	if err != nil {
		t.Fatal(err)
	}
	call(t, s, "POST", "/events/user/ariflow-probe?application="+App, nil)
	if got := types(t, third, 1); got[0] != "ChannelUserevent" {
		t.Errorf("after closing the old socket, then reconnecting: %v", got)
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, wait)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// An event produced while nobody has the app is lost, even when a
// connection comes before the sender would have sent it: Asterisk hands
// an event to the app's handler when it produces it.
func TestEventWithNoConnectionIsLost(t *testing.T) {
	s := New(t)
	s.Pause() // the sender waits: the event would still be queued
	s.Caller("c1", "1", "", "x")
	ws := connect(t, s)
	s.Resume()
	s.Emit(map[string]any{"type": "ChannelDtmfReceived", "digit": "5", "channel": map[string]any{"id": "c1"}})
	if got := types(t, ws, 1); got[0] != "ChannelDtmfReceived" {
		t.Errorf("first event %v: an event from before the connection was delivered", got)
	}
}
