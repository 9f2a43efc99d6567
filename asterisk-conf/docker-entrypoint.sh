#!/bin/sh
# Writes the ARI password, from the same secret ariflow reads, into the file
# ari.conf includes in the image (see Dockerfile), then runs Asterisk.
# The secret is one line; use letters and digits (openssl rand -hex 24).
set -eu
secret="${ARI_PASSWORD_FILE:-/run/secrets/ari_password}"
if [ ! -f "$secret" ] || [ ! -r "$secret" ]; then
	echo "asterisk: no readable ARI password file at $secret" >&2
	exit 1
fi
password="$(head -n 1 "$secret" | tr -d '\r')"
if [ -z "$password" ]; then
	echo "asterisk: the ARI password file $secret is empty" >&2
	exit 1
fi
if [ "$password" = ariflow ]; then
	echo "asterisk: the ARI password is still the sample \"ariflow\"; set your own" >&2
	exit 1
fi
umask 077
# ';' starts a comment in Asterisk's configuration files.
printf 'password = %s\n' "$(printf '%s' "$password" | sed 's/;/\\;/g')" \
	>/var/lib/asterisk/ari-password.conf
exec "$@"
