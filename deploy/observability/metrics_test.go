package observability

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"

	"github.com/ariflow/ariflow/callrecord"
	"github.com/ariflow/ariflow/controller"
)

// descs is a Registerer that keeps the names of what is registered.
type descs map[string]bool

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

func (d descs) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc, 64)
	go func() { c.Describe(ch); close(ch) }()
	for desc := range ch {
		if m := fqName.FindStringSubmatch(desc.String()); m != nil {
			d[m[1]] = true
		}
	}
	return nil
}
func (d descs) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = d.Register(c)
	}
}
func (d descs) Unregister(prometheus.Collector) bool { return false }

// exported is every metric name ariflow exports: the packages' metrics,
// registered for real, and those cmd/ariflow makes itself (read from its
// source: package main cannot be imported).
func exported(t *testing.T) map[string]bool {
	d := descs{}
	controller.NewMetrics(d)
	callrecord.NewMetrics(d)
	files, err := filepath.Glob("../../cmd/ariflow/*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("cmd/ariflow sources: %v", err)
	}
	inline := regexp.MustCompile(`Opts\{Name: "(ariflow_[a-z_]+)"`)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range inline.FindAllStringSubmatch(string(b), -1) {
			d[m[1]] = true
		}
	}
	if len(d) < 30 {
		t.Fatalf("only %d metrics found: %v", len(d), d)
	}
	return d
}

var metricRef = regexp.MustCompile(`\bariflow_[a-z0-9_]+\b`)

// known tells whether name is exported, or a series Prometheus derives
// from one (a histogram's _bucket, _sum and _count).
func known(exp map[string]bool, name string) bool {
	if exp[name] {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && exp[base] {
			return true
		}
	}
	return false
}

// refs lists the ariflow metric names in the expressions.
func refs(exprs []string) map[string]bool {
	out := map[string]bool{}
	for _, e := range exprs {
		for _, m := range metricRef.FindAllString(e, -1) {
			out[m] = true
		}
	}
	return out
}

func check(t *testing.T, where string, exprs []string) map[string]bool {
	t.Helper()
	exp := exported(t)
	used := refs(exprs)
	if len(used) == 0 {
		t.Fatalf("%s: no ariflow metric found in %d expressions", where, len(exprs))
	}
	var unknown []string
	for m := range used {
		if !known(exp, m) {
			unknown = append(unknown, m)
		}
	}
	sort.Strings(unknown)
	if len(unknown) > 0 {
		t.Errorf("%s uses metrics ariflow does not export: %v", where, unknown)
	}
	return used
}

func TestAlertRulesUseExportedMetrics(t *testing.T) {
	b, err := os.ReadFile("alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert  string            `yaml:"alert"`
				Expr   string            `yaml:"expr"`
				Labels map[string]string `yaml:"labels"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatal(err)
	}
	var exprs []string
	alerts := map[string]bool{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			exprs = append(exprs, r.Expr)
			alerts[r.Alert] = true
			if s := r.Labels["severity"]; s != "page" && s != "ticket" {
				t.Errorf("%s: severity %q, want page or ticket", r.Alert, s)
			}
		}
	}
	used := check(t, "alerts.yml", exprs)
	// What should wake someone (issue 19) has a rule.
	for _, m := range []string{"ariflow_active", "ariflow_takeovers_total", "ariflow_fallback_total", "ariflow_dialout_denied_total",
		"ariflow_dropped_events_total", "ariflow_event_path_failures_total", "ariflow_lease_lapses_total"} {
		if !used[m] {
			t.Errorf("no alert on %s", m)
		}
	}
}

func TestDashboardUsesExportedMetrics(t *testing.T) {
	b, err := os.ReadFile("dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	var exprs []string
	for _, p := range d.Panels {
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	used := check(t, "dashboard.json", exprs)
	for _, m := range []string{"ariflow_active_calls", "ariflow_transfers_total", "ariflow_resume_seconds_bucket", "ariflow_fallback_total",
		"ariflow_stuck_waits_total", "ariflow_active", "ariflow_takeovers_total", "ariflow_dialout_denied_total", "ariflow_leg_events_total",
		"ariflow_event_path_failures_total", "ariflow_redis_roundtrips_total", "ariflow_ari_requests_total"} {
		if !used[m] {
			t.Errorf("the dashboard shows no %s", m)
		}
	}
}

// The check itself catches a name that is not exported.
func TestUnknownMetricIsCaught(t *testing.T) {
	exp := exported(t)
	if known(exp, "ariflow_no_such_metric_total") || !known(exp, "ariflow_takeover_seconds_bucket") || !known(exp, "ariflow_calls_total") {
		t.Error("known() is wrong")
	}
}
