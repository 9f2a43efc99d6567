package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The hanguplost flow (e2e/testdata/flows/hanguplost.yaml): a transfer to
// hangupLostFar, a key, Disconnect.
const (
	hangupLostEntry = "+4930555830"
	hangupLostFar   = "+4930123491"
	hangupLostM     = `ariflow_call_errors_total{where="hangup_lost"}`
)

// TestHangupLostRetried: the first two hangups of the caller at the call's
// end get a 503; the third, 600 ms later, hangs the caller up.
func TestHangupLostRetried(t *testing.T) {
	hangupLost(t, 2, http.StatusServiceUnavailable)
}

// TestHangupLostCut: the first two hangups of the caller get no answer,
// their connection cut; the caller is hung up all the same.
func TestHangupLostCut(t *testing.T) {
	hangupLost(t, 2, 0)
}

// TestHangupLostReconciled: all four tries of the caller's hangup get a
// 503. The record stays in phase ending while reconcile cannot run (the
// proxy fails its channel list too); once it can, it adopts the record
// and hangs the caller up.
func TestHangupLostReconciled(t *testing.T) {
	hangupLost(t, 4, http.StatusServiceUnavailable)
}

// hangupLost runs a call through the hanguplost flow on a process of the
// test's own, whose ARI proxy answers the first fails DELETEs of the
// caller's channel with status (0: cuts their connection), the caller's
// only: the far end's leg is hung up as usual.
func hangupLost(t *testing.T, fails, status int) {
	// A process of the test's own: its proxy parses its ARI connections
	// from the first, which FailRequests needs.
	if err := af.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := af.start(context.Background(), filepath.Base(af.LogPath)); err != nil {
			t.Errorf("restarting the suite's ariflow: %v", err)
		}
	})
	ctx := callTest(t, 60*time.Second)
	p, err := StartAriflowWith(ctx, &Ariflow{Stack: stack, FlowsDir: flowsDir, RecordRequests: true}, "ariflow-hanguplost.log")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	fallbacks := metricSum(t, p, "ariflow_fallback_total")

	from := nextCaller()
	far := carrier.ExpectFrom(hangupLostFar, from)
	desk := carrier.Expect(fallbackDesk)
	defer carrier.Forget(fallbackDesk, desk)
	caller, err := carrier.Dial(ctx, from, hangupLostEntry)
	if err != nil {
		t.Fatal(err)
	}
	r := recv(ctx, t, far, "far end")
	rec := oneRecord(ctx, t)
	path := "/ari/channels/" + rec.CallID
	p.Proxy.FailRequests(http.MethodDelete, path, fails, status)
	lost := fails >= 4 // every try fails: the record is kept for reconcile
	if lost {
		// Reconcile lists channels first: while that fails, the record
		// stays as keepEnding left it.
		p.Proxy.FailRequests(http.MethodGet, "/ari/channels", -1, http.StatusServiceUnavailable)
	}

	// The far end answers and hangs up: the caller is back in the flow
	// (its leg's hangup and the bridge's destroy pass the proxy), asked
	// for a key; the key ends the call.
	beep := observer.Prompts("sound:beep")
	defer beep.Stop()
	if err := r.Answer(); err != nil {
		t.Fatal(err)
	}
	if err := r.Hangup(); err != nil {
		t.Fatal(err)
	}
	if err := beep.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if err := caller.SendDTMF("1"); err != nil {
		t.Fatal(err)
	}

	if lost {
		// keepEnding counts the loss after the record says ending.
		waitFor(ctx, t, "the lost hangup counted", func() bool { return p.Metric(hangupLostM) >= 1 })
		reconciles := p.Metric("ariflow_reconcile_failures_total")
		waitFor(ctx, t, "a reconcile failed", func() bool { return p.Metric("ariflow_reconcile_failures_total") > reconciles })
		if got := oneRecord(ctx, t); got.Phase != "ending" {
			t.Errorf("after the lost hangup and a failed reconcile the record is in phase %q, want ending", got.Phase)
		}
		if !caller.Up() {
			t.Errorf("the caller was hung up while every hangup failed")
		}
		p.Proxy.StopFailing()
	}
	// Retried: 200 + 400 ms of backoff. Reconciled: its backoff is at
	// most 5 s.
	within := map[bool]time.Duration{false: 5 * time.Second, true: 10 * time.Second}[lost]
	hctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	if err := caller.WaitHangup(hctx); err != nil {
		t.Fatalf("the caller was not hung up: %v", err)
	}
	if err := stack.WaitClean(ctx, 5*time.Second); err != nil {
		t.Errorf("after the caller's hangup: %v", err)
	}
	if got, want := p.Metric(hangupLostM), map[bool]float64{false: 0, true: 1}[lost]; got != want {
		t.Errorf("%s = %v, want %v", hangupLostM, got, want)
	}
	if got := metricSum(t, p, "ariflow_fallback_total"); got != fallbacks {
		t.Errorf("ariflow_fallback_total went from %v to %v: the caller was sent to the fallback", fallbacks, got)
	}
	none(t, desk, "the fallback desk")

	// What the proxy failed: the caller's hangup fails times (and, while
	// held, reconcile's channel lists), nothing else; then the caller's
	// hangup went through.
	var failed, passed int
	for _, q := range p.Proxy.Requests() {
		switch {
		case q.Method == http.MethodDelete && q.Path == path && q.Failed:
			failed++
		case q.Method == http.MethodDelete && q.Path == path:
			passed++
		case q.Failed && !(lost && q.Method == http.MethodGet && q.Path == "/ari/channels"):
			t.Errorf("the proxy failed %s %s", q.Method, q.Path)
		}
	}
	if failed != fails || passed != 1 {
		t.Errorf("the caller's hangup: %d failed, %d passed; want %d and 1", failed, passed, fails)
	}
}

// oneRecord reads the only call record in Redis.
func oneRecord(ctx context.Context, t *testing.T) (rec struct {
	CallID string `json:"call_id"` // the caller's channel ID
	Phase  string
}) {
	t.Helper()
	keys, err := stack.RDB.Keys(ctx, "ariflow:*:call:*").Result()
	if err != nil || len(keys) != 1 {
		t.Fatalf("call records %v (%v), want one", keys, err)
	}
	b, err := stack.RDB.Get(ctx, keys[0]).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	return rec
}

// metricSum adds up a counter's series, whatever their labels.
func metricSum(t *testing.T, a *Ariflow, name string) float64 {
	t.Helper()
	return metricSumOf(t, a, func(line string) bool {
		return strings.HasPrefix(line, name+" ") || strings.HasPrefix(line, name+"{")
	})
}

// metricSumOf adds up the metric lines that match.
func metricSumOf(t *testing.T, a *Ariflow, match func(line string) bool) float64 {
	t.Helper()
	resp, err := http.Get("http://" + a.HTTPAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !match(line) {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		sum += v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return sum
}
