package controller

import (
	"context"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/ariflow/ariflow/internal/ari"
)

// BenchmarkDispatchWhileFlooded: one call's event queue is full and keeps
// being flooded (its goroutine is stuck), while another call receives its
// events. The websocket reader never waits for the flooded call, so the
// other call's events arrive as fast as ever: the figures are the quiet
// call's latency from dispatch to its goroutine (p50, p99), with the flood
// going on in between.
func BenchmarkDispatchWhileFlooded(b *testing.B) {
	log := logrus.New()
	log.SetOutput(io.Discard)
	a := &App{cfg: Config{EventQueue: 256}, log: log, metrics: NewMetrics(nil),
		calls: map[string]*call{}, owners: map[string]*call{}}
	flooded, quiet := a.newCall("flooded"), a.newCall("quiet")
	a.owners["flooded"], a.owners["quiet"] = flooded, quiet
	ctx := context.Background()
	ev := func(ch string) *ari.ChannelDtmfReceived {
		return &ari.ChannelDtmfReceived{EventData: ari.EventData{Type: "ChannelDtmfReceived", Timestamp: ari.DateTime(time.Now())},
			Channel: ari.ChannelData{ID: ch}, Digit: "1"}
	}
	lat := make([]time.Duration, 0, 1<<16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for e := range quiet.events {
			lat = append(lat, time.Since(time.Time(e.(*ari.ChannelDtmfReceived).Timestamp)))
		}
	}()
	b.ReportAllocs()
	for b.Loop() {
		for range 10 { // ten events for the stuck call per event for the other
			a.dispatch(ctx, ev("flooded"))
		}
		a.dispatch(ctx, ev("quiet"))
	}
	close(quiet.events)
	<-done
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "µs-p50")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "µs-p99")
	}
	select {
	case <-flooded.overflow:
	default:
		b.Error("the flooded call was not ended")
	}
}
