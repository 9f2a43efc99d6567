package ari

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Options configure a Client.
type Options struct {
	URL      string // ARI base URL, e.g. http://127.0.0.1:8088/ari
	User     string
	Password string
	App      string // Stasis application name
	// Timeout bounds each REST request (default 5 s).
	Timeout time.Duration
	// Allow, when set, is asked before every request; an error stops the
	// request before it is sent. A process that lost its right to act on
	// calls (fencing) uses it so that no request slips out afterwards.
	Allow func(ctx context.Context) error
	// Sent, when set, is told of every request that leaves (for a
	// metric: a fenced process must send none).
	Sent func()
	// Answered, when set, is told how each request sent went: its kind
	// (Kind) and Asterisk's status code, 0 when none came back.
	Answered func(kind string, code int)
	// Traced, when set, is told of each request sent: its method, its
	// path without the query (which may carry a caller's keys), Asterisk's
	// status code (0 when none came back) and how long it took. For the
	// trace log.
	Traced func(method, path string, code int, took time.Duration)
	// MaxConns bounds the REST connections open to Asterisk at once
	// (default DefaultMaxConns); requests past it wait for a free one,
	// within their Timeout. Asterisk's HTTP server serves at most
	// http.conf's sessionlimit (default 100) connections, websockets and
	// every other client included: the processes of one deployment
	// together must stay below it.
	MaxConns int
	// IdleTimeout closes a kept-alive connection unused for this long
	// (default DefaultIdleTimeout). It must stay below Asterisk's
	// http.conf session_keep_alive (default 15 s): a request sent on a
	// connection Asterisk has just closed fails, and only those that are
	// safe to repeat are sent again (see do).
	IdleTimeout time.Duration
}

// Defaults of Options.
const (
	// DefaultMaxConns leaves room under Asterisk's default sessionlimit
	// of 100 for an active and a standby process (each with its event
	// websocket), a process handing over, and tools.
	DefaultMaxConns = 32
	// DefaultIdleTimeout is below Asterisk's default session_keep_alive
	// (15 s), so that ariflow, not Asterisk, closes idle connections.
	DefaultIdleTimeout = 10 * time.Second
)

// Client sends ARI REST requests and opens the event websocket.
type Client struct {
	opts Options
	base string
	http *http.Client
	seq  atomic.Uint64 // Idempotency-Key values
	// checked and unchecked tell a request's connection whether to ask
	// Allow again as it writes (guardedConn); set when Allow is.
	checked, unchecked *httptrace.ClientTrace
}

// New returns a Client with its own http.Client: nothing here touches
// http.DefaultTransport, and every request has a deadline.
func New(o Options) *Client {
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.App == "" {
		o.App = "ariflow"
	}
	if o.MaxConns <= 0 {
		o.MaxConns = DefaultMaxConns
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dialer.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &guardedConn{Conn: conn}, nil
	}
	// Asterisk is one host: every call's requests go to it. A bound keeps a
	// burst (a takeover adopting every call at once) from taking all of
	// Asterisk's HTTP sessions; the requests past it queue here instead of
	// being refused there.
	var rt http.RoundTripper
	if u, err := url.Parse(o.URL); err == nil && u.Scheme == "http" && u.Host != "" {
		addr := u.Host
		if u.Port() == "" {
			addr = net.JoinHostPort(u.Hostname(), "80")
		}
		rt = newTransport(addr, dial, o.MaxConns, o.IdleTimeout)
	} else {
		// TLS, or a URL the request will refuse with a clear error.
		rt = &http.Transport{
			DialContext:         dial,
			MaxConnsPerHost:     o.MaxConns,
			MaxIdleConnsPerHost: o.MaxConns,
			MaxIdleConns:        o.MaxConns,
			IdleConnTimeout:     o.IdleTimeout,
		}
	}
	c := &Client{opts: o, base: strings.TrimSuffix(o.URL, "/"), http: &http.Client{Transport: rt}}
	if o.Allow != nil {
		c.checked, c.unchecked = c.traces()
	}
	return c
}

// App is the Stasis application name.
func (c *Client) App() string { return c.opts.App }

// Close releases idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// Errors a caller can branch on.
var (
	ErrUnreachable = errors.New("ARI unreachable")
	ErrAuth        = errors.New("ARI refused the credentials")
)

// StatusError is a request ARI answered with a non-2xx status.
type StatusError struct {
	Method, Path string
	Code         int
	Status       string
	Message      string // ARI's "message", when it gave one
}

func (e *StatusError) Error() string {
	s := fmt.Sprintf("%s %s: ARI answered %s", e.Method, e.Path, e.Status)
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// StatusCode is the HTTP status of a failed ARI request, or 0.
func StatusCode(err error) int {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

// IsNotFound tells a 404: the thing is already gone, which is what a
// hangup or delete wanted.
func IsNotFound(err error) bool { return StatusCode(err) == http.StatusNotFound }

// resend says whether net/http may send a request again when the
// kept-alive connection it went out on was closed before an answer came
// (Asterisk closes idle ones after session_keep_alive; a restart or a cut
// closes them all). The request may have been carried out: only a request
// whose second sending changes nothing and is answered as the first may be
// sent again.
//
// net/http sends again, on a fresh connection, a GET, HEAD, OPTIONS or
// TRACE, or a request with an Idempotency-Key header, when the connection
// failed after the request was written (http.Transport, isReplayable);
// any other request only when nothing of it was written. Asterisk ignores
// the header: it is only the signal to net/http.
type resend bool

const (
	// once: a second sending would act twice or be answered otherwise
	// than the first (originate, create, bridge create, dial, play,
	// continue: 409 or 404 where the first succeeded; a DTMF digit played
	// twice). An error then may hide a success: callers check the state.
	once resend = false
	// again: the same outcome, or one the caller takes as success (a
	// second hangup or delete is a 404, which they treat as done).
	again resend = true
)

// do sends one request with a JSON body (or none) and decodes a JSON answer
// into out (or discards it).
func (c *Client) do(ctx context.Context, method, path string, body, out any, r resend) error {
	if c.opts.Allow != nil && !writtenInTime(ctx) {
		if err := c.opts.Allow(ctx); err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		ctx = context.WithValue(ctx, checkedKey{}, true)
	}
	if c.opts.Sent != nil {
		c.opts.Sent()
	}
	return c.send(ctx, method, path, body, out, r)
}

// send is do without the fencing hooks.
func (c *Client) send(ctx context.Context, method, path string, body, out any, r resend) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	// A request once sent is seen through even when the process is
	// stopping: a call stops at its next wait, with Asterisk and the record
	// agreeing on what was done, and another process takes over.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.SetBasicAuth(c.opts.User, c.opts.Password)
	if c.opts.Allow != nil {
		tr := c.unchecked
		if ctx.Value(checkedKey{}) != nil {
			tr = c.checked
		}
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), tr))
	}
	if r == again && method != http.MethodGet {
		req.Header.Set("Idempotency-Key", strconv.FormatUint(c.seq.Add(1), 36))
	}
	var start time.Time
	if c.opts.Traced != nil {
		start = time.Now()
	}
	resp, err := c.http.Do(req)
	code := 0
	if err == nil {
		code = resp.StatusCode
	}
	if c.opts.Answered != nil {
		c.opts.Answered(Kind(method, path), code)
	}
	if c.opts.Traced != nil {
		p, _, _ := strings.Cut(path, "?")
		c.opts.Traced(method, p, code, time.Since(start))
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		se := &StatusError{Method: method, Path: path, Code: resp.StatusCode, Status: resp.Status}
		var m struct {
			Message string `json:"message"`
		}
		if b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096)); json.Unmarshal(b, &m) == nil {
			se.Message = m.Message
		}
		return se
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return fmt.Errorf("%s %s: decoding the answer: %w", method, path, err)
		}
		return nil
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return nil
}

// Kind names a request by its method and the resource's shape, without
// the IDs in its path: "POST channels/dtmf", "DELETE bridges".
func Kind(method, path string) string {
	path, _, _ = strings.Cut(path, "?")
	var b strings.Builder
	b.WriteString(method)
	sep := " "
	for i, seg := range strings.Split(strings.Trim(path, "/"), "/") {
		if i > 0 && !isVerb(seg) {
			continue
		}
		b.WriteString(sep)
		b.WriteString(seg)
		sep = "/"
	}
	return b.String()
}

// isVerb tells a path's fixed words (create, dtmf, addChannel) from the
// IDs and names between them.
func isVerb(seg string) bool {
	switch seg {
	case "create", "dtmf", "play", "ring", "answer", "dial", "moh", "variable", "continue", "redirect",
		"addChannel", "removeChannel", "eventFilter", "info", "user", "ping", "hold", "mute", "silence", "snoop", "externalMedia":
		return true
	}
	return false
}

// Info is what ariflow needs to know of the Asterisk it talks to.
type Info struct {
	Version string
	// EntityID tells PBXs apart (asterisk.conf's entityid; by default a
	// MAC address).
	EntityID string
}

// Check makes one authenticated request, so that a bad URL or password is
// a clear error at start instead of an endless reconnect loop.
func (c *Client) Check(ctx context.Context) (Info, error) {
	var info struct {
		System struct {
			Version  string `json:"version"`
			EntityID string `json:"entity_id"`
		} `json:"system"`
	}
	err := c.do(ctx, http.MethodGet, "/asterisk/info", nil, &info, again)
	switch code := StatusCode(err); {
	case err == nil:
		return Info{Version: info.System.Version, EntityID: info.System.EntityID}, nil
	case code == http.StatusUnauthorized:
		return Info{}, fmt.Errorf("%w (user %q at %s)", ErrAuth, c.opts.User, c.base)
	case code != 0:
		return Info{}, fmt.Errorf("%w: %s: %v", ErrUnreachable, c.base, err)
	case strings.Contains(err.Error(), "decoding the answer"):
		return Info{}, fmt.Errorf("%w: %s is not ARI: %v", ErrUnreachable, c.base, err)
	default:
		return Info{}, fmt.Errorf("%w at %s: %v", ErrUnreachable, c.base, err)
	}
}

// guardedConn asks Options.Allow again as the request's first byte is
// written, and writes nothing when it refuses: Allow's answer in do is a
// moment old by then, and a process stopped in that moment (SIGSTOP, a
// starved machine) would send a request decided under a lease that went
// while it slept. net/http writes one request at a time on a connection;
// guard is that request's check (nil: none, a Written request).
type guardedConn struct {
	net.Conn
	guard atomic.Pointer[func() error]
}

func (g *guardedConn) Write(p []byte) (int, error) {
	if f := g.guard.Swap(nil); f != nil {
		if err := (*f)(); err != nil {
			return 0, errRefused{err}
		}
	}
	return g.Conn.Write(p)
}

// traces hand the connection a request got its check, or none for a
// Written request (GotConn comes before the request is written). A TLS
// connection is not a guardedConn: there do's check is the only one.
func (c *Client) traces() (checked, unchecked *httptrace.ClientTrace) {
	// Asked with a context already done, so as not to wait: a lease that
	// lapsed since do asked is refused now. One context serves every
	// request.
	done, cancel := context.WithCancel(context.Background())
	cancel()
	check := func() error { return c.opts.Allow(done) }
	set := func(f *func() error) *httptrace.ClientTrace {
		return &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
			if g, ok := info.Conn.(*guardedConn); ok {
				g.guard.Store(f)
			}
		}}
	}
	return set(&check), set(nil)
}

// checkedKey marks a request do asked Allow for: its connection asks
// again as it writes.
type checkedKey struct{}

type writtenKey struct{}

// Written marks a request that a fenced record write begun before until
// minus the lease's lifetime has just announced (the record names the leg
// "dialing", or a digit as sent). Until then Options.Allow is not asked
// again: the write proved the right to act, no other process can have
// taken the lease before the one it was made under ran out, and a process
// taking over expects the request to have left; held back by a local
// lease that lapsed meanwhile, it would never be made. Past until, Allow
// is asked as for any request (a process stopped between the write and
// the request does not act when it wakes). The context's cancellation is
// dropped either way; the client's Timeout bounds the request.
func Written(ctx context.Context, until time.Time) context.Context {
	return context.WithValue(context.WithoutCancel(ctx), writtenKey{}, until)
}

func writtenInTime(ctx context.Context) bool {
	until, ok := ctx.Value(writtenKey{}).(time.Time)
	return ok && time.Now().Before(until)
}
