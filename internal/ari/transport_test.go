package ari

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// connCounter is a test server that counts the connections made to it and
// the requests that reached it, and can close every connection it holds.
type connCounter struct {
	srv      *httptest.Server
	conns    atomic.Int32
	requests atomic.Int32
	mu       sync.Mutex
	open     map[net.Conn]struct{}
	answer   func(w http.ResponseWriter, r *http.Request)
}

func newConnCounter(t *testing.T, answer func(w http.ResponseWriter, r *http.Request)) *connCounter {
	cc := &connCounter{open: map[net.Conn]struct{}{}, answer: answer}
	cc.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cc.requests.Add(1)
		if cc.answer != nil {
			cc.answer(w, r)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	cc.srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		cc.mu.Lock()
		defer cc.mu.Unlock()
		switch s {
		case http.StateNew:
			cc.conns.Add(1)
			cc.open[c] = struct{}{}
		case http.StateClosed, http.StateHijacked:
			delete(cc.open, c)
		}
	}
	cc.srv.Start()
	t.Cleanup(cc.srv.Close)
	return cc
}

// closeAll closes the server's side of every connection, as Asterisk does
// to an idle one after session_keep_alive, and waits until they are gone.
func (cc *connCounter) closeAll(t *testing.T) {
	cc.mu.Lock()
	for c := range cc.open {
		c.Close()
	}
	cc.mu.Unlock()
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		cc.mu.Lock()
		n := len(cc.open)
		cc.mu.Unlock()
		if n == 0 {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("the server's connections did not close")
}

// A connection Asterisk closed while it was kept alive is noticed before a
// request goes out on it: a request that must not be sent twice (a dial)
// goes out once, on a new connection, and succeeds.
func TestClosedIdleConnectionNotUsed(t *testing.T) {
	cc := newConnCounter(t, nil)
	c := New(Options{URL: cc.srv.URL + "/ari", MaxConns: 1})
	defer c.Close()
	ctx := context.Background()
	if err := c.Answer(ctx, "warm"); err != nil {
		t.Fatal(err)
	}
	cc.closeAll(t)
	if err := c.Dial(ctx, "leg", time.Second); err != nil {
		t.Fatalf("a dial after the server closed the idle connection: %v", err)
	}
	if n, r := cc.conns.Load(), cc.requests.Load(); n != 2 || r != 2 {
		t.Errorf("%d connections, %d requests; want 2 and 2", n, r)
	}
}

// Connections are kept alive and used again; one unused for IdleTimeout
// is not.
func TestConnectionsKeptAliveWithinIdleTimeout(t *testing.T) {
	cc := newConnCounter(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"id":"c1","name":"PJSIP/x","state":"Up"}`))
	})
	c := New(Options{URL: cc.srv.URL + "/ari", IdleTimeout: 100 * time.Millisecond})
	defer c.Close()
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		if _, err := c.Channel(ctx, "c1"); err != nil {
			t.Fatal(err)
		}
	}
	if n := cc.conns.Load(); n != 1 {
		t.Errorf("%d connections for 5 requests one after another; want 1", n)
	}
	time.Sleep(150 * time.Millisecond) // past IdleTimeout: what is measured is the idle time itself
	if _, err := c.Channel(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if n := cc.conns.Load(); n != 2 {
		t.Errorf("%d connections after one idle past IdleTimeout; want 2", n)
	}
}

// A request Asterisk never answers fails at the client's Timeout, and its
// connection is not given back: the next request gets a new one, within
// MaxConns.
func TestUnansweredRequestFreesItsSlot(t *testing.T) {
	release := make(chan struct{})
	var first atomic.Bool
	cc := newConnCounter(t, func(w http.ResponseWriter, r *http.Request) {
		if first.CompareAndSwap(false, true) {
			<-release
		}
		w.WriteHeader(http.StatusNoContent)
	})
	defer close(release)
	c := New(Options{URL: cc.srv.URL + "/ari", MaxConns: 1, Timeout: 200 * time.Millisecond})
	defer c.Close()
	ctx := context.Background()
	if err := c.Answer(ctx, "slow"); err == nil {
		t.Fatal("an answer that never came: no error")
	}
	if err := c.Answer(ctx, "next"); err != nil {
		t.Fatalf("the request after a timed-out one: %v", err)
	}
	if n := cc.conns.Load(); n != 2 {
		t.Errorf("%d connections; want 2 (the timed-out one not used again)", n)
	}
}

// BenchmarkRequest sends requests one after another, as a call does, with
// this package's transport and with net/http's; it prints the CPU of the
// whole process (client and test server) per request, cpu-ns/op.
func BenchmarkRequest(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	for _, tc := range []struct {
		name string
		std  bool
	}{{"ari", false}, {"net-http", true}} {
		b.Run(tc.name, func(b *testing.B) {
			c := New(Options{URL: srv.URL + "/ari"})
			defer c.Close()
			if tc.std {
				c.http.Transport = &http.Transport{MaxConnsPerHost: DefaultMaxConns, MaxIdleConnsPerHost: DefaultMaxConns}
			}
			ctx := context.Background()
			b.ReportAllocs()
			before := cpuTime()
			b.ResetTimer()
			for b.Loop() {
				if err := c.Answer(ctx, "c1"); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cpuTime()-before)/float64(b.N), "cpu-ns/op")
		})
	}
}

// cpuTime is the process's user and system CPU so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// A connection idle for longer than a request's Timeout, within
// IdleTimeout, is used again: the last request's deadline is not its end.
func TestIdlePastTheRequestTimeoutKept(t *testing.T) {
	cc := newConnCounter(t, nil)
	c := New(Options{URL: cc.srv.URL + "/ari", Timeout: 50 * time.Millisecond, IdleTimeout: time.Second})
	defer c.Close()
	ctx := context.Background()
	if err := c.Answer(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // past the request's Timeout: what is tested is that idle time
	if err := c.Answer(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if n := cc.conns.Load(); n != 1 {
		t.Errorf("%d connections; want 1, kept alive past the request's Timeout", n)
	}
}
