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
}

// Client sends ARI REST requests and opens the event websocket.
type Client struct {
	opts Options
	base string
	http *http.Client
	seq  atomic.Uint64 // Idempotency-Key values
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
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		// Asterisk is one host: at hundreds of calls the REST requests of
		// all of them go to it, and new connections cost more than they
		// save.
		MaxIdleConns: 64,
	}
	return &Client{opts: o, base: strings.TrimSuffix(o.URL, "/"), http: &http.Client{Transport: tr}}
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

// do sends one request with a JSON body (or none) and decodes a JSON answer
// into out (or discards it).
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	if c.opts.Allow != nil {
		if err := c.opts.Allow(ctx); err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
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
	// Every request names what it acts on (channel, bridge and playback
	// IDs are ariflow's own), so sending it again is harmless, except a
	// DTMF digit, which would be played twice. The header lets net/http
	// send a request again on a fresh connection when Asterisk closed the
	// idle keep-alive connection under it, instead of failing it with EOF
	// (the soak saw that at the start of a burst of calls).
	if p, _, _ := strings.Cut(path, "?"); method != http.MethodGet && !strings.HasSuffix(p, "/dtmf") {
		req.Header.Set("Idempotency-Key", strconv.FormatUint(c.seq.Add(1), 36))
	}
	if c.opts.Sent != nil {
		c.opts.Sent()
	}
	resp, err := c.http.Do(req)
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
	err := c.do(ctx, http.MethodGet, "/asterisk/info", nil, &info)
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
