package controller

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/ariflow/ariflow/internal/ari"
)

// A call running late finds its deadline passed with events queued before
// it: the events come first, and the deadline once the queue is empty.
// (select picks at random among ready cases: many tries catch a random
// pick.)
func TestNextGivesQueuedEventsBeforeAPassedDeadline(t *testing.T) {
	t.Parallel()
	log := logrus.New()
	log.SetLevel(logrus.PanicLevel)
	a := &App{cfg: Config{EventQueue: 8}, log: log, metrics: NewMetrics(nil)}
	passedAt := time.Now().Add(-time.Second)
	for i := range 200 {
		c := a.newCall("c1")
		c.events <- &resave{} // the controller's own: handled, never returned
		key := &ari.ChannelDtmfReceived{Channel: ari.ChannelData{ID: "c1"}, Digit: "*"}
		c.events <- key
		ev, err := c.Next(context.Background(), passedAt)
		if err != nil || ev != key {
			t.Fatalf("try %d: got %v, %v; want the queued key", i, ev, err)
		}
		if _, err := c.Next(context.Background(), passedAt); !errors.Is(err, errTimeout) {
			t.Fatalf("try %d: empty queue, passed deadline: %v, want the deadline", i, err)
		}
	}
}
