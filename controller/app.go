// Package controller is ariflow's Stasis application: it receives ARI
// events, runs one goroutine per call through its flow, and keeps each
// call's position in a Store so another process can pick it up.
package controller

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/ariflow/ariflow/callrecord"
	"github.com/ariflow/ariflow/flows"
	"github.com/ariflow/ariflow/internal/ari"
	"github.com/ariflow/ariflow/internal/notify"
	"github.com/ariflow/ariflow/internal/webhook"
	"github.com/ariflow/ariflow/observe"
	"github.com/ariflow/ariflow/policy"
	"github.com/ariflow/ariflow/record"
	"github.com/ariflow/ariflow/store"
	"github.com/ariflow/ariflow/transfer"
)

// Config is what the controller needs to know beyond its dependencies.
type Config struct {
	App      string // Stasis application name
	URL      string // ARI base URL, e.g. http://127.0.0.1:8088/ari
	User     string
	Password string

	// DialTemplate builds the dial string for a phone number; {number} is
	// replaced by the validated E.164 number.
	DialTemplate  string
	DefaultRegion string // region for numbers written without '+'
	// DTMFDelay is how long after the far end answers the digits are sent,
	// so that its IVR is listening; zero sends them at once (the command
	// line's default is 500 ms).
	DTMFDelay time.Duration
	// LegAhead: a transfer that resumes the caller makes the next
	// transfer's leg while it talks, so that the caller's way back costs
	// no create (transfer/ahead.go).
	LegAhead bool
	// ErrorPrompt is played before hanging up a call whose flow failed
	// without an Error branch, when no fallback context is set.
	ErrorPrompt string
	// RESTTimeout bounds each ARI request.
	RESTTimeout time.Duration

	// Fallback is where callers go that ariflow cannot serve: a call whose
	// flow failed without an Error branch, a caller found in the app with
	// no readable record, a stuck call, a call arriving while Redis is
	// down or while this process drains. Empty Context: the ErrorPrompt,
	// then hangup.
	Fallback DialplanTarget

	// LeaseTTL is the leadership lease's lifetime in Redis (default
	// 800 ms): a standby takes over within about this long after the
	// active process dies.
	LeaseTTL time.Duration
	// PlaybackCheck is how often a call waiting for a prompt to end asks
	// whether the playback still runs, so that a lost PlaybackFinished
	// costs at most this much silence (default 3 s).
	PlaybackCheck time.Duration
	// DialVia is who carries the transfers whose block does not say
	// (dial_via): "ari" or "" (ariflow), or "pbx" (the PBX's Dial(), for
	// the blocks that use none of the options beyond Connect's).
	DialVia flows.DialVia
	// PBXCheck is how often ariflow looks whether the callers whose
	// transfers the PBX's Dial() carries (dial_via: pbx) are still there,
	// with one request for all of them: a caller hanging up in the
	// dialplan sends the app no event.
	PBXCheck time.Duration
	// PBXBackAlways sends the caller back to the app after every transfer
	// the PBX carries. By default a transfer the call ends with when
	// answered (an agent's, or with resume off) is dialled without g: the
	// PBX hangs the caller up as the far end hangs up, sparing the trip
	// back into the app to be hung up; the call learns of its end at the
	// next look (PBXCheck), and cannot tell whether the caller hung up
	// first (ariflow_transfers_total counts it as ended-in-pbx).
	PBXBackAlways bool
	// MaxPlayback bounds one prompt: a playback still running after it is
	// stopped and the caller sent to the fallback (default 10 min, far
	// beyond any prompt; it catches media that never ends).
	MaxPlayback time.Duration
	// EventQueue is each call's event queue length (default 256).
	EventQueue int
	// AdoptConcurrency bounds the adoptions under way at once after a
	// takeover (default 16): each sends a few requests before it waits.
	AdoptConcurrency int
	// LapseWait bounds how long a call waits for a lapsed lease to be
	// renewed before it gives up and is left to the next active process
	// (default 30 s): the lease lapses here when Redis or this process is
	// slow, and only a renewal or another holder ends that.
	LapseWait time.Duration
	// SavePatience is how long a record write that got no answer (Redis
	// restarting, a connection cut, a timeout) is made again before the
	// call takes it as failed (default 3 s; negative: never again). Such
	// a write may have landed: taken as failed at once, the call would go
	// on (the Error branch) while the record says otherwise, and a
	// process taking over would follow the record.
	SavePatience time.Duration
	// ProbeTimeout bounds the wait for a probe (a user event sent to the
	// app) to come back on the websocket; ProbeInterval is how often the
	// event path is proven while connected (defaults 3 s and 5 s). An
	// open websocket is not proof that Asterisk delivers the app's events
	// (docs/ari-event-path.md). A new connection's first probe is given
	// up sooner once the process has seen probes come back: ten times the
	// slowest of the last few, at least half a second, doubled for each
	// connection in a row not proven (an app Asterisk left inactive under
	// it is then found, and the connection made again, in well under a
	// second).
	ProbeTimeout, ProbeInterval time.Duration
	// ARILossResign is how long an active process may go without a
	// working event path to Asterisk before it resigns its lease, so that
	// a standby that reaches Asterisk serves the callers (default 15 s:
	// three connects with their handshake's bound).
	ARILossResign time.Duration
	// HandoverWait bounds how long a stopping process keeps the app's
	// websocket for the next active process (default 5 s; negative: not
	// at all). See handover.
	HandoverWait time.Duration

	// Gate applies the dial-out policy to every outbound leg (default:
	// policy.Default() with in-process counters).
	Gate *policy.Gate
	// FlowOptions are what the flows were loaded with, to load a version
	// of a flow kept in the store (flowFor).
	FlowOptions flows.LoadOptions
	// Webhooks sends InvokeWebhook requests (default: webhook.New with no
	// secret and no host list).
	Webhooks *webhook.Client
	// MaxExternal bounds the bytes (keys and values) a call keeps of a
	// webhook's answer as $.External; a larger answer takes the block's
	// Error branch (default DefaultMaxExternal).
	MaxExternal int

	// Tracer traces calls (nil: not traced); TraceInviteHeader is the SIP
	// header of the caller's INVITE whose traceparent a call continues
	// (default "traceparent"). Records receives each call's record (nil:
	// none). See observe.go.
	Tracer            *observe.Tracer
	TraceInviteHeader string
	Records           callrecord.Sink
	// callEnded, when set, is told of each call's end, once its goroutine
	// is done (tests wait for it).
	callEnded func(id string, err error)
}

// DialplanTarget is a place in the dialplan.
type DialplanTarget struct {
	Context   string
	Extension string // default "s"
	Priority  int    // default 1
}

func (c *Config) setDefaults() {
	if c.App == "" {
		c.App = "ariflow"
	}
	if c.DialTemplate == "" {
		c.DialTemplate = "PJSIP/{number}@trunk"
	}
	if c.ErrorPrompt == "" {
		c.ErrorPrompt = "sound:sorry-youre-having-problems"
	}
	if c.RESTTimeout == 0 {
		// Long enough to ride out an Asterisk that stalls for a few
		// seconds (a busy PBX, a short network stall) without failing calls.
		c.RESTTimeout = 8 * time.Second
	}
	if c.Fallback.Context != "" && c.Fallback.Extension == "" {
		c.Fallback.Extension = "s"
	}
	if c.Fallback.Priority == 0 {
		c.Fallback.Priority = 1
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = 800 * time.Millisecond
	}
	if c.PlaybackCheck <= 0 {
		c.PlaybackCheck = 3 * time.Second
	}
	if c.PBXCheck <= 0 {
		c.PBXCheck = 5 * time.Second
	}
	if c.MaxPlayback <= 0 {
		c.MaxPlayback = 10 * time.Minute
	}
	if c.EventQueue <= 0 {
		c.EventQueue = 256
	}
	if c.LapseWait <= 0 {
		c.LapseWait = 30 * time.Second
	}
	if c.SavePatience == 0 {
		c.SavePatience = 3 * time.Second
	}
	if c.ProbeTimeout <= 0 {
		c.ProbeTimeout = 3 * time.Second
	}
	if c.ProbeInterval <= 0 {
		c.ProbeInterval = 5 * time.Second
	}
	if c.ARILossResign <= 0 {
		// Room for a few connects, each with its handshake's bound, and
		// their probes.
		c.ARILossResign = 3 * ari.HandshakeTimeout
	}
	if c.AdoptConcurrency <= 0 {
		c.AdoptConcurrency = 16
	}
	if c.HandoverWait == 0 {
		c.HandoverWait = 5 * time.Second
	}
	if c.Gate == nil {
		counters := policy.NewMemoryCounters()
		c.Gate = policy.NewGate(policy.Default(), counters, counters)
	}
	if c.Webhooks == nil {
		c.Webhooks, _ = webhook.New(webhook.Options{}) // no files to read: cannot fail
	}
	if c.MaxExternal <= 0 {
		c.MaxExternal = DefaultMaxExternal
	}
	if c.TraceInviteHeader == "" {
		c.TraceInviteHeader = "traceparent"
	}
}

// App is one ariflow process's Stasis application. Several processes with
// one configuration run as one active and standbys: the active holds the
// lease (see lease.go) and is the only one connected to the app and
// writing call records.
type App struct {
	// takingBack: a reconcile is waiting for the lease, for the calls
	// that left it while this process stayed active (takeBack).
	takingBack atomic.Bool
	cfg        Config
	ari        *ari.Client
	// probeARI asks Asterisk for a sign of life without the lease.
	probeARI *ari.Client
	store    Store
	elector  Elector
	log      *logrus.Logger
	metrics  *Metrics
	owner    string
	flows    atomic.Pointer[flows.Set]
	// versions are the flows this process has loaded, and those it
	// fetched to take calls over, by digest (flowFor).
	versions sync.Map
	lease    lease
	// legEvents sends the transfer legs' events (events_url).
	legEvents *notify.Sender
	// xfer is what every transfer of this process shares.
	xfer *transfer.Env

	connected   atomic.Bool  // the event path is proven
	pathDown    atomic.Int64 // since when it is not (Unix ns)
	pathMu      sync.Mutex
	pathChanges changes      // when connected changes; under pathMu
	pathSince   atomic.Int64 // when the current websocket opened (Unix ns)
	// path is the current websocket (nil before the first).
	path     atomic.Pointer[ari.EventConn]
	draining atomic.Bool
	// probeToken is the probe under way; read hands it to probes when it
	// comes back.
	probeToken atomic.Pointer[string]
	probeRTTs  rttWindow // the last probes' round trips
	probes     chan string

	mu    sync.Mutex
	calls map[string]*call // by call ID
	// parked holds, while reconcile runs, the events of IDs no call owns
	// (parkEvents); nil otherwise. nparked counts them.
	parked  map[string][]*parkedEvent
	nparked int
	// adoptions holds a place per adoption under way (paceAdoption).
	adoptions chan struct{}
	// pbxWaiting holds the calls waiting for a caller the PBX's Dial()
	// carries (pbx.go), for lookPBX and ActiveCalls.
	pbxMu      sync.Mutex
	pbxWaiting map[*call]*pbxWait
	owners     map[string]*call // channel, bridge and playback IDs -> call
	// notDialled holds the legs calls here made and never dialled, as
	// their term ended (notdialled.go).
	notDialled map[string]time.Time

	// leftBehind: a reconcile runs for what calls ending here left in the
	// store (reconcileLeft); leftAgain: one more is due after it.
	leftBehind, leftAgain atomic.Bool

	wg sync.WaitGroup
}

// New returns an App; Run campaigns for the lease and connects it.
func New(cfg Config, store Store, elector Elector, set *flows.Set, log *logrus.Logger, m *Metrics) *App {
	cfg.setDefaults()
	host, _ := os.Hostname()
	a := &App{
		cfg:        cfg,
		store:      store,
		elector:    elector,
		log:        log,
		metrics:    m,
		owner:      fmt.Sprintf("%s-%d-%s", host, os.Getpid(), newID("p")[2:10]),
		calls:      map[string]*call{},
		adoptions:  make(chan struct{}, cfg.AdoptConcurrency),
		probes:     make(chan string, 1),
		owners:     map[string]*call{},
		pbxWaiting: map[*call]*pbxWait{},
	}
	a.legEvents = newLegEvents(cfg.Webhooks, m)
	opts := ari.Options{URL: cfg.URL, User: cfg.User, Password: cfg.Password, App: cfg.App,
		Timeout: cfg.RESTTimeout, Allow: a.allowed, Sent: m.ARIRequests.Inc, Answered: m.ariAnswered}
	if log.IsLevelEnabled(logrus.TraceLevel) {
		// Every request, to read a call's course back from the log (the
		// chaos soak's).
		opts.Traced = func(method, path string, code int, took time.Duration) {
			log.WithFields(logrus.Fields{"method": method, "path": path, "code": code, "took": took.Round(time.Microsecond)}).Trace("ari request")
		}
	}
	a.ari = ari.New(opts)
	a.probeARI = ari.New(ari.Options{URL: cfg.URL, User: cfg.User, Password: cfg.Password, App: cfg.App, Timeout: 2 * time.Second})
	a.xfer = &transfer.Env{ARI: a.ari, App: cfg.App, NewID: a.resourceID, DTMFDelay: cfg.DTMFDelay, InAppWait: cfg.RESTTimeout, Written: cfg.LeaseTTL,
		LegAhead:  cfg.LegAhead,
		LegEvents: func(url, key string, ev *transfer.LegEvent, log *logrus.Entry) { a.sendLegEvent(url, key, ev, log) },
		Metrics:   transfer.Metrics{Stuck: m.StuckCalls, Denied: m.Denied},
		PathSince: func() time.Time { return time.Unix(0, a.pathSince.Load()) },
		PathHeard: a.pathHeard, PathPing: a.pingPath}
	a.xfer.Observer = xferObserver{a}
	a.SetFlows(set)
	return a
}

// Owner names this process in call records and the lease.
func (a *App) Owner() string { return a.owner }

// SetFlows swaps the flow set; calls in progress keep the flow they have,
// here and in a process that takes them over (flowFor).
func (a *App) SetFlows(s *flows.Set) {
	a.flows.Store(s)
	if s == nil {
		return
	}
	for _, f := range s.Flows {
		a.versions.Store(f.Digest, f)
	}
	go a.publishFlows(context.Background())
}

// publishFlows keeps the loaded flows' sources in the store, for a process
// that takes over a call running on one of them while it has another
// version loaded. It is renewed at every term and every hour.
func (a *App) publishFlows(ctx context.Context) {
	s := a.Flows()
	if s == nil {
		return
	}
	for _, f := range s.Flows {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := a.store.PutFlow(pctx, f.Digest, store.ArchivedFlow{Name: f.Name, File: f.File, Source: f.Source})
		cancel()
		if err != nil {
			a.log.WithError(err).WithField("flow", f.Name).Warn("keeping the flow's source in the store failed; a process taking its calls over needs the same version loaded")
		}
	}
}

// flowFor is the flow an adopted call runs on: the exact version it
// started on (by its digest) from this process's flows or the store's,
// else, with a warning, the loaded flow of its name.
func (a *App) flowFor(ctx context.Context, rec *record.Call) *flows.Flow {
	cur, _ := a.Flows().Flow(rec.Flow)
	if rec.Digest == "" || cur != nil && cur.Digest == rec.Digest {
		return cur
	}
	if f, ok := a.versions.Load(rec.Digest); ok {
		return f.(*flows.Flow)
	}
	af, err := a.store.GetFlow(ctx, rec.Digest)
	if err == nil {
		var f *flows.Flow
		if f, err = flows.Parse(af.File, af.Source, a.cfg.FlowOptions); err == nil && f.Name == rec.Flow {
			a.versions.Store(rec.Digest, f)
			return f
		}
	}
	a.metrics.FlowVersionMissing.Inc()
	a.log.WithError(err).WithFields(logrus.Fields{"call_id": rec.CallID, "flow": rec.Flow, "digest": rec.Digest}).
		Warn("the version of its flow the call started on is nowhere to be found; it goes on in the loaded one")
	return cur
}

// Flows is the flow set new calls start on.
func (a *App) Flows() *flows.Set { return a.flows.Load() }

// Connected reports whether the event path is up: the websocket open and
// proven by a probe.
func (a *App) Connected() bool { return a.connected.Load() }

// Active reports whether this process holds the lease.
func (a *App) Active() bool { return a.lease.valid() }

// Ready is true on the active process with its websocket up: the one that
// serves calls.
func (a *App) Ready() bool { return a.Active() && a.Connected() }

// Role is "active" or "standby".
func (a *App) Role() string {
	if a.Active() {
		return "active"
	}
	return "standby"
}

// ActiveCalls is the number of calls this process runs, but for those
// whose caller the PBX's Dial() carries (dial_via: pbx): a drain need not
// wait for them, as the next process takes them back just the same.
func (a *App) ActiveCalls() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.pbxMu.Lock()
	defer a.pbxMu.Unlock()
	return len(a.calls) - len(a.pbxWaiting)
}

// Drain stops taking new calls. Calls in progress keep running until ctx of
// Run ends; then they are left in the store for another process.
func (a *App) Drain() { a.draining.Store(true) }

// Wait blocks until every call goroutine has returned.
func (a *App) Wait() { a.wg.Wait() }

// Check makes one authenticated request, so that a bad URL or password is
// a clear error at start instead of an endless reconnect loop; it returns
// Asterisk's version and entity ID. Its errors wrap ari.ErrUnreachable or
// ari.ErrAuth.
func Check(ctx context.Context, url, user, password string) (ari.Info, error) {
	c := ari.New(ari.Options{URL: url, User: user, Password: password})
	defer c.Close()
	return c.Check(ctx)
}

func newID(prefix string) string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}

// resourceID names a leg or bridge of this app: the app name in it keeps
// two apps on one Asterisk from taking each other's resources for orphans.
func (a *App) resourceID(kind string) string { return newID(a.cfg.App + "-" + kind) }

// ours tells whether a channel or bridge ID is one of this app's legs or
// bridges.
func (a *App) ours(id, kind string) bool { return strings.HasPrefix(id, a.cfg.App+"-"+kind+"-") }

// own registers IDs (legs, bridges, playbacks) whose events go to c.
func (c *call) own(ids ...string) {
	a := c.app
	a.mu.Lock()
	now := time.Now()
	for _, id := range ids {
		if id != "" {
			a.owners[id] = c
			if _, ok := c.owned[id]; !ok {
				c.owned[id] = now
			}
		}
	}
	a.mu.Unlock()
}

// disown forgets IDs the call is done with.
func (c *call) disown(ids ...string) {
	a := c.app
	a.mu.Lock()
	for _, id := range ids {
		if a.owners[id] == c {
			delete(a.owners, id)
		}
		delete(c.owned, id)
	}
	a.mu.Unlock()
}
