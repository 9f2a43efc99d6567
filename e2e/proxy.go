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
	"strconv"
	"strings"
	"sync"
	"time"
)

// Proxy forwards TCP connections to a target and can cut them all, which
// is how a test kills ariflow's ARI websocket without touching Asterisk.
// It can also stall every byte (Freeze), delay the target's replies
// (Delay: a slow network to Redis), keep a record of the HTTP requests
// that went through it (RecordRequests: what a process sent to ARI, and
// when, as seen on the wire), hold new connections (Hold), and answer
// chosen requests itself instead of passing them on (FailRequests).
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
	// parse: connections opened from now on are read as HTTP requests
	// (RecordRequests, FailRequests).
	parse bool
	reqs  []ProxiedRequest
	fails []*failRule
}

// ProxiedRequest is one HTTP request a Proxy read: when its head was read
// from the client, its method and path, and whether the proxy failed it
// (FailRequests) instead of forwarding it.
type ProxiedRequest struct {
	At           time.Time
	Method, Path string
	Failed       bool
	Status       int // the proxy's answer when Failed; 0: the connection was cut
}

// failRule is one FailRequests: left requests still to fail (-1: until
// StopFailing).
type failRule struct {
	method, path string
	prefix       bool
	left, status int
}

// FailRequests makes the proxy answer the next n requests (n < 0: every
// one until StopFailing) whose method is method and whose path (query
// left out) is path, or starts with it when path ends in "*", itself,
// with status, instead of forwarding them; status 0 cuts the connection
// without an answer. Only connections the proxy parses are looked at:
// those opened after RecordRequests or FailRequests (start a process
// with Ariflow.RecordRequests for its first). A request that matches
// several rules is counted by the oldest.
func (p *Proxy) FailRequests(method, path string, n, status int) {
	r := &failRule{method: method, path: path, left: n, status: status}
	if strings.HasSuffix(path, "*") {
		r.path, r.prefix = strings.TrimSuffix(path, "*"), true
	}
	p.mu.Lock()
	p.parse = true
	p.fails = append(p.fails, r)
	p.mu.Unlock()
}

// StopFailing drops every FailRequests rule: requests flow on as before.
func (p *Proxy) StopFailing() {
	p.mu.Lock()
	p.fails = nil
	p.mu.Unlock()
}

// failure tells whether a rule picks the request, counting it, and the
// status to answer with.
func (p *Proxy) failure(method, path string) (int, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, r := range p.fails {
		if r.method != method || path != r.path && !(r.prefix && strings.HasPrefix(path, r.path)) {
			continue
		}
		if r.left > 0 {
			if r.left--; r.left == 0 {
				p.fails = append(p.fails[:i:i], p.fails[i+1:]...)
			}
		}
		return r.status, true
	}
	return 0, false
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
	p.record, p.parse = true, true
	p.mu.Unlock()
}

// Requests returns the requests recorded so far, oldest first.
func (p *Proxy) Requests() []ProxiedRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]ProxiedRequest(nil), p.reqs...)
}

// pipe copies src to dst, holding bytes while the proxy is frozen.
func (p *Proxy) pipe(dst net.Conn, src io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
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

// thawedWriter writes to the target once the proxy is not frozen.
type thawedWriter struct {
	p *Proxy
	w io.Writer
}

func (t thawedWriter) Write(b []byte) (int, error) {
	t.p.waitThawed()
	return t.w.Write(b)
}

// pipeRequests is pipe for the client's side of a parsed connection: it
// reads whole requests (the head, then a Content-Length or chunked body)
// and passes their bytes on unchanged, recording each (RecordRequests);
// a request a FailRequests rule picks is read to its end and answered
// here, or its connection cut. A websocket upgrade, or a head that does
// not parse, ends the parsing: the rest passes as it comes.
func (p *Proxy) pipeRequests(u, c net.Conn, src io.Reader) {
	br := bufio.NewReaderSize(src, 32<<10)
	up := thawedWriter{p, u}
	for {
		head, req, err := readHead(br)
		if req == nil {
			if len(head) > 0 && err != io.EOF {
				if _, err := up.Write(head); err == nil {
					p.pipe(u, br)
				}
			}
			return
		}
		status, fail := p.failure(req.Method, req.URL.Path)
		p.mu.Lock()
		if p.record {
			p.reqs = append(p.reqs, ProxiedRequest{At: time.Now(), Method: req.Method, Path: req.URL.Path, Failed: fail, Status: status})
		}
		p.mu.Unlock()
		if strings.EqualFold(req.Header.Get("Upgrade"), "websocket") && !fail {
			if _, err := up.Write(head); err == nil {
				p.pipe(u, br)
			}
			return
		}
		var body io.Writer = up
		if fail {
			body = io.Discard
		} else if _, err := up.Write(head); err != nil {
			return
		}
		if err := copyBody(body, br, req); err != nil {
			return
		}
		if !fail {
			continue
		}
		if status == 0 {
			c.Close() // no answer: the client sees the connection go
			return
		}
		text := http.StatusText(status)
		p.waitThawed()
		if _, err := fmt.Fprintf(c, "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", status, text, len(text), text); err != nil {
			return
		}
	}
}

// readHead reads one request head, returning its bytes as read and the
// request it parses to (nil, with the bytes read so far, when the stream
// ended or the head does not parse).
func readHead(br *bufio.Reader) ([]byte, *http.Request, error) {
	var head []byte
	for {
		line, err := br.ReadBytes('\n')
		head = append(head, line...)
		if err != nil {
			return head, nil, err
		}
		if len(head) > 1<<20 {
			return head, nil, errors.New("request head too long")
		}
		if string(line) == "\r\n" || string(line) == "\n" {
			break
		}
	}
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head)))
	if err != nil {
		return head, nil, err
	}
	return head, req, nil
}

// copyBody copies the request's body from br to w as it was sent: its
// Content-Length bytes, or its chunks with their framing and trailer.
func copyBody(w io.Writer, br *bufio.Reader, req *http.Request) error {
	if len(req.TransferEncoding) == 0 {
		if req.ContentLength > 0 {
			_, err := io.CopyN(w, br, req.ContentLength)
			return err
		}
		return nil
	}
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			return err
		}
		if _, err := w.Write(line); err != nil {
			return err
		}
		size, _, _ := strings.Cut(strings.TrimSpace(string(line)), ";")
		n, err := strconv.ParseInt(size, 16, 64)
		if err != nil {
			return fmt.Errorf("chunk size %q: %w", size, err)
		}
		if n == 0 {
			break
		}
		if _, err := io.CopyN(w, br, n+2); err != nil { // the data and its CRLF
			return err
		}
	}
	for { // the trailer, to its empty line
		line, err := br.ReadBytes('\n')
		if err != nil {
			return err
		}
		if _, err := w.Write(line); err != nil {
			return err
		}
		if string(line) == "\r\n" || string(line) == "\n" {
			return nil
		}
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
	paused, hold, parse := p.paused, p.hold, p.parse
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
	var src io.Reader = c
	back := func() { p.pipeDelayed(c, u) }
	if h != nil {
		if parse { // the parser reads the held bytes first
			src = io.MultiReader(bytes.NewReader(h.First), c)
		} else if _, err := u.Write(h.First); err != nil {
			u.Close()
		}
		back = func() { h.gatedPipe(u) }
	}
	go func() {
		if parse {
			p.pipeRequests(u, c, src)
		} else {
			p.pipe(u, src)
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
	h.mu.Lock() // Release opens it at the same time
	h.gated = gate
	h.mu.Unlock()
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
