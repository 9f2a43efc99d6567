package controller

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ariflow/ariflow/internal/ari/aritest"
	"github.com/ariflow/ariflow/record"
)

const byeFlow = `
name: bye
version: "1"
entry: ["bye"]
start: bye
blocks:
  bye: {type: Disconnect}
`

// failCallerHangup makes the caller's hangup fail (500) while *n > 0,
// counting down, or for ever while *n < 0.
func failCallerHangup(n *atomic.Int32) aritest.Interceptor {
	return func(r *aritest.Request) (int, string, time.Duration, bool) {
		if r.Method != "DELETE" || r.Path != "/channels/c1" {
			return 0, "", 0, false
		}
		switch v := n.Load(); {
		case v < 0:
			return 500, `{"message":"busy"}`, 0, true
		case v > 0:
			n.Add(-1)
			return 500, `{"message":"busy"}`, 0, true
		}
		return 0, "", 0, false
	}
}

// The caller's hangup at the call's end that gets no answer is sent again:
// a lost one would leave the caller in the app with nobody to serve it.
func TestCallerHangupTriedAgain(t *testing.T) {
	t.Parallel()
	h := run(t, []string{byeFlow})
	var fail atomic.Int32
	fail.Store(2)
	h.fake.Intercept(failCallerHangup(&fail))
	h.caller("c1", "bye")
	h.ended("c1")
	h.clean("c1")
	if n := h.count("DELETE", "/channels/c1"); n != 3 {
		t.Errorf("%d hangups of the caller; want 3 (two without an answer, then one)", n)
	}
	if n := testutil.ToFloat64(h.app.metrics.Adopted); n != 0 {
		t.Errorf("the call was adopted %v times; want it hung up by its own end", n)
	}
}

// A caller whose hangup never got an answer keeps its record, saying so,
// and reconcile hangs it up once Asterisk answers again: neither silence
// nor the fallback.
func TestCallerHangupLostKeepsRecord(t *testing.T) {
	t.Parallel()
	h := run(t, []string{byeFlow})
	var fail atomic.Int32
	fail.Store(-1)
	h.fake.Intercept(failCallerHangup(&fail))
	h.caller("c1", "bye")
	eventually(t, "the record kept as ending", func() bool {
		rec, err := h.store.Load(t.Context(), "c1")
		return err == nil && rec.Phase == record.PhaseEnding
	})
	if _, ok := h.fake.Channel("c1"); !ok {
		t.Fatal("caller gone though every hangup failed")
	}
	fail.Store(0)
	h.clean("c1")
	if n := h.count("POST", "/channels/c1/continue"); n != 0 {
		t.Errorf("caller sent to the fallback")
	}
	if n := testutil.ToFloat64(h.app.metrics.Adopted); n < 1 {
		t.Errorf("the kept record was not adopted")
	}
}

// A call that ends while Redis restarts has its record's delete fail: the
// delete is made again, as a write is, and the record does not outlive
// the call (chaos run AJ left ten so).
func TestRecordDeleteTriedAgain(t *testing.T) {
	t.Parallel()
	h := run(t, []string{byeFlow}, func(c *Config) { c.SavePatience = 2 * time.Second })
	h.store.mu.Lock()
	h.store.failDels = 2
	h.store.mu.Unlock()
	h.caller("c1", "bye")
	h.ended("c1")
	h.clean("c1")
	h.store.mu.Lock()
	defer h.store.mu.Unlock()
	if h.store.failedDels != 2 || h.store.deletes != 1 {
		t.Errorf("%d deletes failed, %d made; want 2 and 1", h.store.failedDels, h.store.deletes)
	}
}

// A delete that fails for longer than SavePatience leaves the record to a
// reconcile, started at once: it drops the record of a caller gone.
func TestRecordDeleteLeftToReconcile(t *testing.T) {
	t.Parallel()
	// Room for one delete more (100 ms on) within the call's end, not two.
	h := run(t, []string{byeFlow}, func(c *Config) { c.SavePatience = 150 * time.Millisecond })
	h.store.mu.Lock()
	h.store.failDels = 3
	h.store.mu.Unlock()
	before := testutil.ToFloat64(h.app.metrics.Reconciles)
	h.caller("c1", "bye")
	h.ended("c1")
	h.clean("c1")
	h.store.mu.Lock()
	defer h.store.mu.Unlock()
	if h.store.failedDels != 3 || h.store.deletes != 1 {
		t.Errorf("%d deletes failed, %d made; want 3 and 1", h.store.failedDels, h.store.deletes)
	}
	if n := testutil.ToFloat64(h.app.metrics.Reconciles) - before; n < 1 {
		t.Errorf("%v reconciles after the call; want one", n)
	}
}
