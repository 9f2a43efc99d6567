package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Two apps on one PBX share one Redis: each process holds its own lease,
// keeps its calls under its own keys, and a reconcile of one (after its
// websocket is cut) leaves the other's legs and bridges alone. Keys carry
// the app and the PBX (ariflow:{app@pbx}:…), legs and bridges the app.
func TestTwoAppsShareOneRedis(t *testing.T) {
	ctx := callTest(t, 60*time.Second)
	dir := t.TempDir()
	flow := `name: second-app
version: "1"
entry: ["+4930556900"]
start: xfer
blocks:
  xfer:
    type: TransferToPhoneNumber
    number: "+4930123456"
    timeout: 20
    resume: true
    caller_id_number: "+4930555000"
    branches: {Success: agent, CallFailed: failed, Timeout: failed, Error: failed}
  agent:
    type: TransferToAgent
    endpoint: "+4930111000"
  failed:
    type: TransferToAgent
    endpoint: "+4930111001"
`
	if err := os.WriteFile(filepath.Join(dir, "second.yaml"), []byte(flow), 0o644); err != nil {
		t.Fatal(err)
	}
	second, err := StartAriflowWith(ctx, &Ariflow{Stack: stack, FlowsDir: dir, Env: []string{"ARIFLOW_APP=ariflow-sec"}}, "ariflow-second-app.log")
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if !af.Ready() {
		t.Fatal("the first app's process lost readiness when the second app's started")
	}

	// One bridged call in each app.
	c1, s1, from1 := transferToShipper(ctx, t, "+4930555010", shipper)
	agent1 := carrier.ExpectFrom(agentOK, from1)
	_ = s1.Answer()
	if _, err := s1.Digits(ctx, 6); err != nil {
		t.Fatal(err)
	}
	c2, s2, from2 := transferToShipper(ctx, t, "+4930556900", shipper)
	agent2 := carrier.ExpectFrom(agentOK, from2)
	_ = s2.Answer()

	keys, err := stack.RDB.Keys(ctx, "ariflow:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]int{}
	leases := map[string]bool{}
	for _, k := range keys {
		ns, rest, _ := strings.Cut(strings.TrimPrefix(k, "ariflow:{"), "}:")
		switch {
		case strings.HasPrefix(rest, "call:"):
			calls[ns]++
		case rest == "lease":
			leases[ns] = true
		}
	}
	var nsFirst, nsSecond string
	for ns := range leases {
		switch {
		case strings.HasPrefix(ns, "ariflow@"):
			nsFirst = ns
		case strings.HasPrefix(ns, "ariflow-sec@"):
			nsSecond = ns
		}
	}
	if nsFirst == "" || nsSecond == "" || calls[nsFirst] != 1 || calls[nsSecond] != 1 {
		t.Fatalf("want one lease and one call per app namespace; keys %v", keys)
	}

	// The first app reconciles (its websocket cut): the second's call is
	// not its business.
	reconciles := af.Metric("ariflow_reconciles_total")
	orphans := af.Metric("ariflow_orphan_legs_total")
	af.Proxy.CutAll()
	waitMetric(ctx, t, "ariflow_reconciles_total", reconciles+1)
	if v := af.Metric("ariflow_orphan_legs_total"); v != orphans {
		t.Errorf("the first app hung up %v legs as orphans while reconciling", v-orphans)
	}

	// Both calls still resume when their far ends hang up.
	_ = s1.Hangup()
	_ = s2.Hangup()
	for i, ch := range []<-chan *Remote{agent1, agent2} {
		a := recv(ctx, t, ch, "the agent of app "+[]string{"ariflow", "ariflow-sec"}[i])
		_ = a.Answer()
		_ = a.Hangup()
	}
	for _, c := range []*Caller{c1, c2} {
		if err := c.WaitHangup(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// A websocket that goes silent (the connection stays open, nothing flows:
// a half-open network, a frozen Asterisk) is given up by ariflow's own
// liveness (a ping a second, a read deadline of 3 s), not after the
// kernel's keep-alive minutes later, and replaced as soon as it can be.
// The time it took is logged, not asserted: with both cores busy beside
// other stacks it has run past 6 s; silentBound only keeps the test from
// waiting for ever.
func TestSilentWebsocketReplaced(t *testing.T) {
	const silentBound = 20 * time.Second
	ctx := callTest(t, 45*time.Second)
	before := af.Metric("ariflow_ari_reconnects_total")
	af.Proxy.Freeze()
	frozen := time.Now()
	for af.Ready() {
		if time.Since(frozen) > silentBound {
			af.Proxy.Thaw()
			t.Fatalf("a silent websocket was not noticed within %v", silentBound)
		}
		time.Sleep(20 * time.Millisecond)
	}
	noticed := time.Since(frozen)
	af.Proxy.Thaw()
	waitMetric(ctx, t, "ariflow_ari_reconnects_total", before+1)
	if err := af.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("silent websocket given up after %v (ping 1 s, read deadline 3 s), replaced %v after the freeze", noticed.Round(time.Millisecond), time.Since(frozen).Round(time.Millisecond))
	// The next call works.
	caller, err := carrier.Dial(ctx, nextCaller(), "+4930555002")
	if err != nil {
		t.Fatal(err)
	}
	if err := caller.WaitHangup(ctx); err != nil {
		t.Fatal(err)
	}
}
