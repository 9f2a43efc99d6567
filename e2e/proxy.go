package e2e

import (
	"bufio"
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
// (Delay: a slow network to Redis), and keep a record of the HTTP
// requests that went through it (RecordRequests: what a process sent to
// ARI, and when, as seen on the wire).
type Proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	paused bool
	frozen bool
	thawed *sync.Cond // signalled when frozen ends
	delay  time.Duration
	record bool
	reqs   []ProxiedRequest
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

func (p *Proxy) waitThawed() {
	p.mu.Lock()
	for p.frozen {
		p.thawed.Wait()
	}
	p.mu.Unlock()
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
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
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
	paused, record := p.paused, p.record
	p.mu.Unlock()
	if paused {
		c.Close()
		return
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
	var tee *io.PipeWriter
	if record {
		pr, pw := io.Pipe()
		tee = pw
		go p.parseRequests(pr)
	}
	done := make(chan struct{}, 2)
	go func() {
		if tee != nil {
			p.pipe(u, c, tee)
			tee.Close()
		} else {
			p.pipe(u, c, nil)
		}
		done <- struct{}{}
	}()
	go func() { p.pipeDelayed(c, u); done <- struct{}{} }()
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

// Close stops the proxy. Bytes a freeze held are dropped, not delivered:
// nothing a closed proxy held reaches the other side afterwards.
func (p *Proxy) Close() {
	p.ln.Close()
	p.CutAll()
	p.Thaw()
}
