#!/bin/sh
# Test helper for the robust suite's out-of-descriptors case (case 8): runs a lab's entry under
# `prlimit --nofile=N:N`, soft and hard limit alike, so Node cannot raise it again at start-up.
#
# Called through harness/launch.ts's startExecutable, which puts `--port 0` first:
#   with-fd-limit.sh --port 0 NOFILE NODE ENTRY [LAB FLAGS...]
# Each step execs the next, so the pid the test holds is the server's own pid.
set -eu
port_flag=$1
port=$2
nofile=$3
node=$4
entry=$5
shift 5
exec prlimit --nofile="$nofile:$nofile" -- "$node" "$entry" "$port_flag" "$port" "$@"
