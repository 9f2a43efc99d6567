// Package controller is ariflow's Stasis application: it receives ARI
// events, runs one goroutine per call through its flow, and keeps each
// call's position in a Store so another process can pick it up.
package controller

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/CyCoreSystems/ari/v6"
	"github.com/CyCoreSystems/ari/v6/client/native"
	"github.com/sirupsen/logrus"

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
	ari     ari.Client
	store   Store
	log     *logrus.Logger
	metrics *Metrics
	owner   string
	base    string // ARI URL without a trailing slash
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
		base:    strings.TrimSuffix(cfg.URL, "/"),
	}
	a.ari = native.New(&native.Options{
		Application:  cfg.App,
		URL:          cfg.URL,
		WebsocketURL: wsURL(cfg.URL),
		Username:     cfg.User,
		Password:     cfg.Password,
	})
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

// ARI errors a caller of Check can tell apart.
var (
	ErrARIUnreachable = errors.New("ARI unreachable")
	ErrARIAuth        = errors.New("ARI refused the credentials")
)

// Check makes one authenticated request so that a bad URL or password is a
// clear error at start instead of an endless reconnect loop.
func Check(ctx context.Context, url, user, password string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/asterisk/info", nil)
	if err != nil {
		return "", fmt.Errorf("%w: bad URL %q: %v", ErrARIUnreachable, url, err)
	}
	req.SetBasicAuth(user, password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("%w at %s: %v", ErrARIUnreachable, url, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return "", fmt.Errorf("%w (user %q at %s)", ErrARIAuth, user, url)
	case resp.StatusCode != http.StatusOK:
		return "", fmt.Errorf("%w: %s answered %s", ErrARIUnreachable, url, resp.Status)
	}
	var info struct {
		System struct {
			Version string `json:"version"`
		} `json:"system"`
	}
	if err := decodeJSON(resp.Body, &info); err != nil {
		return "", fmt.Errorf("%w: %s is not ARI: %v", ErrARIUnreachable, url, err)
	}
	return info.System.Version, nil
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

// rest bounds an ARI request: the library's requests have no deadline.
func (a *App) rest(ctx context.Context, what string, f func() error) error {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.RESTTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", what, ctx.Err())
	}
}

// isNotFound tells a 404: the thing is already gone, which is what a
// hangup or delete wanted.
func isNotFound(err error) bool { return statusCode(err) == http.StatusNotFound }

// statusCode is the HTTP status of a failed ARI request, or 0.
func statusCode(err error) int {
	var re interface{ Code() int }
	if errors.As(err, &re) {
		return re.Code()
	}
	return 0
}

// originateRequest is ARI's originate body; the library's has no
// variables, which spares requests per transfer.
type originateRequest struct {
	Endpoint   string            `json:"endpoint"`
	App        string            `json:"app"`
	AppArgs    string            `json:"appArgs,omitempty"`
	ChannelID  string            `json:"channelId"`
	Originator string            `json:"originator,omitempty"`
	CallerID   string            `json:"callerId,omitempty"`
	Timeout    int               `json:"timeout"`
	Variables  map[string]string `json:"variables,omitempty"`
}

func (a *App) originate(ctx context.Context, req originateRequest) error {
	return a.do(ctx, http.MethodPost, "/channels", req)
}

// addToBridge adds channels to a bridge in one request (the query
// parameter takes a comma-separated list; the library sends one string in
// a JSON body, which ARI reads as a single channel).
func (a *App) addToBridge(ctx context.Context, bridge string, channels ...string) error {
	q := url.Values{"channel": {strings.Join(channels, ",")}}
	return a.do(ctx, http.MethodPost, "/bridges/"+url.PathEscape(bridge)+"/addChannel?"+q.Encode(), nil)
}

// do sends one ARI request with a JSON body.
func (a *App) do(ctx context.Context, method, path string, body any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	// A request once sent is seen through even when the process is
	// stopping: a call stops at its next wait, with Asterisk and the
	// record agreeing on what was done, and another process takes over.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.RESTTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.SetBasicAuth(a.cfg.User, a.cfg.Password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %w", method, path, &httpError{resp.StatusCode, resp.Status})
	}
	return nil
}

type httpError struct {
	code   int
	status string
}

func (e *httpError) Error() string { return "ARI answered " + e.status }
func (e *httpError) Code() int     { return e.code }

// eventTypes are the only events ariflow acts on. Asked for alone, they
// spare Asterisk and us the rest (variable sets, dialplan steps, bridge
// and caller ID updates), a large part of the event traffic.
var eventTypes = []string{
	"StasisStart", "StasisEnd", "ChannelDestroyed", "ChannelHangupRequest",
	"ChannelStateChange", "Dial", "ChannelDtmfReceived", "PlaybackFinished",
	"ApplicationReplaced",
}

func (a *App) filterEvents(ctx context.Context) error {
	type t struct {
		Type string `json:"type"`
	}
	allowed := make([]t, len(eventTypes))
	for i, e := range eventTypes {
		allowed[i] = t{e}
	}
	return a.do(ctx, http.MethodPut, "/applications/"+url.PathEscape(a.cfg.App)+"/eventFilter", map[string]any{"allowed": allowed})
}
