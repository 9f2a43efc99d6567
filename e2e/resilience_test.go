package e2e

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// waitMetric waits until ariflow's metric reaches at least want.
func waitMetric(ctx context.Context, t *testing.T, name string, want float64) {
	t.Helper()
	for af.Metric(name) < want {
		select {
		case <-ctx.Done():
			t.Fatalf("%s stayed at %v, want >= %v", name, af.Metric(name), want)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func TestWebsocketCutIsSurvived(t *testing.T) {
	ctx := callTest(t, 30*time.Second)
	before := af.Metric("ariflow_ari_reconnects_total")
	if n := af.Proxy.CutAll(); n == 0 {
		t.Fatal("no ARI connection to cut")
	}
	waitMetric(ctx, t, "ariflow_ari_reconnects_total", before+1)
	if err := af.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	// The next call works.
	caller, err := carrier.Dial(ctx, nextCaller(), "+4930555002")
	if err != nil {
		t.Fatal(err)
	}
	if err := caller.WaitHangup(ctx); err != nil {
		t.Fatal(err)
	}
}

// While ariflow is cut off, the shipper hangs up; nobody tells ariflow.
// After the reconnect it must find out from ARI and resume the caller.
func TestFarEndHangupDuringOutageResumes(t *testing.T) {
	ctx := callTest(t, 40*time.Second)
	caller, s, from := transferToShipper(ctx, t, "+4930555010", shipper)
	agent := carrier.ExpectFrom(agentOK, from)
	_ = s.Answer()
	if d, err := s.Digits(ctx, 6); err != nil {
		t.Fatalf("digits %q: %v", d, err)
	}
	before := af.Metric("ariflow_ari_reconnects_total")
	af.Proxy.Pause()
	af.Proxy.CutAll()
	for af.Ready() {
		select {
		case <-ctx.Done():
			t.Fatal("ariflow still ready while cut off")
		case <-time.After(10 * time.Millisecond):
		}
	}
	_ = s.Hangup()
	if _, err := s.WaitHangup(ctx); err != nil {
		t.Fatal(err)
	}
	af.Proxy.Resume()
	waitMetric(ctx, t, "ariflow_ari_reconnects_total", before+1)
	a := recv(ctx, t, agent, "agent after the outage")
	a.AnswerAndHangup()
	if err := caller.WaitHangup(ctx); err != nil {
		t.Fatal(err)
	}
}

// SIGTERM leaves a bridged transfer in Redis and in Stasis; the next
// process adopts it and resumes the caller when the shipper hangs up.
// With dial_via: pbx the caller is not in the app while it talks: the
// next process adopts the call from its record, and the PBX dials the
// agent and ends the call with it.
func TestRestartAdoptsBridgedCall(t *testing.T) {
	for _, via := range staticVias {
		t.Run(via.name, func(t *testing.T) { restartAdoptsBridgedCall(t, via.did) })
	}
}

func restartAdoptsBridgedCall(t *testing.T, did string) {
	ctx := callTest(t, 60*time.Second)
	caller, s, from := transferToShipper(ctx, t, did, shipper)
	agent := carrier.ExpectFrom(agentOK, from)
	_ = s.Answer()
	if d, err := s.Digits(ctx, 6); err != nil {
		t.Fatalf("digits %q: %v", d, err)
	}
	if err := af.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	waitMetric(ctx, t, "ariflow_adopted_calls_total", 1)
	if !caller.Up() {
		t.Fatal("caller lost across the restart")
	}
	_ = s.Hangup()
	a := recv(ctx, t, agent, "agent after the restart")
	a.AnswerAndHangup()
	if err := caller.WaitHangup(ctx); err != nil {
		t.Fatal(err)
	}
}

// The stack refuses to start where it cannot work: here, its ports are
// taken (by the stack the tests run on).
func TestStackRefusesTakenPorts(t *testing.T) {
	u, err := url.Parse(stack.Env["ARIFLOW_STACK_PBX_ARI_URL"])
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cmd := exec.Command("bash", "stack.sh", "up", "--no-ariflow")
	cmd.Env = append(os.Environ(), "ARIFLOW_STACK_DIR="+dir+"/stack", "ARIFLOW_STACK_PORT_BASE="+strconv.Itoa(port-88))
	out, err := cmd.CombinedOutput()
	if err == nil {
		_ = exec.Command("bash", "stack.sh", "down").Run()
		t.Fatalf("a second stack on the same ports started:\n%s", out)
	}
	if !strings.Contains(string(out), "is taken") {
		t.Errorf("refusal does not say the port is taken:\n%s", out)
	}
	if _, err := os.Stat(dir + "/stack/stack.env"); err == nil {
		t.Error("a refused start left a stack.env behind")
	}
}
