package controller

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the controller's Prometheus metrics.
type Metrics struct {
	Calls              prometheus.Counter
	ActiveCalls        prometheus.Gauge
	Transfers          *prometheus.CounterVec
	CallErrors         *prometheus.CounterVec
	Reconnects         prometheus.Counter
	DroppedEvents      prometheus.Counter
	OrphanLegs         prometheus.Counter
	Adopted            prometheus.Counter
	Fallbacks          *prometheus.CounterVec
	StuckCalls         *prometheus.CounterVec
	LostEvents         prometheus.Counter
	ReconcileFailures  prometheus.Counter
	FlowVersionMissing prometheus.Counter
	Reconciles         prometheus.Counter

	Role            prometheus.Gauge
	LeaseRenewals   prometheus.Counter
	LeaseFailures   prometheus.Counter
	LeaseLapses     prometheus.Counter
	Takeovers       prometheus.Counter
	TakeoverSeconds prometheus.Histogram
	Replaced        prometheus.Counter
	ARILost         prometheus.Counter
	ProbeFailures   prometheus.Counter
	FencedActions   prometheus.Counter

	Denied *prometheus.CounterVec

	ARIRequests  prometheus.Counter
	ARIAnswers   *prometheus.CounterVec
	RecordWrites prometheus.Counter

	LegEvents        *prometheus.CounterVec
	LegEventsDropped prometheus.Counter

	FlowSpins prometheus.Counter

	ResumeSeconds prometheus.Histogram // observe.go
}

// NewMetrics registers the metrics with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	m := &Metrics{
		Calls:              c("ariflow_calls_total", "Calls that entered a flow."),
		ActiveCalls:        prometheus.NewGauge(prometheus.GaugeOpts{Name: "ariflow_active_calls", Help: "Calls this process runs now."}),
		Transfers:          prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ariflow_transfers_total", Help: "Transfers by outcome."}, []string{"outcome"}),
		CallErrors:         prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ariflow_call_errors_total", Help: "Blocks and flows that failed, by block type."}, []string{"where"}),
		Reconnects:         c("ariflow_ari_reconnects_total", "ARI websocket reconnects."),
		DroppedEvents:      c("ariflow_dropped_events_total", "Calls ended because their event queue overflowed."),
		OrphanLegs:         c("ariflow_orphan_legs_total", "Outbound legs hung up because their call was gone."),
		Adopted:            c("ariflow_adopted_calls_total", "Calls picked up from the store after a takeover or reconnect."),
		Fallbacks:          prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ariflow_fallback_total", Help: "Callers sent to the fallback, by reason."}, []string{"reason"}),
		StuckCalls:         prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ariflow_stuck_waits_total", Help: "Waits that ran past their bound, by what was awaited."}, []string{"wait"}),
		LostEvents:         c("ariflow_lost_events_total", "Events found missing by a check (a playback or channel that ended unannounced)."),
		ReconcileFailures:  c("ariflow_reconcile_failures_total", "Reconciles that failed and were retried."),
		Reconciles:         c("ariflow_reconciles_total", "Reconciles done (after every websocket connect)."),
		FlowVersionMissing: c("ariflow_flow_version_missing_total", "Adopted calls whose flow version was nowhere to be found (they went on in the loaded version)."),
		Role:               prometheus.NewGauge(prometheus.GaugeOpts{Name: "ariflow_active", Help: "1 while this process holds the lease (active), 0 as a standby."}),
		LeaseRenewals:      c("ariflow_lease_renewals_total", "Lease renewals."),
		LeaseFailures:      c("ariflow_lease_failures_total", "Lease campaigns or renewals that failed, and leases lost."),
		LeaseLapses:        c("ariflow_lease_lapses_total", "Renewals that came after the lease had lapsed locally (calls waited meanwhile)."),
		Takeovers:          c("ariflow_takeovers_total", "Terms as the active process begun."),
		TakeoverSeconds:    prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ariflow_takeover_seconds", Help: "From taking the lease to the first reconcile done.", Buckets: []float64{.05, .1, .2, .5, 1, 2, 5}}),
		Replaced:           c("ariflow_app_replaced_total", "ApplicationReplaced received: another connection took the app."),
		ARILost:            c("ariflow_ari_lost_total", "Terms ended because the ARI event path did not work for ARILossResign."),
		ProbeFailures:      c("ariflow_event_path_failures_total", "Probes (user events sent to the app) that did not come back on the websocket in time."),
		FencedActions:      c("ariflow_fenced_actions_total", "ARI requests and record writes refused because this process did not hold the lease."),
		ARIRequests:        c("ariflow_ari_requests_total", "ARI REST requests sent."),
		ARIAnswers:         prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ariflow_ari_answers_total", Help: "ARI REST requests by kind and Asterisk's status code (0: no answer came back)."}, []string{"request", "code"}),
		RecordWrites:       c("ariflow_record_writes_total", "Call records written (saves and deletes that succeeded)."),
		LegEvents:          prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ariflow_leg_events_total", Help: "Leg events (events_url) by result: sent, or failed after the retries."}, []string{"result"}),
		LegEventsDropped:   c("ariflow_leg_events_dropped_total", "Leg events dropped because their queue was full."),
		FlowSpins:          c("ariflow_flow_spins_total", "Calls sent to the fallback after 200 blocks in a row that did not wait for the caller (a flow that loops)."),
		ResumeSeconds:      prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ariflow_resume_seconds", Help: "From the far end's hangup seen to the caller's next block begun (resume on).", Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5}}),
		Denied:             prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ariflow_dialout_denied_total", Help: "Outbound legs the dial-out policy refused, by rule."}, []string{"rule"}),
	}
	if reg != nil {
		reg.MustRegister(m.Calls, m.ActiveCalls, m.Transfers, m.CallErrors, m.Reconnects, m.DroppedEvents, m.OrphanLegs, m.Adopted,
			m.Fallbacks, m.StuckCalls, m.LostEvents, m.ReconcileFailures, m.Reconciles, m.FlowVersionMissing,
			m.Role, m.LeaseRenewals, m.LeaseFailures, m.LeaseLapses, m.Takeovers, m.TakeoverSeconds, m.Replaced, m.ARILost, m.ProbeFailures, m.FencedActions, m.Denied, m.ARIRequests, m.ARIAnswers, m.RecordWrites,
			m.LegEvents, m.LegEventsDropped, m.FlowSpins, m.ResumeSeconds)
	}
	return m
}

// ariAnswered counts an ARI request's answer.
func (m *Metrics) ariAnswered(kind string, code int) {
	m.ARIAnswers.WithLabelValues(kind, strconv.Itoa(code)).Inc()
}
