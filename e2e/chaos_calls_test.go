package e2e

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/CyCoreSystems/ari/v6"
	"github.com/CyCoreSystems/ari/v6/client/native"
)

// The chaos soak's calls: each kind is a course the carrier plays (the
// caller dials, far ends answer, ring, reject, press keys, hang up) and
// the end its flow (testdata/flows/chaos.yaml) must reach. Every far end
// sees the caller's own number and every branch ends at its own agent
// number, so that each call is followed by its caller number alone.

const (
	chaosDID        = "+4930557001" // the soak's transfer
	chaosBadDID     = "+4930557002" // the same with an invalid number
	chaosKeyDID     = "+4930557003" // return_key "**"
	chaosLimitDID   = "+4930557004" // max_talk 5
	chaosListDID    = "+4930557005" // two numbers
	chaosConfirmDID = "+4930557006" // whisper and confirm
	chaosPromptDID  = "+4930557007"
	chaosInputDID   = "+4930557008"
	chaosLateDID    = "+4930557009" // answer_on_bridge
	chaosPBXDID     = "+4930557010" // dial_via: pbx

	chaosFar        = "+4930125001"
	chaosFarKey     = "+4930125002"
	chaosFarLimit   = "+4930125003"
	chaosFarList1   = "+4930125004"
	chaosFarList2   = "+4930125005"
	chaosFarConfirm = "+4930125006"
	chaosFarLate    = "+4930125007"
	chaosFarPBX     = "+4930125010"

	// What the flow waits for, as chaos.yaml says.
	chaosRingTimeout  = 8 * time.Second
	chaosMaxTalk      = 5 * time.Second
	chaosPromptLen    = 6600 * time.Millisecond // dir-instr
	chaosInputTimeout = 20 * time.Second
)

// Outcomes of a call, from best to worst.
type chaosOutcome int

const (
	outKept     chaosOutcome = iota // the end its kind expects, and every far end saw what it should
	outFallback                     // the fallback desk
	outWrong                        // another end, dropped, or a far end that saw the wrong thing
	outSilent                       // no progress within the silence bound while the caller was up
)

func (o chaosOutcome) String() string {
	return [...]string{"kept", "fallback", "wrong end", "silent"}[o]
}

// chaosKind is one kind of call.
type chaosKind struct {
	name string
	did  string
	far  []string // numbers the kind's far ends are called on, in order
	play func(c *chaosCall)
	late bool // the PBX answers the caller only as its far end is bridged
}

var chaosKinds = []*chaosKind{
	// The soak's eight (cmd/ariflow-bench/soak.go).
	{"success", chaosDID, []string{chaosFar}, playSuccess, false},
	{"busy", chaosDID, []string{chaosFar}, playBusy, false},
	{"no answer", chaosDID, []string{chaosFar}, playNoAnswer, false},
	{"invalid number", chaosBadDID, []string{chaosFar}, playInvalid, false},
	{"caller hangs up while ringing", chaosDID, []string{chaosFar}, playHangupRinging, false},
	{"caller hangs up during DTMF", chaosDID, []string{chaosFar}, playHangupDTMF, false},
	{"caller hangs up while bridged", chaosDID, []string{chaosFar}, playHangupBridged, false},
	{"far end hangs up during DTMF", chaosDID, []string{chaosFar}, playFarHangupDTMF, false},
	// The transfer options.
	{"return key", chaosKeyDID, []string{chaosFarKey}, playReturnKey, false},
	{"max talk", chaosLimitDID, []string{chaosFarLimit}, playMaxTalk, false},
	{"list: first busy", chaosListDID, []string{chaosFarList1, chaosFarList2}, playList, false},
	{"confirm", chaosConfirmDID, []string{chaosFarConfirm}, playConfirm, false},
	// answer_on_bridge: the caller rings until its far end is bridged.
	{"answer on bridge", chaosLateDID, []string{chaosFarLate}, playLate, true},
	{"answer on bridge: busy", chaosLateDID, []string{chaosFarLate}, playLateBusy, true},
	// The soak's transfer carried by the PBX's Dial() (dial_via: pbx).
	{"pbx: success", chaosPBXDID, []string{chaosFarPBX}, playSuccess, false},
	{"pbx: busy", chaosPBXDID, []string{chaosFarPBX}, playBusy, false},
	{"pbx: no answer", chaosPBXDID, []string{chaosFarPBX}, playNoAnswer, false},
	{"pbx: caller hangs up while bridged", chaosPBXDID, []string{chaosFarPBX}, playHangupBridged, false},
	// A caller in a prompt and in input when a fault hits.
	{"prompt", chaosPromptDID, nil, playPrompt, false},
	{"input", chaosInputDID, nil, playInput, false},
}

// arrival is a call the PBX placed to the carrier for this caller.
type arrival struct {
	number string
	r      *Remote
	at     time.Time
}

// farEnd follows one far end's channel on the carrier: the digits it
// receives and when it ends.
type farEnd struct {
	r        *Remote
	number   string
	expect   string // the digits the flow sends it
	complete bool   // all of them should arrive (the far end stays until they have)
	mu       sync.Mutex
	digits   []Digit       // as the carrier reported them, with its stamps
	got      chan struct{} // a digit arrived (capacity 1)
	gone     chan struct{} // closed when the channel ended
	goneAt   time.Time
}

func watchFar(c *chaosCall, a arrival) *farEnd {
	f := &farEnd{r: a.r, number: a.number, got: make(chan struct{}, 1), gone: make(chan struct{})}
	go func() {
		defer a.r.c.hub.unsubscribe(a.r.events)
		for {
			ev, err := a.r.events.next(c.ctx)
			if err != nil {
				return
			}
			switch e := ev.(type) {
			case *ari.ChannelDtmfReceived:
				c.noteLag(EventTime(e))
				f.mu.Lock()
				f.digits = append(f.digits, Digit{Digit: e.Digit, At: EventTime(e), Duration: time.Duration(e.DurationMs) * time.Millisecond})
				f.mu.Unlock()
				select {
				case f.got <- struct{}{}:
				default:
				}
			case *ari.StasisEnd, *ari.ChannelDestroyed:
				f.mu.Lock()
				f.goneAt = time.Now()
				f.mu.Unlock()
				close(f.gone)
				return
			}
		}
	}()
	return f
}

func (f *farEnd) received() []Digit {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.digits)
}

// wireCount is how many digits the far end received, less the carrier's
// duplicates.
func (f *farEnd) wireCount() int {
	wire, _ := splitCarrierDups(f.received())
	return len(wire)
}

func (f *farEnd) isGone() bool {
	select {
	case <-f.gone:
		return true
	default:
		return false
	}
}

// waitDigits waits until n digits arrived, the far end ended, or within
// passed; it tells whether the n digits arrived.
func (f *farEnd) waitDigits(n int, within time.Duration) bool {
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		if f.wireCount() >= n {
			return true
		}
		select {
		case <-f.got:
		case <-f.gone:
			return f.wireCount() >= n
		case <-deadline.C:
			return false
		}
	}
}

// waitGone waits for the far end to end, within d.
func (f *farEnd) waitGone(d time.Duration) bool {
	select {
	case <-f.gone:
		return true
	case <-time.After(d):
		return false
	}
}

// chaosCall is one caller of the soak and what became of it.
type chaosCall struct {
	r    *chaosRun
	kind *chaosKind
	from string
	rng  *rand.Rand
	ctx  context.Context

	start, end time.Time
	caller     *Caller
	callerGone chan struct{}
	farWait    map[string]<-chan *Remote
	endWait    map[string]<-chan *Remote
	arrivals   chan arrival // ends (agents, fallback desk) as they arrive
	done       chan struct{}
	fars       []*farEnd
	heardKey   chan struct{} // the caller received connectKey (capacity 1)
	callerUp   chan struct{} // closed once the PBX answered the caller
	upAt       time.Time     // when it did (late kinds)
	mu         sync.Mutex
	keysHeard  int

	outcome chaosOutcome
	reached string        // the end number that got the caller ("" none)
	reasons []string      // why the call is not kept
	badAt   time.Time     // when it went wrong: a wrong end's arrival, or when progress was due
	quietTo time.Time     // a silent call: when the silence bound ran out
	harness []string      // the harness's own failures (carrier requests)
	presses int           // return key presses
	dup     int           // digits a far end received twice
	farDup  int           // digits the carrier reported twice (carrierDupWindow)
	skip    int           // digits a far end should have received and did not
	leaked  int           // return key digits a far end heard
	lag     time.Duration // the longest a carrier event of this call took to reach the harness
}

// harnessLag is the carrier event delay past which a bad end may be the
// harness's doing (a late far end misses the ring timeout, a late key
// misses the silence bound).
const harnessLag = 2 * time.Second

// noteLag records how late an event stamped at by Asterisk reached the
// call.
func (c *chaosCall) noteLag(at time.Time) {
	if at.IsZero() {
		return
	}
	c.mu.Lock()
	c.lag = max(c.lag, time.Since(at))
	c.mu.Unlock()
}

// errCallOver: the call reached an end, went silent or lost its caller
// before the step its kind was waiting for; its outcome is set.
var errCallOver = errors.New("call over")

// chaosEnds are the numbers a call can end at.
var chaosEnds = []string{agentOK, agentFailed, agentTimeout, agentError, fallbackDesk}

func newChaosCall(ctx context.Context, r *chaosRun, kind *chaosKind, from string, rng *rand.Rand) *chaosCall {
	c := &chaosCall{r: r, kind: kind, from: from, rng: rng, ctx: ctx,
		farWait: map[string]<-chan *Remote{}, endWait: map[string]<-chan *Remote{},
		arrivals: make(chan arrival, len(chaosEnds)), done: make(chan struct{}), callerGone: make(chan struct{}), heardKey: make(chan struct{}, 1), callerUp: make(chan struct{})}
	for _, n := range kind.far {
		c.farWait[n] = carrier.ExpectFrom(n, from)
	}
	for _, n := range chaosEnds {
		ch := carrier.ExpectFrom(n, from)
		c.endWait[n] = ch
		go func(n string, ch <-chan *Remote) {
			select {
			case rm := <-ch:
				c.noteLag(rm.Stamp)
				c.arrivals <- arrival{number: n, r: rm, at: time.Now()}
			case <-c.done:
			}
		}(n, ch)
	}
	return c
}

// mark records that the call is not kept, keeping the worst outcome and
// the earliest moment it went wrong.
func (c *chaosCall) mark(o chaosOutcome, at time.Time, format string, args ...any) {
	if o > c.outcome {
		c.outcome = o
	}
	if at.IsZero() {
		at = time.Now()
	}
	if c.badAt.IsZero() || at.Before(c.badAt) {
		c.badAt = at
	}
	c.reasons = append(c.reasons, fmt.Sprintf(format, args...))
}

// carrierErr notes a failed carrier request: the harness's failure, not
// ariflow's, unless the channel was already gone (404).
func (c *chaosCall) carrierErr(what string, err error) {
	if err != nil && native.CodeFromError(err) != 404 {
		c.harness = append(c.harness, fmt.Sprintf("%s: %v", what, err))
	}
}

func (c *chaosCall) silence() time.Duration { return c.r.cfg.silence }

func (c *chaosCall) hold(lo, hi time.Duration) {
	d := lo + time.Duration(c.rng.Int64N(int64(hi-lo)+1))
	select {
	case <-time.After(d):
	case <-c.ctx.Done():
	}
}

// run places the call, plays its kind and cleans up.
func (c *chaosCall) run() {
	c.start = time.Now()
	defer c.finish()
	var caller *Caller
	var err error
	if c.kind.late {
		caller, err = carrier.DialRinging(c.from, c.kind.did)
	} else {
		caller, err = carrier.Dial(c.ctx, c.from, c.kind.did)
		close(c.callerUp)
	}
	if err != nil {
		switch {
		case strings.Contains(err.Error(), "did not answer") && time.Since(c.start) >= 9*time.Second:
			c.mark(outSilent, c.start, "never answered (rang %v)", time.Since(c.start).Round(time.Second))
		case strings.Contains(err.Error(), "did not answer"):
			c.mark(outWrong, time.Now(), "refused by the PBX: %v", err)
		default:
			c.harness = append(c.harness, "dial: "+err.Error())
		}
		return
	}
	c.caller = caller
	go func() {
		defer caller.c.hub.unsubscribe(caller.events)
		for {
			ev, err := caller.events.next(c.ctx)
			if err != nil {
				return
			}
			switch e := ev.(type) {
			case *ari.StasisStart: // answered (late kinds)
				c.noteLag(EventTime(e))
				if !c.isUp() {
					c.mu.Lock()
					c.upAt = EventTime(e)
					c.mu.Unlock()
					close(c.callerUp)
				}
			case *ari.ChannelDtmfReceived:
				c.noteLag(EventTime(e))
				if e.Digit == connectKey {
					c.mu.Lock()
					c.keysHeard++
					c.mu.Unlock()
					select {
					case c.heardKey <- struct{}{}:
					default:
					}
				}
			case *ari.StasisEnd, *ari.ChannelDestroyed:
				close(c.callerGone)
				return
			}
		}
	}()
	c.kind.play(c)
}

// far waits for the call to the far end on number, within d. An end the
// caller reaches meanwhile is settled, and errCallOver returned once the
// caller is connected to one (or gone, or silent).
func (c *chaosCall) far(number string, d time.Duration) (*farEnd, error) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	// Another far end of the kind called first (a list's number skipped)
	// is a wrong course: the caller goes on without the harness.
	others := make(chan arrival, len(c.kind.far))
	stop := make(chan struct{})
	defer close(stop)
	for _, n := range c.kind.far {
		if n == number {
			continue
		}
		go func(n string, ch <-chan *Remote) {
			select {
			case rm := <-ch:
				others <- arrival{number: n, r: rm, at: time.Now()}
			case <-stop:
			}
		}(n, c.farWait[n])
	}
	for {
		select {
		case rm := <-c.farWait[number]:
			c.noteLag(rm.Stamp)
			f := watchFar(c, arrival{number: number, r: rm, at: time.Now()})
			c.fars = append(c.fars, f)
			return f, nil
		case a := <-others:
			c.mark(outWrong, a.at, "%s called while %s was awaited", a.number, number)
			c.carrierErr("far end hangup", a.r.Hangup())
			return nil, errCallOver
		case a := <-c.arrivals:
			if c.settle(a, "", "before "+number+" was called") {
				return nil, errCallOver
			}
			timer.Reset(c.silence())
		case <-c.callerGone:
			c.mark(outWrong, time.Now(), "caller hung up by the PBX before %s was called", number)
			return nil, errCallOver
		case <-timer.C:
			c.quietTo = time.Now()
			c.mark(outSilent, time.Now().Add(-c.silence()), "%s not called and no end within %v", number, d)
			return nil, errCallOver
		}
	}
}

// awaitEnd waits for the caller to reach an end, within d, and settles it
// against want. nudge, when set, is called every `every` meanwhile (a
// caller pressing a key again).
func (c *chaosCall) awaitEnd(want string, d time.Duration, every time.Duration, nudge func()) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	var tick <-chan time.Time
	if nudge != nil {
		tk := time.NewTicker(every)
		defer tk.Stop()
		tick = tk.C
	}
	for {
		select {
		case a := <-c.arrivals:
			if c.settle(a, want, "") {
				return
			}
			timer.Reset(c.silence()) // its end is still to come
		case <-c.callerGone:
			c.mark(outWrong, time.Now(), "caller hung up by the PBX without reaching an end")
			return
		case <-tick:
			nudge()
		case <-timer.C:
			c.quietTo = time.Now()
			c.mark(outSilent, time.Now().Add(-c.silence()), "no end within %v (want %s)", d, want)
			return
		}
	}
}

// settle takes a call to an end (an agent or the fallback desk): it
// answers, proves that the caller hears it (a key pressed at the end must
// reach the caller), and hangs up, as a person would. It tells whether the
// caller was connected; an end that answered and never got the caller is
// a wrong end (a person who picked up dead air), and the caller's end is
// still to come.
func (c *chaosCall) settle(a arrival, want, when string) bool {
	c.carrierErr("end answer", a.r.Answer())
	connected := c.proveConnected(a.r)
	c.carrierErr("end hangup", a.r.Hangup())
	if when != "" {
		when = " " + when
	}
	if !connected {
		select {
		case <-c.callerGone:
			c.mark(outWrong, a.at, "%s called%s for a caller who was gone", a.number, when)
		default:
			c.mark(outWrong, a.at, "%s answered%s and the caller never heard it within %v", a.number, when, c.silence())
		}
		return false
	}
	c.reached = a.number
	switch {
	case a.number == want:
	case a.number == fallbackDesk:
		c.mark(outFallback, a.at, "fallback desk%s", when)
	case want == "":
		c.mark(outWrong, a.at, "reached %s%s", a.number, when)
	default:
		c.mark(outWrong, a.at, "reached %s, want %s", a.number, want)
	}
	return true
}

// The key an end presses to prove the caller hears it.
const connectKey = "5"

// proveConnected presses connectKey on the end's channel, again every
// second, until the caller receives one, within the silence bound.
func (c *chaosCall) proveConnected(r *Remote) bool {
	base := c.heard()
	deadline := time.NewTimer(c.silence())
	defer deadline.Stop()
	for {
		if err := r.SendDTMF(connectKey); err != nil && native.CodeFromError(err) == 404 {
			return c.heard() > base // the end's channel is gone
		}
		select {
		case <-c.heardKey:
		case <-time.After(time.Second):
		case <-c.callerGone:
			return c.heard() > base
		case <-deadline.C:
			return c.heard() > base
		}
		if c.heard() > base {
			return true
		}
	}
}

func (c *chaosCall) heard() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.keysHeard
}

func (c *chaosCall) callerHangup() { c.carrierErr("caller hangup", c.caller.Hangup()) }

// farEnded checks that the PBX ended f within the silence bound after the
// caller left.
func (c *chaosCall) farEnded(f *farEnd) {
	left := time.Now()
	if !f.waitGone(c.silence()) {
		c.mark(outWrong, left, "far end %s still up %v after the caller hung up", f.number, c.silence())
	}
	c.r.noteHangupPropagation(time.Since(left))
}

func (c *chaosCall) answer(f *farEnd) { c.carrierErr("far end answer", f.r.Answer()) }
func (c *chaosCall) hangupFar(f *farEnd) {
	if !f.isGone() {
		c.carrierErr("far end hangup", f.r.Hangup())
	}
}

// finish releases the caller and every far end, and stops the waiters.
func (c *chaosCall) finish() {
	defer func() {
		c.end = time.Now()
		close(c.done)
		for n, ch := range c.farWait {
			carrier.Forget(n+"|"+c.from, ch)
		}
		for n, ch := range c.endWait {
			carrier.Forget(n+"|"+c.from, ch)
		}
		c.scoreDigits()
	}()
	// A far end called that the call never took (a list's second number
	// after the caller left, the transfer of an invalid number).
	for _, n := range c.kind.far {
		select {
		case rm := <-c.farWait[n]:
			c.mark(outWrong, time.Now(), "%s called and never expected", n)
			_ = rm.Hangup()
		default:
		}
	}
	for _, f := range c.fars {
		c.hangupFar(f)
	}
	if c.caller == nil {
		return
	}
	if c.outcome == outSilent {
		c.callerHangup()
		return
	}
	// The PBX hangs the caller up after its end; a caller still there
	// hears nothing. An end reached after it is a wrong one.
	deadline := time.NewTimer(c.silence())
	defer deadline.Stop()
	for {
		select {
		case <-c.callerGone:
			return
		case a := <-c.arrivals:
			prev := c.reached
			if c.settle(a, "", "") && prev != "" {
				c.reasons = append(c.reasons, "after its end at "+prev)
			}
			deadline.Reset(c.silence())
		case <-deadline.C:
			if c.reached != "" {
				c.mark(outSilent, time.Now().Add(-c.silence()), "caller still up %v after its end %s hung up", c.silence(), c.reached)
			}
			c.callerHangup()
			return
		}
	}
}

// scoreDigits compares what each far end received with what the flow
// sends it.
func (c *chaosCall) scoreDigits() {
	for _, f := range c.fars {
		got := f.received()
		if c.kind.name == "return key" {
			got = slices.DeleteFunc(got, func(d Digit) bool {
				if d.Digit == "*" {
					c.leaked++
				}
				return d.Digit == "*"
			})
		}
		if f.expect == "" && len(got) == 0 {
			continue
		}
		sc := scoreFarDigits(f.expect, got)
		c.dup += sc.sentTwice
		c.farDup += len(sc.carrierDups)
		if sc.sentTwice > 0 {
			c.mark(outWrong, f.goneAt, "far end %s received %q, want %q (sent twice)", f.number, digitString(f.received()), f.expect)
		}
		if f.complete && sc.skipped > 0 && c.outcome == outKept {
			c.skip += sc.skipped
			c.reasons = append(c.reasons, fmt.Sprintf("far end %s received %q of %q", f.number, sc.wire, f.expect))
		}
	}
	if c.leaked > 0 {
		c.mark(outWrong, time.Now(), "far end heard %d key(s) of the return key", c.leaked)
	}
}

// farDigits prints what each far end of the call received, with the
// carrier's stamps and durations.
func (c *chaosCall) farDigits() string {
	var parts []string
	for _, f := range c.fars {
		if ds := f.received(); len(ds) > 0 {
			parts = append(parts, fmt.Sprintf("far end %s digits %s", f.number, formatFarDigits(ds)))
		}
	}
	return strings.Join(parts, "; ")
}

// expectDigits says which digits the far end must receive; complete: all
// of them (the far end waits for them).
func expectDigits(f *farEnd, digits string, complete bool) { f.expect, f.complete = digits, complete }

func playSuccess(c *chaosCall) {
	f, err := c.far(c.kind.far[0], c.silence())
	if err != nil {
		return
	}
	expectDigits(f, "123", true)
	c.answer(f)
	f.waitDigits(3, c.silence())
	c.hold(time.Second, 4*time.Second)
	c.hangupFar(f)
	c.awaitEnd(agentOK, c.silence(), 0, nil)
}

// isUp tells whether the PBX has answered the caller.
func (c *chaosCall) isUp() bool {
	select {
	case <-c.callerUp:
		return true
	default:
		return false
	}
}

// awaitUp waits for the PBX to answer the caller, within d.
func (c *chaosCall) awaitUp(d time.Duration) bool {
	select {
	case <-c.callerUp:
		return true
	case <-c.callerGone:
		c.mark(outWrong, time.Now(), "caller hung up by the PBX before it was answered")
	case <-time.After(d):
		c.quietTo = time.Now()
		c.mark(outSilent, time.Now().Add(-d), "caller not answered within %v of its far end's answer", d)
	}
	return false
}

// playLate: the far end rings a while, then answers; only then may the
// PBX answer the caller. Digits, then the far end hangs up.
func playLate(c *chaosCall) {
	f, err := c.far(chaosFarLate, c.silence())
	if err != nil {
		return
	}
	expectDigits(f, "123", true)
	c.carrierErr("far end ring", f.r.Ring())
	c.hold(100*time.Millisecond, time.Second)
	if c.isUp() {
		c.mark(outWrong, time.Now(), "caller answered while its far end rang")
	}
	answered := time.Now()
	c.answer(f)
	if !c.awaitUp(c.silence()) {
		return
	}
	c.mu.Lock()
	early := answered.Sub(c.upAt)
	c.mu.Unlock()
	if early > 500*time.Millisecond {
		c.mark(outWrong, time.Now(), "caller answered %v before its far end", early.Round(time.Millisecond))
	}
	f.waitDigits(3, c.silence())
	c.hold(time.Second, 3*time.Second)
	c.hangupFar(f)
	c.awaitEnd(agentOK, c.silence(), 0, nil)
}

// playLateBusy: the far end is busy; the caller, never answered for it, is
// answered by the CallFailed branch's agent transfer.
func playLateBusy(c *chaosCall) {
	f, err := c.far(chaosFarLate, c.silence())
	if err != nil {
		return
	}
	if c.isUp() {
		c.mark(outWrong, time.Now(), "caller answered while its far end rang")
	}
	c.carrierErr("far end busy", f.r.Reject("busy"))
	c.awaitEnd(agentFailed, c.silence(), 0, nil)
}

func playBusy(c *chaosCall) {
	f, err := c.far(c.kind.far[0], c.silence())
	if err != nil {
		return
	}
	c.carrierErr("far end busy", f.r.Reject("busy"))
	c.awaitEnd(agentFailed, c.silence(), 0, nil)
}

func playNoAnswer(c *chaosCall) {
	f, err := c.far(c.kind.far[0], c.silence())
	if err != nil {
		return
	}
	c.carrierErr("far end ring", f.r.Ring())
	c.awaitEnd(agentTimeout, chaosRingTimeout+c.silence(), 0, nil)
	if c.outcome == outKept && !f.waitGone(5*time.Second) {
		c.mark(outWrong, time.Now(), "far end still ringing after the caller took Timeout")
	}
}

func playInvalid(c *chaosCall) {
	c.awaitEnd(agentError, c.silence(), 0, nil)
}

func playHangupRinging(c *chaosCall) {
	f, err := c.far(chaosFar, c.silence())
	if err != nil {
		return
	}
	c.carrierErr("far end ring", f.r.Ring())
	c.hold(500*time.Millisecond, 2*time.Second)
	c.callerHangup()
	c.farEnded(f)
}

func playHangupDTMF(c *chaosCall) {
	f, err := c.far(chaosFar, c.silence())
	if err != nil {
		return
	}
	expectDigits(f, "123", false)
	c.answer(f)
	f.waitDigits(1, c.silence())
	c.callerHangup()
	c.farEnded(f)
}

func playHangupBridged(c *chaosCall) {
	f, err := c.far(c.kind.far[0], c.silence())
	if err != nil {
		return
	}
	expectDigits(f, "123", true)
	c.answer(f)
	f.waitDigits(3, c.silence())
	c.hold(time.Second, 3*time.Second)
	c.callerHangup()
	c.farEnded(f)
}

func playFarHangupDTMF(c *chaosCall) {
	f, err := c.far(chaosFar, c.silence())
	if err != nil {
		return
	}
	expectDigits(f, "123", false)
	c.answer(f)
	f.waitDigits(1, c.silence())
	c.hangupFar(f)
	c.awaitEnd(agentOK, c.silence(), 0, nil)
}

// playReturnKey: bridged and done with the flow's digits, the caller
// presses ** (again, up to three times, if the far end stays: a key
// pressed while no process listens is lost, and a person presses again).
func playReturnKey(c *chaosCall) {
	f, err := c.far(chaosFarKey, c.silence())
	if err != nil {
		return
	}
	expectDigits(f, "12", true)
	c.answer(f)
	f.waitDigits(2, c.silence())
	c.hold(500*time.Millisecond, 2*time.Second)
	pressed := time.Now()
	for c.presses < 3 && !f.isGone() {
		c.presses++
		c.carrierErr("caller presses **", c.caller.SendDTMF("**"))
		if f.waitGone(5 * time.Second) {
			break
		}
	}
	if !f.isGone() {
		c.mark(outWrong, pressed, "return key pressed %d times, far end still up", c.presses)
		c.hangupFar(f)
	}
	c.awaitEnd(agentOK, c.silence(), 0, nil)
}

func playMaxTalk(c *chaosCall) {
	f, err := c.far(chaosFarLimit, c.silence())
	if err != nil {
		return
	}
	c.answer(f)
	answered := time.Now()
	if !f.waitGone(chaosMaxTalk + c.silence()) {
		c.mark(outWrong, answered.Add(chaosMaxTalk), "far end still up %v after answer (max_talk 5 s)", time.Since(answered).Round(time.Second))
		c.hangupFar(f)
	}
	c.awaitEnd(agentOK, c.silence(), 0, nil)
}

func playList(c *chaosCall) {
	f1, err := c.far(chaosFarList1, c.silence())
	if err != nil {
		return
	}
	c.carrierErr("first number busy", f1.r.Reject("busy"))
	f2, err := c.far(chaosFarList2, c.silence())
	if err != nil {
		return
	}
	expectDigits(f2, "9", true)
	c.answer(f2)
	f2.waitDigits(1, c.silence())
	c.hold(500*time.Millisecond, 2*time.Second)
	c.hangupFar(f2)
	c.awaitEnd(agentOK, c.silence(), 0, nil)
}

// playConfirm: the far end presses 1 after the prompt until the flow's
// digit 7 shows it is bridged (a process taking over screens it again).
func playConfirm(c *chaosCall) {
	f, err := c.far(chaosFarConfirm, c.silence())
	if err != nil {
		return
	}
	expectDigits(f, "7", true)
	c.answer(f)
	for i := 0; i < 5 && !f.isGone(); i++ {
		c.hold(1500*time.Millisecond, 1500*time.Millisecond)
		if f.isGone() {
			break
		}
		c.carrierErr("far end presses 1", f.r.SendDTMF("1"))
		if f.waitDigits(1, 2500*time.Millisecond) {
			break
		}
	}
	c.hold(500*time.Millisecond, 2*time.Second)
	c.hangupFar(f)
	c.awaitEnd(agentOK, c.silence(), 0, nil)
}

func playPrompt(c *chaosCall) {
	c.awaitEnd(agentOK, chaosPromptLen+c.silence(), 0, nil)
}

// playInput: the caller presses 1, and again every 6 s until the call
// moves on (an input restarted by a takeover asks again).
func playInput(c *chaosCall) {
	c.hold(1500*time.Millisecond, 1500*time.Millisecond)
	press := func() { c.carrierErr("caller presses 1", c.caller.SendDTMF("1")) }
	press()
	c.awaitEnd(agentOK, chaosInputTimeout+c.silence(), 6*time.Second, press)
}
