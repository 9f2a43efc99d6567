// Package aritest is a fake Asterisk ARI server for fast unit tests: an
// httptest server that answers the REST requests ariflow makes the way
// Asterisk 22 does, keeps the state those requests change, records every
// request, and lets a test push events into the event websocket in the
// order and with the delays it chooses.
//
// What it emulates, checked against Asterisk's res/ari/resource_*.c and
// rest-api/api-docs:
//
//   - Basic auth (User, Password; also ?api_key=user:pass): 401 otherwise,
//     on REST and on the websocket.
//   - GET /events?app=NAME: one websocket per application. The app is
//     the new connection's before the handshake is answered, as Asterisk
//     registers it (websocket_attempted_cb); events produced before the
//     handshake is done wait and go out first. A second connection for the
//     same app takes it over; the first receives ApplicationReplaced and
//     nothing more, though its socket stays open. Events for an app with no
//     connection are lost, as in Asterisk.
//   - PUT /applications/{app}/eventFilter, applied to every later event of
//     that app, and GET /applications/{app} (404 until the app has
//     connected once); GET /asterisk/info and /asterisk/ping.
//   - POST /events/user/{name}?application=APP: a ChannelUserevent to the
//     app (400 without application, 404 for an unknown app, 204 otherwise,
//     delivered or not), the way ariflow's event-path probes travel.
//   - DeactivateApp: the app left inactive under its open websocket, as
//     Asterisk 22 can after a reconnect (docs/ari-event-path.md): nothing
//     is delivered, probes included, until the next connection.
//   - Channels: originate (POST /channels, JSON body or query), list, get,
//     hangup (DELETE, reason → cause), answer, ring/stop ring, dtmf, play,
//     continue. 404 for a channel that does not exist, 409 for one not in
//     Stasis, 412 for one in Stasis in state Down or Ringing (answer, ring,
//     dtmf, play, continue), as find_control and channel_state_invalid do.
//     An originated channel is Down, is subscribed to its app at once (its
//     Dial and hangup events reach the app) and enters Stasis only when the
//     test calls Answer. An ARI hangup's ChannelHangupRequest carries
//     soft: true and cause 32 (AST_SOFTHANGUP_EXPLICIT, what ast_softhangup
//     publishes); its ChannelDestroyed carries the reason's Q.850 cause.
//     POST /channels/create makes a channel in Stasis at once (StasisStart,
//     state Down); POST /channels/{id}/dial dials it once (409 after that
//     or when not Down), and Answer then moves it to Up with no second
//     StasisStart, as ari_channels_handle_dial does.
//   - Bridges: create with id (409 if it exists), list, get, destroy,
//     addChannel / removeChannel with a comma-separated channel list (404
//     bridge, 400 channel not found, 422 channel not in Stasis / not in
//     this bridge). Playbacks: DELETE /playbacks/{id}.
//   - Unknown paths: 404 {"message": ...}; a known path with another
//     method: 405. Everything is recorded (Requests), even a 401.
//
// What it does not emulate: media, real dial timeouts (a test decides when
// a leg answers, fails or hangs up), channel variables beyond originate,
// recordings, snoop, external media, and most events nobody subscribes to
// (ChannelCreated, ChannelVarset, ChannelDialplan, BridgeCreated, ...). Each
// scripted event carries the ARI JSON shape, so ari.DecodeEvent decodes it.
//
// All methods are safe for concurrent use. Events are delivered in the
// order they were produced, by one sender goroutine; Pause holds them.
// New registers a cleanup that closes the server, every websocket and
// every timer, and waits for its goroutines.
package aritest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/websocket"
)

// Credentials the server accepts, and the app whose channels Caller makes.
const (
	User     = "ariflow"
	Password = "secret"
	App      = "ariflow"
	// Version is what GET /asterisk/info reports as system.version.
	Version = "22.0.0-aritest"
)

// Request is one REST or websocket request as the server received it.
type Request struct {
	Method string
	Path   string // relative to URL(), unescaped: "/channels/x/answer"
	Query  url.Values
	Body   []byte
	Status int // the status answered; 0 while it is still being answered
	At     time.Time
}

// Interceptor decides a request's answer before the default behaviour: a
// status and body (handled), or only a delay before the default behaviour
// runs (not handled). A handled request changes no state and emits no
// event. It sees requests that passed authentication.
type Interceptor func(r *Request) (status int, body string, delay time.Duration, handled bool)

// Cut, as an Interceptor's status, closes the connection without an
// answer: a request cut mid-flight.
const Cut = -1

// Server is a fake ARI. Create it with New.
type Server struct {
	t   testing.TB
	srv *httptest.Server
	ws  websocket.Server

	mu        sync.Mutex
	closed    bool
	done      chan struct{}
	changed   chan struct{} // closed and replaced when requests or connections change
	requests  []*Request
	cursor    map[string]int // WaitRequest position per method+prefix
	intercept Interceptor

	// websocket side
	subs     map[string]*wsConn // current connection per app
	conns    map[*wsConn]bool   // every open connection
	apps     map[string]*filter // apps that connected once, with their filter
	inactive map[string]bool    // apps Asterisk left inactive (DeactivateApp)
	connects int
	queue    []outMsg
	paused   bool
	wake     chan struct{}
	wg       sync.WaitGroup

	// PBX state
	seq        int
	channels   map[string]*channel
	bridges    map[string]*bridge
	playbacks  map[string]*playback
	autoFinish time.Duration // < 0: never
	timers     map[*time.Timer]bool
}

// wsConn is one event websocket. Its app is registered to it before the
// handshake is answered, as Asterisk registers it (websocket_attempted_cb,
// res/ari/ari_websockets.c); events until the handshake is done wait in
// pending, as in Asterisk's session message queue, and go out first.
type wsConn struct {
	ws      *websocket.Conn // nil until the handshake is done
	app     string
	pending [][]byte
	dropped bool // closed by DropWebsocket or Close before its handshake
	// listed: the session still lists its app (Asterisk's
	// websocket_apps). ApplicationReplaced takes it off; a session that
	// ends with its app listed unregisters the app, whoever has it then.
	listed bool
}

type connKey struct{}

type outMsg struct {
	app  string
	typ  string
	data []byte
	to   *wsConn // the connection that had the app when it was produced
}

type filter struct {
	allowed, disallowed []string
}

func (f *filter) pass(typ string) bool {
	if len(f.allowed) > 0 && !contains(f.allowed, typ) {
		return false
	}
	return !contains(f.disallowed, typ)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// New starts a fake ARI; t's cleanup closes it.
func New(t testing.TB) *Server {
	s := &Server{
		t:          t,
		done:       make(chan struct{}),
		changed:    make(chan struct{}),
		cursor:     map[string]int{},
		subs:       map[string]*wsConn{},
		conns:      map[*wsConn]bool{},
		apps:       map[string]*filter{},
		inactive:   map[string]bool{},
		wake:       make(chan struct{}, 1),
		channels:   map[string]*channel{},
		bridges:    map[string]*bridge{},
		playbacks:  map[string]*playback{},
		autoFinish: -1,
		timers:     map[*time.Timer]bool{},
	}
	// Asterisk does not check the websocket Origin.
	s.ws = websocket.Server{Handshake: func(*websocket.Config, *http.Request) error { return nil }, Handler: s.serveEvents}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	s.wg.Add(1)
	go s.send()
	t.Cleanup(s.Close)
	return s
}

// URL is the ARI base URL, "http://127.0.0.1:PORT/ari".
func (s *Server) URL() string { return s.srv.URL + "/ari" }

// Close shuts the server down: every websocket, every timer, every
// goroutine. New's cleanup calls it; calling it again does nothing.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.done)
	var conns []*websocket.Conn
	for c := range s.conns {
		if c.ws != nil {
			conns = append(conns, c.ws)
		}
		c.dropped = true
		c.listed = false
	}
	for tm := range s.timers {
		tm.Stop()
	}
	s.timers = nil
	s.mu.Unlock()
	for _, ws := range conns {
		_ = ws.Close()
	}
	s.srv.Close()
	s.wg.Wait()
}

// notifyLocked wakes every waiter of WaitRequest and WaitConnected.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Requests returns every request received so far, in order of arrival.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.requests))
	for i, r := range s.requests {
		out[i] = *r
	}
	return out
}

func match(r *Request, method, prefix string) bool {
	return (method == "" || r.Method == method) && strings.HasPrefix(r.Path, prefix)
}

// Count is the number of requests so far with method ("" for any) and a
// path starting with pathPrefix.
func (s *Server) Count(method, pathPrefix string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.requests {
		if match(r, method, pathPrefix) {
			n++
		}
	}
	return n
}

// WaitRequest waits up to d for a request with method ("" for any) and a
// path starting with pathPrefix, and returns the first one that no earlier
// WaitRequest for the same method and prefix returned, so that a test can
// step through them. It returns once the request has arrived: Status is 0
// if the request is still being answered (an Intercept delay). It fails t
// (t.Fatalf: call it from the test's goroutine) if none comes.
func (s *Server) WaitRequest(t testing.TB, d time.Duration, method, pathPrefix string) Request {
	t.Helper()
	key := method + " " + pathPrefix
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		for i := s.cursor[key]; i < len(s.requests); i++ {
			if r := s.requests[i]; match(r, method, pathPrefix) {
				s.cursor[key] = i + 1
				out := *r
				s.mu.Unlock()
				return out
			}
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("aritest: no %s %s request within %v; requests: %s", method, pathPrefix, d, s.summary())
			return Request{}
		}
	}
}

func (s *Server) summary() string {
	var b strings.Builder
	for _, r := range s.Requests() {
		fmt.Fprintf(&b, "\n  %s %s?%s -> %d", r.Method, r.Path, r.Query.Encode(), r.Status)
	}
	if b.Len() == 0 {
		return "none"
	}
	return b.String()
}

// Intercept installs f in front of the default behaviour of every later
// request (nil removes it). f runs without the server's lock held.
func (s *Server) Intercept(f Interceptor) {
	s.mu.Lock()
	s.intercept = f
	s.mu.Unlock()
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	path, ok := strings.CutPrefix(r.URL.Path, "/ari")
	if !ok || path == "" {
		path = r.URL.Path
	}
	req := &Request{Method: r.Method, Path: path, Query: r.URL.Query(), Body: body, At: time.Now()}
	s.mu.Lock()
	s.requests = append(s.requests, req)
	s.notifyLocked()
	icpt := s.intercept
	s.mu.Unlock()

	finish := func(status int) {
		s.mu.Lock()
		req.Status = status
		s.notifyLocked()
		s.mu.Unlock()
	}
	if !authorized(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="Asterisk REST Interface"`)
		writeJSON(w, http.StatusUnauthorized, errBody("Authentication required"))
		finish(http.StatusUnauthorized)
		return
	}
	if icpt != nil {
		cp := *req
		status, text, delay, handled := icpt(&cp)
		if delay > 0 {
			tm := time.NewTimer(delay)
			select {
			case <-tm.C:
			case <-r.Context().Done():
			case <-s.done:
			}
			tm.Stop()
		}
		if handled && status == Cut {
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					_ = conn.Close()
				}
			}
			finish(Cut)
			return
		}
		if handled {
			if text != "" {
				w.Header().Set("Content-Type", "application/json")
			}
			w.WriteHeader(status)
			_, _ = io.WriteString(w, text)
			finish(status)
			return
		}
	}
	if path == "/events" && r.Method == http.MethodGet {
		s.upgrade(w, r, req)
		return
	}
	s.mu.Lock()
	status, out := s.route(req)
	s.mu.Unlock()
	writeJSON(w, status, out)
	finish(status)
}

func authorized(r *http.Request) bool {
	if u, p, ok := r.BasicAuth(); ok {
		return u == User && p == Password
	}
	return r.URL.Query().Get("api_key") == User+":"+Password
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	if v == nil {
		w.WriteHeader(status)
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"message":"aritest: `+err.Error()+`"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func errBody(msg string) map[string]string { return map[string]string{"message": msg} }

// upgrade accepts the event websocket. The app is the new connection's
// before the handshake is answered: an event produced as soon as the
// client has its answer (or before) reaches it.
func (s *Server) upgrade(w http.ResponseWriter, r *http.Request, req *Request) {
	app := r.URL.Query().Get("app")
	fail := func(status int, msg string) {
		writeJSON(w, status, errBody(msg))
		s.mu.Lock()
		req.Status = status
		s.notifyLocked()
		s.mu.Unlock()
	}
	if app == "" {
		fail(http.StatusBadRequest, "Missing params: app")
		return
	}
	c := &wsConn{app: app}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		fail(http.StatusServiceUnavailable, "shutting down")
		return
	}
	s.wg.Add(1)
	if old := s.subs[app]; old != nil && !s.inactive[app] {
		// Asterisk tells the old connection and sends it nothing more.
		// An inactive app has no handler to tell: the old session keeps
		// the app listed.
		s.queue = append(s.queue, outMsg{app: app, typ: "ApplicationReplaced", to: old,
			data: mustJSON(map[string]any{"type": "ApplicationReplaced", "application": app, "timestamp": stamp(time.Now())})})
		s.signal()
		old.listed = false
	}
	c.listed = true
	s.subs[app] = c
	s.conns[c] = true
	if s.apps[app] == nil {
		s.apps[app] = &filter{}
	}
	// A registration activates the app again (app_update).
	delete(s.inactive, app)
	s.connects++
	req.Status = http.StatusSwitchingProtocols
	s.notifyLocked()
	s.mu.Unlock()
	defer s.wg.Done()
	s.ws.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), connKey{}, c)))
	// The connection ended, or its handshake failed: its session
	// unregisters the app if it still lists it, even if another
	// connection has registered the app since (app_deactivate does not
	// ask whose handler it clears).
	s.mu.Lock()
	delete(s.conns, c)
	if c.listed {
		c.listed = false
		if s.subs[app] == c {
			delete(s.subs, app)
		} else if s.subs[app] != nil {
			s.inactive[app] = true
		}
	}
	s.notifyLocked()
	s.mu.Unlock()
}

// serveEvents runs once the handshake is done: it sends what waited for
// it, then reads until the connection ends.
func (s *Server) serveEvents(ws *websocket.Conn) {
	c, _ := ws.Request().Context().Value(connKey{}).(*wsConn)
	if c == nil {
		return
	}
	for {
		s.mu.Lock()
		if c.dropped {
			s.mu.Unlock()
			return
		}
		pending := c.pending
		c.pending = nil
		if len(pending) == 0 {
			// From here the sender writes to it directly: nothing can
			// overtake what was pending.
			c.ws = ws
			s.mu.Unlock()
			break
		}
		s.mu.Unlock()
		for _, m := range pending {
			_ = websocket.Message.Send(ws, string(m))
		}
	}
	for {
		var b []byte
		if err := websocket.Message.Receive(ws, &b); err != nil {
			break
		}
	}
}

// WaitConnected waits up to d until an event websocket for App is
// connected (its handshake at least under way: events for App reach it),
// and fails t if none is.
func (s *Server) WaitConnected(t testing.TB, d time.Duration) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		ok := s.subs[App] != nil
		ch := s.changed
		s.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("aritest: no websocket for app %q within %v", App, d)
			return
		}
	}
}

// Connections is the number of event websockets accepted so far, for
// every app: a test can tell a reconnect from the first connection.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connects
}

// DropWebsocket closes every open event websocket at once, without a
// close handshake from the client's point of view; events produced until
// a client reconnects are lost, as with Asterisk.
func (s *Server) DropWebsocket() {
	s.mu.Lock()
	var conns []*websocket.Conn
	for c := range s.conns {
		if c.ws != nil {
			conns = append(conns, c.ws)
		}
		c.dropped = true
		c.listed = false // its session ended here, before any reconnect
		delete(s.conns, c)
	}
	clear(s.subs)
	s.notifyLocked()
	s.mu.Unlock()
	for _, ws := range conns {
		_ = ws.Close()
	}
}

// Pause holds every event produced from now on, in order, until Resume.
func (s *Server) Pause() {
	s.mu.Lock()
	s.paused = true
	s.mu.Unlock()
}

// Resume sends the held events, in the order they were produced.
func (s *Server) Resume() {
	s.mu.Lock()
	s.paused = false
	s.signal()
	s.mu.Unlock()
}

// Emit sends ev (anything that marshals to a JSON object) as is, after the
// events already produced. "application" and "timestamp" are filled in
// when absent (or zero, as an ari/v6 struct marshals them); "application"
// chooses the app (default App). It goes to the connection that has the
// app now, if its filter lets it through: with none, it is lost.
func (s *Server) Emit(ev any) {
	b, err := json.Marshal(ev)
	if err != nil {
		s.t.Errorf("aritest: Emit: %v", err)
		return
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		s.t.Errorf("aritest: Emit: not a JSON object: %v", err)
		return
	}
	app, _ := m["application"].(string)
	if app == "" {
		app = App
		m["application"] = app
	}
	if ts, _ := m["timestamp"].(string); ts == "" || strings.HasPrefix(ts, "0001-01-01") {
		m["timestamp"] = stamp(time.Now())
	}
	typ, _ := m["type"].(string)
	s.mu.Lock()
	s.queueLocked(app, typ, mustJSON(m))
	s.mu.Unlock()
}

// emitLocked queues an event of type typ for app; fields are the event's
// own (channel, cause, ...). Events for no app (a channel that left
// Stasis) are dropped.
func (s *Server) emitLocked(app, typ string, fields map[string]any) {
	if app == "" || s.closed {
		return
	}
	fields["type"] = typ
	fields["application"] = app
	fields["timestamp"] = stamp(time.Now())
	fields["asterisk_id"] = entityID
	s.queueLocked(app, typ, mustJSON(fields))
}

// queueLocked queues an event for the connection that has app now, as
// Asterisk hands an event to the app's handler when it is produced: an
// event produced while nobody has the app, while the app is inactive or
// that its filter refuses is lost, even if a connection comes before the
// sender would have sent it.
func (s *Server) queueLocked(app, typ string, data []byte) {
	to := s.subs[app]
	if to == nil || s.inactive[app] {
		return
	}
	if f := s.apps[app]; f != nil && !f.pass(typ) {
		return
	}
	s.queue = append(s.queue, outMsg{app: app, typ: typ, data: data, to: to})
	s.signal()
}

func (s *Server) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// send delivers queued events one at a time, in order.
func (s *Server) send() {
	defer s.wg.Done()
	for {
		s.mu.Lock()
		for s.paused || len(s.queue) == 0 {
			s.mu.Unlock()
			select {
			case <-s.wake:
			case <-s.done:
				return
			}
			s.mu.Lock()
		}
		m := s.queue[0]
		s.queue[0] = outMsg{}
		s.queue = s.queue[1:]
		to := m.to
		if !s.conns[to] {
			to = nil // gone since
		}
		var ws *websocket.Conn
		if to != nil {
			if ws = to.ws; ws == nil {
				to.pending = append(to.pending, m.data)
			}
		}
		s.mu.Unlock()
		if ws != nil {
			_ = websocket.Message.Send(ws, string(m.data))
		}
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("aritest: " + err.Error())
	}
	return b
}
