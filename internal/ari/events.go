package ari

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/websocket"
)

// Liveness of the event websocket: a ping every PingInterval, and a
// connection on which nothing (event or pong) arrived for ReadIdle is
// taken for dead. A half-open TCP connection (a cut cable, a frozen
// Asterisk) is thus noticed within seconds rather than after the kernel's
// keep-alive gives up, minutes later.
const (
	PingInterval = time.Second
	ReadIdle     = 3 * time.Second
)

// EventConn is one connection of the app's event websocket.
type EventConn struct {
	ws   *websocket.Conn
	idle *idleConn
	wmu  sync.Mutex // the ping writer and Close
	done chan struct{}
	once sync.Once
	soon chan struct{} // PingSoon: a ping now, not at the next tick
}

// WebsocketURL is the events URL for an ARI base URL.
func WebsocketURL(base string) string {
	u := strings.TrimSuffix(base, "/")
	switch {
	case strings.HasPrefix(u, "https://"):
		u = "wss://" + strings.TrimPrefix(u, "https://")
	case strings.HasPrefix(u, "http://"):
		u = "ws://" + strings.TrimPrefix(u, "http://")
	}
	return u + "/events"
}

// Events connects the app's event websocket. Asterisk gives an app to the
// newest connection: a previous connection of the same app (ours or
// another process's) gets ApplicationReplaced and nothing more.
func (c *Client) Events(ctx context.Context) (*EventConn, error) {
	q := url.Values{"app": {c.opts.App}}
	cfg, err := websocket.NewConfig(WebsocketURL(c.base)+"?"+q.Encode(), "http://localhost/")
	if err != nil {
		return nil, fmt.Errorf("websocket config: %w", err)
	}
	if c.opts.Allow != nil {
		if err := c.opts.Allow(ctx); err != nil {
			return nil, fmt.Errorf("websocket: %w", err)
		}
	}
	cfg.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(c.opts.User+":"+c.opts.Password)))
	dctx, cancel := context.WithTimeout(ctx, HandshakeTimeout)
	defer cancel()
	host := cfg.Location.Host
	if cfg.Location.Port() == "" {
		port := "80"
		if cfg.Location.Scheme == "wss" {
			port = "443"
		}
		host = net.JoinHostPort(cfg.Location.Hostname(), port)
	}
	raw, err := (&net.Dialer{Timeout: 5 * time.Second}).DialContext(dctx, "tcp", host)
	if err != nil {
		return nil, err
	}
	if dl, ok := dctx.Deadline(); ok {
		_ = raw.SetDeadline(dl)
	}
	idle := &idleConn{Conn: raw}
	var conn net.Conn = idle
	if cfg.Location.Scheme == "wss" {
		tc := tls.Client(conn, &tls.Config{ServerName: cfg.Location.Hostname(), MinVersion: tls.VersionTLS12})
		if err := tc.HandshakeContext(dctx); err != nil {
			raw.Close()
			return nil, fmt.Errorf("websocket TLS: %w", err)
		}
		conn = tc
	}
	ws, err := websocket.NewClient(cfg, conn)
	if err != nil {
		raw.Close()
		return nil, err
	}
	_ = raw.SetWriteDeadline(time.Time{})
	idle.live.Store(true)
	return newEventConn(ws, idle), nil
}

// HandshakeTimeout bounds a connect and its handshake. Asterisk registers
// the app before it answers, and a registration can wait seconds behind
// another session's cleanup (docs/ari-event-path.md); one that takes longer
// is given up and tried again (and a process without a working event path
// for its ARILossResign resigns its lease).
const HandshakeTimeout = 5 * time.Second

// idleConn renews the read deadline before every read once the handshake
// is done, so that any frame, a pong included, keeps the connection alive
// and silence ends it. The handshake has the connect's own deadline:
// Asterisk registers the app before it answers, and a registration can
// wait seconds behind another session's cleanup (docs/ari-event-path.md);
// a connection given up then is registered and torn down for nothing.
type idleConn struct {
	net.Conn
	live  atomic.Bool
	heard atomic.Int64 // when bytes last arrived (Unix ns)
}

func (c *idleConn) Read(p []byte) (int, error) {
	if c.live.Load() {
		_ = c.Conn.SetReadDeadline(time.Now().Add(ReadIdle))
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.heard.Store(time.Now().UnixNano())
	}
	return n, err
}

func newEventConn(ws *websocket.Conn, idle *idleConn) *EventConn {
	ec := &EventConn{ws: ws, idle: idle, done: make(chan struct{}), soon: make(chan struct{}, 1)}
	go ec.ping()
	return ec
}

func (ec *EventConn) ping() {
	t := time.NewTicker(PingInterval)
	defer t.Stop()
	for {
		select {
		case <-ec.done:
			return
		case <-t.C:
		case <-ec.soon:
		}
		ec.wmu.Lock()
		_ = ec.ws.SetWriteDeadline(time.Now().Add(ReadIdle))
		ec.ws.PayloadType = websocket.PingFrame
		_, err := ec.ws.Write([]byte("ariflow"))
		ec.ws.PayloadType = websocket.TextFrame
		ec.wmu.Unlock()
		if err != nil {
			ec.Close()
			return
		}
	}
}

// PingSoon has a ping sent now rather than at the next PingInterval
// tick, so that a live connection is heard from (Heard) within a round
// trip. It does not wait.
func (ec *EventConn) PingSoon() {
	select {
	case ec.soon <- struct{}{}:
	default:
	}
}

// Heard is when bytes last arrived on the connection: an event, or the
// pong to a ping (one a PingInterval). Asterisk writes a connection's
// frames in order, so bytes heard after a moment mean that what Asterisk
// sent before it, before that moment, has arrived; a connection heard
// from long ago may be stalled with events in it.
func (ec *EventConn) Heard() time.Time {
	if ec.idle == nil {
		return time.Time{}
	}
	return time.Unix(0, ec.idle.heard.Load())
}

// Next returns the next event. Undecodable messages are returned as an
// error wrapping ErrUndecodable, after which the connection is still
// usable; any other error ends the connection.
func (ec *EventConn) Next() (Event, error) {
	var data []byte
	if err := websocket.Message.Receive(ec.ws, &data); err != nil {
		return nil, err
	}
	ev, err := decodeEvent(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUndecodable, err)
	}
	return ev, nil
}

// ErrUndecodable marks a message that was not an event ariflow can read.
var ErrUndecodable = fmt.Errorf("undecodable ARI event")

// Close closes the connection; Next then returns an error.
func (ec *EventConn) Close() error {
	var err error
	ec.once.Do(func() {
		close(ec.done)
		ec.wmu.Lock()
		err = ec.ws.Close()
		ec.wmu.Unlock()
	})
	return err
}

// The event path proves itself with a probe: a user event sent to the app
// through REST, which Asterisk delivers on the app's websocket in order
// with the app's other events, only while the app is active and the
// socket is the app's. An open socket proves less: Asterisk 22 can leave
// an app inactive under a connected websocket, and then delivers nothing,
// not even ApplicationReplaced (docs/ari-event-path.md).
//
// A probe:
//
//	token := fmt.Sprintf("%s-%d", processID, seq) // unique per probe
//	if err := client.Probe(ctx, token); err != nil { ... } // 404: app unknown
//	// then, reading the websocket, within a bound:
//	if ari.IsProbe(ev, token) { /* the path works */ }
//
// Asterisk answers the REST request (204) whether or not it delivers the
// event, so only the arrival counts. Probes of another process on the same
// app, and older probes, carry other tokens. The app's event filter must
// let ChannelUserevent through (EventTypes does).

// ProbeEvent is the name of ariflow's probe user events.
const ProbeEvent = "ariflow-probe"

// probeVar is the variable that carries a probe's token.
const probeVar = "ariflow_probe"

// Probe sends a probe carrying token to the Client's app
// (POST /events/user/ariflow-probe?application=APP). It goes through
// Options.Allow and Sent like any request. An app Asterisk does not know
// is a 404 (IsNotFound).
func (c *Client) Probe(ctx context.Context, token string) error {
	q := url.Values{"application": {c.opts.App}}
	body := map[string]any{"variables": map[string]string{probeVar: token}}
	return c.do(ctx, http.MethodPost, "/events/user/"+ProbeEvent+"?"+q.Encode(), body, nil, again)
}

// IsProbe tells whether ev is the probe that carries token.
func IsProbe(ev Event, token string) bool {
	ue, ok := ev.(*UserEvent)
	return ok && ue.Eventname == ProbeEvent && token != "" && ue.Variables[probeVar] == token
}
