#!/usr/bin/env bash
# The base images the shipped Dockerfiles and docker-compose.yml name, made
# locally: CI has no registry to pull them from. These are the ONLY
# substitutions between what CI builds and what users build; everything
# else (Dockerfiles, compose file, build contexts) is the shipped one.
#
#   debian:sid-slim  a plain Debian sid minbase root (debootstrap, cached in
#                    /var/cache/ariflow/debian-sid-root)
#   golang:1.26      the same root + this host's Go toolchain (/usr/local/go)
#                    and CA bundle, laid out like the official image
#                    (GOPATH=/go, PATH, WORKDIR /go)
#   busybox:stable   Debian's busybox-static with its applet links
#   redis:7          debian:sid-slim + Debian's redis-server, run as redis in
#                    /data like the official image
#
# Each image is made once and kept; `e2e/images.sh --force` remakes them.
# Needs root, podman (CONTAINERS_CONF=e2e/containers/containers.conf),
# debootstrap and busybox-static; e2e/containers/test.sh installs them.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export CONTAINERS_CONF=${CONTAINERS_CONF:-$here/containers/containers.conf}
ROOT=${ARIFLOW_DEBIAN_ROOT:-/var/cache/ariflow/debian-sid-root}
GOROOT_HOST=${ARIFLOW_HOST_GOROOT:-/usr/local/go}
CA_BUNDLE=${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}
# The sid snapshot the CI mirror serves is past its Valid-Until date; users'
# builds never need this (see the Dockerfiles' APT_OPTIONS argument).
APT_OPTIONS=${ARIFLOW_APT_OPTIONS:--o Acquire::Check-Valid-Until=false}
force=0
[ "${1:-}" = --force ] && force=1

log() { echo "images: $*" >&2; }
have() { [ $force = 0 ] && podman image exists "localhost/$1"; }
timed() { # name cmd...
	local s=$SECONDS
	"${@:2}"
	log "$1 made in $((SECONDS - s)) s"
}

debian_root() {
	[ -x "$ROOT/usr/bin/apt-get" ] && return 0
	log "debootstrap of Debian sid (minbase) into $ROOT"
	rm -rf "$ROOT.tmp"
	mkdir -p "$(dirname "$ROOT")"
	if ! debootstrap --variant=minbase sid "$ROOT.tmp" >"$ROOT.log" 2>&1; then
		tail -20 "$ROOT.log" >&2
		log "debootstrap failed; log: $ROOT.log"
		return 1
	fi
	mv "$ROOT.tmp" "$ROOT"
}

debian() {
	debian_root
	# As the official slim image: no apt lists, no host resolv.conf baked in.
	tar -C "$ROOT" --exclude=./var/lib/apt/lists/* --exclude=./var/cache/apt/archives/*.deb \
		--exclude=./etc/resolv.conf --exclude=./proc/* --exclude=./sys/* --exclude=./dev/* -c . |
		podman import -q --change 'CMD ["bash"]' - localhost/debian:sid-slim >/dev/null
}

golang() {
	# No network needed: the root, the toolchain and the CA bundle in one
	# layer. The bundle is this host's: the module proxy is reached through
	# whatever this machine trusts (the official image has Debian's bundle).
	local d
	d=$(mktemp -d)
	mkdir -p "$d/etc/ssl/certs" "$d/go/bin" "$d/go/src"
	cp "$CA_BUNDLE" "$d/etc/ssl/certs/ca-certificates.crt"
	tar -c -C "$ROOT" --exclude=./var/lib/apt/lists/* --exclude=./etc/resolv.conf \
		--exclude=./proc/* --exclude=./sys/* --exclude=./dev/* . \
		-C "$d" ./etc/ssl/certs/ca-certificates.crt ./go \
		-C "$(dirname "$GOROOT_HOST")" --transform "s,^$(basename "$GOROOT_HOST"),usr/local/go," "$(basename "$GOROOT_HOST")" |
		podman import -q --change 'ENV GOPATH=/go' \
			--change 'ENV PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
			--change 'WORKDIR /go' --change 'CMD ["bash"]' - localhost/golang:1.26 >/dev/null
	rm -rf "$d"
}

busybox() {
	local d
	d=$(mktemp -d)
	mkdir -p "$d/bin" "$d/etc" "$d/tmp" "$d/root"
	chmod 1777 "$d/tmp"
	cp /usr/bin/busybox "$d/bin/busybox"
	local a
	for a in $("$d/bin/busybox" --list); do
		[ "$a" = busybox ] || ln -s busybox "$d/bin/$a"
	done
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n' >"$d/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$d/etc/group"
	tar -C "$d" -c . | podman import -q --change 'CMD ["sh"]' - localhost/busybox:stable >/dev/null
	rm -rf "$d"
}

redis() {
	podman build -q -t localhost/redis:7 --build-arg "APT_OPTIONS=$APT_OPTIONS" -f - "$here/containers" >/dev/null <<'EOF'
FROM debian:sid-slim
ARG APT_OPTIONS=
RUN apt-get $APT_OPTIONS update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server redis-tools \
 && rm -rf /var/lib/apt/lists/* \
 && install -d -o redis -g redis /data
VOLUME /data
WORKDIR /data
USER redis
EXPOSE 6379
CMD ["redis-server"]
EOF
}

have debian:sid-slim || timed debian:sid-slim debian
have golang:1.26 || timed golang:1.26 golang
have busybox:stable || timed busybox:stable busybox
have redis:7 || timed redis:7 redis
podman images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E '/(debian:sid-slim|golang:1.26|busybox:stable|redis:7) ' >&2
