package e2e

import (
	"strings"

	"context"
	"fmt"
	"github.com/CyCoreSystems/ari/v6"
	"github.com/ariflow/ariflow/flows"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// The transfer options beyond Connect (issue 11), each on its own
// entry. Every transfer's branches lead to a webhook that records the
// outcome ($.Transfer.*), then to agentOK.
const optionsFlow = `# Written by the e2e tests: the transfer options beyond Connect.
name: options
version: "1"
entry: ["+4930555901", "+4930555902", "+4930555903", "+4930555904", "+4930555905", "+4930555906", "+4930555907", "+4930555908"]
start: pick
blocks:
  pick:
    type: CheckAttribute
    attribute: $.System.DialedNumber
    conditions:
      - {op: Equals, value: "+4930555901", branch: cadence}
      - {op: Equals, value: "+4930555902", branch: setgap}
      - {op: Equals, value: "+4930555903", branch: key}
      - {op: Equals, value: "+4930555904", branch: limit}
      - {op: Equals, value: "+4930555905", branch: tag}
      - {op: Equals, value: "+4930555906", branch: list}
      - {op: Equals, value: "+4930555907", branch: premium}
      - {op: Equals, value: "+4930555908", branch: screened}
    branches: {cadence: cadence, setgap: setgap, key: key, limit: limit, tag: tag, list: list, premium: premium, screened: screened, NoMatch: report}
  cadence:
    type: TransferToPhoneNumber
    number: "+4930124001"
    timeout: 10
    dtmf: "12,3w4W5"
    branches: {Success: report, CallFailed: report, Timeout: report, Error: report}
  setgap:
    type: SetAttributes
    set: {gap: "120"}
    branches: {Next: custom}
  custom:
    type: TransferToPhoneNumber
    number: "+4930124002"
    timeout: 10
    dtmf: "1234"
    dtmf_tone: 150
    dtmf_gap: $.Attributes.gap
    branches: {Success: report, CallFailed: report, Timeout: report, Error: report}
  key:
    type: TransferToPhoneNumber
    number: "+4930124003"
    timeout: 10
    return_key: "**"
    branches: {Success: report, CallFailed: report, Timeout: report, Error: report}
  limit:
    type: TransferToPhoneNumber
    number: "+4930124004"
    timeout: 10
    max_talk: 5
    warning: sound:beep
    warning_before: 2
    branches: {Success: report, CallFailed: report, Timeout: report, Error: report}
  tag:
    type: SetAttributes
    set: {tracking: "4711-0815 AB"}
    branches: {Next: tagged}
  tagged:
    type: TransferToPhoneNumber
    number: "+4930124005"
    timeout: 10
    headers: {X-Tracking-Id: $.Attributes.tracking, X-Source: ariflow-e2e}
    branches: {Success: report, CallFailed: report, Timeout: report, Error: report}
  list:
    type: TransferToPhoneNumber
    number: ["+4930124006", "+4930124007", "+4930124008"]
    timeouts: [10, 2, 10]
    branches: {Success: report, CallFailed: report, Timeout: report, Error: report}
  premium:
    type: SetAttributes
    set: {premium: "+499001234567"}
    branches: {Next: premium_first}
  premium_first:
    type: TransferToPhoneNumber
    number: [$.Attributes.premium, "+4930124009"]
    timeout: 10
    branches: {Success: report, CallFailed: report, Timeout: report, Error: report}
  screened:
    type: TransferToPhoneNumber
    number: "+4930124010"
    timeout: 10
    whisper: sound:beep
    confirm: {prompt: sound:auth-thankyou, key: "1", timeout: 3}
    branches: {Success: report, CallFailed: report, Timeout: timeout, Error: report}
  timeout:
    type: TransferToAgent
    endpoint: "+4930111002"
  report:
    type: InvokeWebhook
    url: %s
    branches: {Success: agent, Error: agent}
  agent:
    type: TransferToAgent
    endpoint: "+4930111000"
`

var optionsOnce sync.Once

// optionsCall installs the options flow (once, by a reload) and places a
// call to did; it returns the caller, the far end's call to number and
// the caller's number.
func optionsCall(ctx context.Context, t *testing.T, did, number string) (*Caller, *Remote, string) {
	t.Helper()
	var err error
	optionsOnce.Do(func() {
		if err = os.WriteFile(filepath.Join(flowsDir, "options.yaml"), []byte(fmt.Sprintf(optionsFlow, webhook.URL())), 0o644); err != nil {
			return
		}
		var code int
		var body string
		if code, body, err = af.Reload(); err == nil && code != 200 {
			err = fmt.Errorf("reload: %d %s", code, body)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return transferToShipper(ctx, t, did, number)
}

// finish ends an options call the way every one ends: the agent answers
// and hangs up, and the caller is hung up by the flow. It returns the
// Transfer attributes the webhook saw.
func finishAtAgent(ctx context.Context, t *testing.T, caller *Caller, agent <-chan *Remote) map[string]any {
	t.Helper()
	a := recv(ctx, t, agent, "agent after the transfer")
	a.AnswerAndHangup()
	if err := caller.WaitHangup(ctx); err != nil {
		t.Fatal(err)
	}
	return transferAttrs(t)
}

func transferAttrs(t *testing.T) map[string]any {
	t.Helper()
	last := webhook.last()
	attrs, _ := last["attributes"].(map[string]any)
	tr, _ := attrs["Transfer"].(map[string]any)
	if tr == nil {
		t.Fatalf("the webhook got no Transfer attributes: %v", last)
	}
	return tr
}

func wantAttrs(t *testing.T, got map[string]any, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if fmt.Sprint(got[k]) != v {
			t.Errorf("$.Transfer.%s = %q, want %q", k, got[k], v)
		}
	}
}

// spacings are the times between consecutive digits' ends.
func spacings(ds []Digit) []time.Duration {
	var out []time.Duration
	for i := 1; i < len(ds); i++ {
		out = append(out, ds[i].At.Sub(ds[i-1].At))
	}
	return out
}

// wantTones asserts each tone lasted at least want (less the RTP packet
// the far end may miss of it) and began after the previous one ended.
// How closely Asterisk keeps a tone's length on a loaded machine is a
// figure (logged), not a bound.
func wantTones(t *testing.T, ds []Digit, want time.Duration) {
	t.Helper()
	const tol = 15 * time.Millisecond
	for i, d := range ds {
		if d.Duration < want-tol {
			t.Errorf("digit %s lasted %v, want %v", d.Digit, d.Duration, want)
		}
		if i > 0 && d.At.Add(-d.Duration).Before(ds[i-1].At) {
			t.Errorf("digit %s began before digit %s ended", d.Digit, ds[i-1].Digit)
		}
	}
}

// TestOptionsDTMFCadence checks what the far end's IVR relies on: each
// tone lasts as long as the block says, and no two are closer than tone
// plus gap (plus a pause where the digits have one). How closely the
// schedule is kept on a loaded machine is a figure of the benchmark
// (make bench: DTMF timing), not a pass/fail bound here.
func TestOptionsDTMFCadence(t *testing.T) {
	// RTP carries a tone's end in 20 ms packets; Asterisk stamps events
	// to the millisecond.
	const tol = 25 * time.Millisecond
	t.Run("defaults: 100 ms tone, 100 ms gap, ',' 750 ms, w 500 ms, W 1 s", func(t *testing.T) {
		ctx := callTest(t, 30*time.Second)
		caller, s, from := optionsCall(ctx, t, "+4930555901", "+4930124001")
		agent := carrier.ExpectFrom(agentOK, from)
		_ = s.Answer()
		ds, err := s.TimedDigits(ctx, 5)
		if err != nil {
			t.Fatal(err)
		}
		got := spacings(ds)
		t.Logf("digits %v, spacings %v", ds, got)
		// "12,3w4W5": a digit every 200 ms, pauses added to it.
		want := []time.Duration{200, 200 + 750, 200 + 500, 200 + 1000}
		for i, w := range want {
			if got[i] < w*time.Millisecond-tol {
				t.Errorf("spacing %d: %v, want at least %v (- %v)", i+1, got[i], w*time.Millisecond, tol)
			}
		}
		wantTones(t, ds, 100*time.Millisecond)
		_ = s.Hangup()
		wantAttrs(t, finishAtAgent(ctx, t, caller, agent), map[string]string{"DigitsSent": "12345", "EndedBy": "far-end", "Attempts": "1"})
	})
	t.Run("tone 150 ms, gap 120 ms from an attribute", func(t *testing.T) {
		ctx := callTest(t, 30*time.Second)
		caller, s, from := optionsCall(ctx, t, "+4930555902", "+4930124002")
		agent := carrier.ExpectFrom(agentOK, from)
		_ = s.Answer()
		ds, err := s.TimedDigits(ctx, 4)
		if err != nil {
			t.Fatal(err)
		}
		got := spacings(ds)
		t.Logf("digits %v, spacings %v", ds, got)
		for i, sp := range got {
			if sp < 270*time.Millisecond-tol {
				t.Errorf("spacing %d: %v, want at least 270 ms (- %v)", i+1, sp, tol)
			}
		}
		wantTones(t, ds, 150*time.Millisecond)
		_ = s.Hangup()
		wantAttrs(t, finishAtAgent(ctx, t, caller, agent), map[string]string{"DigitsSent": "1234"})
	})
}

// unlessEndedBy has the far end act at d (answer, press a key), then
// hang up, unless ariflow has ended the call by then: a bound that only
// a wrong setting, not a slow machine, can miss. acted is closed when
// the far end acted.
func unlessEndedBy(t *testing.T, d time.Duration, s *Remote, act func() error) (acted <-chan struct{}) {
	done := make(chan struct{})
	timer := time.AfterFunc(d, func() {
		if act() == nil {
			close(done)
			_ = s.Hangup()
		}
	})
	t.Cleanup(func() { timer.Stop() })
	return done
}

func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// bridgedWatch subscribes, on the PBX, to channels entering a bridge that
// then holds two: caller and far end bridged.
func bridgedWatch() *sub {
	return observer.hub.subscribe(func(ev ari.Event) bool {
		e, ok := ev.(*ari.ChannelEnteredBridge)
		return ok && len(e.Bridge.ChannelIDs) == 2
	})
}

func TestOptionsReturnKey(t *testing.T) {
	ctx := callTest(t, 30*time.Second)
	bridged := bridgedWatch()
	defer observer.hub.unsubscribe(bridged)
	caller, s, from := optionsCall(ctx, t, "+4930555903", "+4930124003")
	agent := carrier.ExpectFrom(agentOK, from)
	_ = s.Answer()
	if _, err := bridged.next(ctx); err != nil {
		t.Fatal("caller and far end never bridged:", err)
	}
	// A key that is not the return key reaches the far end; the return
	// key "**" does not, and ends the far end.
	if err := caller.SendDTMF("5"); err != nil {
		t.Fatal(err)
	}
	if d, err := s.Digits(ctx, 1); err != nil || d != "5" {
		t.Fatalf("far end got %q (%v), want the caller's 5", d, err)
	}
	pressed := time.Now()
	if err := caller.SendDTMF("**"); err != nil {
		t.Fatal(err)
	}
	digits, end, err := s.DigitsUntilHangup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("far end hung up %v after the caller began pressing **; it received %q meanwhile", end.Sub(pressed).Round(time.Millisecond), digits)
	if digits != "" {
		t.Errorf("far end received %q of the return key; want nothing", digits)
	}
	tr := finishAtAgent(ctx, t, caller, agent)
	wantAttrs(t, tr, map[string]string{"Status": "success", "EndedBy": "caller-key", "Number": "+4930124003"})
	if tr["AnswerTime"] == "" {
		t.Error("no AnswerTime")
	}
}

func TestOptionsMaxTalk(t *testing.T) {
	ctx := callTest(t, 30*time.Second)
	warnings := observer.hub.subscribe(func(ev ari.Event) bool {
		p, ok := ev.(*ari.PlaybackStarted)
		return ok && p.Playback.MediaURI == "sound:beep"
	})
	defer observer.hub.unsubscribe(warnings)
	caller, s, from := optionsCall(ctx, t, "+4930555904", "+4930124004")
	agent := carrier.ExpectFrom(agentOK, from)
	// max_talk 5 s, warning 2 s before the end. A far end that would
	// hang up by itself at twice the limit: the limit must end the
	// call first (EndedBy time-limit below).
	before := time.Now()
	if err := s.Answer(); err != nil {
		t.Fatal(err)
	}
	answered := time.Now()
	unlessEndedBy(t, 10*time.Second, s, func() error { return nil })
	ev, err := warnings.next(ctx)
	if err != nil {
		t.Fatal("no warning:", err)
	}
	warned := EventTime(ev)
	p := ev.(*ari.PlaybackStarted).Playback
	if !strings.HasPrefix(p.TargetURI, "channel:") {
		t.Errorf("warning played on %s; want the caller's channel alone", p.TargetURI)
	}
	// ariflow counts from the answer it saw, after before; Asterisk's
	// timestamps have 1 ms.
	const tol = 10 * time.Millisecond
	if d := warned.Sub(before); d < 3*time.Second-tol {
		t.Errorf("warning %v after the answer; want 3 s (5 s limit, 2 s lead)", d)
	}
	_, end, err := s.DigitsUntilHangup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("answered→warning %v (want 3 s), answered→far end ended %v (want 5 s)", warned.Sub(answered).Round(time.Millisecond), end.Sub(answered).Round(time.Millisecond))
	if d := end.Sub(before); d < 5*time.Second-tol || !end.After(warned) {
		t.Errorf("far end ended %v after the answer, the warning %v; want 5 s, after the warning", d, warned.Sub(before))
	}
	tr := finishAtAgent(ctx, t, caller, agent)
	wantAttrs(t, tr, map[string]string{"Status": "success", "EndedBy": "time-limit"})
}

func TestOptionsHeaders(t *testing.T) {
	ctx := callTest(t, 30*time.Second)
	caller, s, from := optionsCall(ctx, t, "+4930555905", "+4930124005")
	agent := carrier.ExpectFrom(agentOK, from)
	for name, want := range map[string]string{"X-Tracking-Id": "4711-0815 AB", "X-Source": "ariflow-e2e"} {
		got, err := s.Header(name)
		if err != nil || got != want {
			t.Errorf("INVITE header %s = %q (%v), want %q", name, got, err, want)
		}
	}
	// The marker that tells a leg never dialled is added and removed at
	// create: it never reaches the far end.
	if got, err := s.Header(flows.ReservedHeader); got != "" {
		t.Errorf("INVITE header %s = %q (%v), want none", flows.ReservedHeader, got, err)
	}
	_ = s.Reject("busy")
	wantAttrs(t, finishAtAgent(ctx, t, caller, agent), map[string]string{"Status": "call-failed"})
}

func TestOptionsNumberList(t *testing.T) {
	ctx := callTest(t, 40*time.Second)
	second, third := carrier.Expect("+4930124007"), carrier.Expect("+4930124008")
	caller, first, from := optionsCall(ctx, t, "+4930555906", "+4930124006")
	agent := carrier.ExpectFrom(agentOK, from)
	none(t, second, "the second number while the first rings")
	failed := time.Now()
	_ = first.Reject("busy")
	s2 := recv(ctx, t, second, "the second number after the first was busy")
	t.Logf("second number rang %v after the first was busy", s2.Arrived.Sub(failed).Round(time.Millisecond))
	_ = s2.Ring()
	// Its own timeout is 2 s, the others' 10 s.
	answered := unlessEndedBy(t, 6*time.Second, s2, s2.Answer)
	end, err := s2.WaitHangup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if closed(answered) {
		t.Fatal("the second number still rang at 6 s, and was answered; want its own 2 s timeout")
	}
	t.Logf("second number rang %v", end.Sub(s2.Arrived).Round(time.Millisecond))
	if d := end.Sub(failed); d < 2*time.Second {
		t.Errorf("second number hung up %v after the first was busy; want its own timeout, 2 s", d)
	}
	s3 := recv(ctx, t, third, "the third number after the second did not answer")
	_ = s3.Answer()
	_ = s3.Hangup()
	tr := finishAtAgent(ctx, t, caller, agent)
	wantAttrs(t, tr, map[string]string{"Status": "success", "Number": "+4930124008", "Attempts": "3", "EndedBy": "far-end"})
}

func TestOptionsNumberListNoneAnswers(t *testing.T) {
	ctx := callTest(t, 40*time.Second)
	second, third := carrier.Expect("+4930124007"), carrier.Expect("+4930124008")
	caller, first, from := optionsCall(ctx, t, "+4930555906", "+4930124006")
	agent := carrier.ExpectFrom(agentOK, from)
	_ = first.Reject("congestion")
	_ = recv(ctx, t, second, "second").Reject("busy")
	_ = recv(ctx, t, third, "third").Reject("unallocated")
	tr := finishAtAgent(ctx, t, caller, agent)
	// The last attempt's outcome.
	wantAttrs(t, tr, map[string]string{"Status": "call-failed", "Cause": "1", "Number": "+4930124008", "Attempts": "3"})
}

func TestOptionsNumberListPolicy(t *testing.T) {
	// Every number of a list asks the dial-out policy: a premium-rate
	// number (denied by default) dials nothing, and the next is tried.
	ctx := callTest(t, 30*time.Second)
	premium := carrier.Expect("+499001234567")
	defer carrier.Forget("+499001234567", premium)
	caller, s, from := optionsCall(ctx, t, "+4930555907", "+4930124009")
	agent := carrier.ExpectFrom(agentOK, from)
	none(t, premium, "the premium-rate number")
	_ = s.Answer()
	_ = s.Hangup()
	tr := finishAtAgent(ctx, t, caller, agent)
	wantAttrs(t, tr, map[string]string{"Status": "success", "Number": "+4930124009", "Attempts": "2", "DeniedBy": ""})
}

// playbacks watches, on the PBX, the starts of playbacks of the given media.
func playbacks(uris ...string) *sub {
	return observer.hub.subscribe(func(ev ari.Event) bool {
		p, ok := ev.(*ari.PlaybackStarted)
		if !ok {
			return false
		}
		for _, u := range uris {
			if p.Playback.MediaURI == u {
				return true
			}
		}
		return false
	})
}

func TestOptionsWhisperConfirm(t *testing.T) {
	t.Run("confirmed: bridged after the key", func(t *testing.T) {
		ctx := callTest(t, 30*time.Second)
		bridged := bridgedWatch()
		defer observer.hub.unsubscribe(bridged)
		pbs := playbacks("sound:beep", "sound:auth-thankyou")
		defer observer.hub.unsubscribe(pbs)
		caller, s, from := optionsCall(ctx, t, "+4930555908", "+4930124010")
		agent := carrier.ExpectFrom(agentOK, from)
		_ = s.Answer()
		// The whisper, then the confirmation prompt, each to the far end
		// alone: on the outbound leg's channel, never the caller's or a
		// bridge.
		for _, want := range []string{"sound:beep", "sound:auth-thankyou"} {
			ev, err := pbs.next(ctx)
			if err != nil {
				t.Fatalf("no %s: %v", want, err)
			}
			p := ev.(*ari.PlaybackStarted).Playback
			if p.MediaURI != want || !strings.HasPrefix(p.TargetURI, "channel:ariflow-leg-") {
				t.Errorf("playback %s on %s; want %s on the far end's leg", p.MediaURI, p.TargetURI, want)
			}
		}
		if ev, err := bridged.next(shortCtx(ctx, 200*time.Millisecond)); err == nil {
			t.Errorf("bridged before the far end confirmed: %v", ev)
		}
		if err := s.SendDTMF("1"); err != nil {
			t.Fatal(err)
		}
		if _, err := bridged.next(ctx); err != nil {
			t.Fatal("not bridged after the key:", err)
		}
		_ = s.Hangup()
		wantAttrs(t, finishAtAgent(ctx, t, caller, agent), map[string]string{"Status": "success", "EndedBy": "far-end"})
	})
	t.Run("no key: Timeout, far end hung up", func(t *testing.T) {
		ctx := callTest(t, 30*time.Second)
		bridged := bridgedWatch()
		defer observer.hub.unsubscribe(bridged)
		pbs := playbacks("sound:auth-thankyou")
		defer observer.hub.unsubscribe(pbs)
		caller, s, from := optionsCall(ctx, t, "+4930555908", "+4930124010")
		agent := carrier.ExpectFrom(agentTimeout, from)
		_ = s.Answer() // a voicemail box: answers, never presses a key
		if _, err := pbs.next(ctx); err != nil {
			t.Fatal("no confirmation prompt:", err)
		}
		prompted := time.Now()
		// A key at 10 s: past the prompt (about 1 s) and its 3 s wait,
		// within the default 10 s.
		pressed := unlessEndedBy(t, 10*time.Second, s, func() error { return s.SendDTMF("1") })
		_, end, err := s.DigitsUntilHangup(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if closed(pressed) {
			t.Fatal("the far end was still up at 10 s and pressed the key; want it hung up after the prompt and 3 s")
		}
		t.Logf("far end hung up %v after the prompt began (prompt, then 3 s)", end.Sub(prompted).Round(time.Millisecond))
		if d := end.Sub(prompted); d < 3*time.Second {
			t.Errorf("far end hung up %v after the prompt began; want the prompt, then 3 s", d)
		}
		if ev, err := bridged.next(shortCtx(ctx, 10*time.Millisecond)); err == nil {
			t.Errorf("an unconfirmed far end was bridged: %v", ev)
		}
		a := recv(ctx, t, agent, "agent after Timeout")
		a.AnswerAndHangup()
		if err := caller.WaitHangup(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// A far end's confirming key pressed while ariflow's ARI connection is
// stalled goes, with the prompt's end, with the websocket that is given
// up. The far end is not taken for a voicemail box: once the event path is
// back, the prompt's end is looked up, the far end is asked again, presses
// again and is bridged (the chaos soak's run X ended such a call at
// Timeout).
func TestConfirmKeyLostInARIStall(t *testing.T) {
	ctx := callTest(t, 45*time.Second)
	bridged := bridgedWatch()
	defer observer.hub.unsubscribe(bridged)
	pbs := playbacks("sound:auth-thankyou")
	defer observer.hub.unsubscribe(pbs)
	reconnects := af.Metric("ariflow_ari_reconnects_total")
	caller, s, from := optionsCall(ctx, t, "+4930555908", "+4930124010")
	agent := carrier.ExpectFrom(agentOK, from)
	_ = s.Answer()
	if _, err := pbs.next(ctx); err != nil {
		t.Fatal("no confirmation prompt:", err)
	}
	af.Proxy.Freeze()
	frozen := true
	thaw := func() {
		if frozen {
			frozen = false
			af.Proxy.Thaw()
		}
	}
	defer thaw()
	if err := s.SendDTMF("1"); err != nil {
		t.Fatal(err)
	}
	// Frozen until ariflow gives the silent websocket up.
	for af.Ready() {
		if ctx.Err() != nil {
			t.Fatal("the silent websocket was never given up")
		}
		time.Sleep(20 * time.Millisecond)
	}
	thaw()
	waitMetric(ctx, t, "ariflow_ari_reconnects_total", reconnects+1)
	if _, err := pbs.next(ctx); err != nil {
		t.Fatal("the far end was not asked again:", err)
	}
	if ev, err := bridged.next(shortCtx(ctx, 10*time.Millisecond)); err == nil {
		t.Errorf("bridged before the far end confirmed again: %v", ev)
	}
	if err := s.SendDTMF("1"); err != nil {
		t.Fatal(err)
	}
	if _, err := bridged.next(ctx); err != nil {
		t.Fatal("not bridged after the far end confirmed again:", err)
	}
	_ = s.Hangup()
	wantAttrs(t, finishAtAgent(ctx, t, caller, agent), map[string]string{"Status": "success", "EndedBy": "far-end"})
}
