package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Proxy forwards TCP connections to a target and can cut them all, which
// is how a test kills ariflow's ARI websocket without touching Asterisk.
// It can also stall every byte (Freeze), delay the target's replies
// (Delay: a slow network to Redis), keep a record of the HTTP requests
// that went through it (RecordRequests: what a process sent to ARI, and
// when, as seen on the wire), and hold new connections (Hold).
type Proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	paused bool
	frozen bool
	thawed *sync.Cond // signalled when frozen ends
	// hold: new connections wait, accepted but not forwarded (Hold).
	hold    bool
	held    []*Held
	changed chan struct{} // closed and replaced when held changes
	delay   time.Duration
	record  bool
	reqs    []ProxiedRequest
}

// ProxiedRequest is one HTTP request a Proxy forwarded: when its head
// was read from the client, its method and path.
type ProxiedRequest struct {
	At           time.Time
	Method, Path string
}

// Freeze stops every byte in both directions, on open and new connections,
// without closing anything: a half-open network, a stalled Asterisk. The
// other side notices only by its own timeouts.
func (p *Proxy) Freeze() {
	p.mu.Lock()
	p.frozen = true
	p.mu.Unlock()
}

// Thaw ends Freeze; held bytes flow on.
func (p *Proxy) Thaw() {
	p.mu.Lock()
	p.frozen = false
	p.mu.Unlock()
	p.thawed.Broadcast()
}

func (p *Proxy) waitThawed() {
	p.mu.Lock()
	for p.frozen {
		p.thawed.Wait()
	}
	p.mu.Unlock()
}

// Delay holds every byte from the target for d before passing it on (0:
// none), on open and new connections: each request/reply round trip takes
// d longer. Bytes keep their order; bytes read while a delay was set keep
// it after Delay(0).
func (p *Proxy) Delay(d time.Duration) {
	p.mu.Lock()
	p.delay = d
	p.mu.Unlock()
}

// RecordRequests makes the proxy parse what clients send on connections
// opened from now on as HTTP/1.1 and keep each request's method, path
// and arrival time (Requests). A websocket upgrade ends the parsing of
// its connection.
func (p *Proxy) RecordRequests() {
	p.mu.Lock()
	p.record = true
	p.mu.Unlock()
}

// Requests returns the requests recorded so far, oldest first.
func (p *Proxy) Requests() []ProxiedRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]ProxiedRequest(nil), p.reqs...)
}

// pipe copies src to dst, holding bytes while the proxy is frozen. tee,
// when set, sees every byte as it is read, before any hold.
func (p *Proxy) pipe(dst, src net.Conn, tee io.Writer) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if tee != nil {
				_, _ = tee.Write(buf[:n])
			}
			p.waitThawed()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// pipeDelayed is pipe for the target's side: bytes read are written to
// dst after the delay in force when they were read.
func (p *Proxy) pipeDelayed(dst, src net.Conn) {
	type chunk struct {
		due time.Time
		b   []byte
	}
	q := make(chan chunk, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for c := range q {
			if d := time.Until(c.due); d > 0 {
				time.Sleep(d)
			}
			p.waitThawed()
			if _, err := dst.Write(c.b); err != nil {
				dst.Close()
				for range q { // drain: the reader ends when src closes
				}
				return
			}
		}
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			d := p.delay
			p.mu.Unlock()
			q <- chunk{due: time.Now().Add(d), b: append([]byte(nil), buf[:n]...)}
		}
		if err != nil {
			break
		}
	}
	close(q)
	<-done
}

// parseRequests reads HTTP requests from r and records them, until the
// stream ends or turns into a websocket; it drains r to its end.
func (p *Proxy) parseRequests(r io.Reader) {
	br := bufio.NewReader(r)
	defer func() { _, _ = io.Copy(io.Discard, br) }()
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		p.mu.Lock()
		p.reqs = append(p.reqs, ProxiedRequest{At: time.Now(), Method: req.Method, Path: req.URL.Path})
		p.mu.Unlock()
		if strings.EqualFold(req.Header.Get("Upgrade"), "websocket") {
			return
		}
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			return
		}
		req.Body.Close()
	}
}

// Pause refuses new connections (they are closed at once) until Resume:
// an outage rather than a blip.
func (p *Proxy) Pause() {
	p.mu.Lock()
	p.paused = true
	p.mu.Unlock()
}

// Resume ends Pause.
func (p *Proxy) Resume() {
	p.mu.Lock()
	p.paused = false
	p.mu.Unlock()
}

// NewProxy listens on a loopback port and forwards to target.
func NewProxy(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}, changed: make(chan struct{})}
	p.thawed = sync.NewCond(&p.mu)
	go p.serve()
	return p, nil
}

// Addr is where the proxy listens.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

func (p *Proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.forward(c)
	}
}

func (p *Proxy) forward(c net.Conn) {
	p.mu.Lock()
	paused, hold, record := p.paused, p.hold, p.record
	p.mu.Unlock()
	if paused {
		c.Close()
		return
	}
	var h *Held
	if hold {
		if h = p.holdConn(c); h == nil {
			return
		}
	}
	p.waitThawed()
	u, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns[c], p.conns[u] = struct{}{}, struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	var tee *io.PipeWriter
	if record {
		pr, pw := io.Pipe()
		tee = pw
		go p.parseRequests(pr)
	}
	back := func() { p.pipeDelayed(c, u) }
	if h != nil {
		if tee != nil {
			_, _ = tee.Write(h.First)
		}
		if _, err := u.Write(h.First); err != nil {
			u.Close()
		}
		back = func() { h.gatedPipe(u) }
	}
	go func() {
		if tee != nil {
			p.pipe(u, c, tee)
			tee.Close()
		} else {
			p.pipe(u, c, nil)
		}
		done <- struct{}{}
	}()
	go func() { back(); done <- struct{}{} }()
	<-done
	c.Close()
	u.Close()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, u)
	p.mu.Unlock()
}

// CutAll closes every open connection; new ones are accepted as before.
func (p *Proxy) CutAll() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for c := range p.conns {
		c.Close()
		n++
	}
	return n / 2
}

// Hold makes new connections wait, accepted but not forwarded, until
// their Forward or Release: a reconnect held at the moment of the test's
// choosing.
func (p *Proxy) Hold() {
	p.mu.Lock()
	p.hold = true
	p.mu.Unlock()
}

// Release ends Hold: connections still held are forwarded (ungated) if
// their client is still there, and later ones as before. A client that
// gave up must not reach the target: a stale websocket request would
// register the app once more.
func (p *Proxy) Release() {
	p.mu.Lock()
	p.hold = false
	held := p.held
	p.held = nil
	p.mu.Unlock()
	for _, h := range held {
		if !h.clientThere() {
			h.once.Do(func() { close(h.forward) }) // dropped: see holdConn
			continue
		}
		h.Forward(false)
		h.Open()
	}
}

// clientThere tells whether the held connection's client is still
// connected (it sends nothing more before an answer).
func (h *Held) clientThere() bool {
	_ = h.c.SetReadDeadline(time.Now().Add(time.Millisecond))
	defer func() { _ = h.c.SetReadDeadline(time.Time{}) }()
	var b [1]byte
	n, err := h.c.Read(b[:])
	if n > 0 {
		h.First = append(h.First, b[:n]...)
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Held is a connection that arrived while the proxy held new ones.
type Held struct {
	c       net.Conn
	First   []byte    // what the client sent first (its request line and headers)
	At      time.Time // when it arrived
	forward chan bool
	mu      sync.Mutex
	gated   bool
	answer  []byte        // what the target sent while gated
	changed chan struct{} // closed and replaced when answer grows or the gate opens
	once    sync.Once
}

// holdConn reads what the client sends first and waits for Forward; nil
// when the client went away first.
func (p *Proxy) holdConn(c net.Conn) *Held {
	buf := make([]byte, 8<<10)
	n, err := c.Read(buf)
	if err != nil {
		c.Close()
		return nil
	}
	h := &Held{c: c, First: buf[:n], At: time.Now(), forward: make(chan bool, 1), changed: make(chan struct{})}
	p.mu.Lock()
	if !p.hold { // released meanwhile
		p.mu.Unlock()
		return h
	}
	p.held = append(p.held, h)
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
	gate, ok := <-h.forward
	if !ok { // its client went away while held
		c.Close()
		return nil
	}
	h.gated = gate
	return h
}

// WaitHeld waits for a held connection that arrived after since and
// whose first bytes start with prefix (e.g. "GET /ari/events" for the
// event websocket), and takes it out of the held ones. A client gives up
// a connection held too long: take a fresh one.
func (p *Proxy) WaitHeld(ctx context.Context, prefix string, since time.Time) (*Held, error) {
	for {
		p.mu.Lock()
		for i, h := range p.held {
			if h.At.After(since) && bytes.HasPrefix(h.First, []byte(prefix)) {
				p.held = append(p.held[:i:i], p.held[i+1:]...)
				p.mu.Unlock()
				return h, nil
			}
		}
		ch := p.changed
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("no held connection starting %q: %w", prefix, ctx.Err())
		}
	}
}

// Forward sends the held connection on to the target. With gate, what
// the target answers is kept back (Answer shows it) until Open.
func (h *Held) Forward(gate bool) {
	h.once.Do(func() { h.forward <- gate })
}

// WaitAnswer waits up to d for what the target answered while gated to
// contain sub.
func (h *Held) WaitAnswer(sub string, d time.Duration) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		h.mu.Lock()
		found := bytes.Contains(h.answer, []byte(sub))
		ch := h.changed
		h.mu.Unlock()
		if found {
			return true
		}
		select {
		case <-ch:
		case <-deadline.C:
			return false
		}
	}
}

// Open passes on what the target answered while gated, and everything
// after it.
func (h *Held) Open() {
	h.mu.Lock()
	h.gated = false
	close(h.changed)
	h.changed = make(chan struct{})
	h.mu.Unlock()
}

// gatedPipe copies the target's bytes to the client, keeping them while
// the gate is shut.
func (h *Held) gatedPipe(u net.Conn) {
	type chunk struct {
		b   []byte
		err error
	}
	in := make(chan chunk)
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			buf := make([]byte, 32<<10)
			n, err := u.Read(buf)
			select {
			case in <- chunk{buf[:n], err}:
			case <-done:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	var pending []byte
	for {
		h.mu.Lock()
		gated, ch := h.gated, h.changed
		h.mu.Unlock()
		if !gated && len(pending) > 0 {
			if _, err := h.c.Write(pending); err != nil {
				return
			}
			pending = nil
		}
		select {
		case k := <-in:
			if len(k.b) > 0 {
				h.mu.Lock()
				if h.gated {
					h.answer = append(h.answer, k.b...)
					close(h.changed)
					h.changed = make(chan struct{})
				}
				h.mu.Unlock()
				pending = append(pending, k.b...)
			}
			if k.err != nil {
				if len(pending) > 0 && !gated {
					_, _ = h.c.Write(pending)
				}
				return
			}
		case <-ch:
		}
	}
}

// Close stops the proxy. Bytes a freeze held are dropped, not delivered:
// nothing a closed proxy held reaches the other side afterwards.
func (p *Proxy) Close() {
	p.Release()
	p.ln.Close()
	p.CutAll()
	p.Thaw()
}
