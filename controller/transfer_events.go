package controller

import (
	"encoding/json"

	"github.com/sirupsen/logrus"

	"github.com/ariflow/ariflow/internal/notify"
	"github.com/ariflow/ariflow/internal/webhook"
	"github.com/ariflow/ariflow/transfer"
)

// Leg events (a block's events_url): each outbound leg's ringing,
// answered and completed (transfer.LegEvent), POSTed as JSON through the
// App's webhook client (signed with X-Ariflow-Signature when a secret is
// set, no redirects, the host allow-list) by an internal/notify Sender: a
// call only puts an event in its receiver's bounded queue, never waiting;
// a receiver that is slow or down fills and drops only its own events.

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
func (a *App) sendLegEvent(url, key string, ev *transfer.LegEvent, log *logrus.Entry) bool {
	body, err := json.Marshal(ev)
	if err != nil {
		return false
	}
	return a.legEvents.SendTraced(a.legEventSpan(key), url, key, body, log)
}
