package ari

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// dropOnce is a server that drops the connection under the first request
// whose path contains drop, after reading it and before answering: what a
// request meets when Asterisk closes a kept-alive connection (or restarts)
// as the request arrives. It counts the requests that reached it.
type dropOnce struct {
	drop    string
	mu      sync.Mutex
	dropped bool
	seen    map[string]int
	keys    map[string]string
}

func (d *dropOnce) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	d.seen[r.URL.Path]++
	d.keys[r.URL.Path] = r.Header.Get("Idempotency-Key")
	drop := !d.dropped && strings.Contains(r.URL.Path, d.drop)
	if drop {
		d.dropped = true
	}
	d.mu.Unlock()
	if drop {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	if r.Method == http.MethodGet {
		_, _ = w.Write([]byte("[]"))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// Only requests whose second sending changes nothing are sent again when
// their connection drops before the answer; the others fail, once sent.
func TestResendOnlyWhatIsSafe(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name  string
		path  string
		call  func(c *Client) error
		again bool
	}{
		{"originate", "/channels", func(c *Client) error {
			return c.Originate(ctx, OriginateRequest{Endpoint: "PJSIP/x", ChannelID: "leg"})
		}, false},
		{"create", "/channels/create", func(c *Client) error { return c.Create(ctx, CreateRequest{Endpoint: "PJSIP/x", ChannelID: "leg"}) }, false},
		{"dial", "/dial", func(c *Client) error { return c.Dial(ctx, "leg", time.Second) }, false},
		{"dtmf", "/dtmf", func(c *Client) error { return c.SendDTMF(ctx, "leg", "1", 0, 100*time.Millisecond) }, false},
		{"play", "/play/", func(c *Client) error { return c.Play(ctx, "leg", "pb", "sound:beep") }, false},
		{"continue", "/continue", func(c *Client) error { return c.Continue(ctx, "leg", "", "", 0) }, false},
		{"create bridge", "/bridges/br", func(c *Client) error { return c.CreateBridge(ctx, "br", "x") }, false},
		{"hangup", "/channels/leg", func(c *Client) error { return c.Hangup(ctx, "leg", "normal") }, true},
		{"answer", "/answer", func(c *Client) error { return c.Answer(ctx, "leg") }, true},
		{"add to bridge", "/addChannel", func(c *Client) error { return c.AddToBridge(ctx, "br", "a", "b") }, false},
		{"destroy bridge", "/bridges/br", func(c *Client) error { return c.DestroyBridge(ctx, "br") }, true},
		{"stop playback", "/playbacks/pb", func(c *Client) error { return c.StopPlayback(ctx, "pb") }, true},
		{"event filter", "/eventFilter", func(c *Client) error { return c.SetEventFilter(ctx, EventTypes) }, true},
		{"probe", "/events/user/", func(c *Client) error { return c.Probe(ctx, "t1") }, true},
		{"channels", "/channels", func(c *Client) error { _, err := c.Channels(ctx); return err }, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := &dropOnce{drop: "/nothing-yet", seen: map[string]int{}, keys: map[string]string{}}
			srv := httptest.NewServer(d)
			defer srv.Close()
			c := New(Options{URL: srv.URL + "/ari", User: "u", Password: "p", App: "a", MaxConns: 1})
			defer c.Close()
			// A first request leaves the one connection idle for reuse:
			// net/http sends again only on a reused connection.
			if err := c.Hangup(ctx, "warm", "normal"); err != nil {
				t.Fatal(err)
			}
			d.mu.Lock()
			d.drop = tc.path
			d.mu.Unlock()
			err := tc.call(c)
			d.mu.Lock()
			defer d.mu.Unlock()
			n := 0
			var path string
			for p, k := range d.seen {
				if strings.Contains(p, tc.path) && !strings.Contains(p, "warm") {
					n, path = k, p
				}
			}
			if tc.again {
				if err != nil || n != 2 {
					t.Errorf("sent %d times (err %v); want sent again after the drop, and success", n, err)
				}
				if tc.name != "channels" && d.keys[path] == "" {
					t.Errorf("no Idempotency-Key on %s", path)
				}
			} else {
				if err == nil || n != 1 {
					t.Errorf("sent %d times (err %v); want sent once and the drop reported", n, err)
				}
				if d.keys[path] != "" {
					t.Errorf("Idempotency-Key on %s, which must not be sent again", path)
				}
			}
		})
	}
}

// No more than MaxConns connections are open at once; the requests past
// it wait for one and all succeed.
func TestMaxConnsBoundsConnections(t *testing.T) {
	var open, most atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		w.WriteHeader(http.StatusNoContent)
	}))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			n := open.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
		case http.StateClosed, http.StateHijacked:
			open.Add(-1)
		}
	}
	srv.Start()
	defer srv.Close()
	c := New(Options{URL: srv.URL + "/ari", User: "u", Password: "p", App: "a", MaxConns: 3})
	defer c.Close()
	errs := make(chan error, 10)
	for i := 0; i < 10; i++ {
		go func() { errs <- c.Answer(context.Background(), "leg") }()
	}
	// Let the requests pile up against the bound, then answer them all.
	deadline := time.Now().Add(2 * time.Second)
	for most.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	close(release)
	for i := 0; i < 10; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if m := most.Load(); m != 3 {
		t.Errorf("%d connections open at most, want 3", m)
	}
}

func TestDefaultsBelowAsteriskLimits(t *testing.T) {
	c := New(Options{URL: "http://127.0.0.1:1/ari"})
	tr := c.http.Transport.(*transport)
	if cap(tr.slots) != DefaultMaxConns || DefaultMaxConns >= 100/2 {
		t.Errorf("%d connections at most: two processes must stay below Asterisk's 100 sessions", cap(tr.slots))
	}
	if tr.idle != DefaultIdleTimeout || DefaultIdleTimeout >= 15*time.Second {
		t.Errorf("idle timeout %v: must be below Asterisk's session_keep_alive (15 s)", tr.idle)
	}
	tls := New(Options{URL: "https://127.0.0.1:1/ari"}).http.Transport.(*http.Transport)
	if tls.MaxConnsPerHost != DefaultMaxConns || tls.IdleConnTimeout != DefaultIdleTimeout {
		t.Errorf("TLS: %d connections, idle %v", tls.MaxConnsPerHost, tls.IdleConnTimeout)
	}
}

// Ping needs no lease: Allow is not asked, Sent not told.
func TestPingIsUnfenced(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ari/asterisk/ping" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ping":"pong","timestamp":"2026-11-30T13:52:58.733+0000","asterisk_id":"02:00:00:a1:f1:01"}`))
	}))
	defer srv.Close()
	var sent int
	fenced := errors.New("fenced")
	c := New(Options{URL: srv.URL + "/ari", App: "a", Allow: func(context.Context) error { return fenced }, Sent: func() { sent++ }})
	id, err := c.Ping(context.Background())
	if err != nil || id != "02:00:00:a1:f1:01" || sent != 0 {
		t.Errorf("Ping: %q, %v, sent %d", id, err, sent)
	}
	if err := c.Answer(context.Background(), "x"); !errors.Is(err, fenced) || sent != 0 {
		t.Errorf("a fenced Answer: %v, sent %d", err, sent)
	}
}

// A request a fenced write announced leaves whatever the local lease and
// the context say now, within the lease's lifetime of the write; it is
// counted as sent. Later, the lease is asked again.
func TestWrittenIsSent(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.URL.Path)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	var sent int
	fenced := errors.New("fenced")
	c := New(Options{URL: srv.URL + "/ari", App: "a", Allow: func(context.Context) error { return fenced }, Sent: func() { sent++ }})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Dial(Written(ctx, time.Now().Add(time.Minute)), "leg", 30*time.Second); err != nil || sent != 1 || len(got) != 1 || got[0] != "/ari/channels/leg/dial" {
		t.Errorf("a written Dial: %v, sent %d, Asterisk got %q", err, sent, got)
	}
	if err := c.Dial(Written(ctx, time.Now().Add(-time.Millisecond)), "leg", 30*time.Second); !errors.Is(err, fenced) || len(got) != 1 {
		t.Errorf("a Dial written longer ago than the lease lives: %v, Asterisk got %q", err, got)
	}
	if err := c.Dial(ctx, "leg", 30*time.Second); err == nil || len(got) != 1 {
		t.Errorf("an unwritten Dial with the lease lost: %v, Asterisk got %q", err, got)
	}
}

// A request allowed in do, whose lease goes before its first byte is
// written (the process stopped in between: chaos run Q sent a ring 0.25 s
// after a SIGCONT, under another process's lease), is not written. Its
// error says why; a Written request on the same connection is not asked.
func TestLeaseAskedAgainAtTheWrite(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.Path)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	fenced := errors.New("fenced")
	var asked, allowFirst atomic.Int32
	allowFirst.Store(1) // do's check passes; the next ones refuse
	c := New(Options{URL: srv.URL + "/ari", App: "a", Allow: func(context.Context) error {
		if asked.Add(1) <= allowFirst.Load() {
			return nil
		}
		return fenced
	}})
	ctx := context.Background()
	if err := c.Ring(ctx, "caller"); !errors.Is(err, fenced) {
		t.Errorf("a ring whose lease went before its write: %v", err)
	}
	asked.Store(0)
	allowFirst.Store(1 << 30)
	if err := c.Ring(ctx, "caller"); err != nil {
		t.Errorf("a ring with the lease: %v", err)
	}
	asked.Store(0)
	allowFirst.Store(0) // nobody may ask: a written request is not checked
	if err := c.Dial(Written(ctx, time.Now().Add(time.Minute)), "leg", 30*time.Second); err != nil {
		t.Errorf("a written Dial: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"POST /ari/channels/caller/ring", "POST /ari/channels/leg/dial"}; !slices.Equal(got, want) {
		t.Errorf("Asterisk got %q, want %q", got, want)
	}
}

// addChannel's options are query parameters, sent only when set.
func TestAddToBridgeWith(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.URL.Path+"?"+r.URL.RawQuery)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	c := New(Options{URL: srv.URL + "/ari", User: "u", Password: "p", App: "a"})
	ctx := context.Background()
	for _, tc := range []struct {
		o    BridgeJoin
		want string
	}{
		{BridgeJoin{}, "/ari/bridges/br/addChannel?channel=c1%2Cc2"},
		{BridgeJoin{AbsorbDTMF: true}, "/ari/bridges/br/addChannel?absorbDTMF=true&channel=c1%2Cc2"},
		{BridgeJoin{InhibitConnectedLine: true}, "/ari/bridges/br/addChannel?channel=c1%2Cc2&inhibitConnectedLineUpdates=true"},
		{BridgeJoin{AbsorbDTMF: true, InhibitConnectedLine: true}, "/ari/bridges/br/addChannel?absorbDTMF=true&channel=c1%2Cc2&inhibitConnectedLineUpdates=true"},
	} {
		got = nil
		if err := c.AddToBridgeWith(ctx, "br", tc.o, "c1", "c2"); err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0] != tc.want {
			t.Errorf("%+v: requests %q, want %q", tc.o, got, tc.want)
		}
	}
}

func TestKind(t *testing.T) {
	for _, tc := range []struct{ method, path, want string }{
		{"POST", "/channels/create?endpoint=PJSIP%2F1", "POST channels/create"},
		{"POST", "/channels/ariflow-leg-1/dtmf?dtmf=1", "POST channels/dtmf"},
		{"DELETE", "/channels/pbx-1.2?reason=normal", "DELETE channels"},
		{"POST", "/bridges/ariflow-br-1/addChannel?channel=a,b", "POST bridges/addChannel"},
		{"POST", "/bridges/ariflow-br-1?type=mixing", "POST bridges"},
		{"POST", "/channels/c1/play/pb-1?media=sound:x", "POST channels/play"},
		{"GET", "/asterisk/info", "GET asterisk/info"},
		{"POST", "/events/user/ariflow-probe?application=ariflow", "POST events/user"},
		{"DELETE", "/channels/c1/ring", "DELETE channels/ring"},
	} {
		if got := Kind(tc.method, tc.path); got != tc.want {
			t.Errorf("Kind(%s %s) = %q, want %q", tc.method, tc.path, got, tc.want)
		}
	}
}

// A create's variables go in key order: Asterisk applies them in the
// order of the request, and a header added then removed at once (the
// marker that tells a leg never dialled) must be added first.
func TestCreateVariablesInKeyOrder(t *testing.T) {
	b, err := json.Marshal(CreateRequest{Endpoint: "PJSIP/1@trunk", App: "a", Variables: map[string]string{
		"PJSIP_HEADER(remove,X-M)": "", "PJSIP_HEADER(add,X-Z)": "1", "PJSIP_HEADER(add,X-M)": "1", "CALLERID(num)": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	add, remove := strings.Index(s, "PJSIP_HEADER(add,X-M)"), strings.Index(s, "PJSIP_HEADER(remove,X-M)")
	if add < 0 || remove < add || strings.Index(s, "PJSIP_HEADER(add,X-Z)") > remove {
		t.Errorf("body %s: every add must come before the remove", s)
	}
}

// Traced is told of every request with its path but not its query: a
// DTMF request's query carries the keys, which may be a caller's PIN.
func TestTracedLeavesTheQueryOut(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/gone") {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	type traced struct {
		method, path string
		code         int
	}
	var got []traced
	c := New(Options{URL: srv.URL + "/ari", App: "a", Traced: func(method, path string, code int, took time.Duration) {
		if took <= 0 {
			t.Errorf("%s %s took %v", method, path, took)
		}
		got = append(got, traced{method, path, code})
	}})
	if err := c.SendDTMF(context.Background(), "leg1", "1234", time.Millisecond, 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	_ = c.Hangup(context.Background(), "gone", "normal")
	want := []traced{{"POST", "/channels/leg1/dtmf", 204}, {"DELETE", "/channels/gone", 404}}
	if !slices.Equal(got, want) {
		t.Errorf("traced %v; want %v", got, want)
	}
}
