package transfer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/ariflow/ariflow/flows"
	"github.com/ariflow/ariflow/internal/ari"
	"github.com/ariflow/ariflow/policy"
	"github.com/ariflow/ariflow/record"
)

// fakeCall is a Call whose events are scripted and whose record writes are
// counted.
type fakeCall struct {
	rec     record.Call
	events  []ari.Event
	gone    bool // the caller has hung up: Next says so
	phases  []record.Phase
	saves   int
	saveErr error
	owned   map[string]bool
	onPhase func(record.Phase) // called once a phase is written
	onEvent func(ari.Event)    // called with each event Next hands out
}

func newFakeCall() *fakeCall {
	return &fakeCall{rec: record.Call{CallID: "c1", Block: "xfer", Flow: "f", Phase: record.PhaseFlow,
		Attributes: flows.Attributes{flows.NSSystem: {flows.SysCallerNumber: "+4917612345678"}}}, owned: map[string]bool{}}
}

var errNoMoreEvents = errors.New("fake call: no more events")

func (c *fakeCall) ID() string                    { return c.rec.CallID }
func (c *fakeCall) Later(f func(context.Context)) { f(context.Background()) }
func (c *fakeCall) Settle()                       {}
func (c *fakeCall) Record() *record.Call          { return &c.rec }
func (c *fakeCall) Log() *logrus.Entry            { return quiet }
func (c *fakeCall) Own(ids ...string) {
	for _, id := range ids {
		c.owned[id] = true
	}
}
func (c *fakeCall) Disown(ids ...string) {
	for _, id := range ids {
		delete(c.owned, id)
	}
}
func (c *fakeCall) Save(context.Context) error {
	if c.saveErr != nil {
		return c.saveErr
	}
	c.saves++
	return nil
}

func (c *fakeCall) SetPhase(ctx context.Context, p record.Phase) error {
	if err := record.CheckTransition(c.rec.Phase, p); err != nil {
		return err
	}
	c.rec.Phase = p
	c.phases = append(c.phases, p)
	if err := c.Save(ctx); err != nil {
		return err
	}
	if c.onPhase != nil {
		c.onPhase(p)
	}
	return nil
}

func (c *fakeCall) Next(ctx context.Context, deadline time.Time) (ari.Event, error) {
	switch {
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case c.gone:
		return nil, ErrCallerGone
	case len(c.events) == 0:
		return nil, errNoMoreEvents
	}
	ev := c.events[0]
	c.events = c.events[1:]
	if p, ok := ev.(*pause); ok {
		time.Sleep(p.d) // time passing before the next event
		return c.Next(ctx, deadline)
	}
	if _, ok := ev.(*deadlinePassed); ok {
		if deadline.IsZero() {
			return nil, fmt.Errorf("fake call: a deadline passed, but the state has none")
		}
		return nil, ErrDeadline
	}
	if c.onEvent != nil {
		c.onEvent(ev)
	}
	return ev, nil
}

// pause, among a fake call's events, is time passing before the next.
type pause struct {
	ari.EventData
	d time.Duration
}

func (*pause) Keys() ari.Keys { return nil }

// deadlinePassed, among a fake call's events, is the state's deadline.
type deadlinePassed struct{ ari.EventData }

func (*deadlinePassed) Keys() ari.Keys { return nil }

var quiet = func() *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return logrus.NewEntry(l)
}()

// fakeARI records every request as "verb arg…" and answers as told.
type fakeARI struct {
	mu       sync.Mutex
	reqs     []string
	states   map[string]string   // channel -> state ("" or absent: 404)
	bridges  map[string][]string // bridge -> channels
	fail     map[string]error    // verb -> error to answer
	failOnce map[string][]error  // verb -> errors for the next calls, in order
	// undialled: legs made with the marker and not yet dialled (their
	// header store still there, as in Asterisk).
	undialled map[string]bool
}

func newFakeARI() *fakeARI {
	return &fakeARI{states: map[string]string{"c1": "Up"}, bridges: map[string][]string{}, fail: map[string]error{}, failOnce: map[string][]error{}, undialled: map[string]bool{}}
}

var errNotFound = &ari.StatusError{Code: 404, Status: "404 Not Found"}

func (a *fakeARI) do(verb string, args ...any) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	parts := []string{verb}
	for _, x := range args {
		parts = append(parts, fmt.Sprint(x))
	}
	a.reqs = append(a.reqs, strings.Join(parts, " "))
	if q := a.failOnce[verb]; len(q) > 0 {
		a.failOnce[verb] = q[1:]
		return q[0]
	}
	return a.fail[verb]
}

// requests returns the requests so far, without the ringback ones
// (sent without waiting, so their order is not the machine's).
func (a *fakeARI) requests() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.DeleteFunc(slices.Clone(a.reqs), func(r string) bool {
		return strings.HasPrefix(r, "ring") || strings.HasPrefix(r, "stopring") || strings.HasPrefix(r, "moh") || strings.HasPrefix(r, "stopmoh")
	})
}

func (a *fakeARI) Create(_ context.Context, r ari.CreateRequest) error {
	err := a.do("create", r.ChannelID, r.Endpoint)
	if err == nil {
		a.mu.Lock()
		a.states[r.ChannelID] = "Down"
		if _, ok := r.Variables["PJSIP_HEADER(add,"+undialledMarker+")"]; ok {
			a.undialled[r.ChannelID] = true
		}
		a.mu.Unlock()
	}
	return err
}

// Dial dials the leg unless it fails; an error in lost (the dial got no
// answer, yet left) dials it too.
func (a *fakeARI) Dial(ctx context.Context, id string, timeout time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err // as the client: nothing is sent
	}
	err := a.do("dial", id, timeout)
	if err == nil || errors.Is(err, errDialLeft) {
		a.mu.Lock()
		delete(a.undialled, id)
		a.mu.Unlock()
	}
	return err
}

// errDialLeft: a dial that got no answer but reached Asterisk.
var errDialLeft = errors.New("POST /dial: EOF (the dial left)")

// Variable reads PJSIP_HEADERS(), as Asterisk: there while undialled, a
// 500 once the INVITE left (or with no marker).
func (a *fakeARI) Variable(_ context.Context, id, name string) (string, error) {
	if err := a.do("var", id, name); err != nil {
		return "", err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.states[id]; !ok {
		return "", errNotFound
	}
	if name == "PJSIP_HEADERS()" && a.undialled[id] {
		return "", nil
	}
	return "", &ari.StatusError{Code: 500, Status: "500 Internal Server Error"}
}
func (a *fakeARI) Hangup(_ context.Context, id, _ string) error {
	if err := a.do("hangup", id); err != nil {
		return err
	}
	a.mu.Lock()
	delete(a.states, id)
	a.mu.Unlock()
	return nil
}
func (a *fakeARI) ChannelState(_ context.Context, id string) (string, error) {
	if err := a.do("state", id); err != nil {
		return "", err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	st, ok := a.states[id]
	if !ok {
		return "", errNotFound
	}
	return st, nil
}
func (a *fakeARI) ChannelExists(ctx context.Context, id string) (bool, error) {
	_, err := a.ChannelState(ctx, id)
	if ari.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}
func (a *fakeARI) CreateBridge(_ context.Context, id, _ string) error {
	return a.made(a.do("bridge", id), id)
}
func (a *fakeARI) CreateBridgeDTMFEvents(_ context.Context, id, _ string) error {
	return a.made(a.do("bridge-dtmf", id), id)
}

// made records a bridge created without error.
func (a *fakeARI) made(err error, bridge string) error {
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.bridges[bridge]; !ok {
		a.bridges[bridge] = nil
	}
	return nil
}
func (a *fakeARI) BridgeChannels(_ context.Context, id string) ([]string, error) {
	if err := a.do("members", id); err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	m, ok := a.bridges[id]
	if !ok {
		return nil, errNotFound
	}
	return m, nil
}

// AddToBridgeWith records "add" (absorbing: "add-absorbing"); every join
// must inhibit connected-line updates, else it records "add-showing".
func (a *fakeARI) AddToBridgeWith(_ context.Context, bridge string, j ari.BridgeJoin, ids ...string) error {
	verb := "add"
	if j.AbsorbDTMF {
		verb = "add-absorbing"
	}
	if !j.InhibitConnectedLine {
		verb = "add-showing"
	}
	err := a.do(verb, bridge, strings.Join(ids, ","))
	if err == nil || errors.Is(err, errAddLanded) {
		a.mu.Lock()
		if m, ok := a.bridges[bridge]; ok {
			a.bridges[bridge] = append(m, ids...)
		}
		a.mu.Unlock()
	}
	return err
}

// errAddLanded: an addChannel that got no answer but was carried out.
var errAddLanded = errors.New("POST /addChannel: EOF (it was carried out)")

func (a *fakeARI) DestroyBridge(_ context.Context, id string) error { return a.do("destroy", id) }
func (a *fakeARI) Answer(_ context.Context, id string) error        { return a.do("answer", id) }
func (a *fakeARI) Ring(_ context.Context, id string) error          { return a.do("ring", id) }
func (a *fakeARI) StopRing(_ context.Context, id string) error      { return a.do("stopring", id) }
func (a *fakeARI) StartMOH(_ context.Context, id, _ string) error   { return a.do("moh", id) }
func (a *fakeARI) StopMOH(_ context.Context, id string) error       { return a.do("stopmoh", id) }
func (a *fakeARI) Play(_ context.Context, ch, pb, media string) error {
	return a.do("play", ch, media)
}
func (a *fakeARI) StopPlayback(_ context.Context, id string) error { return a.do("stopplay", id) }

// PlaybackExists answers yes unless "playback" is set to fail (404: no).
func (a *fakeARI) PlaybackExists(_ context.Context, id string) (bool, error) {
	err := a.do("playback", id)
	if ari.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}
func (a *fakeARI) SendDTMF(_ context.Context, id, digits string, _, _ time.Duration) error {
	return a.do("dtmf", id, digits)
}

// fakeGate admits every number but those in deny (by its rules that
// count nothing) and those in full (by its counters), and records slots.
type fakeGate struct {
	deny     map[string]string // number -> rule
	full     map[string]string // number -> rule
	mu       sync.Mutex
	acquired []string
	released []string
	// unavailable: the counters' next answers are these errors (Redis
	// not answering), in order.
	unavailable []error
	counts      int
}

func (g *fakeGate) Check(l policy.Leg) error {
	if rule, ok := g.deny[l.Number]; ok {
		return fmt.Errorf("refused: %w", deniedError(rule))
	}
	return nil
}

func (g *fakeGate) Count(_ context.Context, l policy.Leg) (func(), error) {
	if rule, ok := g.full[l.Number]; ok {
		return nil, fmt.Errorf("refused: %w", deniedError(rule))
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.counts++
	if len(g.unavailable) > 0 {
		err := g.unavailable[0]
		g.unavailable = g.unavailable[1:]
		return nil, err
	}
	g.acquired = append(g.acquired, l.Slot)
	return func() {}, nil
}

func (g *fakeGate) Release(_ context.Context, slots ...string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.released = append(g.released, slots...)
	return nil
}

// testEnv is an Env on a fake ARI, naming resources "kind-N".
func testEnv(a *fakeARI) *Env {
	n := 0
	return &Env{ARI: a, App: "ariflow", InAppWait: time.Second,
		NewID: func(kind string) string { n++; return fmt.Sprintf("%s-%d", kind, n) }}
}

func deniedError(rule string) error { return &policy.Denied{Rule: rule, Reason: "test"} }
