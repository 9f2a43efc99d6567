package controller

import (
	"context"
	"encoding/json"
	"hash/fnv"
	"strconv"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/ariflow/ariflow/flows"
	"github.com/ariflow/ariflow/internal/webhook"
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

// Leg event names.
const (
	LegRinging   = "ringing"
	LegAnswered  = "answered"
	LegCompleted = "completed"
)

// LegEvent is what an events_url receives. Times are RFC 3339 (UTC, with
// fractions of a second); a time that did not happen is left out.
type LegEvent struct {
	CallID    string `json:"call_id"`
	Flow      string `json:"flow"`
	Block     string `json:"block"`
	Leg       string `json:"leg"`   // the outbound channel's ID
	Event     string `json:"event"` // ringing | answered | completed
	Number    string `json:"number"`
	Attempt   int    `json:"attempt"` // 1.. within the block's list of numbers
	Time      string `json:"time"`    // when the event happened
	Dialed    string `json:"dialed_at"`
	Answered  string `json:"answered_at,omitempty"`
	Ended     string `json:"ended_at,omitempty"`
	Status    string `json:"status,omitempty"` // completed: $.Transfer.Status
	Cause     int    `json:"cause,omitempty"`  // completed: Q.850 cause
	CauseText string `json:"cause_text,omitempty"`
	SIPCode   int    `json:"sip_code,omitempty"`
	EndedBy   string `json:"ended_by,omitempty"`
	RingTime  string `json:"ring_time,omitempty"` // seconds
	TalkTime  string `json:"talk_time,omitempty"`
}

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
func (q *legEvents) send(url, key string, ev *LegEvent, log *logrus.Entry) bool {
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

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// legEvent sends one of the leg's events to the block's events_url, if
// it has one; a leg sends each event once.
func (t *transfer) legEvent(name string) {
	c := t.c
	if t.leg.eventsURL == "" || t.legID == "" || t.sentEvents[name] {
		return
	}
	if t.sentEvents == nil {
		t.sentEvents = map[string]bool{}
	}
	t.sentEvents[name] = true
	now := time.Now()
	ev := &LegEvent{CallID: c.id, Flow: c.rec.Flow, Block: c.rec.Block, Leg: t.legID, Event: name,
		Number: t.leg.number, Attempt: max(t.leg.attempt, 1), Time: rfc3339(now), Dialed: rfc3339(t.dialed), Answered: rfc3339(t.answered)}
	if name == LegCompleted {
		r := t.res
		ev.Ended, ev.Status, ev.Cause, ev.SIPCode, ev.EndedBy = rfc3339(now), string(r.Outcome), r.Cause, r.SIPCode, r.EndedBy
		if r.Cause != 0 {
			ev.CauseText = CauseText(r.Cause)
		}
		ev.RingTime = strconv.FormatFloat(r.RingTime.Seconds(), 'f', 3, 64)
		ev.TalkTime = strconv.FormatFloat(r.TalkTime.Seconds(), 'f', 3, 64)
	}
	c.app.legEvents.send(t.leg.eventsURL, c.id, ev, t.logger().WithField("leg_event", name))
}

func (t *transfer) logger() *logrus.Entry {
	if t.log != nil {
		return t.log
	}
	return t.c.log
}

// Ensure the flows package's Ringback is what legOptions holds.
var _ = flows.RingbackRing
