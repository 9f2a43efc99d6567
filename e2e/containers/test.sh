#!/usr/bin/env bash
# The container tests: the shipped Dockerfiles and docker-compose.yml, built
# and run through podman (Docker API, driven by docker-compose), with the
# test carrier Asterisk (e2e/stack.sh) outside the compose project playing
# the outside world over the real PJSIP trunk. Everything listens on
# loopback. Prints one "--- PASS/--- FAIL: containers/NAME" line per test
# (e2e/test.sh counts them) and exits 1 if any failed.
#
#   bash e2e/containers/test.sh        (root; installs what it needs)
#
# Environment: ARIFLOW_CTR_PORT_BASE (35000, clear of the other stacks'
# ports, the benchmark's among them), ARIFLOW_CTR_DIR
# (/tmp/ariflow-ctr), ARIFLOW_CTR_STACK_DIR (/tmp/ariflow-ctr-stack),
# ARIFLOW_CTR_KEEP=1 leaves the compose project and the stack up.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
repo=$PWD
export PATH=$PATH:/usr/local/go/bin
BASE=${ARIFLOW_CTR_PORT_BASE:-35000}
export ARIFLOW_STACK_PORT_BASE=$BASE
export ARIFLOW_STACK_DIR=${ARIFLOW_CTR_STACK_DIR:-/tmp/ariflow-ctr-stack}
export ARIFLOW_CTR_DIR=${ARIFLOW_CTR_DIR:-/tmp/ariflow-ctr}
export CONTAINERS_CONF=$repo/e2e/containers/containers.conf
# The same ports as the stack's PBX, whose native Asterisk this test stops
# so that the carrier's trunk reaches the containerized one instead.
export ARIFLOW_CTR_SIP_PORT=$((BASE + 60)) ARIFLOW_CTR_ARI_PORT=$((BASE + 88))
export ARIFLOW_CTR_REDIS_PORT=$((BASE + 179)) ARIFLOW_CTR_HEALTH_PORT=$((BASE + 90))
CARRIER_SIP=127.0.0.2:$((BASE + 70))
RTP_START=$((BASE + 1000)) RTP_END=$((BASE + 1998))
# CI's Debian mirror serves a sid snapshot past its Valid-Until date.
APT_OPTIONS=${ARIFLOW_APT_OPTIONS:--o Acquire::Check-Valid-Until=false}
project=ariflowctr
CTR=$ARIFLOW_CTR_DIR
started=$SECONDS

log() { echo "containers: $*" >&2; }
compose() { docker-compose --ansi never -p "$project" -f docker-compose.yml -f e2e/containers/compose.test.yml "$@"; }
cid() { podman ps -q --filter "label=com.docker.compose.project=$project" --filter "label=com.docker.compose.service=$1"; }

# --- what the tests need, installed on a fresh machine
need=()
for pair in podman:podman runc:runc docker-compose:docker-compose busybox:busybox-static \
	debootstrap:debootstrap readelf:binutils curl:curl; do
	command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}")
done
[ -x /usr/sbin/runc ] || need+=(runc)
if [ ${#need[@]} -gt 0 ]; then
	log "installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null ||
		{ echo "--- FAIL: containers/setup (apt-get install ${need[*]})"; exit 1; }
fi

# --- teardown: everything this script started, by PID or by project
service_pid= ticker_pid=
cleanup() {
	[ -n "$ticker_pid" ] && kill "$ticker_pid" 2>/dev/null
	if [ "${ARIFLOW_CTR_KEEP:-}" != 1 ]; then
		compose down -v --remove-orphans >/dev/null 2>&1
		bash e2e/stack.sh down >/dev/null 2>&1
	fi
	if [ -n "$service_pid" ] && [ "${ARIFLOW_CTR_KEEP:-}" != 1 ]; then
		kill "$service_pid" 2>/dev/null
		wait "$service_pid" 2>/dev/null
	fi
	# Logs stay; passwords and the generated configuration do not.
	[ "${ARIFLOW_CTR_KEEP:-}" = 1 ] || rm -rf "$CTR/asterisk" "$CTR/podman.sock" "$CTR"/*_password \
		"$CTR/stack.env" "$CTR"/*-modules "$CTR/timeline"
}
trap cleanup EXIT

# --- the runner: each test is a function; its output goes to a log shown on failure
passed=0 failed=0
run() { # name function
	local name=$1 s=$SECONDS out
	out=$CTR/logs/$name.log
	echo "=== RUN   containers/$name"
	# Each test in a subshell with errexit: its first failing step ends it.
	(set -e; "$2") >"$out" 2>&1
	if [ $? = 0 ]; then
		echo "--- PASS: containers/$name ($((SECONDS - s))s)"
		passed=$((passed + 1))
	else
		sed 's/^/    /' "$out" | tail -40
		echo "--- FAIL: containers/$name ($((SECONDS - s))s)"
		failed=$((failed + 1))
	fi
	grep '^REPORT ' "$out" | sed 's/^REPORT /    /' || true
}
report() { echo "REPORT $*"; }
fail() { echo "FAIL: $*"; exit 1; }
# until SECONDS CMD...: polls CMD every 200 ms until it succeeds or the
# deadline passes.
until_ok() {
	local deadline=$((SECONDS + $1))
	shift
	while ! "$@" >/dev/null 2>&1; do
		[ $SECONDS -ge $deadline ] && return 1
		sleep 0.2
	done
}

rm -rf "$CTR/logs"
mkdir -p "$CTR/logs" "$CTR/asterisk"
password=$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '%s\n' "$password" >"$CTR/ari_password"
chmod 0644 "$CTR/ari_password"
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$CTR/admin_token"
chmod 0644 "$CTR/admin_token"

# podman serves the Docker API that docker-compose (the client users have in
# Docker's place) talks to. Its own socket, so nothing else is touched.
podman system service --time=0 "unix://$CTR/podman.sock" >"$CTR/logs/podman-service.log" 2>&1 &
service_pid=$!
export DOCKER_HOST=unix://$CTR/podman.sock
until_ok 20 curl -fsS --unix-socket "$CTR/podman.sock" http://d/_ping ||
	{ echo "--- FAIL: containers/setup (podman system service did not answer)"; exit 1; }

# --- tests
t_images() {
	local s=$SECONDS
	bash e2e/images.sh || return 1
	report "base images ready in $((SECONDS - s)) s"
	s=$SECONDS
	# What users run, plus CI's apt option (the Dockerfiles default it to nothing).
	compose build --build-arg "APT_OPTIONS=$APT_OPTIONS" || return 1
	report "docker-compose build (ariflow + Asterisk) in $((SECONDS - s)) s"
}

t_ariflow_image() {
	local size user uid tmp
	size=$(podman image inspect --format '{{.Size}}' ariflow:latest) || return 1
	report "ariflow image: $((size / 1000)) kB"
	# The OTLP trace exporter (OpenTelemetry's, with the gRPC and protobuf
	# packages it links) took the static binary from about 18 to 30 MB.
	[ "$size" -lt 35000000 ] || fail "ariflow image is $size bytes, over 35 MB"
	user=$(podman image inspect --format '{{.Config.User}}' ariflow:latest)
	[ "$user" = 65532:65532 ] || fail "image user is '$user'"
	uid=$(podman run --rm --entrypoint id ariflow:latest -u) || return 1
	[ "$uid" = 65532 ] || fail "runs as uid $uid"
	tmp=$(podman create ariflow:latest) || return 1
	podman cp "$tmp:/ariflow" "$CTR/ariflow.bin" && podman rm "$tmp" >/dev/null || return 1
	readelf -l "$CTR/ariflow.bin" | grep -q INTERP && fail "/ariflow has a program interpreter (not static)"
	readelf -d "$CTR/ariflow.bin" | grep -q 'no dynamic section' || fail "/ariflow is dynamically linked"
	rm -f "$CTR/ariflow.bin"
	podman image inspect --format '{{json .Config.Healthcheck}}' ariflow:latest | grep -q readyz ||
		fail "ariflow image has no /readyz health check"
}

t_asterisk_image() {
	local size
	size=$(podman image inspect --format '{{.Size}}' ariflow-asterisk:latest) || return 1
	report "Asterisk image: $((size / 1000000)) MB"
	sed -n 's/^load = \([a-z0-9_]*\.so\)$/\1/p' asterisk-conf/modules.conf | sort -u >"$CTR/want-modules"
	podman run --rm --entrypoint sh ariflow-asterisk:latest -c 'ls /usr/lib/*/asterisk/modules' | sort >"$CTR/have-modules" || return 1
	diff "$CTR/want-modules" "$CTR/have-modules" || fail "the image's modules differ from modules.conf's loads"
	report "Asterisk modules in the image: $(wc -l <"$CTR/have-modules") (as modules.conf loads)"
	[ "$(podman run --rm --entrypoint id ariflow-asterisk:latest -un)" = asterisk ] || fail "Asterisk image does not run as asterisk"
}

t_sample_password_refused() {
	local out rc
	printf 'ariflow\n' >"$CTR/sample_password"
	chmod 0644 "$CTR/sample_password"
	out=$(podman run --rm --no-healthcheck --network none -v "$CTR/sample_password:/run/secrets/ari_password:ro" ariflow-asterisk:latest 2>&1) && rc=0 || rc=$?
	echo "$out"
	[ $rc -ne 0 ] || fail "Asterisk started with the sample password"
	grep -q 'still the sample "ariflow"' <<<"$out" || fail "no clear error for the sample password"
	out=$(podman run --rm --no-healthcheck --network none ariflow-asterisk:latest 2>&1) && rc=0 || rc=$?
	echo "$out"
	[ $rc -ne 0 ] || fail "Asterisk started without a secret"
	grep -q 'no readable ARI password file' <<<"$out" || fail "no clear error without a secret"
}

# Asterisk's configuration for this run: the image's own files with only
# the addresses changed (SIP and RTP on loopback, test ports, the carrier).
test_config() {
	local f
	for f in pjsip.conf http.conf rtp.conf; do
		podman run --rm --network none --entrypoint cat ariflow-asterisk:latest "/etc/asterisk/$f" >"$CTR/asterisk/$f" || return 1
	done
	sed -i -e "s#^bind = 0.0.0.0:5060\$#bind = 127.0.0.1:$ARIFLOW_CTR_SIP_PORT#" \
		-e "s#^contact = .*#contact = sip:$CARRIER_SIP#" -e "s#^match = .*#match = ${CARRIER_SIP%:*}#" \
		-e "s#^rtp_symmetric = yes\$#rtp_symmetric = yes\nmedia_address = 127.0.0.1\nbind_rtp_to_media_address = yes#" \
		"$CTR/asterisk/pjsip.conf"
	sed -i -e "s#^bindport = .*#bindport = $ARIFLOW_CTR_ARI_PORT#" "$CTR/asterisk/http.conf"
	sed -i -e "s#^rtpstart = .*#rtpstart = $RTP_START#" -e "s#^rtpend = .*#rtpend = $RTP_END#" "$CTR/asterisk/rtp.conf"
	grep -q "^bind = 127.0.0.1:$ARIFLOW_CTR_SIP_PORT\$" "$CTR/asterisk/pjsip.conf" &&
		grep -q "^bind_rtp_to_media_address = yes\$" "$CTR/asterisk/pjsip.conf" &&
		grep -q "^contact = sip:$CARRIER_SIP\$" "$CTR/asterisk/pjsip.conf" &&
		grep -q "^bindaddr = 127.0.0.1\$" "$CTR/asterisk/http.conf" &&
		grep -q "^bindport = $ARIFLOW_CTR_ARI_PORT\$" "$CTR/asterisk/http.conf" &&
		grep -q "^rtpstart = $RTP_START\$" "$CTR/asterisk/rtp.conf" || fail "the image's configuration changed; adapt test_config"
	chmod 0644 "$CTR/asterisk"/*.conf
}

# podman runs health checks from systemd timers; CI has no systemd, so this
# ticker runs them instead (what `docker compose up` waits on).
health_ticker() {
	while :; do
		for c in $(podman ps -q --filter "label=com.docker.compose.project=$project"); do
			podman healthcheck run "$c" >/dev/null 2>&1
		done
		sleep 2
	done
}
healthy() { [ "$(podman inspect --format '{{.State.Health.Status}}' "$(cid "$1")")" = healthy ]; }

t_compose_up() {
	local s
	# The carrier (and a native PBX, stopped here: the containerized PBX takes
	# its ports, so the carrier's trunk reaches it).
	bash e2e/stack.sh down >/dev/null 2>&1
	bash e2e/stack.sh up --no-ariflow || return 1
	local pid
	pid=$(cat "$ARIFLOW_STACK_DIR/pbx.pid")
	kill -TERM -- "-$pid" 2>/dev/null || true
	until_ok 10 sh -c "! kill -0 $pid" || fail "the native PBX did not stop"
	until_ok 10 sh -c "! ss -Hlun 'sport = :$ARIFLOW_CTR_SIP_PORT' | grep -q ." || fail "SIP port still taken"
	test_config || return 1
	s=$SECONDS
	compose up -d || return 1
	report "docker-compose up -d: healthy and started in $((SECONDS - s)) s"
	for svc in asterisk redis ariflow; do
		until_ok 60 healthy "$svc" || fail "$svc is not healthy"
	done
	local body
	body=$(curl -fsS -m 2 "http://127.0.0.1:$ARIFLOW_CTR_HEALTH_PORT/readyz") || fail "/readyz did not answer 200 on 127.0.0.1:$ARIFLOW_CTR_HEALTH_PORT"
	report "/readyz on 127.0.0.1:$ARIFLOW_CTR_HEALTH_PORT: $body"
	# The demo's view of this deployment: the carrier from the stack, the
	# PBX, Redis and ariflow from the compose project.
	grep -E '^ARIFLOW_STACK_(DIR|LOGS|ROOT|CARRIER_)' "$ARIFLOW_STACK_DIR/stack.env" >"$CTR/stack.env"
	cat >>"$CTR/stack.env" <<EOF
ARIFLOW_STACK_PBX_ARI_URL=http://127.0.0.1:$ARIFLOW_CTR_ARI_PORT/ari
ARIFLOW_STACK_PBX_ARI_USER=ariflow
ARIFLOW_STACK_PBX_ARI_PASSWORD=$password
ARIFLOW_STACK_PBX_SIP=127.0.0.1:$ARIFLOW_CTR_SIP_PORT
ARIFLOW_STACK_REDIS_URL=redis://127.0.0.1:$ARIFLOW_CTR_REDIS_PORT/0
ARIFLOW_STACK_HEALTH_ADDR=127.0.0.1:$ARIFLOW_CTR_HEALTH_PORT
EOF
	chmod 0600 "$CTR/stack.env"
}

t_wrong_secret() {
	local pw out rc
	for pw in ariflow "wrong-$password"; do
		printf '%s\n' "$pw" >"$CTR/wrong_password"
		chmod 0644 "$CTR/wrong_password"
		out=$(timeout 60 podman run --rm --no-healthcheck --network host -v "$CTR/wrong_password:/run/secrets/ari_password:ro" \
			-e ARIFLOW_ARI_URL="http://127.0.0.1:$ARIFLOW_CTR_ARI_PORT/ari" -e ARIFLOW_ARI_PASSWORD_FILE=/run/secrets/ari_password \
			-e ARIFLOW_REDIS_URL="redis://127.0.0.1:$ARIFLOW_CTR_REDIS_PORT/0" -e ARIFLOW_HTTP_ADDR="127.0.0.1:$((BASE + 91))" \
			ariflow:latest run 2>&1) && rc=0 || rc=$?
		echo "password ${pw:0:7}…: exit $rc: $out"
		if [ "$pw" = ariflow ]; then
			# Too short to be a secret: refused at start, before any request.
			[ $rc = 2 ] || fail "ariflow with a short secret exited $rc, want 2"
			grep -q 'at least 12 needed' <<<"$out" || fail "no clear error for a short secret"
			continue
		fi
		[ $rc = 1 ] || fail "ariflow with a wrong secret exited $rc, want 1"
		grep -q 'ARI refused the credentials' <<<"$out" || fail "no clear error for a wrong secret"
		[ "$pw" = ariflow ] || ! grep -qF "$pw" <<<"$out" || fail "the error shows the password"
	done
	report "wrong secret: $(tail -1 <<<"$out")"
}

t_seed_call() {
	ARIFLOW_STACK_ENV=$CTR/stack.env go run ./e2e/demo | tee "$CTR/timeline" || return 1
	echo
	echo "ariflow's own log of the call (podman logs):"
	podman logs "$(cid ariflow)" 2>&1 | grep -E '"msg":"(call entered|step|transfer|input collected|call ended)' |
		sed -E 's/"(channel|entry|version|flow|time)":"[^"]*",?//g'
	grep -q 'IVR received DTMF "4711"' "$CTR/timeline" || fail "the shipper's IVR did not get the tracking number"
	grep -q 'agent    rings' "$CTR/timeline" || fail "the caller never reached the agent"
}

reloads() { podman logs "$(cid ariflow)" 2>&1 | grep -c '"msg":"flows reloaded"' || true; }
t_reload() {
	local before out
	before=$(reloads)
	compose kill -s HUP ariflow || return 1
	until_ok 10 sh -c "[ \$(podman logs $(cid ariflow) 2>&1 | grep -c '\"msg\":\"flows reloaded\"') -gt $before ]" ||
		fail "no 'flows reloaded' after SIGHUP"
	out=$(compose exec -T ariflow /ariflow reload) || fail "ariflow reload failed: $out"
	[ "$out" = reloaded ] || fail "ariflow reload said '$out'"
	[ "$(reloads)" -ge $((before + 2)) ] || fail "the reload command was not logged"
	healthy ariflow || fail "ariflow unhealthy after reloads"
	report "reload: docker-compose kill -s HUP ariflow, and docker-compose exec ariflow /ariflow reload"
}

# A health check that checks: ariflow turns unhealthy while Redis is down,
# and healthy again once it is back.
t_health_checks() {
	local a
	a=$(cid ariflow)
	compose stop redis || return 1
	until_ok 20 sh -c "! podman healthcheck run $a" || fail "ariflow's health check passed with Redis stopped"
	compose start redis || return 1
	until_ok 30 healthy redis || fail "redis not healthy again"
	until_ok 30 podman healthcheck run "$a" || fail "ariflow not healthy again with Redis back"
	until_ok 10 healthy ariflow || fail "ariflow's health status did not recover"
}

t_secret_not_leaked() {
	local c img hits
	podman exec "$(cid asterisk)" cat /run/secrets/ari_password | grep -qxF "$password" ||
		fail "the secret in the container is not this run's (the grep below would prove nothing)"
	hits=0
	for c in $(podman ps -aq --filter "label=com.docker.compose.project=$project"); do
		podman inspect "$c" | grep -qF "$password" && { echo "in podman inspect $c"; hits=1; }
	done
	for img in ariflow:latest ariflow-asterisk:latest; do
		podman image inspect "$img" | grep -qF "$password" && { echo "in podman image inspect $img"; hits=1; }
		podman history --no-trunc "$img" | grep -qF "$password" && { echo "in podman history $img"; hits=1; }
		rm -f "$CTR/image.tar"
		podman save -q --format docker-archive -o "$CTR/image.tar" "$img" || return 1
		grep -aqF "$password" "$CTR/image.tar" && { echo "in the layers of $img"; hits=1; }
		rm -f "$CTR/image.tar"
	done
	compose config | grep -qF "$password" && { echo "in docker-compose config"; hits=1; }
	[ $hits = 0 ] || fail "the ARI password leaked"
}

t_compose_down() {
	compose down -v || return 1
	local left
	left=$(podman ps -aq --filter "label=com.docker.compose.project=$project"; podman network ls -q | grep "^${project}_" || true; podman volume ls -q | grep "^${project}_" || true)
	[ -z "$left" ] || fail "left after compose down: $left"
}

run images t_images
run ariflow-image t_ariflow_image
run asterisk-image t_asterisk_image
run sample-password-refused t_sample_password_refused
health_ticker &
ticker_pid=$!
run compose-up t_compose_up
if healthy ariflow 2>/dev/null; then
	run wrong-secret t_wrong_secret
	run seed-call t_seed_call
	run reload t_reload
	run health-checks t_health_checks
	run secret-not-leaked t_secret_not_leaked
fi
run compose-down t_compose_down
if [ -f "$CTR/logs/seed-call.log" ]; then
	echo "== the seed call through the containers (PBX, Redis and ariflow from docker-compose.yml)"
	cat "$CTR/logs/seed-call.log"
fi
log "$passed passed, $failed failed in $((SECONDS - started)) s"
[ $failed = 0 ]
