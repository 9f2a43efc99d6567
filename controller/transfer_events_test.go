package controller

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/ariflow/ariflow/internal/webhook"
	"github.com/ariflow/ariflow/transfer"
)

func TestLegEventsSignedInOrderWithRetries(t *testing.T) {
	t.Parallel()
	secret := []byte("0123456789abcdef-leg-events")
	var mu sync.Mutex
	var got []string
	fails := 1 // the first request fails: retried
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("leg event body: %v", err)
		}
		if err := webhook.Verify(secret, r.Header.Get(webhook.SignatureHeader), b, time.Now(), time.Minute); err != nil {
			t.Errorf("signature: %v", err)
		}
		mu.Lock()
		defer mu.Unlock()
		if fails > 0 {
			fails--
			w.WriteHeader(503)
			return
		}
		var ev transfer.LegEvent
		_ = json.Unmarshal(b, &ev)
		got = append(got, ev.Event)
	}))
	defer srv.Close()
	client, err := webhook.New(webhook.Options{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	a, reg := newEventsApp(client)
	lg := logrus.New()
	lg.SetOutput(io.Discard)
	log := logrus.NewEntry(lg)
	for _, e := range []string{transfer.LegRinging, transfer.LegAnswered, transfer.LegCompleted} {
		if !a.sendLegEvent(srv.URL, "call-1", &transfer.LegEvent{CallID: "call-1", Event: e}, log) {
			t.Fatal("not queued")
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for metricValue(t, reg, "ariflow_leg_events_total") < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 3 || got[0] != transfer.LegRinging || got[1] != transfer.LegAnswered || got[2] != transfer.LegCompleted {
		t.Errorf("received %v, want ringing, answered, completed", got)
	}
}

// A receiver that never answers: the events beyond its queue are dropped
// and counted, and sending never waits (internal/notify's tests show the
// other receivers' events still flow).
func TestLegEventsFullQueueDropsWithoutWaiting(t *testing.T) {
	t.Parallel()
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(block)
	client, err := webhook.New(webhook.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a, reg := newEventsApp(client)
	lg := logrus.New()
	lg.SetOutput(io.Discard)
	log := logrus.NewEntry(lg)
	const n = 1000
	queued := 0
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for i := 0; i < n; i++ {
			if a.sendLegEvent(srv.URL, fmt.Sprintf("call-%d", i), &transfer.LegEvent{Event: transfer.LegRinging}, log) {
				queued++
			}
		}
	}()
	// The receiver answers nothing until the test ends: the sends return
	// at all only if none waits for it.
	select {
	case <-sent:
	case <-time.After(wait):
		t.Fatalf("sending %d leg events to a receiver that does not answer has not returned after %v", n, wait)
	}
	dropped := int(metricValue(t, reg, "ariflow_leg_events_dropped_total"))
	if dropped == 0 || queued+dropped != n {
		t.Errorf("queued %d, dropped %d of %d", queued, dropped, n)
	}
}

// newEventsApp is an App that only sends leg events.
func newEventsApp(client *webhook.Client) (*App, *prometheus.Registry) {
	reg := prometheus.NewRegistry()
	lg := logrus.New()
	lg.SetOutput(io.Discard)
	return New(Config{Webhooks: client}, newMemStore(), newMemStore(), nil, lg, NewMetrics(reg)), reg
}

// metricValue sums a counter family's values.
func metricValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var v float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				v += m.GetCounter().GetValue()
			}
		}
	}
	return v
}

// BenchmarkLegEventToDeadReceiver: what queueing a leg event costs the
// call that sends it while its receiver never answers (the queue full,
// most are dropped): the speed goal of TestLegEventsFullQueueDropsWithoutWaiting.
func BenchmarkLegEventToDeadReceiver(b *testing.B) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(block)
	client, err := webhook.New(webhook.Options{})
	if err != nil {
		b.Fatal(err)
	}
	a, _ := newEventsApp(client)
	lg := logrus.New()
	lg.SetOutput(io.Discard)
	log := logrus.NewEntry(lg)
	ev := &transfer.LegEvent{Event: transfer.LegRinging}
	i := 0
	for b.Loop() {
		a.sendLegEvent(srv.URL, fmt.Sprintf("call-%d", i), ev, log)
		i++
	}
}
