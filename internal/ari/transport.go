package ari

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"sync"
	"syscall"
	"time"
)

// transport is the http.RoundTripper of a plain-HTTP ARI: it writes a
// request and reads its answer on the goroutine that sends it, over a pool
// of kept-alive connections to the one host. net/http's Transport hands
// every request to two goroutines of its connection (one writes, one
// reads) and the answer back, three wake-ups a request; for ARI's many
// small requests those cost ariflow more CPU than the requests themselves.
// The request and answer are still written and parsed by net/http
// (Request.Write, ReadResponse).
//
// Like net/http, it sends a request again on a fresh connection when a
// kept-alive one turns out closed: a request of which nothing was written,
// or one that is safe to repeat (see resend) whose answer never began.
type transport struct {
	dial  func(ctx context.Context, network, addr string) (net.Conn, error)
	addr  string        // host:port
	slots chan struct{} // one per connection open or being made (MaxConns)
	idle  time.Duration // IdleTimeout

	mu   sync.Mutex
	free []*pconn // kept-alive, the most recently used last
}

func newTransport(addr string, dial func(ctx context.Context, network, addr string) (net.Conn, error), maxConns int, idle time.Duration) *transport {
	return &transport{dial: dial, addr: addr, slots: make(chan struct{}, maxConns), idle: idle}
}

// pconn is one kept-alive connection.
type pconn struct {
	conn net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	cw   *countWriter
	used time.Time
}

// countWriter counts what reached the connection: a request of which
// nothing was written may always be sent again.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// errRefused marks a request its connection's guard refused to write
// (guardedConn): it is not sent again.
type errRefused struct{ err error }

func (e errRefused) Error() string { return e.err.Error() }
func (e errRefused) Unwrap() error { return e.err }

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	select {
	case t.slots <- struct{}{}:
	case <-ctx.Done():
		closeBody(req)
		return nil, ctx.Err()
	}
	for try := 0; ; try++ {
		// Sent again only after a kept-alive connection failed: then on a
		// new one.
		pc, reused, err := t.conn(ctx, try > 0)
		if err != nil {
			<-t.slots
			closeBody(req)
			return nil, err
		}
		if tr := httptrace.ContextClientTrace(ctx); tr != nil && tr.GotConn != nil {
			tr.GotConn(httptrace.GotConnInfo{Conn: pc.conn, Reused: reused})
		}
		resp, written, err := t.exchange(ctx, pc, req)
		if err == nil {
			resp.Body = &body{ReadCloser: resp.Body, t: t, pc: pc, keep: !resp.Close}
			return resp, nil
		}
		pc.conn.Close()
		var refused errRefused
		var answered errAnswered
		if !reused || try > 0 || errors.As(err, &refused) || errors.As(err, &answered) ||
			errors.Is(err, os.ErrDeadlineExceeded) || ctx.Err() != nil || written && !replayable(req) {
			<-t.slots
			return nil, err
		}
		// The kept-alive connection was closed under the request (Asterisk
		// closed it idle, or restarted). Again on a new one.
		if req.Body != nil && req.Body != http.NoBody {
			if req.GetBody == nil {
				<-t.slots
				return nil, err
			}
			b, gerr := req.GetBody()
			if gerr != nil {
				<-t.slots
				return nil, err
			}
			req = req.Clone(ctx)
			req.Body = b
		}
	}
}

// exchange writes req on pc and reads the answer's head. written tells
// whether any byte of the request reached the connection. An error once
// the answer has begun is an errAnswered: the connection was not one
// Asterisk had closed.
func (t *transport) exchange(ctx context.Context, pc *pconn, req *http.Request) (resp *http.Response, written bool, err error) {
	deadline, _ := ctx.Deadline()
	if err := pc.conn.SetDeadline(deadline); err != nil {
		return nil, false, err
	}
	pc.cw.n = 0
	err = req.Write(pc.bw)
	if err == nil {
		err = pc.bw.Flush()
	}
	if err != nil {
		return nil, pc.cw.n > 0, err
	}
	if _, err := pc.br.Peek(1); err != nil {
		return nil, true, err
	}
	resp, err = http.ReadResponse(pc.br, req)
	if err != nil {
		// The answer had begun: not a closed connection, never sent again.
		return nil, true, fmt.Errorf("reading the answer: %w", errAnswered{err})
	}
	return resp, true, nil
}

// errAnswered marks an error after the answer began.
type errAnswered struct{ err error }

func (e errAnswered) Error() string { return e.err.Error() }
func (e errAnswered) Unwrap() error { return e.err }

// conn takes a kept-alive connection, or makes one (always when fresh).
func (t *transport) conn(ctx context.Context, fresh bool) (*pconn, bool, error) {
	if !fresh {
		for {
			pc := t.take()
			if pc == nil {
				break
			}
			if time.Since(pc.used) < t.idle && alive(pc.conn) {
				return pc, true, nil
			}
			pc.conn.Close()
		}
	}
	conn, err := t.dial(ctx, "tcp", t.addr)
	if err != nil {
		return nil, false, err
	}
	cw := &countWriter{w: conn}
	return &pconn{conn: conn, br: bufio.NewReader(conn), bw: bufio.NewWriter(cw), cw: cw}, false, nil
}

func (t *transport) take() *pconn {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(t.free)
	if n == 0 {
		return nil
	}
	pc := t.free[n-1]
	t.free[n-1] = nil
	t.free = t.free[:n-1]
	return pc
}

func (t *transport) put(pc *pconn) {
	// The request's deadline would end the idle connection's next peek
	// (alive) once past.
	_ = pc.conn.SetDeadline(time.Time{})
	pc.used = time.Now()
	t.mu.Lock()
	t.free = append(t.free, pc)
	t.mu.Unlock()
}

// CloseIdleConnections closes the kept-alive connections (http.Client's
// CloseIdleConnections calls it).
func (t *transport) CloseIdleConnections() {
	t.mu.Lock()
	free := t.free
	t.free = nil
	t.mu.Unlock()
	for _, pc := range free {
		pc.conn.Close()
	}
}

// alive tells a kept-alive connection Asterisk has not closed: a peek
// that does not wait finds nothing to read. net/http's Transport knows
// from the goroutine reading each connection; here one system call asks.
func alive(c net.Conn) bool {
	if g, ok := c.(*guardedConn); ok {
		c = g.Conn
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	ok = false
	err = raw.Read(func(fd uintptr) bool {
		var b [1]byte
		n, _, rerr := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		// Nothing to read is the only good answer: bytes nobody asked
		// for, the end of the stream or an error each end the connection.
		ok = n < 0 && (rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK)
		return true
	})
	return err == nil && ok
}

// replayable is net/http's rule for sending a request again once written
// (see resend).
func replayable(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	_, key := req.Header["Idempotency-Key"]
	return key
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// body gives the connection back once its answer has been read to the end.
type body struct {
	io.ReadCloser
	t      *transport
	pc     *pconn
	keep   bool // Asterisk did not say it closes the connection
	eof    bool
	closed bool
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

// drainLimit is how much of an answer nobody read is read away to keep
// the connection; ARI's answers are small.
const drainLimit = 64 << 10

func (b *body) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	if !b.eof {
		if _, err := io.CopyN(io.Discard, b.ReadCloser, drainLimit); err == io.EOF {
			b.eof = true
		}
	}
	err := b.ReadCloser.Close()
	if b.eof && b.keep && err == nil {
		b.t.put(b.pc)
	} else {
		b.pc.conn.Close()
	}
	<-b.t.slots
	return err
}
