# Prometheus for the compose profile "observe": Debian's package with
# ariflow's scrape configuration and alert rules.
# Build context: deploy/observability/ (docker-compose.yml sets it).
FROM debian:sid-slim

# Extra apt-get options; empty for users (see asterisk-conf/Dockerfile).
ARG APT_OPTIONS=
RUN apt-get $APT_OPTIONS update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus \
 && rm -rf /var/lib/apt/lists/*

COPY prometheus.yml /etc/prometheus/prometheus.yml
COPY alerts.yml /etc/prometheus/ariflow-alerts.yml
RUN promtool check config /etc/prometheus/prometheus.yml

USER prometheus
# Loopback only: the compose file runs it on the host's network.
ENTRYPOINT ["/usr/bin/prometheus", "--config.file=/etc/prometheus/prometheus.yml", \
  "--storage.tsdb.path=/var/lib/prometheus/metrics2", "--web.listen-address=127.0.0.1:9090"]
