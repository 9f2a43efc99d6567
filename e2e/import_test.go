package e2e

import (
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
