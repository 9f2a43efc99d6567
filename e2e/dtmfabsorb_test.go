package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/CyCoreSystems/ari/v6"
)

// TestPBXReturnKeyAbsorbExperiment tests whether a stall of the PBX's
// caller channel lets a return key's '*' through the bridge's absorption
// (docs/chaos.md, "A return key's `*` heard by the far end"): return-key
// calls (the chaos flow's key block, "**"), one at a time, the caller
// bridged with the far end; the PBX Asterisk is stopped (SIGSTOP) while
// the caller presses the keys, so that its channel thread reads them in
// one burst. Each call logs what the far end received, what the PBX
// published for the caller, whether ariflow resumed the caller, and the
// lines of ariflow's log and of the PBX's DTMF log written during it.
// Three more arms add the bridged caller to its bridge again (the test
// sends the addChannel itself, once or twice at once) before the keys.
// Opt-in (ARIFLOW_DTMF_ABSORB_EXPERIMENT=1): it stops the stack's PBX
// process and adds a DTMF log channel to it. ARIFLOW_DTMF_ABSORB_CALLS
// sets the calls per arm (default 10).
func TestPBXReturnKeyAbsorbExperiment(t *testing.T) {
	calls := experiment(t, "ARIFLOW_DTMF_ABSORB", "stops the stack's PBX Asterisk")
	dir := stack.Env["ARIFLOW_STACK_DIR"]
	pid, err := stackAsteriskPID(dir, "pbx")
	if err != nil {
		t.Fatal(err)
	}
	dtmfLog := filepath.Join(dir, "pbx", "log", "absorb-dtmf.log")
	if out, err := stackCLI("pbx", "logger add channel absorb-dtmf.log dtmf"); err != nil {
		t.Fatalf("adding the PBX's DTMF log: %v: %s", err, out)
	}
	t.Cleanup(func() { _, _ = stackCLI("pbx", "logger remove channel absorb-dtmf.log") })

	const stall = 1200 * time.Millisecond
	arms := []absorbArm{
		{name: "** with the PBX stopped", presses: []keyPress{{0, "**"}}, stall: stall},
		{name: "** without a stop", presses: []keyPress{{0, "**"}}},
		{name: "*, 1 s, * with the PBX stopped", presses: []keyPress{{0, "*"}, {time.Second, "*"}}, stall: stall},
		{name: "*, then * 1 s after the PBX resumed", presses: []keyPress{{0, "*"}, {stall + time.Second, "*"}}, stall: stall},
		// Not a stall: the caller added to its bridge a second time, as a
		// retried or repeated addChannel would, without and with
		// absorbDTMF.
		{name: "** after a second addChannel without absorbDTMF", presses: []keyPress{{0, "**"}}, readd: ptr(false)},
		{name: "** after a second addChannel with absorbDTMF", presses: []keyPress{{0, "**"}}, readd: ptr(true)},
		{name: "** after two concurrent addChannel with absorbDTMF", presses: []keyPress{{0, "**"}}, readd: ptr(true), readdTwice: true},
	}
	for _, arm := range arms {
		t.Run(arm.name, func(t *testing.T) {
			var heard, resumed, pbxTwo int
			for i := range calls {
				res := absorbCall(t, pid, arm, dtmfLog)
				if strings.Contains(digitString(res.far), "*") {
					heard++
				}
				if res.resumed {
					resumed++
				}
				if strings.Count(digitString(res.pbx), "*") >= 2 {
					pbxTwo++
				}
				t.Logf("call %d (%s): far end after the press: %s; PBX published for the caller: %s; resumed: %v",
					i+1, res.from, relDigits(res.far, res.pressed), relDigits(res.pbx, res.pressed), res.resumedText())
				if res.readd != "" {
					t.Logf("  second addChannel: %s", res.readd)
				}
				for _, l := range res.dtmfLog {
					t.Logf("  pbx dtmf: %s", l)
				}
				for _, l := range res.afLog {
					t.Logf("  ariflow: %s", l)
				}
			}
			t.Logf("%s: %d calls; far end heard a '*' in %d; ariflow resumed the caller in %d; the PBX published both '*' in %d",
				arm.name, calls, heard, resumed, pbxTwo)
		})
	}
}

type keyPress struct {
	after time.Duration // since the first press
	keys  string
}

type absorbArm struct {
	name    string
	presses []keyPress
	stall   time.Duration // the PBX stopped from just before the first press
	readd   *bool         // the caller added to its bridge again, absorbDTMF as given
	// readdTwice: two such requests at once.
	readdTwice bool
}

func ptr[T any](v T) *T { return &v }

type absorbResult struct {
	from         string
	pressed      time.Time
	far          []Digit // the far end's digits after the flow's "12"
	pbx          []Digit // the PBX's ChannelDtmfReceived for the caller
	resumed      bool    // ariflow hung the far end up (the return key)
	resumedAfter time.Duration
	readd        string // what the second addChannel did
	afLog        []string
	dtmfLog      []string
}

func (r absorbResult) resumedText() string {
	if !r.resumed {
		return "no (the test hung the far end up)"
	}
	return fmt.Sprintf("yes, far end gone %v after the first press", r.resumedAfter.Round(time.Millisecond))
}

// absorbCall places one return-key call, lets the flow's digits reach the
// far end, then has the caller press arm's keys, the PBX stopped for
// arm.stall from just before the first.
func absorbCall(t *testing.T, pid int, arm absorbArm, dtmfLog string) absorbResult {
	t.Helper()
	ctx := callTest(t, 60*time.Second)
	from := nextCaller()
	res := absorbResult{from: from}
	afStart, dtmfStart := fileSize(af.LogPath), fileSize(dtmfLog)
	// What the PBX publishes of the caller's keys: its channel is the one
	// with the caller's number that receives DTMF (the far leg receives
	// none).
	pbxKeys := observer.hub.subscribe(func(ev ari.Event) bool {
		e, ok := ev.(*ari.ChannelDtmfReceived)
		return ok && e.Channel.Caller.Number == from
	})
	defer observer.hub.unsubscribe(pbxKeys)
	farc := carrier.ExpectFrom(chaosFarKey, from)
	agent := carrier.ExpectFrom(agentOK, from)
	caller, err := carrier.Dial(ctx, from, chaosKeyDID)
	if err != nil {
		t.Fatal(err)
	}
	r := recv(ctx, t, farc, "far end "+chaosFarKey)
	if err := r.Answer(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Digits(shortCtx(ctx, 10*time.Second), 2); err != nil {
		t.Fatalf("far end, the flow's 2 digits: %v", err)
	}
	// A person answers, then presses the key.
	time.Sleep(500 * time.Millisecond)
	if arm.readd != nil {
		res.readd = readdCaller(ctx, t, from, *arm.readd, arm.readdTwice)
	}

	if arm.stall > 0 {
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
	}
	res.pressed = time.Now()
	cont := make(chan struct{})
	if arm.stall > 0 {
		go func() {
			time.Sleep(arm.stall)
			_ = syscall.Kill(pid, syscall.SIGCONT)
			close(cont)
		}()
	} else {
		close(cont)
	}
	pressErr := make(chan error, 1)
	go func() {
		for _, p := range arm.presses {
			if d := time.Until(res.pressed.Add(p.after)); d > 0 {
				time.Sleep(d)
			}
			if err := caller.SendDTMF(p.keys); err != nil {
				pressErr <- fmt.Errorf("caller presses %q: %w", p.keys, err)
				return
			}
		}
		pressErr <- nil
	}()
	<-cont
	if err := <-pressErr; err != nil {
		t.Fatal(err)
	}

	// The far end's digits until ariflow hangs it up, or 6 s after the
	// last press.
	last := res.pressed.Add(arm.presses[len(arm.presses)-1].after)
	for {
		ev, err := r.Event(shortCtx(ctx, time.Until(last.Add(6*time.Second))))
		if err != nil {
			break
		}
		switch e := ev.(type) {
		case *ari.ChannelDtmfReceived:
			res.far = append(res.far, Digit{Digit: e.Digit, At: EventTime(e), Duration: time.Duration(e.DurationMs) * time.Millisecond})
		case *ari.StasisEnd, *ari.ChannelDestroyed:
			res.resumed, res.resumedAfter = true, EventTime(ev).Sub(res.pressed)
		}
		if res.resumed {
			break
		}
	}
	if !res.resumed {
		if err := r.Hangup(); err != nil {
			t.Fatal(err)
		}
	}
	a := recv(ctx, t, agent, "agent after Success")
	a.AnswerAndHangup()
	if err := caller.WaitHangup(ctx); err != nil {
		t.Fatal(err)
	}
	for {
		ev, err := pbxKeys.next(shortCtx(ctx, 200*time.Millisecond))
		if err != nil {
			break
		}
		e := ev.(*ari.ChannelDtmfReceived)
		res.pbx = append(res.pbx, Digit{Digit: e.Digit, At: EventTime(e), Duration: time.Duration(e.DurationMs) * time.Millisecond})
	}
	res.afLog = linesSince(af.LogPath, afStart, func(l string) bool {
		return strings.Contains(l, "phase=") || strings.Contains(l, "key")
	})
	res.dtmfLog = linesSince(dtmfLog, dtmfStart, func(string) bool { return true })
	return res
}

// readdCaller adds the caller's PBX channel (from) to the bridge it is in
// once more, and tells what the PBX reported of it.
func readdCaller(ctx context.Context, t *testing.T, from string, absorb, twice bool) string {
	t.Helper()
	id, err := pbxCaller(from)
	if err != nil {
		t.Fatal(err)
	}
	bridges, err := stack.PBX.Bridge().List(nil)
	if err != nil {
		t.Fatal(err)
	}
	var bridge *ari.Key
	for _, k := range bridges {
		d, err := stack.PBX.Bridge().Data(k)
		if err == nil && slices.Contains(d.ChannelIDs, id) {
			bridge = k
		}
	}
	if bridge == nil {
		t.Fatalf("caller channel %s in no bridge", id)
	}
	moves := observer.hub.subscribe(func(ev ari.Event) bool {
		switch e := ev.(type) {
		case *ari.ChannelEnteredBridge:
			return e.Channel.ID == id
		case *ari.ChannelLeftBridge:
			return e.Channel.ID == id
		}
		return false
	})
	defer observer.hub.unsubscribe(moves)
	add := func() error {
		return stack.PBX.Bridge().AddChannelWithOptions(bridge, id, &ari.BridgeAddChannelOptions{AbsorbDTMF: absorb})
	}
	var err2 error
	if twice {
		done := make(chan error, 1)
		go func() { done <- add() }()
		err = add()
		err2 = <-done
	} else {
		err = add()
	}
	var seen []string
	for {
		ev, werr := moves.next(shortCtx(ctx, time.Second))
		if werr != nil {
			break
		}
		seen = append(seen, fmt.Sprintf("%s at %s", ev.GetType(), EventTime(ev).Format("15:04:05.000")))
	}
	res := fmt.Sprintf("addChannel(%s, absorbDTMF=%v): %v", bridge.ID, absorb, err)
	if twice {
		res += fmt.Sprintf(" and %v", err2)
	}
	return res + "; events: " + strings.Join(seen, ", ")
}

// relDigits prints digits with their stamps relative to the first press.
func relDigits(ds []Digit, from time.Time) string {
	if len(ds) == 0 {
		return "(none)"
	}
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = fmt.Sprintf("%s@+%dms/%dms", d.Digit, d.At.Sub(from).Milliseconds(), d.Duration.Milliseconds())
	}
	return strings.Join(parts, " ")
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// linesSince returns the lines of path written after offset that keep.
func linesSince(path string, offset int64, keep func(string) bool) []string {
	f, err := os.Open(path)
	if err != nil {
		return []string{fmt.Sprintf("(%v)", err)}
	}
	defer f.Close()
	if _, err := f.Seek(offset, 0); err != nil {
		return []string{fmt.Sprintf("(%v)", err)}
	}
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		if l := sc.Text(); keep(l) {
			out = append(out, l)
		}
	}
	return out
}

// stackCLI runs an Asterisk CLI command on the stack's pbx or carrier.
func stackCLI(name, command string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "stack.sh", "cli", name, command)
	cmd.Env = append(os.Environ(), "ARIFLOW_STACK_DIR="+stack.Env["ARIFLOW_STACK_DIR"])
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// stackAsteriskPID is the Asterisk process of the stack's instance name
// (pbx or carrier): the child of the unshare process that e2e/stack.sh
// recorded.
func stackAsteriskPID(dir, name string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dir, name+".pid"))
	if err != nil {
		return 0, fmt.Errorf("%s pid: %w", name, err)
	}
	parent := strings.TrimSpace(string(b))
	kids, err := os.ReadFile(fmt.Sprintf("/proc/%s/task/%s/children", parent, parent))
	if err != nil {
		return 0, fmt.Errorf("%s process %s: %w", name, parent, err)
	}
	for _, k := range strings.Fields(string(kids)) {
		comm, err := os.ReadFile("/proc/" + k + "/comm")
		if err == nil && strings.TrimSpace(string(comm)) == "asterisk" {
			return strconv.Atoi(k)
		}
	}
	return 0, fmt.Errorf("no asterisk process under %s (children %q)", parent, strings.TrimSpace(string(kids)))
}
