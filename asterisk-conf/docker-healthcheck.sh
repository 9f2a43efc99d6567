#!/bin/sh
# Asterisk's health check, through the CLI control socket: fully booted,
# the HTTP server (ARI) bound, ARI loaded, and the trunk's endpoint known to
# PJSIP. Each command is a round trip to the running process, so a hung
# Asterisk fails too.
set -eu
asterisk -rx 'core waitfullybooted' | grep -q 'fully booted'
asterisk -rx 'http show status' | grep -q 'Server Enabled and Bound to'
asterisk -rx 'module show like res_ari.so' | grep -q 'Running'
asterisk -rx 'pjsip show endpoint trunk' | grep -q 'Endpoint:  *trunk'
