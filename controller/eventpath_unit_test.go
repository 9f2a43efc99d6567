package controller

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ariflow/ariflow/internal/ari/aritest"
)

// Asterisk can leave the app inactive under an open websocket
// (docs/ari-event-path.md): the socket stays open, nothing arrives. The
// process finds out by its next probe, is not ready meanwhile, and
// connects again, closing the broken socket first (closing it after would
// leave the app inactive again); a caller arriving then is served.
func TestInactiveAppDetectedAndCured(t *testing.T) {
	t.Parallel()
	h := run(t, []string{twoPrompts}, func(c *Config) {
		c.ProbeInterval, c.ProbeTimeout = 300*time.Millisecond, 300*time.Millisecond
	})
	connects := h.fake.Connections()
	h.fake.DeactivateApp(aritest.App)
	eventually(t, "the lost path found", func() bool { return testutil.ToFloat64(h.app.metrics.ProbeFailures) >= 1 })
	eventually(t, "cured: ready on an active app", func() bool { return h.app.Ready() && h.fake.AppActive(aritest.App) })
	if n := h.fake.Connections(); n <= connects {
		t.Errorf("%d connections after the lost path, %d before: cured without connecting again", n, connects)
	}
	h.caller("c1", "prompts")
	pb := h.wantPlayed("c1", "sound:one")
	h.fake.FinishPlayback(pb)
	pb = h.wantPlayed("c1", "sound:two")
	h.fake.FinishPlayback(pb)
	h.ended("c1")
}

// A connection on which the first probe never comes back is not ready:
// the process does not reconcile on it, and connects again.
func TestUnprovenConnectionNotReady(t *testing.T) {
	t.Parallel()
	h := newHarness(t, []string{twoPrompts}, func(c *Config) { c.ProbeTimeout = 300 * time.Millisecond })
	var swallowed atomic.Bool
	h.fake.Intercept(func(r *aritest.Request) (int, string, time.Duration, bool) {
		if strings.HasPrefix(r.Path, "/events/user/") && swallowed.CompareAndSwap(false, true) {
			return 204, "", 0, true // accepted, never delivered: an inactive app
		}
		return 0, "", 0, false
	})
	h.start()
	if n := testutil.ToFloat64(h.app.metrics.ProbeFailures); n != 1 {
		t.Errorf("event path failures %v, want 1", n)
	}
	if n := testutil.ToFloat64(h.app.metrics.Reconciles); n != 1 {
		t.Errorf("%v reconciles, want 1 (none on the unproven connection)", n)
	}
	if c := h.fake.Connections(); c != 2 {
		t.Errorf("%d connections made, want 2 (the unproven one, then a proven one)", c)
	}
}

// A new connection on which Asterisk left the app inactive (its first
// probe never comes back) is given up within ten times the slowest probe
// seen so far, not after the whole ProbeTimeout: once probes have come
// back, a reconnect that meets an inactive app costs under a second.
func TestFreshConnectionGivenUpSooner(t *testing.T) {
	t.Parallel()
	h := newHarness(t, []string{twoPrompts}, func(c *Config) { c.ProbeTimeout = time.Hour })
	var armed, swallowed atomic.Bool
	h.fake.Intercept(func(r *aritest.Request) (int, string, time.Duration, bool) {
		if strings.HasPrefix(r.Path, "/events/user/") && armed.Load() && swallowed.CompareAndSwap(false, true) {
			return 204, "", 0, true // accepted, never delivered: an inactive app
		}
		return 0, "", 0, false
	})
	h.start()
	if _, ok := h.app.probeRTTs.max(); !ok {
		t.Fatal("the first connection's probe left no round trip")
	}
	connects := h.fake.Connections()
	armed.Store(true)
	h.fake.DropWebsocket()
	eventually(t, "the unproven connection given up and another made", func() bool {
		return h.fake.Connections() >= connects+2 && h.app.Ready()
	})
	if !swallowed.Load() {
		t.Fatal("no probe was swallowed: the test proved nothing")
	}
	if n := testutil.ToFloat64(h.app.metrics.ProbeFailures); n != 1 {
		t.Errorf("event path failures %v, want 1", n)
	}
}

// The bound of a new connection's first probe: ten times the slowest
// recent round trip, at least 0.5 s, doubled for each connection in a row
// that was not proven, at most ProbeTimeout (also the bound before any
// round trip was seen).
func TestFreshProofTimeout(t *testing.T) {
	t.Parallel()
	a := &App{cfg: Config{ProbeTimeout: 3 * time.Second}}
	if got := a.freshProofTimeout(0); got != 3*time.Second {
		t.Errorf("no round trip seen: %v, want ProbeTimeout", got)
	}
	a.probeRTTs.add(time.Millisecond)
	a.probeRTTs.add(120 * time.Millisecond)
	for _, tc := range []struct {
		unproven int
		want     time.Duration
	}{{0, 1200 * time.Millisecond}, {1, 2400 * time.Millisecond}, {2, 3 * time.Second}, {100, 3 * time.Second}} {
		if got := a.freshProofTimeout(tc.unproven); got != tc.want {
			t.Errorf("slowest 120ms, %d unproven: %v, want %v", tc.unproven, got, tc.want)
		}
	}
	fast := &App{cfg: Config{ProbeTimeout: 3 * time.Second}}
	fast.probeRTTs.add(2 * time.Millisecond)
	if got := fast.freshProofTimeout(0); got != freshProofMin {
		t.Errorf("slowest 2ms: %v, want the floor %v", got, freshProofMin)
	}
	if got := fast.freshProofTimeout(1); got != 2*freshProofMin {
		t.Errorf("slowest 2ms, 1 unproven: %v, want %v", got, 2*freshProofMin)
	}
}

// An event filter Asterisk refused (a request refused in a moment the
// lease lapsed here, a slow PBX) is set again on the same connection:
// without it every event of every channel comes for as long as the
// connection lasts.
func TestEventFilterSetAgain(t *testing.T) {
	t.Parallel()
	h := newHarness(t, []string{twoPrompts})
	var refused atomic.Bool
	path := "/applications/" + aritest.App + "/eventFilter"
	h.fake.Intercept(func(r *aritest.Request) (int, string, time.Duration, bool) {
		if r.Path == path && refused.CompareAndSwap(false, true) {
			return 400, `{"message":"refused"}`, 0, true
		}
		return 0, "", 0, false
	})
	h.start()
	eventually(t, "the event filter set on the second try", func() bool {
		ok := 0
		for _, r := range h.fake.Requests() {
			if r.Method == "PUT" && r.Path == path && r.Status >= 200 && r.Status < 300 {
				ok++
			}
		}
		return ok == 1
	})
	if c := h.fake.Connections(); c != 1 {
		t.Errorf("%d connections made, want 1: the filter is set again on the same one", c)
	}
}
