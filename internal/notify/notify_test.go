package notify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
)

// fakePoster is a receiver per host: it records bodies in order, fails
// the first failFirst requests, and blocks every request to a host in
// hang until the request's context ends (a receiver that never answers).
type fakePoster struct {
	mu        sync.Mutex
	got       map[string][]string // host -> bodies received
	failFirst int
	hang      map[string]bool
	calls     atomic.Int32
}

func (f *fakePoster) Post(ctx context.Context, rawURL string, body []byte, timeout time.Duration) (int, []byte, error) {
	f.calls.Add(1)
	h := host(rawURL)
	if f.hang[h] {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		<-ctx.Done()
		return 0, nil, ctx.Err()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failFirst > 0 {
		f.failFirst--
		return 503, nil, errors.New("503")
	}
	if f.got == nil {
		f.got = map[string][]string{}
	}
	f.got[h] = append(f.got[h], string(body))
	return 200, nil, nil
}

func (f *fakePoster) received(h string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.got[h]...)
}

type counts struct{ sent, failed, dropped atomic.Int32 }

func (c *counts) result(o Outcome) {
	switch o {
	case Sent:
		c.sent.Add(1)
	case Failed:
		c.failed.Add(1)
	case Dropped:
		c.dropped.Add(1)
	}
}

func quiet() *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return logrus.NewEntry(l)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// One key's events arrive in order, a failed request is tried again.
func TestInOrderWithRetries(t *testing.T) {
	p := &fakePoster{failFirst: 1}
	var c counts
	s := New(p, Options{Backoff: []time.Duration{time.Millisecond}, Result: c.result})
	defer s.Close()
	for _, e := range []string{"ringing", "answered", "completed"} {
		if !s.Send("http://events.example:8080/legs", "call-1", []byte(e), quiet()) {
			t.Fatal("not queued")
		}
	}
	waitFor(t, "three events sent", func() bool { return c.sent.Load() == 3 })
	got := p.received("events.example:8080")
	if fmt.Sprint(got) != "[ringing answered completed]" {
		t.Errorf("received %v, want ringing, answered, completed", got)
	}
	if p.calls.Load() != 4 {
		t.Errorf("%d requests, want 4 (one retried)", p.calls.Load())
	}
}

// A receiver that never answers costs every attempt its full timeout.
// Its events fill its own queue and the rest are dropped, without the
// sender ever waiting; meanwhile every event for another receiver, from
// the same calls, arrives.
func TestSlowReceiverStarvesNoOther(t *testing.T) {
	p := &fakePoster{hang: map[string]bool{"slow.example": true}}
	var c counts
	s := New(p, Options{QueuePerHost: 8, WorkersPerHost: 2, Timeout: time.Minute, Result: c.result})
	defer s.Close()
	const n = 200
	start := time.Now()
	for i := 0; i < n; i++ {
		s.Send("http://slow.example/legs", fmt.Sprintf("call-%d", i), []byte("slow"), quiet())
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("queueing %d events took %v; a sender must never wait", n, d)
	}
	// The slow receiver's two workers hold a request each, its queue
	// holds 8: the rest were dropped.
	waitFor(t, "the slow receiver's two requests", func() bool { return p.calls.Load() == 2 })
	if d := int(c.dropped.Load()); d < n-8-2 || d > n-8 {
		t.Errorf("%d events dropped, want %d..%d", d, n-10, n-8)
	}
	for i := 0; i < n; i++ {
		if !s.Send("http://fast.example/legs", fmt.Sprintf("call-%d", i), []byte("fast"), quiet()) {
			t.Fatalf("fast receiver's event %d not queued", i)
		}
		waitFor(t, fmt.Sprintf("the fast receiver's event %d", i), func() bool { return len(p.received("fast.example")) == i+1 })
	}
	if c.sent.Load() != n {
		t.Errorf("%d sent, want %d (all of the fast receiver's)", c.sent.Load(), n)
	}
}

// Receivers beyond MaxHosts get no queue: their events are dropped.
func TestMaxHosts(t *testing.T) {
	p := &fakePoster{}
	var c counts
	s := New(p, Options{MaxHosts: 2, Result: c.result})
	defer s.Close()
	for i := 0; i < 3; i++ {
		ok := s.Send(fmt.Sprintf("http://h%d.example/", i), "k", []byte("x"), quiet())
		if ok != (i < 2) {
			t.Errorf("host %d: queued %v", i, ok)
		}
	}
	if c.dropped.Load() != 1 {
		t.Errorf("%d dropped, want 1", c.dropped.Load())
	}
}

// Every attempt failing is reported once, as Failed.
func TestFailedAfterAttempts(t *testing.T) {
	p := &fakePoster{failFirst: 100}
	var c counts
	s := New(p, Options{Attempts: 3, Backoff: []time.Duration{time.Millisecond}, Result: c.result})
	defer s.Close()
	s.Send("http://down.example/", "k", []byte("x"), quiet())
	waitFor(t, "the failure", func() bool { return c.failed.Load() == 1 })
	if p.calls.Load() != 3 || c.sent.Load() != 0 {
		t.Errorf("%d requests, %d sent; want 3 and 0", p.calls.Load(), c.sent.Load())
	}
}

// After Close, Send drops and the workers are gone.
func TestClose(t *testing.T) {
	p := &fakePoster{hang: map[string]bool{"slow.example": true}}
	var c counts
	s := New(p, Options{Timeout: time.Minute, Result: c.result})
	s.Send("http://slow.example/", "k", []byte("x"), quiet())
	waitFor(t, "the request in flight", func() bool { return p.calls.Load() == 1 })
	s.Close() // returns although the request would wait a minute
	if s.Send("http://slow.example/", "k", []byte("x"), quiet()) {
		t.Error("queued after Close")
	}
}
