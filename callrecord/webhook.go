package callrecord

import (
	"context"
	"encoding/json"

	"github.com/sirupsen/logrus"
	"go.opentelemetry.io/otel/trace"

	"github.com/ariflow/ariflow/internal/notify"
)

// Webhook POSTs each record as JSON to a URL through the process's
// webhook client (signed with X-Ariflow-Signature when a secret is set,
// the host allow-list, no redirects) from a bounded notify queue: a
// receiver that is slow or down costs dropped records, counted, and never
// a call's time. The request carries the call's traceparent when traced.
type Webhook struct {
	url string
	s   *notify.Sender
	log *logrus.Entry
}

// NewWebhook sends records to url through p.
func NewWebhook(p notify.Poster, url string, result func(Outcome), log *logrus.Logger) *Webhook {
	if result == nil {
		result = func(Outcome) {}
	}
	if log == nil {
		log = logrus.StandardLogger()
	}
	s := notify.New(p, notify.Options{QueuePerHost: 1024, Result: func(o notify.Outcome) { result(Outcome(o)) }})
	return &Webhook{url: url, s: s, log: log.WithField("sink", "call-record-webhook")}
}

// Send queues r without waiting.
func (w *Webhook) Send(ctx context.Context, r *Record) bool {
	b, err := json.Marshal(r)
	if err != nil {
		return false
	}
	return w.s.SendTraced(trace.SpanContextFromContext(ctx), w.url, r.CallID, b, w.log.WithField("call_id", r.CallID))
}

// Close stops the sender; records still queued are dropped.
func (w *Webhook) Close(context.Context) error {
	w.s.Close()
	return nil
}
