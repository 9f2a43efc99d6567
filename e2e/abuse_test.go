package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// abuseFlow is served by an ariflow of the abuse tests' own (Stasis app
// ariflow-sec) with the DEFAULT dial policy, dialling through the PBX's
// trunk-stock: a trunk that keeps Asterisk's stock connected-line
// settings (send_connected_line = yes, e2e/pbx-e2e-pjsip.conf). The
// dialled number picks the case; a refused transfer takes Error, which
// reports to errHook (%[1]s), the other branches to okHook (%[2]s).
const abuseFlow = `name: abuse
version: "1"
entry: ["+4930556201", "+4930556202"]
start: pick
blocks:
  pick:
    type: CheckAttribute
    attribute: $.System.DialedNumber
    conditions:
      - {op: Equals, value: "+4930556201", branch: ask}
      - {op: Equals, value: "+4930556202", branch: company}
    branches: {ask: ask, company: company, NoMatch: bye}
  ask:
    type: GetCustomerInput
    prompts: ["sound:vm-enter-num-to-call"]
    max_digits: 20
    terminator: "#"
    timeout: 10
    store_as: typed
    branches: {Success: xfer_input, Timeout: report_ok, Error: report_ok}
  xfer_input:
    type: TransferToPhoneNumber
    number: $.Attributes.typed
    timeout: 5
    branches: {Success: report_ok, CallFailed: report_ok, Timeout: report_ok, Error: report_error}
  company:
    type: TransferToPhoneNumber
    number: "` + stockFarEnd + `"
    caller_id_number: "+4930555000"
    caller_id_name: ACME Support
    dtmf: "1"
    timeout: 10
    resume: true
    branches: {Success: bye, CallFailed: bye, Timeout: bye, Error: bye}
  report_error:
    type: InvokeWebhook
    url: %[1]s
    branches: {Success: bye, Error: bye}
  report_ok:
    type: InvokeWebhook
    url: %[2]s
    branches: {Success: bye, Error: bye}
  bye:
    type: Disconnect
`

// stockFarEnd is the far end reached through trunk-stock.
const stockFarEnd = "+4930123495"

// startAbuseEnv starts the abuse tests' ariflow: the default dial policy
// (no policy file), numbers typed without + read as German (region DE),
// legs dialled through trunk-stock, the stack's Redis.
func startAbuseEnv(ctx context.Context, t *testing.T) *secEnv {
	t.Helper()
	env := &secEnv{errHook: startWebhookServer(), okHook: startWebhookServer(), nhook: startWebhookServer(), rdb: stack.RDB}
	t.Cleanup(func() { env.errHook.Close(); env.okHook.Close(); env.nhook.Close() })
	env.errHook.set(200, `{}`, 0)
	env.okHook.set(200, `{}`, 0)
	env.flows = t.TempDir()
	must(t, os.WriteFile(filepath.Join(env.flows, "abuse.yaml"),
		[]byte(fmt.Sprintf(abuseFlow, env.errHook.URL(), env.okHook.URL())), 0o644))
	var err error
	env.af, err = StartAriflowWith(ctx, &Ariflow{Stack: stack, FlowsDir: env.flows, Env: []string{
		"ARIFLOW_APP=ariflow-sec",
		"ARIFLOW_DIAL_POLICY=",
		"ARIFLOW_DEFAULT_REGION=DE",
		"ARIFLOW_DIAL_TEMPLATE=PJSIP/{number}@trunk-stock",
	}}, "ariflow-abuse.log")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.af.Close)
	return env
}

// TestAbuseDefaults runs the default policy and a stock trunk:
//   - a number the caller types on the keypad in a family the default
//     refuses (satellite, Inmarsat, a published toll-fraud destination)
//     reaches nothing at the carrier and takes Error, $.Transfer saying
//     denied and which rule;
//   - a company identity presented on a trunk that sends connected-line
//     updates holds for the whole call: after the bridge and after the
//     DTMF, the far end's channel shows the block's identity, its
//     connected line never changes and no update arrives, and the
//     caller's number and name appear nowhere on it.
func TestAbuseDefaults(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	env := startAbuseEnv(ctx, t)

	for _, n := range []struct{ name, typed, rule string }{
		{"satellite +881 6 (Iridium)", "00881612345678", "international-network"},
		{"Inmarsat +870", "00870301234567", "international-network"},
		{"high-risk +1 876 (Jamaica)", "0018765550123", "high-risk"},
	} {
		t.Run("caller types "+n.name, func(t *testing.T) {
			prompt := observer.Prompts("sound:vm-enter-num-to-call")
			defer prompt.Stop()
			refusedCall(t, env, nextCaller(), "+4930556201", n.rule, "", func(ctx context.Context, c *Caller) {
				if err := prompt.Wait(ctx); err != nil {
					t.Fatal(err)
				}
				if err := c.SendDTMF(n.typed + "#"); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
	t.Run("caller identity on a stock trunk", func(t *testing.T) { testStockTrunkIdentity(t, env) })
}

func testStockTrunkIdentity(t *testing.T, env *secEnv) {
	ctx := secCall(t, env, 30*time.Second)
	from := nextCaller()
	want := Party{"ACME Support", "+4930555000"}
	far := carrier.ExpectFrom(stockFarEnd, want.Number)
	caller, err := carrier.Dial(ctx, from, "+4930556202")
	must(t, err)
	_, callerSees, err := caller.Identity()
	must(t, err)
	r := recv(ctx, t, far, "the far end through trunk-stock")
	ringCaller, ringConn, err := r.Identity()
	must(t, err)
	if ringCaller != want {
		t.Errorf("far end at ringing: caller %v, want %v", ringCaller, want)
	}
	checkNotLeaked(t, "far end at ringing", want, from, ringCaller, ringConn)

	// Answer: ariflow bridges; with send_connected_line = yes Asterisk
	// would now send the far end the caller's identity. The digit comes
	// after the bridge (ariflow's DTMF delay).
	must(t, r.Answer())
	updates, digit := watchFarEnd(ctx, t, r)
	if digit != "1" {
		t.Fatalf("far end got digit %q, want 1", digit)
	}
	afterCaller, afterConn, err := r.Identity()
	must(t, err)
	if afterCaller != want || afterConn != ringConn {
		t.Errorf("far end after the bridge and the DTMF: caller %v, connected line %v; want %v and %v (as at ringing)", afterCaller, afterConn, want, ringConn)
	}
	checkNotLeaked(t, "far end after the bridge and the DTMF", want, from, afterCaller, afterConn)
	if updates > 0 {
		t.Errorf("far end received %d connected-line updates while bridged; want none", updates)
	}
	// Nor is the caller shown the far end.
	_, callerNow, err := caller.Identity()
	must(t, err)
	if callerNow != callerSees {
		t.Errorf("caller's connected line changed from %v to %v across the bridge", callerSees, callerNow)
	}
	t.Logf("far end: caller %v, connected line %v at ringing and %v after the bridge and the DTMF; %d updates; caller shown %v",
		afterCaller, ringConn, afterConn, updates, callerNow)
	must(t, r.Hangup())
	must(t, caller.WaitHangup(ctx))
}
