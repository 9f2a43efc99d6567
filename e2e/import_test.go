package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A flow exported from Amazon Connect, imported with `ariflow import
// connect`, runs on the PBX: its text prompts are spoken (espeak-ng,
// rendered into a directory the PBX reads), the caller's input goes to the
// courier as DTMF, and the caller comes back when the courier hangs up.
func TestImportedConnectFlowRuns(t *testing.T) {
	ctx := callTest(t, 60*time.Second)
	out := filepath.Join(flowsDir, "courier.yaml")
	report := filepath.Join(t.TempDir(), "report.txt")
	cmd := exec.CommandContext(ctx, stack.Env["ARIFLOW_STACK_ARIFLOW_BIN"], "import", "connect",
		"-entry", "+4930555810", "-o", out, "-report", report, "../flows/connect/testdata/callback_transfer.json")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ariflow import connect: %v\n%s", err, b)
	}
	t.Cleanup(func() {
		_ = os.Remove(out)
		_, _, _ = af.Reload()
	})
	rep, _ := os.ReadFile(report)
	for _, want := range []string{"To courier", "TransferParticipantToThirdParty", "block To_courier (TransferToPhoneNumber)"} {
		if !strings.Contains(string(rep), want) {
			t.Errorf("import report lacks %q:\n%s", want, rep)
		}
	}
	if code, body, err := af.Reload(); err != nil || code != 200 {
		t.Fatalf("reload with the imported flow: %d %s %v", code, body, err)
	}

	spoken := observer.Playbacks("sound:/instance/tts/")
	defer spoken.Stop()
	from := nextCaller()
	ship := carrier.Expect(shipper)
	caller, err := carrier.Dial(ctx, from, "+4930555810")
	if err != nil {
		t.Fatal(err)
	}
	// Greeting, then the question: both spoken, each real audio.
	for _, what := range []string{"greeting", "question"} {
		p, err := spoken.Next(ctx)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if p.State != "done" || p.Took < time.Second {
			t.Errorf("%s %s: %s after %v; want done after at least 1 s of speech", what, p.URI, p.State, p.Took)
		}
	}
	if err := caller.SendDTMF("4711#"); err != nil {
		t.Fatal(err)
	}
	s := recv(ctx, t, ship, "the courier")
	if s.CallerNum != "+4930555000" || s.CallerName != "ACME Support" {
		t.Errorf("courier saw %q <%s>", s.CallerName, s.CallerNum)
	}
	_ = s.Answer()
	if d, err := s.Digits(ctx, 4); err != nil || d != "4711" {
		t.Fatalf("courier got %q (%v), want 4711", d, err)
	}
	_ = s.Hangup()
	// Back in the flow: "welcome back" is spoken; 1 ends the call.
	if p, err := spoken.Next(ctx); err != nil || p.State != "done" {
		t.Fatalf("welcome back: %+v %v", p, err)
	}
	if err := caller.SendDTMF("1"); err != nil {
		t.Fatal(err)
	}
	if err := caller.WaitHangup(ctx); err != nil {
		t.Fatal(err)
	}
}

// The acme deployment: four flows in the shapes of real Connect exports
// (flows/connect/testdata/real), imported together with their mapping
// files, joined by TransferToFlow.
var acmeSet = []string{"acme_main_ivr.json", "acme_shipping.json", "acme_agent_handoff.json", "acme_billing.json"}

const realData = "../flows/connect/testdata/real/"

// importSet runs "ariflow import connect" on the acme flows into the
// flows directory, the main IVR on entry, with the queue map given, and
// reloads; the flows go when the test ends.
func importSet(ctx context.Context, t *testing.T, entry, queueMap string) {
	t.Helper()
	args := []string{"import", "connect", "-hours", "open", "-entry", "acme_main_ivr=" + entry, "-queue-map", queueMap,
		"-lambda-map", realData + "lambda-map.yaml", "-prompt-map", realData + "prompt-map.yaml", "-lex-map", realData + "lex-map.yaml"}
	report := filepath.Join(t.TempDir(), "report.txt")
	args = append(args, "-o", flowsDir, "-report", report)
	for _, f := range acmeSet {
		args = append(args, realData+f)
	}
	if b, err := exec.CommandContext(ctx, stack.Env["ARIFLOW_STACK_ARIFLOW_BIN"], args...).CombinedOutput(); err != nil {
		rep, _ := os.ReadFile(report)
		t.Fatalf("ariflow import connect: %v\n%s\n%s", err, b, rep)
	}
	t.Cleanup(func() {
		for _, f := range acmeSet {
			_ = os.Remove(filepath.Join(flowsDir, strings.TrimSuffix(f, ".json")+".yaml"))
		}
		_, _, _ = af.Reload()
	})
	if code, body, err := af.Reload(); err != nil || code != 200 {
		t.Fatalf("reload with the imported set: %d %s %v", code, body, err)
	}
}

// callRecordFlow reads the flow the caller's record names in Redis.
func callRecordFlow(ctx context.Context, t *testing.T) (flow, block string) {
	t.Helper()
	keys, err := stack.RDB.Keys(ctx, "ariflow:*:call:*").Result()
	if err != nil || len(keys) != 1 {
		t.Fatalf("call records %v (%v), want one", keys, err)
	}
	b, err := stack.RDB.Get(ctx, keys[0]).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	var rec struct{ Flow, Block string }
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	return rec.Flow, rec.Block
}

// The seed scenario through an imported Connect set: the main IVR (prompt
// ARN mapped to a sound, hours, a Loop around the menu) hands the caller
// to the shipping flow (TransferToFlow), which asks twice for the
// tracking number (a Loop: the first ask times out), transfers the caller
// to the shipper with the number as DTMF and takes them back, then hands
// them to the agent flow (TransferToFlow again), whose resume-off
// transfer, exported with only NextAction and NoMatchingError, bridges the
// caller to the agent for good.
func TestImportedConnectSetRuns(t *testing.T) {
	ctx := callTest(t, 90*time.Second)
	importSet(ctx, t, "+4930555820", realData+"queue-map.yaml")

	welcome := observer.Prompts("sound:dir-welcome")
	defer welcome.Stop()
	spoken := observer.Playbacks("sound:/instance/tts/")
	defer spoken.Stop()
	askTracking := observer.Prompts("sound:vm-enter-num-to-call")
	defer askTracking.Stop()
	askSolved := observer.Prompts("sound:if-correct-press")
	defer askSolved.Stop()
	from := nextCaller()
	ship := carrier.Expect(shipper)
	agent := carrier.ExpectFrom(agentOK, from)

	caller, err := carrier.Dial(ctx, from, "+4930555820")
	if err != nil {
		t.Fatal(err)
	}
	if err := welcome.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	// The menu (text-to-speech), then 1: deliveries.
	if p, err := spoken.Next(ctx); err != nil || p.State != "done" {
		t.Fatalf("menu: %+v %v", p, err)
	}
	if err := caller.SendDTMF("1"); err != nil {
		t.Fatal(err)
	}
	// In the shipping flow: asked, no answer, asked again (the Loop).
	if err := askTracking.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if err := askTracking.Wait(ctx); err != nil {
		t.Fatalf("second ask (the Loop): %v", err)
	}
	if flow, block := callRecordFlow(ctx, t); flow != "acme_shipping" || !strings.HasPrefix(block, "input_") {
		t.Errorf("the call record names flow %q block %q, want the shipping flow's input", flow, block)
	}
	if err := caller.SendDTMF("4711#"); err != nil {
		t.Fatal(err)
	}
	s := recv(ctx, t, ship, "the shipper")
	if s.CallerNum != "+4930555000" || s.CallerName != "ACME Support" {
		t.Errorf("shipper saw %q <%s>", s.CallerName, s.CallerNum)
	}
	if err := s.Answer(); err != nil {
		t.Fatal(err)
	}
	if d, err := s.Digits(ctx, 4); err != nil || d != "4711" {
		t.Fatalf("shipper got %q (%v), want 4711", d, err)
	}
	if err := s.Hangup(); err != nil {
		t.Fatal(err)
	}
	// Back in the flow: not solved.
	if err := askSolved.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if err := caller.SendDTMF("2"); err != nil {
		t.Fatal(err)
	}
	// The agent flow's resume-off transfer: the agent sees the caller.
	a := recv(ctx, t, agent, "the agent")
	if err := a.Answer(); err != nil {
		t.Fatal(err)
	}
	if flow, _ := callRecordFlow(ctx, t); flow != "acme_agent_handoff" {
		t.Errorf("the call record names flow %q, want acme_agent_handoff", flow)
	}
	if err := a.Hangup(); err != nil {
		t.Fatal(err)
	}
	// Resume off: when the agent hangs up, so does the caller.
	if err := caller.WaitHangup(ctx); err != nil {
		t.Fatal(err)
	}
}

// The working queue as call state, end to end: the main IVR's menu 3 sets
// the Sales working queue and transfers to it; the queue's dialplan place
// (here the PBX's agents context) rings the desk.
func TestImportedConnectSetWorkingQueue(t *testing.T) {
	ctx := callTest(t, 60*time.Second)
	queues := filepath.Join(t.TempDir(), "queue-map.yaml")
	// Every queue of the set; only Sales is called.
	m := "Sales: agents," + agentFailed + "\nSupport: agents," + agentError + "\nBilling: agents," + agentError + "\nBilling VIP: agents," + agentError + "\n"
	if err := os.WriteFile(queues, []byte(m), 0o644); err != nil {
		t.Fatal(err)
	}
	importSet(ctx, t, "+4930555821", queues)
	spoken := observer.Playbacks("sound:/instance/tts/")
	defer spoken.Stop()
	from := nextCaller()
	desk := carrier.ExpectFrom(agentFailed, from)
	caller, err := carrier.Dial(ctx, from, "+4930555821")
	if err != nil {
		t.Fatal(err)
	}
	if p, err := spoken.Next(ctx); err != nil || p.State != "done" {
		t.Fatalf("menu: %+v %v", p, err)
	}
	if err := caller.SendDTMF("3"); err != nil {
		t.Fatal(err)
	}
	recv(ctx, t, desk, "the sales desk").AnswerAndHangup()
	if err := caller.WaitHangup(ctx); err != nil {
		t.Fatal(err)
	}
}

// A call that moved into another flow survives a SIGKILL: the standby
// finds the flow the record names (acme_shipping, not the flow the call
// entered) and goes on at its block with the Loop's count. The caller
// never answers the tracking question: asked once before the kill, once
// more after (input restarts at its block), once more by the Loop, and
// then the Loop is done and the agent flow rings the agent. Had the count
// been lost with the process, a fourth ask would come first.
func TestImportedConnectSetTakeover(t *testing.T) {
	ctx := callTest(t, 90*time.Second)
	importSet(ctx, t, "+4930555822", realData+"queue-map.yaml")
	standby, kill := standbyBeside(ctx, t, "connect-set")

	welcome := observer.Prompts("sound:dir-welcome")
	defer welcome.Stop()
	spoken := observer.Playbacks("sound:/instance/tts/")
	defer spoken.Stop()
	askTracking := observer.Prompts("sound:vm-enter-num-to-call")
	defer askTracking.Stop()
	from := nextCaller()
	agent := carrier.ExpectFrom(agentOK, from)
	caller, err := carrier.Dial(ctx, from, "+4930555822")
	if err != nil {
		t.Fatal(err)
	}
	if err := welcome.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if p, err := spoken.Next(ctx); err != nil || p.State != "done" {
		t.Fatalf("menu: %+v %v", p, err)
	}
	if err := caller.SendDTMF("1"); err != nil {
		t.Fatal(err)
	}
	if err := askTracking.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if flow, _ := callRecordFlow(ctx, t); flow != "acme_shipping" {
		t.Fatalf("before the kill the record names %q", flow)
	}
	killed := kill()
	took, err := waitReadyTime(ctx, standby, killed)
	if err != nil {
		t.Fatalf("standby not ready after the kill: %v", err)
	}
	t.Logf("takeover %v", took.Round(time.Millisecond))
	for i := 2; i <= 3; i++ {
		if err := askTracking.Wait(ctx); err != nil {
			t.Fatalf("ask %d after the takeover: %v", i, err)
		}
	}
	fourth := make(chan error, 1)
	go func() { fourth <- askTracking.Wait(ctx) }()
	select {
	case a := <-agent:
		if err := a.Answer(); err != nil {
			t.Fatal(err)
		}
		if err := a.Hangup(); err != nil {
			t.Fatal(err)
		}
	case err := <-fourth:
		t.Fatalf("a fourth ask (%v): the Loop's count was lost in the takeover", err)
	case <-ctx.Done():
		t.Fatal("no agent call after three asks")
	}
	if err := caller.WaitHangup(ctx); err != nil {
		t.Fatal(err)
	}
}
