package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The seed scenario, as shipped in flows/examples/shipping.yaml.
func TestSeedShippingFlow(t *testing.T) {
	ctx := callTest(t, 60*time.Second)
	from := nextCaller()
	askTracking := observer.Prompts("sound:vm-enter-num-to-call")
	defer askTracking.Stop()
	askSolved := observer.Prompts("sound:if-correct-press")
	defer askSolved.Stop()
	ship := carrier.Expect(shipper)
	agent := carrier.ExpectFrom(agentOK, from)

	caller, err := carrier.Dial(ctx, from, "+4930555000")
	if err != nil {
		t.Fatal(err)
	}
	if err := askTracking.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if err := caller.SendDTMF("4711#"); err != nil {
		t.Fatal(err)
	}
	s := recv(ctx, t, ship, "the shipper")
	if s.CallerNum != "+4930555000" || s.CallerName != "ACME Support" {
		t.Errorf("shipper saw %q <%s>", s.CallerName, s.CallerNum)
	}
	_ = s.Answer()
	digits, err := s.Digits(ctx, 4)
	if err != nil || digits != "4711" {
		t.Fatalf("shipper got tracking number %q (%v), want 4711", digits, err)
	}
	_ = s.Hangup() // the shipper could not help
	if err := askSolved.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if err := caller.SendDTMF("2"); err != nil { // not solved
		t.Fatal(err)
	}
	a := recv(ctx, t, agent, "the agent")
	if a.CallerNum != from {
		t.Errorf("agent saw caller %s, want %s", a.CallerNum, from)
	}
	a.AnswerAndHangup()
	if err := caller.WaitHangup(ctx); err != nil {
		t.Fatal(err)
	}
}

const reloadFlow = `name: reload
version: "VERSION"
entry: ["+4930555060"]
start: ask
blocks:
  ask:
    type: GetCustomerInput
    prompts: ["sound:hello-world"]
    values: ["1"]
    timeout: 10
    branches: {"1": one, NoMatch: error, Timeout: error}
  one:
    type: TransferToAgent
    endpoint: "AGENT"
  error:
    type: TransferToAgent
    endpoint: "+4930111003"
`

func writeReloadFlow(t *testing.T, version, agent string) {
	t.Helper()
	body := strings.NewReplacer("VERSION", version, "AGENT", agent).Replace(reloadFlow)
	if err := os.WriteFile(filepath.Join(flowsDir, "reload.yaml"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A reload during a live call: the call finishes on the version it
// started with; the next call gets the new one; a broken set is refused.
func TestReloadKeepsLiveCallOnItsVersion(t *testing.T) {
	ctx := callTest(t, 60*time.Second)
	writeReloadFlow(t, "1", agentOK)
	if code, body, err := af.Reload(); err != nil || code != 200 {
		t.Fatalf("reload to v1: %d %s %v", code, body, err)
	}
	t.Cleanup(func() {
		_ = os.Remove(filepath.Join(flowsDir, "reload.yaml"))
		_, _, _ = af.Reload()
	})

	prompt := observer.Prompts("sound:hello-world")
	defer prompt.Stop()
	from := nextCaller()
	oldAgent := carrier.ExpectFrom(agentOK, from)
	caller, err := carrier.Dial(ctx, from, "+4930555060")
	if err != nil {
		t.Fatal(err)
	}
	if err := prompt.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	writeReloadFlow(t, "2", agentFailed)
	if code, body, err := af.Reload(); err != nil || code != 200 {
		t.Fatalf("reload to v2: %d %s %v", code, body, err)
	}
	_ = caller.SendDTMF("1")
	a := recv(ctx, t, oldAgent, "v1's agent")
	a.AnswerAndHangup()
	_ = caller.WaitHangup(ctx)

	// A broken flow set is refused and v2 keeps serving.
	if err := os.WriteFile(filepath.Join(flowsDir, "broken.yaml"), []byte("name: broken\nblocks: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, body, err := af.Reload()
	_ = os.Remove(filepath.Join(flowsDir, "broken.yaml"))
	if err != nil || code != 422 || !strings.Contains(body, "broken.yaml") {
		t.Errorf("reload of a broken set: %d %q %v; want 422 naming broken.yaml", code, body, err)
	}

	from2 := nextCaller()
	newAgent := carrier.ExpectFrom(agentFailed, from2)
	caller2, err := carrier.Dial(ctx, from2, "+4930555060")
	if err != nil {
		t.Fatal(err)
	}
	if err := prompt.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	_ = caller2.SendDTMF("1")
	a2 := recv(ctx, t, newAgent, "v2's agent")
	a2.AnswerAndHangup()
	_ = caller2.WaitHangup(ctx)
}
