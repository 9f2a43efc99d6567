package ari

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/ariflow/ariflow/internal/ari/aritest"
)

func fakeClient(t *testing.T) (*Client, *aritest.Server) {
	t.Helper()
	s := aritest.New(t)
	c := New(Options{URL: s.URL(), User: aritest.User, Password: aritest.Password, App: aritest.App, Timeout: 2 * time.Second})
	t.Cleanup(c.Close)
	return c, s
}

// nextProbe reads events until the probe with token, or fails after d.
func nextProbe(t *testing.T, ec *EventConn, token string, d time.Duration) bool {
	t.Helper()
	got := make(chan bool, 1)
	go func() {
		for {
			ev, err := ec.Next()
			if err != nil {
				got <- false
				return
			}
			if IsProbe(ev, token) {
				got <- true
				return
			}
		}
	}()
	select {
	case ok := <-got:
		return ok
	case <-time.After(d):
		return false
	}
}

// A probe sent through REST comes back on the app's websocket, and is
// told from other user events and other probes.
func TestProbeRoundTrip(t *testing.T) {
	c, s := fakeClient(t)
	ctx := context.Background()
	if err := c.Probe(ctx, "t0"); !IsNotFound(err) {
		t.Errorf("probe before the app registered: %v, want 404", err)
	}
	ec, err := c.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer ec.Close()
	if err := c.SetEventFilter(ctx, EventTypes); err != nil {
		t.Fatal(err)
	}
	if err := c.Probe(ctx, "t1"); err != nil {
		t.Fatal(err)
	}
	if !nextProbe(t, ec, "t1", 2*time.Second) {
		t.Fatal("probe t1 did not come back")
	}
	// Asterisk keeps the socket open and delivers nothing: the probe is
	// accepted (204) and never arrives.
	s.DeactivateApp(aritest.App)
	if err := c.Probe(ctx, "t2"); err != nil {
		t.Fatalf("probe to an inactive app: %v (Asterisk answers 204)", err)
	}
	if nextProbe(t, ec, "t2", 300*time.Millisecond) {
		t.Fatal("a probe arrived from an inactive app")
	}
}

func TestIsProbe(t *testing.T) {
	probe := func(name, token string) Event {
		ev, err := decodeEvent([]byte(`{"type":"ChannelUserevent","eventname":"` + name + `","userevent":{"ariflow_probe":"` + token + `"},"application":"ariflow"}`))
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}
	for _, tc := range []struct {
		ev    Event
		token string
		want  bool
	}{
		{probe(ProbeEvent, "a"), "a", true},
		{probe(ProbeEvent, "a"), "b", false},
		{probe("other", "a"), "a", false},
		{probe(ProbeEvent, ""), "", false},
		{NewChannelDestroyed("x", 16, ""), "a", false},
	} {
		if got := IsProbe(tc.ev, tc.token); got != tc.want {
			t.Errorf("IsProbe(%+v, %q) = %v", tc.ev, tc.token, got)
		}
	}
}

func TestApplicationAndPing(t *testing.T) {
	c, s := fakeClient(t)
	ctx := context.Background()
	if _, err := c.Application(ctx); !IsNotFound(err) {
		t.Errorf("unknown app: %v, want 404", err)
	}
	ec, err := c.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer ec.Close()
	s.WaitConnected(t, 2*time.Second)
	if err := c.SetEventFilter(ctx, []string{"StasisStart", "ChannelUserevent"}); err != nil {
		t.Fatal(err)
	}
	s.Caller("c1", "+4917612345678", "", "+4930555000")
	app, err := c.Application(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if app.Name != aritest.App || len(app.ChannelIDs) != 1 || app.ChannelIDs[0] != "c1" ||
		len(app.EventsAllowed) != 2 || app.EventsAllowed[1] != "ChannelUserevent" {
		t.Errorf("application %+v", app)
	}
	id, err := c.Ping(ctx)
	if err != nil || id == "" {
		t.Errorf("ping: %q, %v", id, err)
	}
}

// A handshake Asterisk answers late (it registers the app first, which can
// wait behind another session's cleanup) is waited for up to the
// connect's bound, not given up after ReadIdle.
func TestEventsWaitsForASlowHandshake(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		req, err := http.ReadRequest(bufio.NewReader(conn))
		if err != nil {
			return
		}
		time.Sleep(ReadIdle + 500*time.Millisecond)
		h := sha1.Sum([]byte(req.Header.Get("Sec-Websocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		fmt.Fprintf(conn, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
			base64.StdEncoding.EncodeToString(h[:]))
		_, _ = io.Copy(io.Discard, conn)
	}()
	c := New(Options{URL: "http://" + ln.Addr().String() + "/ari", App: "a"})
	ec, err := c.Events(context.Background())
	if err != nil {
		t.Fatalf("a handshake answered after %v: %v", ReadIdle+500*time.Millisecond, err)
	}
	ec.Close()
}

// Heard moves with what arrives on the connection, and only then: a
// stalled connection keeps an old time (transfer holds a return key's
// first key while its path is silent).
func TestEventConnHeard(t *testing.T) {
	c, s := fakeClient(t)
	ec, err := c.Events(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer ec.Close()
	connected := ec.Heard()
	if connected.IsZero() || connected.After(time.Now()) {
		t.Fatalf("heard at %v after the handshake", connected)
	}
	s.WaitConnected(t, 2*time.Second)
	mark := time.Now()
	if h := ec.Heard(); h.After(mark) {
		t.Fatalf("heard at %v with nothing sent", h)
	}
	s.Emit(map[string]any{"type": "ChannelUserevent", "eventname": "x"})
	if _, err := ec.Next(); err != nil {
		t.Fatal(err)
	}
	if h := ec.Heard(); !h.After(mark) {
		t.Errorf("heard at %v, before the event sent after %v", h, mark)
	}
}

// PingSoon has the connection heard from within a round trip, not at the
// next PingInterval.
func TestEventConnPingSoon(t *testing.T) {
	c, s := fakeClient(t)
	ec, err := c.Events(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer ec.Close()
	s.WaitConnected(t, 2*time.Second)
	go func() { // the app reads all the time: the pong is read with it
		for {
			if _, err := ec.Next(); err != nil && !errors.Is(err, ErrUndecodable) {
				return
			}
		}
	}()
	mark := time.Now()
	ec.PingSoon()
	for !ec.Heard().After(mark) {
		if time.Since(mark) > PingInterval/2 {
			t.Fatalf("not heard from %v after PingSoon (last heard %v)", time.Since(mark), ec.Heard())
		}
		time.Sleep(5 * time.Millisecond)
	}
}
