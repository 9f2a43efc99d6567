package e2e

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/CyCoreSystems/ari/v6"
	"github.com/CyCoreSystems/ari/v6/client/native"
)

// Carrier is the outside world: it places callers into the PBX and answers
// the numbers the PBX dials through the trunk.
type Carrier struct {
	cli ari.Client
	hub *hub
	app string

	mu         sync.Mutex
	waiting    map[string][]chan *Remote // number -> waiters for its next call
	servers    map[string]func(*Remote)  // number -> handler for every call
	unexpected []string                  // "number from caller" of calls nobody expected
	seen       []string                  // "number from caller" of every call that arrived
	calls      *sub
}

// NewCarrier connects to the carrier Asterisk's ARI as the "carrier" app.
func NewCarrier(ctx context.Context, s *Stack) (*Carrier, error) {
	e := s.Env
	c := &Carrier{app: "carrier", waiting: map[string][]chan *Remote{}, servers: map[string]func(*Remote){}}
	c.cli = native.New(&native.Options{
		Application: c.app, URL: e["ARIFLOW_STACK_CARRIER_ARI_URL"],
		Username: e["ARIFLOW_STACK_CARRIER_ARI_USER"], Password: e["ARIFLOW_STACK_CARRIER_ARI_PASSWORD"],
	})
	h, err := connectHub(ctx, e["ARIFLOW_STACK_CARRIER_ARI_URL"], c.app, e["ARIFLOW_STACK_CARRIER_ARI_USER"], e["ARIFLOW_STACK_CARRIER_ARI_PASSWORD"], false)
	if err != nil {
		return nil, err
	}
	c.hub = h
	return c, nil
}

// Close drops the carrier's websocket.
func (c *Carrier) Close() { c.hub.close() }

// Caller is a call the carrier placed into the PBX.
type Caller struct {
	c      *Carrier
	ID     string
	Number string
	events *sub
}

// Dial places a call from number to did on the PBX and waits until the PBX
// answers it.
func (c *Carrier) Dial(ctx context.Context, from, did string) (*Caller, error) {
	return c.dialWith(ctx, from, did, nil)
}

// dialWith is Dial with channel variables set on the call (SIP headers of
// its INVITE, for one).
func (c *Carrier) dialWith(ctx context.Context, from, did string, vars map[string]string) (*Caller, error) {
	cl, err := c.dialRinging(from, did, vars, 10)
	if err != nil {
		return nil, err
	}
	if _, err := cl.Answered(ctx); err != nil {
		c.hub.unsubscribe(cl.events)
		return nil, err
	}
	return cl, nil
}

// DialRinging places a call to the PBX and returns without waiting for the
// PBX's answer (Answered waits for it). The call rings for up to a minute
// (answer_on_bridge: the PBX answers once a far end has).
func (c *Carrier) DialRinging(from, did string) (*Caller, error) {
	return c.dialRinging(from, did, nil, 60)
}

// dialRinging originates the call; the carrier gives up after timeout
// seconds without the PBX's answer.
func (c *Carrier) dialRinging(from, did string, vars map[string]string, timeout int) (*Caller, error) {
	id := fmt.Sprintf("caller-%d", time.Now().UnixNano())
	cl := &Caller{c: c, ID: id, Number: from, events: c.hub.subscribeChannel(id)}
	_, err := c.cli.Channel().Originate(nil, ari.OriginateRequest{
		Endpoint: "PJSIP/" + did + "@pbx", App: c.app, AppArgs: "caller",
		CallerID: fmt.Sprintf("%q <%s>", "Caller "+from, from), Timeout: timeout, ChannelID: id,
		Variables: vars,
	})
	if err != nil {
		c.hub.unsubscribe(cl.events)
		return nil, fmt.Errorf("originate to %s: %w", did, err)
	}
	return cl, nil
}

// Answered waits for the PBX's answer to the caller and returns when the
// carrier saw it.
func (cl *Caller) Answered(ctx context.Context) (time.Time, error) {
	// Originating into an app: StasisStart comes once the PBX answered.
	for {
		ev, err := cl.events.next(ctx)
		if err != nil {
			return time.Time{}, fmt.Errorf("caller %s: waiting for answer: %w", cl.Number, err)
		}
		switch e := ev.(type) {
		case *ari.StasisStart:
			return EventTime(ev), nil
		case *ari.ChannelDestroyed:
			return time.Time{}, fmt.Errorf("caller %s: PBX did not answer (cause %d %s)", cl.Number, e.Cause, e.CauseTxt)
		}
	}
}

// State is the caller's channel state at the carrier: "Ringing" once the
// PBX sent a 180, "Up" once it answered.
func (cl *Caller) State() (string, error) {
	d, err := cl.c.cli.Channel().Data(ari.NewKey(ari.ChannelKey, cl.ID))
	if err != nil {
		return "", err
	}
	return d.State, nil
}

// SendDTMF sends digits to the PBX (RFC 4733 over the trunk).
func (cl *Caller) SendDTMF(digits string) error {
	return cl.c.cli.Channel().SendDTMF(ari.NewKey(ari.ChannelKey, cl.ID), digits,
		&ari.DTMFOptions{Between: 150 * time.Millisecond, Duration: 120 * time.Millisecond})
}

// Hangup hangs the caller up.
func (cl *Caller) Hangup() error {
	err := cl.c.cli.Channel().Hangup(ari.NewKey(ari.ChannelKey, cl.ID), "normal")
	if err != nil && native.CodeFromError(err) == 404 {
		return nil
	}
	return err
}

// WaitHangup waits until the PBX hangs the caller up.
func (cl *Caller) WaitHangup(ctx context.Context) error {
	for {
		ev, err := cl.events.next(ctx)
		if err != nil {
			return fmt.Errorf("caller %s still connected: %w", cl.Number, err)
		}
		if _, ok := ev.(*ari.ChannelDestroyed); ok {
			cl.c.hub.unsubscribe(cl.events)
			return nil
		}
	}
}

// Up reports whether the caller's channel still exists.
func (cl *Caller) Up() bool {
	d, err := cl.c.cli.Channel().Data(ari.NewKey(ari.ChannelKey, cl.ID))
	return err == nil && d != nil && d.State == "Up"
}

// Remote is a call the PBX placed to a number on the carrier.
type Remote struct {
	c          *Carrier
	ID         string
	Number     string // the number dialled
	CallerNum  string // what the far end sees as the calling number
	CallerName string
	Arrived    time.Time // when the test saw the call
	Stamp      time.Time // when Asterisk says it arrived
	events     *sub
}

// Expect returns a channel that receives the next call to number. Expect
// before the call can happen, so that it is not missed.
func (c *Carrier) Expect(number string) <-chan *Remote {
	ch := make(chan *Remote, 1)
	c.mu.Lock()
	c.waiting[number] = append(c.waiting[number], ch)
	c.mu.Unlock()
	return ch
}

// ExpectFrom is Expect for a call to number from callerNum only, for tests
// that run many calls to one number at once.
func (c *Carrier) ExpectFrom(number, callerNum string) <-chan *Remote {
	return c.Expect(number + "|" + callerNum)
}

// Serve hands every call to number that nobody Expects to fn, on its own
// goroutine.
func (c *Carrier) Serve(number string, fn func(*Remote)) {
	c.mu.Lock()
	c.servers[number] = fn
	c.mu.Unlock()
}

// Unexpected lists the calls that arrived with nobody expecting them.
func (c *Carrier) Unexpected() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.unexpected...)
}

// ForgetAll withdraws every Expect not met: a test that failed before its
// calls came must not leave waiters that take the next test's calls.
func (c *Carrier) ForgetAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.waiting)
}

// Forget withdraws an Expect that was not met.
func (c *Carrier) Forget(number string, ch <-chan *Remote) {
	c.mu.Lock()
	defer c.mu.Unlock()
	q := c.waiting[number]
	for i, w := range q {
		if w == ch {
			c.waiting[number] = append(q[:i:i], q[i+1:]...)
			return
		}
	}
}

// Start routes inbound calls to their waiters; calls nobody expects are
// refused with 404 so a wrong branch shows as a failure, not a hang.
func (c *Carrier) Start(ctx context.Context) {
	c.calls = c.hub.subscribe(func(ev ari.Event) bool {
		ss, ok := ev.(*ari.StasisStart)
		return ok && len(ss.Args) == 2 && ss.Args[0] == "inbound"
	})
	go func() {
		for {
			ev, err := c.calls.next(ctx)
			if err != nil {
				return
			}
			ss := ev.(*ari.StasisStart)
			number := ss.Args[1]
			r := &Remote{c: c, ID: ss.Channel.ID, Number: number, Arrived: time.Now(), Stamp: EventTime(ss),
				events: c.hub.subscribeChannel(ss.Channel.ID)}
			if ss.Channel.Caller != nil {
				r.CallerNum, r.CallerName = ss.Channel.Caller.Number, ss.Channel.Caller.Name
			}
			c.mu.Lock()
			c.seen = append(c.seen, number+" from "+r.CallerNum)
			var w chan *Remote
			for _, key := range []string{number + "|" + r.CallerNum, number} {
				if q := c.waiting[key]; len(q) > 0 {
					w, c.waiting[key] = q[0], q[1:]
					break
				}
			}
			serve := c.servers[number]
			if w == nil && serve == nil {
				c.unexpected = append(c.unexpected, number+" from "+r.CallerNum)
			}
			c.mu.Unlock()
			if w == nil && serve != nil {
				go serve(r)
				continue
			}
			if w == nil {
				_ = r.Reject("unallocated")
				continue
			}
			w <- r
		}
	}()
}

// Answer answers the call.
func (r *Remote) Answer() error { return r.c.cli.Channel().Answer(ari.NewKey(ari.ChannelKey, r.ID)) }

// Ring sends 180 Ringing.
func (r *Remote) Ring() error { return r.c.cli.Channel().Ring(ari.NewKey(ari.ChannelKey, r.ID)) }

// Reject ends the unanswered call with an ARI hangup reason: busy (486),
// congestion (503), unallocated (404), rejected (403)...
func (r *Remote) Reject(reason string) error {
	return r.c.cli.Channel().Hangup(ari.NewKey(ari.ChannelKey, r.ID), reason)
}

// Hangup hangs up the far end.
func (r *Remote) Hangup() error {
	err := r.c.cli.Channel().Hangup(ari.NewKey(ari.ChannelKey, r.ID), "normal")
	if err != nil && native.CodeFromError(err) == 404 {
		return nil
	}
	return err
}

// Digits collects DTMF until n digits arrived or the call ended.
func (r *Remote) Digits(ctx context.Context, n int) (string, error) {
	var b strings.Builder
	for b.Len() < n {
		ev, err := r.events.next(ctx)
		if err != nil {
			return b.String(), fmt.Errorf("%d of %d digits: %w", b.Len(), n, err)
		}
		switch e := ev.(type) {
		case *ari.ChannelDtmfReceived:
			b.WriteString(e.Digit)
		case *ari.ChannelDestroyed:
			return b.String(), fmt.Errorf("call ended after %d of %d digits", b.Len(), n)
		}
	}
	return b.String(), nil
}

// WaitHangup waits until the PBX ends this call (cancel or BYE) and says
// when.
func (r *Remote) WaitHangup(ctx context.Context) (time.Time, error) {
	for {
		ev, err := r.events.next(ctx)
		if err != nil {
			return time.Time{}, fmt.Errorf("call to %s not ended: %w", r.Number, err)
		}
		switch ev.(type) {
		case *ari.ChannelHangupRequest, *ari.ChannelDestroyed, *ari.StasisEnd:
			t := time.Now()
			r.c.hub.unsubscribe(r.events)
			return t, nil
		}
	}
}

// AnswerAndHangup answers and at once hangs up: an agent who took the call
// and ended it.
func (r *Remote) AnswerAndHangup() {
	_ = r.Answer()
	_ = r.Hangup()
}

// Events returns the next event of this call (for callers that measure).
func (r *Remote) Event(ctx context.Context) (ari.Event, error) { return r.events.next(ctx) }

// Event returns the next event of the caller's channel.
func (cl *Caller) Event(ctx context.Context) (ari.Event, error) { return cl.events.next(ctx) }

// EventTime is when Asterisk says an event happened (millisecond
// resolution), which is free of websocket delivery delays.
func EventTime(ev ari.Event) time.Time {
	v := reflect.ValueOf(ev)
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return time.Time{}
	}
	f := v.FieldByName("EventData")
	if !f.IsValid() {
		return time.Time{}
	}
	ed, ok := f.Interface().(ari.EventData)
	if !ok {
		return time.Time{}
	}
	return time.Time(ed.Timestamp)
}

// Digit is one DTMF digit as the far end received it: when Asterisk
// reported its end and how long the tone lasted.
type Digit struct {
	Digit    string
	At       time.Time // Asterisk's timestamp of ChannelDtmfReceived (end of the tone)
	Duration time.Duration
}

// TimedDigits collects n DTMF digits with Asterisk's timestamps, for tests
// that measure the cadence on the wire.
func (r *Remote) TimedDigits(ctx context.Context, n int) ([]Digit, error) {
	var out []Digit
	for len(out) < n {
		ev, err := r.events.next(ctx)
		if err != nil {
			return out, fmt.Errorf("%d of %d digits: %w", len(out), n, err)
		}
		switch e := ev.(type) {
		case *ari.ChannelDtmfReceived:
			out = append(out, Digit{Digit: e.Digit, At: EventTime(e), Duration: time.Duration(e.DurationMs) * time.Millisecond})
		case *ari.ChannelDestroyed:
			return out, fmt.Errorf("call ended after %d of %d digits", len(out), n)
		}
	}
	return out, nil
}

// DigitsUntilHangup collects every DTMF digit the far end receives until
// the PBX ends the call, and says when it ended.
func (r *Remote) DigitsUntilHangup(ctx context.Context) (string, time.Time, error) {
	var b strings.Builder
	for {
		ev, err := r.events.next(ctx)
		if err != nil {
			return b.String(), time.Time{}, fmt.Errorf("call to %s not ended: %w", r.Number, err)
		}
		switch e := ev.(type) {
		case *ari.ChannelDtmfReceived:
			b.WriteString(e.Digit)
		case *ari.ChannelHangupRequest, *ari.ChannelDestroyed, *ari.StasisEnd:
			t := time.Now()
			r.c.hub.unsubscribe(r.events)
			return b.String(), t, nil
		}
	}
}

// Header reads a SIP header of the INVITE that brought this call.
func (r *Remote) Header(name string) (string, error) {
	return r.c.cli.Channel().GetVariable(ari.NewKey(ari.ChannelKey, r.ID), "PJSIP_HEADER(read,"+name+")")
}

// SendDTMF sends digits from the far end to the PBX.
func (r *Remote) SendDTMF(digits string) error {
	return r.c.cli.Channel().SendDTMF(ari.NewKey(ari.ChannelKey, r.ID), digits,
		&ari.DTMFOptions{Between: 150 * time.Millisecond, Duration: 120 * time.Millisecond})
}

// Seen lists every call that reached the carrier ("number from caller"),
// expected or not, since the carrier started; SeenSince(mark) those after
// a mark taken with len(Seen()). Tests that must prove nothing was dialled
// look at all of them, not at one number.
func (c *Carrier) Seen() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.seen...)
}

// SeenSince lists the calls that arrived after mark (a len(Seen())).
func (c *Carrier) SeenSince(mark int) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if mark >= len(c.seen) {
		return nil
	}
	return append([]string(nil), c.seen[mark:]...)
}

// Party is a name and number as a carrier channel holds them.
type Party struct{ Name, Number string }

func (p Party) String() string { return fmt.Sprintf("%q <%s>", p.Name, p.Number) }

// identity reads a carrier channel's caller and connected line now
// (GET /channels/{id}).
func (c *Carrier) identity(id string) (caller, connected Party, err error) {
	d, err := c.cli.Channel().Data(ari.NewKey(ari.ChannelKey, id))
	if err != nil {
		return Party{}, Party{}, fmt.Errorf("channel %s: %w", id, err)
	}
	if d.Caller != nil {
		caller = Party{d.Caller.Name, d.Caller.Number}
	}
	if d.Connected != nil {
		connected = Party{d.Connected.Name, d.Connected.Number}
	}
	return caller, connected, nil
}

// Identity is what the far end's channel says now: who is calling it
// (caller) and who it is connected to (connected line). A connected-line
// update from the PBX (SIP UPDATE or re-INVITE with P-Asserted-Identity)
// changes these.
func (r *Remote) Identity() (caller, connected Party, err error) { return r.c.identity(r.ID) }

// Identity is what the caller's channel says now; its connected line is
// what the caller is shown of the party it talks to.
func (cl *Caller) Identity() (caller, connected Party, err error) { return cl.c.identity(cl.ID) }

// PushConnectedLine makes the far end announce a new identity of its own
// to the PBX (a connected-line update: SIP UPDATE or re-INVITE with
// P-Asserted-Identity), as a far-end PBX does after an internal transfer.
func (r *Remote) PushConnectedLine(p Party) error {
	k := ari.NewKey(ari.ChannelKey, r.ID)
	if err := r.c.cli.Channel().SetVariable(k, "CONNECTEDLINE(name,i)", p.Name); err != nil {
		return err
	}
	// Without the i option: this one sends the update.
	return r.c.cli.Channel().SetVariable(k, "CONNECTEDLINE(num)", p.Number)
}
