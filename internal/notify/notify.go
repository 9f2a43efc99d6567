// Package notify delivers small event bodies (a transfer leg's ringing,
// answered, completed) to HTTP receivers without ever making the sender
// wait. Each receiver host has its own bounded queue and its own workers,
// so a receiver that answers slowly or never fills and drops only its own
// events: every other receiver's keep flowing. A failed request is tried
// again with backoff; an event that finds its queue full is dropped and
// counted, never waited for.
package notify

import (
	"context"
	"hash/fnv"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"go.opentelemetry.io/otel/trace"
)

// Poster sends one request: *webhook.Client, with its signature, host
// allow-list and redirect refusal.
type Poster interface {
	Post(ctx context.Context, rawURL string, body []byte, timeout time.Duration) (status int, respBody []byte, err error)
}

// Outcome is what became of one event.
type Outcome string

// Outcomes reported to Options.Result.
const (
	Sent    Outcome = "sent"    // a request succeeded
	Failed  Outcome = "failed"  // every attempt failed
	Dropped Outcome = "dropped" // its receiver's queue was full (or the Sender closed)
)

// Options size a Sender; zero fields take the defaults.
type Options struct {
	// QueuePerHost bounds the events waiting for one receiver host
	// (default 256), over its workers.
	QueuePerHost int
	// WorkersPerHost send one host's events (default 2); one key's events
	// always go to the same worker, so they leave in order.
	WorkersPerHost int
	// MaxHosts bounds the receiver hosts that get a queue (default 64);
	// events for more are dropped. Receivers come from flow files, so
	// this is a guard, not a working limit.
	MaxHosts int
	// Attempts is how many requests one event gets (default 3).
	Attempts int
	// Backoff is the wait before the second, third… attempt (default
	// 250 ms, then 1 s); the last entry repeats.
	Backoff []time.Duration
	// Timeout bounds one request (default 5 s).
	Timeout time.Duration
	// Result, when set, is told each event's outcome (metrics).
	Result func(Outcome)
}

func (o *Options) setDefaults() {
	if o.QueuePerHost <= 0 {
		o.QueuePerHost = 256
	}
	if o.WorkersPerHost <= 0 {
		o.WorkersPerHost = 2
	}
	if o.MaxHosts <= 0 {
		o.MaxHosts = 64
	}
	if o.Attempts <= 0 {
		o.Attempts = 3
	}
	if len(o.Backoff) == 0 {
		o.Backoff = []time.Duration{250 * time.Millisecond, time.Second}
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Result == nil {
		o.Result = func(Outcome) {}
	}
}

type job struct {
	url  string
	body []byte
	log  *logrus.Entry
	span trace.SpanContext // the request's trace context, if traced
}

// Sender is safe for concurrent use. Its workers start with the first
// event for their host.
type Sender struct {
	post   Poster
	opts   Options
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	hosts  map[string][]chan job // host -> one queue per worker
	closed bool
}

// New returns a Sender posting through p.
func New(p Poster, o Options) *Sender {
	o.setDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	return &Sender{post: p, opts: o, ctx: ctx, cancel: cancel, hosts: map[string][]chan job{}}
}

// Send queues body for rawURL without waiting and tells whether it was
// queued. key (a call's ID) picks the host's worker, so that one key's
// events leave in the order they were sent. log carries the caller's
// fields for the line logged when every attempt fails.
func (s *Sender) Send(rawURL, key string, body []byte, log *logrus.Entry) bool {
	return s.SendTraced(trace.SpanContext{}, rawURL, key, body, log)
}

// SendTraced is Send with the trace context (span, if valid) the request
// carries as its traceparent header (webhook.Client.Post).
func (s *Sender) SendTraced(span trace.SpanContext, rawURL, key string, body []byte, log *logrus.Entry) bool {
	queues := s.queues(host(rawURL))
	if queues == nil {
		s.opts.Result(Dropped)
		log.Debug("event dropped: too many receivers")
		return false
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	select {
	case queues[h.Sum32()%uint32(len(queues))] <- job{url: rawURL, body: body, log: log, span: span}:
		return true
	default:
		s.opts.Result(Dropped)
		log.WithField("receiver_host", host(rawURL)).Debug("event dropped: its receiver's queue is full")
		return false
	}
}

// queues returns the host's queues, starting its workers on first use;
// nil when the Sender is closed or has MaxHosts hosts already.
func (s *Sender) queues(h string) []chan job {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	if q, ok := s.hosts[h]; ok {
		return q
	}
	if len(s.hosts) >= s.opts.MaxHosts {
		return nil
	}
	n := s.opts.WorkersPerHost
	q := make([]chan job, n)
	for i := range q {
		q[i] = make(chan job, max(1, s.opts.QueuePerHost/n))
		s.wg.Add(1)
		go s.work(h, q[i])
	}
	s.hosts[h] = q
	return q
}

func (s *Sender) work(h string, jobs <-chan job) {
	defer s.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case j := <-jobs:
			s.deliver(h, j)
		}
	}
}

func (s *Sender) deliver(h string, j job) {
	ctx := s.ctx
	if j.span.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, j.span)
	}
	var err error
	for attempt := 0; attempt < s.opts.Attempts; attempt++ {
		if attempt > 0 {
			wait := s.opts.Backoff[min(attempt-1, len(s.opts.Backoff)-1)]
			select {
			case <-s.ctx.Done():
				s.opts.Result(Dropped)
				return
			case <-time.After(wait):
			}
		}
		if _, _, err = s.post.Post(ctx, j.url, j.body, s.opts.Timeout); err == nil {
			s.opts.Result(Sent)
			return
		}
	}
	s.opts.Result(Failed)
	// The Poster's errors carry the URL redacted (webhook.RedactURL).
	j.log.WithError(err).WithField("receiver_host", h).Warn("event not delivered")
}

// Close stops the workers; events still queued are dropped (not
// reported). Send after Close drops.
func (s *Sender) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
}

// host is the queue key of a receiver URL: its host and port, without
// case; "" for a URL without one (its requests fail, in a queue of their
// own).
func host(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return ""
	}
	return strings.ToLower(u.Host)
}
