// Package observability holds what an operator installs beside ariflow
// on day one: the Grafana dashboard (dashboard.json), the Prometheus
// alerting rules (alerts.yml) and a Prometheus configuration for the
// compose profile (prometheus.yml). Its test checks that every metric
// they name is one ariflow exports; e2e/test.sh also runs
// `promtool check rules alerts.yml`. See docs/observability.md.
package observability
