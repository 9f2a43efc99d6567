package controller

import (
	"context"
	"encoding/json"
	"hash/fnv"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/ariflow/ariflow/internal/webhook"
	"github.com/ariflow/ariflow/transfer"
)

// Leg events (a block's events_url): each outbound leg's ringing,
// answered and completed, POSTed as JSON through the App's webhook client
// (signed with X-Ariflow-Signature when a secret is set, no redirects,
// the host allow-list). They never delay a call: a call only puts an
// event in a bounded queue, without waiting; a few workers send them,
// retrying a failed request a few times with backoff; an event that finds
// the queue full is dropped and counted.
const (
	legEventWorkers  = 4    // each with its own queue: one call's events stay in order
	legEventQueue    = 1000 // events waiting, over all workers
	legEventAttempts = 3
	legEventTimeout  = 5 * time.Second // per request
)

// legEventBackoff is the wait before the second and third attempts.
var legEventBackoff = []time.Duration{250 * time.Millisecond, time.Second}

type legEventJob struct {
	url  string
	body []byte
	log  *logrus.Entry
}

// legEvents is the App's sender of leg events.
type legEvents struct {
	client  *webhook.Client
	metrics *Metrics
	once    sync.Once
	queues  [legEventWorkers]chan legEventJob
	// backoff may be shortened by tests.
	backoff []time.Duration
}

func newLegEvents(client *webhook.Client, m *Metrics) *legEvents {
	return &legEvents{client: client, metrics: m, backoff: legEventBackoff}
}

// start runs the workers, on the first event: a process whose flows have
// no events_url runs none.
func (q *legEvents) start() {
	for i := range q.queues {
		q.queues[i] = make(chan legEventJob, legEventQueue/legEventWorkers)
		go q.work(q.queues[i])
	}
}

// send queues an event for url without waiting; key (the call) picks the
// worker, so that one call's events leave in order. It tells whether the
// event was queued.
func (q *legEvents) send(url, key string, ev *transfer.LegEvent, log *logrus.Entry) bool {
	q.once.Do(q.start)
	body, err := json.Marshal(ev)
	if err != nil {
		return false
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	select {
	case q.queues[h.Sum32()%legEventWorkers] <- legEventJob{url: url, body: body, log: log}:
		return true
	default:
		q.metrics.LegEventsDropped.Inc()
		log.WithField("event", ev.Event).Debug("leg event dropped: queue full")
		return false
	}
}

func (q *legEvents) work(jobs <-chan legEventJob) {
	for j := range jobs {
		var err error
		for attempt := 0; attempt < legEventAttempts; attempt++ {
			if attempt > 0 {
				time.Sleep(q.backoff[min(attempt-1, len(q.backoff)-1)])
			}
			if _, _, err = q.client.Post(context.Background(), j.url, j.body, legEventTimeout); err == nil {
				break
			}
		}
		if err != nil {
			q.metrics.LegEvents.WithLabelValues("failed").Inc()
			j.log.WithError(err).Warn("leg event not delivered")
			continue
		}
		q.metrics.LegEvents.WithLabelValues("sent").Inc()
	}
}
