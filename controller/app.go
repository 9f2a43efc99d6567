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
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/ariflow/ariflow/internal/ari"

	"github.com/ariflow/ariflow/flows"
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
	// ErrorPrompt is played before hanging up a call whose flow failed
	// without an Error branch.
	ErrorPrompt string
	// RESTTimeout bounds each ARI request.
	RESTTimeout time.Duration
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
		c.RESTTimeout = 5 * time.Second
	}
}

// App is one ariflow process's Stasis application.
type App struct {
	cfg     Config
	ari     *ari.Client
	store   Store
	log     *logrus.Logger
	metrics *Metrics
	owner   string
	flows   atomic.Pointer[flows.Set]

	connected atomic.Bool
	draining  atomic.Bool

	mu     sync.Mutex
	calls  map[string]*call // by call ID
	owners map[string]*call // channel, bridge and playback IDs -> call

	wg sync.WaitGroup
}

// New returns an App; Run connects it.
func New(cfg Config, store Store, set *flows.Set, log *logrus.Logger, m *Metrics) *App {
	cfg.setDefaults()
	host, _ := os.Hostname()
	a := &App{
		cfg:     cfg,
		store:   store,
		log:     log,
		metrics: m,
		owner:   fmt.Sprintf("%s-%d", host, os.Getpid()),
		calls:   map[string]*call{},
		owners:  map[string]*call{},
	}
	a.ari = ari.New(ari.Options{URL: cfg.URL, User: cfg.User, Password: cfg.Password, App: cfg.App, Timeout: cfg.RESTTimeout})
	a.flows.Store(set)
	return a
}

// SetFlows swaps the flow set; calls in progress keep the flow they have.
func (a *App) SetFlows(s *flows.Set) { a.flows.Store(s) }

// Flows is the flow set new calls start on.
func (a *App) Flows() *flows.Set { return a.flows.Load() }

// Connected reports whether the event websocket is up.
func (a *App) Connected() bool { return a.connected.Load() }

// ActiveCalls is the number of calls this process runs.
func (a *App) ActiveCalls() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.calls)
}

// Drain stops taking new calls. Calls in progress keep running until ctx of
// Run ends; then they are left in the store for another process.
func (a *App) Drain() { a.draining.Store(true) }

// Wait blocks until every call goroutine has returned.
func (a *App) Wait() { a.wg.Wait() }

// Check makes one authenticated request, so that a bad URL or password is
// a clear error at start instead of an endless reconnect loop; it returns
// Asterisk's version. Its errors wrap ari.ErrUnreachable or ari.ErrAuth.
func Check(ctx context.Context, url, user, password string) (string, error) {
	c := ari.New(ari.Options{URL: url, User: user, Password: password})
	defer c.Close()
	return c.Check(ctx)
}

func newID(prefix string) string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}

func (a *App) register(c *call, ids ...string) {
	a.mu.Lock()
	for _, id := range ids {
		if id != "" {
			a.owners[id] = c
			c.owned = append(c.owned, id)
		}
	}
	a.mu.Unlock()
}

func (a *App) unregister(ids ...string) {
	a.mu.Lock()
	for _, id := range ids {
		delete(a.owners, id)
	}
	a.mu.Unlock()
}
