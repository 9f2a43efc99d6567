package controller

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/ariflow/ariflow/flows"
	"github.com/ariflow/ariflow/internal/notify"
	"github.com/ariflow/ariflow/internal/webhook"
)

// Leg events (a block's events_url): each outbound leg's ringing,
// answered and completed, POSTed as JSON through the App's webhook client
// (signed with X-Ariflow-Signature when a secret is set, no redirects,
// the host allow-list) by an internal/notify Sender: a call only puts an
// event in its receiver's bounded queue, never waiting; a receiver that
// is slow or down fills and drops only its own events.

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

// newLegEvents is the App's sender of leg events, counted in m.
func newLegEvents(client *webhook.Client, m *Metrics) *notify.Sender {
	return notify.New(client, notify.Options{Result: func(o notify.Outcome) {
		if o == notify.Dropped {
			m.LegEventsDropped.Inc()
			return
		}
		m.LegEvents.WithLabelValues(string(o)).Inc()
	}})
}

// sendLegEvent queues ev for url without waiting; key (the call) keeps one
// call's events in order.
func (a *App) sendLegEvent(url, key string, ev *LegEvent, log *logrus.Entry) bool {
	body, err := json.Marshal(ev)
	if err != nil {
		return false
	}
	return a.legEvents.Send(url, key, body, log)
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
	c.app.sendLegEvent(t.leg.eventsURL, c.id, ev, t.logger().WithField("leg_event", name))
}

func (t *transfer) logger() *logrus.Entry {
	if t.log != nil {
		return t.log
	}
	return t.c.log
}

// Ensure the flows package's Ringback is what legOptions holds.
var _ = flows.RingbackRing
