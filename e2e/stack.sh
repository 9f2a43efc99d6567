#!/usr/bin/env bash
# The ariflow test stack: two Asterisk 22 instances (the PBX ariflow controls
# and a carrier playing the outside world) joined by a PJSIP trunk over
# loopback, a Redis server, and ariflow built from the working tree.
#
#   e2e/stack.sh up [--no-ariflow] [--flows DIR]   start; writes $DIR/stack.env
#   e2e/stack.sh down                               stop everything, remove $DIR
#   e2e/stack.sh status                             what runs, where it listens
#   e2e/stack.sh cli pbx|carrier 'core show channels'
#   e2e/stack.sh root                               build the Asterisk root if missing
#   e2e/stack.sh redis-restart                      restart Redis on its data (fault tests)
#   e2e/stack.sh pbx-restart                        kill and restart the PBX Asterisk (fault tests)
#
# Environment:
#   ARIFLOW_STACK_DIR        where everything lives (default /tmp/ariflow-stack)
#   ARIFLOW_STACK_PORT_BASE  first port of the block used (default 25000)
#   ARIFLOW_ASTERISK_ROOT    cached root file system (default /var/cache/ariflow/asterisk-root)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
STACK=${ARIFLOW_STACK_DIR:-/tmp/ariflow-stack}
BASE=${ARIFLOW_STACK_PORT_BASE:-25000}
ROOT=${ARIFLOW_ASTERISK_ROOT:-/var/cache/ariflow/asterisk-root}

PBX_IP=127.0.0.1
CARRIER_IP=127.0.0.2
PBX_SIP=$((BASE + 60))
PBX_HTTP=$((BASE + 88))
CARRIER_SIP=$((BASE + 70))
CARRIER_HTTP=$((BASE + 89))
REDIS_PORT=$((BASE + 79))
HEALTH_PORT=$((BASE + 90))
PBX_RTP_START=$((BASE + 1000))
CARRIER_RTP_START=$((BASE + 3000))

starting=0
die() {
	echo "stack: $*" >&2
	# A failed start leaves nothing running; the logs stay for reading.
	[ $starting = 1 ] && down_quiet
	exit 1
}
log() { echo "stack: $*" >&2; }

# build_root makes the Asterisk root file system once; later runs reuse it.
build_root() {
	[ -x "$ROOT/usr/sbin/asterisk" ] && [ -d "$ROOT/usr/share/asterisk/sounds/en_US_f_Allison" ] && return 0
	command -v debootstrap >/dev/null || die "debootstrap is not installed (apt-get install debootstrap)"
	log "building the Asterisk root in $ROOT (Debian sid, about a minute)"
	rm -rf "$ROOT.tmp"
	mkdir -p "$(dirname "$ROOT")"
	if ! debootstrap --variant=minbase --include=asterisk,asterisk-core-sounds-en-gsm sid "$ROOT.tmp" >"$(dirname "$ROOT")/debootstrap.log" 2>&1; then
		tail -20 "$(dirname "$ROOT")/debootstrap.log" >&2
		die "debootstrap failed; log: $(dirname "$ROOT")/debootstrap.log"
	fi
	rm -rf "$ROOT"
	mv "$ROOT.tmp" "$ROOT"
}

port_taken() { # proto port ip
	local flag=-ltn
	[ "$1" = udp ] && flag=-lun
	ss -H "$flag" "sport = :$2" 2>/dev/null | grep -q .
}

preflight() {
	[ "$(id -u)" = 0 ] || die "must run as root (unshare and chroot need it)"
	for c in unshare chroot ss redis-server go curl nsenter; do
		command -v "$c" >/dev/null || die "$c is not installed (see .ci/run for the packages)"
	done
	[ -e "$STACK/stack.env" ] && die "a stack is already up in $STACK (run: e2e/stack.sh down)"
	local p
	for p in $PBX_HTTP $CARRIER_HTTP $REDIS_PORT $HEALTH_PORT; do
		port_taken tcp "$p" && die "TCP port $p is taken; set ARIFLOW_STACK_PORT_BASE to a free block"
	done
	for p in $PBX_SIP $CARRIER_SIP; do
		port_taken udp "$p" && die "UDP port $p is taken; set ARIFLOW_STACK_PORT_BASE to a free block"
	done
	return 0
}

# make_instance writes one Asterisk's configuration into $STACK/<name>.
make_instance() {
	local name=$1 entity=$2 http=$3 rtp=$4 password=$5 user=$6
	local d=$STACK/$name
	mkdir -p "$d/etc" "$d/run" "$d/log" "$d/lib" "$d/spool" "$d/cache"
	cp "$repo"/asterisk-conf/*.conf "$d/etc/"
	sed -i \
		-e "s#^astetcdir => .*#astetcdir => /instance/etc#" \
		-e "s#^astvarlibdir => .*#astvarlibdir => /instance/lib#" \
		-e "s#^astdbdir => .*#astdbdir => /instance/lib#" \
		-e "s#^astkeydir => .*#astkeydir => /instance/lib#" \
		-e "s#^astspooldir => .*#astspooldir => /instance/spool#" \
		-e "s#^astrundir => .*#astrundir => /instance/run#" \
		-e "s#^astlogdir => .*#astlogdir => /instance/log#" \
		-e "s#^astcachedir => .*#astcachedir => /instance/cache#" \
		-e "s#^entityid = .*#entityid = $entity#" \
		-e "s#^systemname = .*#systemname = $name#" \
		"$d/etc/asterisk.conf"
	sed -i -e "s#^bindport = .*#bindport = $http#" "$d/etc/http.conf"
	sed -i -e "s#^rtpstart = .*#rtpstart = $rtp#" -e "s#^rtpend = .*#rtpend = $((rtp + 1998))#" "$d/etc/rtp.conf"
	if [ "$name" = carrier ]; then
		local f
		for f in pjsip.conf extensions.conf ari.conf; do
			sed -e "s#@CARRIER_IP@#$CARRIER_IP#g" -e "s#@CARRIER_SIP@#$CARRIER_SIP#g" \
				-e "s#@PBX_IP@#$PBX_IP#g" -e "s#@PBX_SIP@#$PBX_SIP#g" \
				-e "s#@CARRIER_ARI_PASSWORD@#$password#g" \
				"$here/carrier-conf/$f" >"$d/etc/$f"
		done
	else
		sed -i -e "s#^bind = .*#bind = $PBX_IP:$PBX_SIP#" \
			-e "s#^contact = .*#contact = sip:$CARRIER_IP:$CARRIER_SIP#" \
			-e "s#^match = .*#match = $CARRIER_IP#" \
			-e "s#^media_address = .*#media_address = $PBX_IP#" "$d/etc/pjsip.conf"
		sed -i -e "s#^password = .*#password = $password#" -e "s#^\[ariflow\]#[$user]#" "$d/etc/ari.conf"
		cat "$here/pbx-bench.conf" "$here/pbx-e2e.conf" >>"$d/etc/extensions.conf"
		sed -e "s#@PBX_IP@#$PBX_IP#g" -e "s#@CARRIER_IP@#$CARRIER_IP#g" -e "s#@CARRIER_SIP@#$CARRIER_SIP#g" \
			"$here/pbx-e2e-pjsip.conf" >>"$d/etc/pjsip.conf"
	fi
}

start_asterisk() {
	local name=$1
	mkdir -p "$ROOT/instance"
	# The root's resolv.conf was copied from the host; point name lookups at
	# loopback so that nothing in the stack talks to another host.
	echo "nameserver 127.0.0.1" >"$STACK/resolv.conf"
	# A private mount and PID namespace: the bind mounts vanish with the
	# process, and killing the namespace's init ends every Asterisk thread.
	setsid unshare --mount --pid --fork --kill-child=SIGKILL --mount-proc="$ROOT/proc" \
		sh -c "mount --bind /dev '$ROOT/dev' && mount --bind '$STACK/$name' '$ROOT/instance' && mount --bind '$STACK/resolv.conf' '$ROOT/etc/resolv.conf' && exec chroot '$ROOT' /usr/sbin/asterisk -f -C /instance/etc/asterisk.conf" \
		>"$STACK/logs/$name.log" 2>&1 </dev/null &
	echo $! >"$STACK/$name.pid"
}

wait_ari() { # name url user password
	local i
	for i in $(seq 1 150); do
		if curl -fsS -m 2 -u "$3:$4" "$2/endpoints/PJSIP" 2>/dev/null | grep -q '"resource"'; then
			return 0
		fi
		kill -0 "$(cat "$STACK/$1.pid")" 2>/dev/null || { tail -30 "$STACK/logs/$1.log" >&2; die "$1 Asterisk exited; logs in $STACK/logs"; }
		sleep 0.2
	done
	tail -30 "$STACK/logs/$1.log" >&2
	die "$1 ARI did not answer at $2 within 30 s; logs in $STACK/logs"
}

# Redis as the README recommends for ariflow: append-only persistence, so
# that a restart keeps the call records (fsync always here: the fault tests
# restart it mid-call and expect no write lost; everysec loses at most a
# second of writes).
# DEBUG (the fault tests' DEBUG SLEEP) is refused by Redis 7 unless
# enable-debug-command allows it; Redis 6 has no such option.
start_redis() {
	local debug=()
	if redis-server --version | grep -qE 'v=([7-9]|[1-9][0-9])\.'; then
		debug=(--enable-debug-command local)
	fi
	setsid redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly yes --appendfsync always \
		"${debug[@]}" --dir "$STACK/redis" --logfile "$STACK/logs/redis.log" </dev/null >/dev/null 2>&1 &
	echo $! >"$STACK/redis.pid"
	local i
	for i in $(seq 1 50); do
		redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	die "redis did not answer on 127.0.0.1:$REDIS_PORT"
}

start_ariflow() {
	local flows=$1
	# shellcheck disable=SC1091
	. "$STACK/stack.env"
	# The admin token for POST /-/reload (ariflow reload reads the same file).
	[ -s "$STACK/admin-token" ] || (umask 077 && head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$STACK/admin-token")
	ARIFLOW_ARI_URL=$ARIFLOW_STACK_PBX_ARI_URL ARIFLOW_ARI_USER=$ARIFLOW_STACK_PBX_ARI_USER \
		ARIFLOW_ARI_PASSWORD_FILE=$STACK/pbx-ari-password ARIFLOW_REDIS_URL=$ARIFLOW_STACK_REDIS_URL \
		ARIFLOW_FLOWS=$flows ARIFLOW_HTTP_ADDR=127.0.0.1:$HEALTH_PORT ARIFLOW_DIAL_TEMPLATE='PJSIP/{number}@trunk' \
		ARIFLOW_FALLBACK=ariflow-fallback ARIFLOW_ADMIN_TOKEN_FILE=$STACK/admin-token \
		setsid "$STACK/bin/ariflow" run >"$STACK/logs/ariflow.log" 2>&1 </dev/null &
	echo $! >"$STACK/ariflow.pid"
	local i
	for i in $(seq 1 100); do
		curl -fsS -m 1 "http://127.0.0.1:$HEALTH_PORT/readyz" >/dev/null 2>&1 && return 0
		kill -0 "$(cat "$STACK/ariflow.pid")" 2>/dev/null || { tail -20 "$STACK/logs/ariflow.log" >&2; die "ariflow exited; logs in $STACK/logs"; }
		sleep 0.1
	done
	die "ariflow not ready within 10 s; logs in $STACK/logs"
}

up() {
	local with_ariflow=1 flows=$repo/flows/examples
	while [ $# -gt 0 ]; do
		case $1 in
		--no-ariflow) with_ariflow=0 ;;
		--flows) flows=$(cd "$2" && pwd); shift ;;
		*) die "unknown option $1" ;;
		esac
		shift
	done
	preflight
	build_root
	mkdir -p "$STACK/logs" "$STACK/bin" "$STACK/redis"
	starting=1
	trap 'die "start failed at line $LINENO"' ERR

	local pbx_pw carrier_pw
	pbx_pw=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
	carrier_pw=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
	printf '%s' "$pbx_pw" >"$STACK/pbx-ari-password"
	chmod 600 "$STACK/pbx-ari-password"

	if [ $with_ariflow = 1 ]; then
		log "building ariflow"
		(cd "$repo" && go build -o "$STACK/bin/ariflow" ./cmd/ariflow) || die "go build failed"
	fi

	make_instance pbx 02:00:00:a1:f1:01 "$PBX_HTTP" "$PBX_RTP_START" "$pbx_pw" ariflow
	make_instance carrier 02:00:00:a1:f1:02 "$CARRIER_HTTP" "$CARRIER_RTP_START" "$carrier_pw" carrier

	start_redis
	start_asterisk pbx
	start_asterisk carrier

	cat >"$STACK/stack.env" <<EOF
# Written by e2e/stack.sh up; read by the e2e tests, the demo and the benchmark.
ARIFLOW_STACK_DIR=$STACK
ARIFLOW_STACK_LOGS=$STACK/logs
ARIFLOW_STACK_ROOT=$ROOT
ARIFLOW_STACK_ARIFLOW_BIN=$STACK/bin/ariflow
ARIFLOW_STACK_PBX_ARI_URL=http://$PBX_IP:$PBX_HTTP/ari
ARIFLOW_STACK_PBX_ARI_USER=ariflow
ARIFLOW_STACK_PBX_ARI_PASSWORD=$pbx_pw
ARIFLOW_STACK_PBX_SIP=$PBX_IP:$PBX_SIP
ARIFLOW_STACK_CARRIER_ARI_URL=http://127.0.0.1:$CARRIER_HTTP/ari
ARIFLOW_STACK_CARRIER_ARI_USER=carrier
ARIFLOW_STACK_CARRIER_ARI_PASSWORD=$carrier_pw
ARIFLOW_STACK_CARRIER_SIP=$CARRIER_IP:$CARRIER_SIP
ARIFLOW_STACK_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0
ARIFLOW_STACK_HEALTH_ADDR=127.0.0.1:$HEALTH_PORT
EOF
	wait_ari pbx "http://$PBX_IP:$PBX_HTTP/ari" ariflow "$pbx_pw"
	wait_ari carrier "http://127.0.0.1:$CARRIER_HTTP/ari" carrier "$carrier_pw"
	redis-cli -p "$REDIS_PORT" ping >/dev/null || die "redis did not answer on 127.0.0.1:$REDIS_PORT"
	if [ $with_ariflow = 1 ]; then
		start_ariflow "$flows"
	fi
	trap - ERR
	starting=0
	log "up: $(asterisk_version pbx); env in $STACK/stack.env; logs in $STACK/logs"
}

asterisk_version() {
	# shellcheck disable=SC1091
	. "$STACK/stack.env"
	curl -fsS -m 2 -u "$ARIFLOW_STACK_PBX_ARI_USER:$ARIFLOW_STACK_PBX_ARI_PASSWORD" \
		"$ARIFLOW_STACK_PBX_ARI_URL/asterisk/info" | sed -n 's/.*"version":"\([^"]*\)".*/Asterisk \1/p'
}

stop_pid() { # file
	local f=$1 pid i
	[ -f "$f" ] || return 0
	pid=$(cat "$f")
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
		for i in $(seq 1 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL -- "-$pid" 2>/dev/null || true
	fi
	rm -f "$f"
}

down_quiet() {
	stop_pid "$STACK/ariflow.pid"
	stop_pid "$STACK/pbx.pid"
	stop_pid "$STACK/carrier.pid"
	stop_pid "$STACK/redis.pid"
	rm -f "$STACK/stack.env"
}

down() {
	[ -d "$STACK" ] || { log "nothing to stop in $STACK"; return 0; }
	down_quiet
	if [ "${ARIFLOW_STACK_KEEP_LOGS:-}" != "" ]; then
		rm -rf "$STACK/pbx" "$STACK/carrier" "$STACK/redis" "$STACK/bin"
		log "down; logs kept in $STACK/logs"
	else
		rm -rf "$STACK"
		log "down"
	fi
}

# cli runs an Asterisk CLI command inside an instance's namespaces.
cli() {
	local name=$1
	shift
	local pid child
	pid=$(cat "$STACK/$name.pid")
	child=$(pgrep -P "$pid" | head -1)
	[ -n "$child" ] || die "$name is not running"
	nsenter -t "$child" -m -p chroot "$ROOT" /usr/sbin/asterisk -C /instance/etc/asterisk.conf -rx "$*"
}

status() {
	[ -f "$STACK/stack.env" ] || { echo "no stack in $STACK"; return 1; }
	cat "$STACK/stack.env"
	local f
	for f in "$STACK"/*.pid; do
		kill -0 "$(cat "$f")" 2>/dev/null && echo "$(basename "$f" .pid): running" || echo "$(basename "$f" .pid): NOT running"
	done
}

cmd=${1:-}
[ $# -gt 0 ] && shift
# redis-restart: the fault tests' Redis restart (SIGTERM, which writes the
# append-only file, then start again on the same data).
redis_restart() {
	[ -f "$STACK/redis.pid" ] || die "no Redis running in $STACK"
	stop_pid "$STACK/redis.pid"
	start_redis
}

# pbx-restart: the PBX Asterisk killed and started again (every channel and
# bridge gone), for the fault tests.
pbx_restart() {
	[ -f "$STACK/pbx.pid" ] || die "no PBX running in $STACK"
	# shellcheck disable=SC1091
	. "$STACK/stack.env"
	stop_pid "$STACK/pbx.pid"
	start_asterisk pbx
	wait_ari pbx "$ARIFLOW_STACK_PBX_ARI_URL" "$ARIFLOW_STACK_PBX_ARI_USER" "$ARIFLOW_STACK_PBX_ARI_PASSWORD"
}

case $cmd in
up) up "$@" ;;
redis-restart) redis_restart ;;
pbx-restart) pbx_restart ;;
down) down ;;
status) status ;;
cli) cli "$@" ;;
root) build_root ;;
*) echo "usage: $0 up [--no-ariflow] [--flows DIR] | down | status | cli pbx|carrier CMD | root | redis-restart | pbx-restart" >&2; exit 2 ;;
esac
