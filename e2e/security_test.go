package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Recognisable secrets of the security process: none may appear in a log
// line or a Redis value.
const (
	secRedisPassword = "e2e-redis-pw-7Qx2LmZr9Kc4"
	secWebhookSecret = "e2e-webhook-secret-Vb8NtY3wPq6J"
)

// The security process's dial policy: three countries (1 and 979 so that
// premium-rate numbers there meet the number-type rule, not the country
// rule), two transfers per call, two legs per caller number an hour, one
// outbound leg up at a time.
const secPolicy = `allow:
  countries: [49, 1, 979]
transfers_per_call: 2
rate:
  per_caller: {count: 2, window: 1h}
concurrent: 1
`

// secFlow is served by the security process (Stasis app ariflow-sec, which
// the PBX enters for +4930556XXX). The dialled number picks the case; every
// refusal must take the transfer's Error branch, which reports to errHook
// (%[1]s); the other branches report to okHook (%[2]s); numHook (%[3]s)
// answers a number; redirect (%[4]s) answers 307.
const secFlow = `name: sec
version: "1"
entry: ["+4930556001", "+4930556002", "+4930556003", "+4930556010", "+4930556020",
        "+4930556031", "+4930556032", "+4930556033", "+4930556034", "+4930556040", "+4930556050", "+4930556060"]
start: pick
blocks:
  pick:
    type: CheckAttribute
    attribute: $.System.DialedNumber
    conditions:
      - {op: Equals, value: "+4930556001", branch: us_premium}
      - {op: Equals, value: "+4930556002", branch: intl_premium}
      - {op: Equals, value: "+4930556003", branch: france}
      - {op: Equals, value: "+4930556010", branch: ask}
      - {op: Equals, value: "+4930556020", branch: fetch}
      - {op: Equals, value: "+4930556031", branch: ep_local}
      - {op: Equals, value: "+4930556032", branch: ep_iax}
      - {op: Equals, value: "+4930556033", branch: ep_multi}
      - {op: Equals, value: "+4930556034", branch: ep_premium}
      - {op: Equals, value: "+4930556040", branch: cap1}
      - {op: Equals, value: "+4930556050", branch: rate}
      - {op: Equals, value: "+4930556060", branch: redirect}
    branches: {us_premium: us_premium, intl_premium: intl_premium, france: france, ask: ask, fetch: fetch,
      ep_local: ep_local, ep_iax: ep_iax, ep_multi: ep_multi, ep_premium: ep_premium, cap1: cap1, rate: rate,
      redirect: redirect, NoMatch: bye}
  us_premium:
    type: SetAttributes
    set: {dest: "+19005550123"}
    branches: {Next: xfer_attr}
  intl_premium:
    type: SetAttributes
    set: {dest: "+979123456789"}
    branches: {Next: xfer_attr}
  france:
    type: SetAttributes
    set: {dest: "+33123456789"}
    branches: {Next: xfer_attr}
  xfer_attr:
    type: TransferToPhoneNumber
    number: $.Attributes.dest
    timeout: 5
    branches: {Success: report_ok, CallFailed: report_ok, Timeout: report_ok, Error: report_error}
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
  fetch:
    type: InvokeWebhook
    url: %[3]s
    timeout: 2
    branches: {Success: xfer_hook, Error: report_ok}
  xfer_hook:
    type: TransferToPhoneNumber
    number: $.External.dest
    timeout: 5
    branches: {Success: report_ok, CallFailed: report_ok, Timeout: report_ok, Error: report_error}
  ep_local:
    type: SetAttributes
    set: {ep: "Local/100@agents"}
    branches: {Next: agent_attr}
  ep_iax:
    type: SetAttributes
    set: {ep: "IAX2/provider/+4930111000"}
    branches: {Next: agent_attr}
  ep_multi:
    type: SetAttributes
    set: {ep: "PJSIP/a&PJSIP/b"}
    branches: {Next: agent_attr}
  ep_premium:
    type: SetAttributes
    set: {ep: "+19005550123"}
    branches: {Next: agent_attr}
  agent_attr:
    type: TransferToAgent
    endpoint: $.Attributes.ep
    timeout: 5
    branches: {CallFailed: report_ok, Timeout: report_ok, Error: report_error}
  cap1:
    type: TransferToPhoneNumber
    number: "+4930123480"
    timeout: 5
    branches: {Success: cap2, CallFailed: cap2, Timeout: cap2, Error: report_error}
  cap2:
    type: TransferToPhoneNumber
    number: "+4930123480"
    timeout: 5
    branches: {Success: cap3, CallFailed: cap3, Timeout: cap3, Error: report_error}
  cap3:
    type: TransferToPhoneNumber
    number: "+4930123480"
    timeout: 5
    branches: {Success: report_ok, CallFailed: report_ok, Timeout: report_ok, Error: report_error}
  rate:
    type: TransferToPhoneNumber
    number: "+4930123481"
    timeout: 5
    branches: {Success: report_ok, CallFailed: report_ok, Timeout: report_ok, Error: report_error}
  redirect:
    type: InvokeWebhook
    url: %[4]s
    timeout: 2
    branches: {Success: report_ok, Error: report_error}
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

// secNarrowFlow narrows the process's policy (which allows country 1)
// to Germany: a US number is refused by the flow's own dial_policy.
const secNarrowFlow = `name: secnarrow
version: "1"
entry: ["+4930556080"]
start: set
dial_policy:
  allow: {countries: [49]}
blocks:
  set:
    type: SetAttributes
    set: {dest: "+12025550123"}
    branches: {Next: xfer}
  xfer:
    type: TransferToPhoneNumber
    number: $.Attributes.dest
    timeout: 5
    branches: {Success: report_ok, CallFailed: report_ok, Timeout: report_ok, Error: report_error}
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

const secReloadFlow = `name: secreload
version: "VERSION"
entry: ["+4930556070"]
start: agent
blocks:
  agent:
    type: TransferToAgent
    endpoint: "AGENT"
`

// secEnv is the security process and what it talks to.
type secEnv struct {
	af                     *Ariflow
	rdb                    *redis.Client
	flows                  string
	errHook, okHook, nhook *webhookServer
	redirectHits           atomic.Int64
}

// TestSecurityEndToEnd runs an ariflow of its own under the Stasis app
// ariflow-sec, with a narrow dial policy, a Redis that requires a password
// and a webhook signing secret, and proves on it: refused dial-outs reach
// nothing at the carrier and take Error with $.Transfer.Status denied and
// the rule; a redirecting webhook is not followed; reload needs the token;
// and the secrets are in no log line and no Redis value.
func TestSecurityEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	env := startSecEnv(ctx, t)

	t.Run("refused dial-outs", func(t *testing.T) { testRefusedDialOuts(t, env) })
	t.Run("transfers per call", func(t *testing.T) { testTransfersPerCall(t, env) })
	t.Run("rate per caller", func(t *testing.T) { testRatePerCaller(t, env) })
	t.Run("concurrent legs", func(t *testing.T) { testConcurrentLegs(t, env) })
	t.Run("webhook redirect not followed", func(t *testing.T) { testWebhookRedirect(t, env) })
	t.Run("reload needs the token", func(t *testing.T) { testReloadToken(t, env) })
	// Last: after the calls above have run through the process.
	t.Run("secrets in no log line and no Redis value", func(t *testing.T) { testSecretsNowhere(t, env) })
}

func startSecEnv(ctx context.Context, t *testing.T) *secEnv {
	t.Helper()
	env := &secEnv{errHook: startWebhookServer(), okHook: startWebhookServer(), nhook: startWebhookServer()}
	t.Cleanup(func() { env.errHook.Close(); env.okHook.Close(); env.nhook.Close() })
	env.errHook.set(200, `{}`, 0)
	env.okHook.set(200, `{}`, 0)
	// The redirect's target counts what reaches it: nothing may.
	target := httptestServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		env.redirectHits.Add(1)
		_, _ = w.Write([]byte(`{"route":"agent"}`))
	}))
	redirect := httptestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target+"/stolen", http.StatusTemporaryRedirect)
	}))

	dir := t.TempDir()
	env.flows = filepath.Join(dir, "flows")
	must(t, os.Mkdir(env.flows, 0o755))
	must(t, os.WriteFile(filepath.Join(env.flows, "sec.yaml"),
		[]byte(fmt.Sprintf(secFlow, env.errHook.URL(), env.okHook.URL(), env.nhook.URL(), redirect+"/hook")), 0o644))
	must(t, os.WriteFile(filepath.Join(env.flows, "secnarrow.yaml"),
		[]byte(fmt.Sprintf(secNarrowFlow, env.errHook.URL(), env.okHook.URL())), 0o644))
	writeSecReload(t, env, "1", agentOK)
	policyFile := filepath.Join(dir, "policy.yaml")
	must(t, os.WriteFile(policyFile, []byte(secPolicy), 0o644))
	secretFile := filepath.Join(dir, "webhook-secret")
	must(t, os.WriteFile(secretFile, []byte(secWebhookSecret+"\n"), 0o600))

	// A Redis of its own that requires a password.
	port, err := freePort()
	must(t, err)
	_, p, _ := net.SplitHostPort(port)
	rs := exec.Command("redis-server", "--bind", "127.0.0.1", "--port", p, "--save", "", "--appendonly", "no",
		"--requirepass", secRedisPassword, "--dir", dir)
	rs.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	must(t, rs.Start())
	t.Cleanup(func() { _ = rs.Process.Signal(syscall.SIGTERM); _ = rs.Wait() })
	env.rdb = redis.NewClient(&redis.Options{Addr: port, Password: secRedisPassword})
	t.Cleanup(func() { env.rdb.Close() })
	for env.rdb.Ping(ctx).Err() != nil {
		select {
		case <-ctx.Done():
			t.Fatalf("security Redis on %s did not answer: %v", port, env.rdb.Ping(ctx).Err())
		case <-time.After(20 * time.Millisecond): // a process starting: nothing to await but its port
		}
	}

	env.af, err = StartAriflowWith(ctx, &Ariflow{Stack: stack, FlowsDir: env.flows, Env: []string{
		"ARIFLOW_APP=ariflow-sec",
		"ARIFLOW_REDIS_URL=redis://:" + secRedisPassword + "@" + port + "/0",
		"ARIFLOW_DIAL_POLICY=" + policyFile,
		"ARIFLOW_DEFAULT_REGION=DE",
		"ARIFLOW_WEBHOOK_SECRET_FILE=" + secretFile,
	}}, "ariflow-sec.log")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.af.Close)
	return env
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// httptestServer serves h on a loopback port until the test ends.
func httptestServer(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

func writeSecReload(t *testing.T, env *secEnv, version, agent string) {
	t.Helper()
	body := strings.NewReplacer("VERSION", version, "AGENT", agent).Replace(secReloadFlow)
	must(t, os.WriteFile(filepath.Join(env.flows, "secreload.yaml"), []byte(body), 0o644))
}

// secCall is callTest for the security process: the PBX and both Redis
// servers hold nothing of the call when the test ends.
func secCall(t *testing.T, env *secEnv, d time.Duration) context.Context {
	t.Helper()
	ctx := callTest(t, d)
	t.Cleanup(func() {
		deadline := time.Now().Add(10 * time.Second)
		for {
			keys, err := env.rdb.Keys(context.Background(), "ariflow:*:call:*").Result()
			if err == nil && len(keys) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("security Redis still holds %v (%v)", keys, err)
				return
			}
			time.Sleep(50 * time.Millisecond) // teardown crosses processes: poll
		}
	})
	return ctx
}

// reportFrom is the attributes the flow last reported for caller from, or
// nil; reportFromSince looks only at requests after a mark (a count()).
func (w *webhookServer) reportFrom(from string) map[string]any { return w.reportFromSince(from, 0) }

func (w *webhookServer) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.reqs)
}

func (w *webhookServer) reportFromSince(from string, mark int) map[string]any {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := len(w.reqs) - 1; i >= mark; i-- {
		attrs, _ := w.reqs[i]["attributes"].(map[string]any)
		sys, _ := attrs["System"].(map[string]any)
		if sys["CallerNumber"] == from {
			return attrs
		}
	}
	return nil
}

// refusedCall places a call that must be refused: the carrier receives
// nothing at all, the transfer's Error branch runs, and $.Transfer says
// denied and why (rule), for TransferToAgent as for TransferToPhoneNumber.
// logged, if not "", is what ariflow's log line for the call must say too.
func refusedCall(t *testing.T, env *secEnv, from, did, rule, logged string, during func(ctx context.Context, c *Caller)) {
	t.Helper()
	ctx := secCall(t, env, 30*time.Second)
	mark, okMark, errMark := len(carrier.Seen()), env.okHook.count(), env.errHook.count()
	caller, err := carrier.Dial(ctx, from, did)
	if err != nil {
		t.Fatal(err)
	}
	if during != nil {
		during(ctx, caller)
	}
	// The flow ends with Disconnect after reporting: the hangup means the
	// report was sent and any leg would have been dialled by now.
	if err := caller.WaitHangup(ctx); err != nil {
		t.Fatal(err)
	}
	if got := carrier.SeenSince(mark); len(got) > 0 {
		t.Errorf("the carrier received %v; nothing may reach the trunk", got)
	}
	if env.okHook.reportFromSince(from, okMark) != nil {
		t.Error("the flow left the transfer by a branch other than Error")
	}
	attrs := env.errHook.reportFromSince(from, errMark)
	if attrs == nil {
		t.Fatal("the transfer's Error branch did not run (no report)")
	}
	if logged != "" {
		b, err := os.ReadFile(env.af.LogPath)
		must(t, err)
		found := false
		for _, line := range strings.Split(string(b), "\n") {
			found = found || strings.Contains(line, "entry="+did) && strings.Contains(line, logged)
		}
		if !found {
			t.Errorf("no log line for entry %s says %q", did, logged)
		}
	}
	tr, _ := attrs["Transfer"].(map[string]any)
	if tr["Status"] != "denied" || tr["DeniedBy"] != rule {
		t.Errorf("$.Transfer: Status %v, DeniedBy %v; want denied, %s", tr["Status"], tr["DeniedBy"], rule)
	}
}

func testRefusedDialOuts(t *testing.T, env *secEnv) {
	numbers := []struct{ name, number, typed, did, rule string }{
		{"US premium rate", "+19005550123", "0019005550123", "+4930556001", "number-type"},
		{"international premium rate", "+979123456789", "00979123456789", "+4930556002", "number-type"},
		{"country not allowed", "+33123456789", "0033123456789", "+4930556003", "country"},
	}
	for _, n := range numbers {
		t.Run(n.name+" from an attribute", func(t *testing.T) {
			refusedCall(t, env, nextCaller(), n.did, n.rule, "", nil)
		})
		t.Run(n.name+" from caller input", func(t *testing.T) {
			prompt := observer.Prompts("sound:vm-enter-num-to-call")
			defer prompt.Stop()
			refusedCall(t, env, nextCaller(), "+4930556010", n.rule, "", func(ctx context.Context, c *Caller) {
				if err := prompt.Wait(ctx); err != nil {
					t.Fatal(err)
				}
				if err := c.SendDTMF(n.typed + "#"); err != nil {
					t.Fatal(err)
				}
			})
		})
		t.Run(n.name+" from a webhook's answer", func(t *testing.T) {
			env.nhook.set(200, fmt.Sprintf(`{"dest":%q}`, n.number), 0)
			refusedCall(t, env, nextCaller(), "+4930556020", n.rule, "", nil)
		})
	}
	t.Run("a number the operator allows, refused by the flow's dial_policy", func(t *testing.T) {
		refusedCall(t, env, nextCaller(), "+4930556080", "country", "not allowed by the flow policy", nil)
	})
	endpoints := []struct{ name, did, rule, logged string }{
		{"agent endpoint Local/100@agents", "+4930556031", "endpoint-technology", `technology \"Local\" is not allowed`},
		{"agent endpoint IAX2/provider/+4930111000", "+4930556032", "endpoint-technology", `technology \"IAX2\" is not allowed`},
		{"agent endpoint PJSIP/a&PJSIP/b", "+4930556033", "invalid-endpoint", `character '&' at position 8 is not allowed`},
		{"agent number +19005550123", "+4930556034", "number-type", "rule=number-type"},
	}
	for _, e := range endpoints {
		t.Run(e.name+" from an attribute", func(t *testing.T) {
			refusedCall(t, env, nextCaller(), e.did, e.rule, e.logged, nil)
		})
	}
}

func testTransfersPerCall(t *testing.T, env *secEnv) {
	ctx := secCall(t, env, 30*time.Second)
	from := nextCaller()
	mark := len(carrier.Seen())
	first, second := carrier.ExpectFrom("+4930123480", from), carrier.ExpectFrom("+4930123480", from)
	caller, err := carrier.Dial(ctx, from, "+4930556040")
	must(t, err)
	for i, ch := range []<-chan *Remote{first, second} {
		r := recv(ctx, t, ch, fmt.Sprintf("transfer %d", i+1))
		must(t, r.Reject("busy"))
	}
	must(t, caller.WaitHangup(ctx))
	if got := carrier.SeenSince(mark); len(got) != 2 {
		t.Errorf("the carrier received %v; want the two allowed transfers only", got)
	}
	attrs := env.errHook.reportFrom(from)
	if attrs == nil {
		t.Fatal("the third transfer did not take Error")
	}
	tr, _ := attrs["Transfer"].(map[string]any)
	if tr["Status"] != "denied" || tr["DeniedBy"] != "transfers-per-call" {
		t.Errorf("$.Transfer: Status %v, DeniedBy %v; want denied, transfers-per-call", tr["Status"], tr["DeniedBy"])
	}
}

func testRatePerCaller(t *testing.T, env *secEnv) {
	from := nextCaller()
	// Two legs an hour per caller number: two calls dial, the third does not.
	for i := 1; i <= 2; i++ {
		func() {
			ctx := secCall(t, env, 20*time.Second)
			leg := carrier.ExpectFrom("+4930123481", from)
			caller, err := carrier.Dial(ctx, from, "+4930556050")
			must(t, err)
			must(t, recv(ctx, t, leg, fmt.Sprintf("call %d's transfer", i)).Reject("busy"))
			must(t, caller.WaitHangup(ctx))
		}()
	}
	refusedCall(t, env, from, "+4930556050", "rate-per-caller", "", nil)
}

// One outbound leg at a time: while one caller's leg rings, another
// caller's transfer is refused (rule concurrent); once it has ended, the
// slot is free again.
func testConcurrentLegs(t *testing.T, env *secEnv) {
	ctx := secCall(t, env, 30*time.Second)
	from := nextCaller()
	leg := carrier.ExpectFrom("+4930123481", from)
	caller, err := carrier.Dial(ctx, from, "+4930556050")
	must(t, err)
	ringing := recv(ctx, t, leg, "the first caller's transfer")
	must(t, ringing.Ring())
	refusedCall(t, env, nextCaller(), "+4930556050", "concurrent", "", nil)
	must(t, ringing.Reject("busy"))
	must(t, caller.WaitHangup(ctx))
	// The slot was given back: the next caller's leg is dialled.
	next := nextCaller()
	leg = carrier.ExpectFrom("+4930123481", next)
	caller, err = carrier.Dial(ctx, next, "+4930556050")
	must(t, err)
	must(t, recv(ctx, t, leg, "a transfer after the first leg ended").Reject("busy"))
	must(t, caller.WaitHangup(ctx))
}

func testWebhookRedirect(t *testing.T, env *secEnv) {
	ctx := secCall(t, env, 20*time.Second)
	from := nextCaller()
	caller, err := carrier.Dial(ctx, from, "+4930556060")
	must(t, err)
	must(t, caller.WaitHangup(ctx))
	if n := env.redirectHits.Load(); n != 0 {
		t.Errorf("the redirect target received %d requests; want none", n)
	}
	if env.errHook.reportFrom(from) == nil || env.okHook.reportFrom(from) != nil {
		t.Error("a webhook answering 307 did not take Error")
	}
}

func testReloadToken(t *testing.T, env *secEnv) {
	writeSecReload(t, env, "2", agentFailed)
	agentIs := func(want string) {
		t.Helper()
		ctx := secCall(t, env, 20*time.Second)
		from := nextCaller()
		ch := carrier.ExpectFrom(want, from)
		caller, err := carrier.Dial(ctx, from, "+4930556070")
		must(t, err)
		recv(ctx, t, ch, want).AnswerAndHangup()
		must(t, caller.WaitHangup(ctx))
	}
	for _, auth := range []string{"", "Bearer wrong-token-0123456789abcdef", "Basic " + AdminToken} {
		code, body, err := env.af.ReloadWith(auth)
		if err != nil || code != http.StatusUnauthorized {
			t.Errorf("reload with Authorization %q: %d %q %v; want 401", auth, code, body, err)
		}
	}
	agentIs(agentOK) // still version 1
	code, body, err := env.af.Reload()
	if err != nil || code != http.StatusOK {
		t.Fatalf("reload with the token: %d %q %v; want 200", code, body, err)
	}
	agentIs(agentFailed) // version 2
}

func testSecretsNowhere(t *testing.T, env *secEnv) {
	secrets := map[string]string{
		"ARI password":   stack.Env["ARIFLOW_STACK_PBX_ARI_PASSWORD"],
		"Redis password": secRedisPassword,
		"webhook secret": secWebhookSecret,
		"admin token":    AdminToken,
	}
	// Logs: every ariflow process's log of this run.
	logs, err := filepath.Glob(filepath.Join(stack.Env["ARIFLOW_STACK_LOGS"], "ariflow*.log"))
	must(t, err)
	secLog, err := os.ReadFile(env.af.LogPath)
	must(t, err)
	// The log is the right one, and the Redis URL was logged (redacted).
	_, port, _ := strings.Cut(env.rdb.Options().Addr, ":")
	if !strings.Contains(string(secLog), "refused by the dial-out policy") || !strings.Contains(string(secLog), port) {
		t.Errorf("%s lacks the refusals or the Redis address: not the log of the calls above?", env.af.LogPath)
	}
	lines := 0
	for _, f := range logs {
		b, err := os.ReadFile(f)
		must(t, err)
		for i, line := range strings.Split(string(b), "\n") {
			lines++
			for what, s := range secrets {
				if s != "" && strings.Contains(line, s) {
					t.Errorf("%s:%d holds the %s: %s", filepath.Base(f), i+1, what, line)
				}
			}
		}
	}
	// Redis: every key and value, in the security process's Redis and the
	// stack's, while a call is live (its record, with its attributes, is
	// there) and once it is over.
	ctx := secCall(t, env, 20*time.Second)
	from := nextCaller()
	ring := carrier.ExpectFrom(agentFailed, from) // secreload is at version 2
	caller, err := carrier.Dial(ctx, from, "+4930556070")
	must(t, err)
	agent := recv(ctx, t, ring, "the agent")
	if keys, _ := env.rdb.Keys(ctx, "ariflow:*:call:*").Result(); len(keys) == 0 {
		t.Error("no call record in the security Redis while a call is live")
	}
	values := scanRedis(t, env, secrets)
	agent.AnswerAndHangup()
	must(t, caller.WaitHangup(ctx))
	values += scanRedis(t, env, secrets)
	if values == 0 {
		t.Error("no Redis values read: the scan proves nothing")
	}
	t.Logf("%d log lines in %d files and %d Redis values hold none of the %d secrets", lines, len(logs), values, len(secrets))
}

func scanRedis(t *testing.T, env *secEnv, secrets map[string]string) int {
	t.Helper()
	values := 0
	for name, rdb := range map[string]*redis.Client{"security Redis": env.rdb, "stack Redis": stack.RDB} {
		n, err := redisHolds(rdb, func(key, v string) {
			for what, s := range secrets {
				if s != "" && strings.Contains(v, s) {
					t.Errorf("%s key %s holds the %s", name, key, what)
				}
			}
		})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		values += n
	}
	return values
}

// redisHolds calls fn with every key name and every value held under it
// (strings, hashes, lists, sets, sorted sets) and counts the values.
func redisHolds(rdb *redis.Client, fn func(key, v string)) (int, error) {
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, k := range keys {
		fn(k, k)
		typ, err := rdb.Type(ctx, k).Result()
		if err != nil {
			return n, err
		}
		var vs []string
		switch typ {
		case "string":
			v, _ := rdb.Get(ctx, k).Result()
			vs = []string{v}
		case "hash":
			m, _ := rdb.HGetAll(ctx, k).Result()
			for f, v := range m {
				vs = append(vs, f, v)
			}
		case "list":
			vs, _ = rdb.LRange(ctx, k, 0, -1).Result()
		case "set":
			vs, _ = rdb.SMembers(ctx, k).Result()
		case "zset":
			vs, _ = rdb.ZRange(ctx, k, 0, -1).Result()
		}
		for _, v := range vs {
			n++
			fn(k, v)
		}
	}
	return n, nil
}
