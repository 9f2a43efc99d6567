package controller

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the controller's Prometheus metrics.
type Metrics struct {
	Calls         prometheus.Counter
	ActiveCalls   prometheus.Gauge
	Transfers     *prometheus.CounterVec
	CallErrors    *prometheus.CounterVec
	Reconnects    prometheus.Counter
	DroppedEvents prometheus.Counter
	OrphanLegs    prometheus.Counter
	Adopted       prometheus.Counter
}

// NewMetrics registers the metrics with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Calls:         prometheus.NewCounter(prometheus.CounterOpts{Name: "ariflow_calls_total", Help: "Calls that entered a flow."}),
		ActiveCalls:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "ariflow_active_calls", Help: "Calls this process runs now."}),
		Transfers:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ariflow_transfers_total", Help: "Transfers by outcome."}, []string{"outcome"}),
		CallErrors:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ariflow_call_errors_total", Help: "Blocks and flows that failed, by block type."}, []string{"where"}),
		Reconnects:    prometheus.NewCounter(prometheus.CounterOpts{Name: "ariflow_ari_reconnects_total", Help: "ARI websocket reconnects."}),
		DroppedEvents: prometheus.NewCounter(prometheus.CounterOpts{Name: "ariflow_dropped_events_total", Help: "Events dropped because a call's queue was full."}),
		OrphanLegs:    prometheus.NewCounter(prometheus.CounterOpts{Name: "ariflow_orphan_legs_total", Help: "Outbound legs hung up because their call was gone."}),
		Adopted:       prometheus.NewCounter(prometheus.CounterOpts{Name: "ariflow_adopted_calls_total", Help: "Calls picked up from the store after a restart or reconnect."}),
	}
	if reg != nil {
		reg.MustRegister(m.Calls, m.ActiveCalls, m.Transfers, m.CallErrors, m.Reconnects, m.DroppedEvents, m.OrphanLegs, m.Adopted)
	}
	return m
}
