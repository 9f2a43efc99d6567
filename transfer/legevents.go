package transfer

import (
	"strconv"
	"time"
)

// Leg event names (a block's events_url).
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

// legEvent sends one of the current leg's events to the block's
// events_url, if it has one; a leg sends each event once.
func (t *Transfer) legEvent(name string) {
	url := t.plan.Options.EventsURL
	if url == "" || t.leg.id == "" || t.leg.sent[name] || t.env.LegEvents == nil {
		return
	}
	if t.leg.sent == nil {
		t.leg.sent = map[string]bool{}
	}
	t.leg.sent[name] = true
	rec := t.call.Record()
	now := time.Now()
	ev := &LegEvent{CallID: t.call.ID(), Flow: rec.Flow, Block: rec.Block, Leg: t.leg.id, Event: name,
		Number: t.leg.target.Number, Attempt: t.attempt + 1, Time: rfc3339(now), Dialed: rfc3339(t.leg.dialed), Answered: rfc3339(t.leg.answered)}
	if name == LegCompleted {
		r := t.res
		ev.Ended, ev.Status, ev.Cause, ev.SIPCode, ev.EndedBy = rfc3339(now), string(r.Outcome), r.Cause, r.SIPCode, r.EndedBy
		if r.Cause != 0 {
			ev.CauseText = CauseText(r.Cause)
		}
		ev.RingTime = strconv.FormatFloat(r.RingTime.Seconds(), 'f', 3, 64)
		ev.TalkTime = strconv.FormatFloat(r.TalkTime.Seconds(), 'f', 3, 64)
	}
	t.env.LegEvents(url, t.call.ID(), ev, t.leg.log.WithField("leg_event", name))
}
