#!/usr/bin/env bash
# bench/ab-flush.sh: a quick A/B of queue flushes between handoff builds,
# for trying a change before a full bench/run.sh.
#
# Usage (as root; smtp-sink, or any SMTP sink, listening on SINK):
#
#   bash bench/ab-flush.sh DIR...
#
# Each DIR holds a handoff binary named handoff (build one with
# `CGO_ENABLED=0 go build -trimpath -o DIR/handoff ./cmd/handoff`). For
# each of ROUNDS rounds and each DIR in turn: a queue of MSGS messages is
# filled (the 2 KB message of bench/run.sh, `sendmail -t -i -odq` with the
# first DIR's binary, so the queues are alike; with FILL_EACH=1, with
# DIR's own, to compare queue formats), then DIR's binary flushes it
# (`sendmail -q`), timed from start to exit. Prints one line per flush:
# the DIR, the seconds of the fill, the seconds of the flush, and the
# items left (0 when all went).
# Only the ratios between DIRs within one run mean anything on a shared
# machine.
#
# Environment: SINK=127.0.0.1:25251, CONNS=4 (connections_per_relay),
# MSGS=1000, ROUNDS=3, QUEUE=/var/tmp/handoff-ab/queue (put it on the file
# system to measure), MESSAGE=/var/tmp/handoff-bench/msg-2k.eml (made by
# bench/run.sh; any message with a To: header will do).
set -euo pipefail

SINK=${SINK:-127.0.0.1:25251}
CONNS=${CONNS:-4}
MSGS=${MSGS:-1000}
ROUNDS=${ROUNDS:-3}
QUEUE=${QUEUE:-/var/tmp/handoff-ab/queue}
MESSAGE=${MESSAGE:-/var/tmp/handoff-bench/msg-2k.eml}
FILL_EACH=${FILL_EACH:-0}

die() {
	echo "ab-flush: $*" >&2
	exit 1
}
(($# > 0)) || die "usage: bash bench/ab-flush.sh DIR... (see the top of this file)"
[[ -r $MESSAGE ]] || die "no message at $MESSAGE (run SHORT=1 bash bench/run.sh once, or set MESSAGE)"
for d in "$@"; do
	[[ -x $d/handoff ]] || die "$d/handoff is not an executable"
	ln -sfn handoff "$d/sendmail"
done

work=$(dirname "$QUEUE")
mkdir -p "$work"
cfg=$work/ab-flush.toml
cat >"$cfg" <<EOF
hostname = "bench.example.com"
domain = "example.com"

[queue]
dir = "$QUEUE"
connections_per_relay = $CONNS
messages_per_connection = $MSGS

[daemon]
socket = "$work/no-daemon.sock"

[[relay]]
name = "sink"
url = "smtp://$SINK"
starttls = "none"
EOF
export HANDOFF_CONFIG=$cfg HANDOFF_STANDALONE=1
"$1/handoff" config check -C "$cfg" >/dev/null || die "handoff rejects $cfg"

for ((r = 1; r <= ROUNDS; r++)); do
	for d in "$@"; do
		rm -rf "$QUEUE"
		fill=$1
		((FILL_EACH)) && fill=$d
		f0=${EPOCHREALTIME//[.,]/}
		for ((i = 0; i < MSGS; i++)); do
			"$fill/sendmail" -t -i -odq <"$MESSAGE" || die "enqueue failed"
		done
		f1=${EPOCHREALTIME//[.,]/}
		sync
		t0=${EPOCHREALTIME//[.,]/}
		"$d/sendmail" -q || echo "ab-flush: $d: sendmail -q exited $?" >&2
		t1=${EPOCHREALTIME//[.,]/}
		left=$(find "$QUEUE/env" -type f | wc -l)
		printf '%s fill %d.%06d s flush %d.%06d s left=%d\n' "$d" $(((f1 - f0) / 1000000)) $(((f1 - f0) % 1000000)) \
			$(((t1 - t0) / 1000000)) $(((t1 - t0) % 1000000)) "$left"
	done
done
