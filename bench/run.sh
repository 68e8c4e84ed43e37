#!/usr/bin/env bash
# bench/run.sh: handoff side by side with msmtp, nullmailer and the
# loopback limits (Postfix's smtp-source, a static Go exec), on one machine.
#
# Usage (as root, from anywhere; Debian 12, Go on PATH):
#
#   bash bench/run.sh           # full run (about 5 minutes on 2 cores):
#                               # writes bench/results.md and bench/results.svg
#   SHORT=1 bash bench/run.sh   # short run that only proves the script works
#                               # (few rounds, 100 messages, 10 MiB; 15 s, about
#                               # a minute with an empty Go build cache);
#                               # writes $BENCH_WORK/short/results.{md,svg}
#   REV=HEAD bash bench/run.sh  # handoff built from the last commit
#   bash bench/run.sh -h        # this text
#
# For a quick A/B of queue flushes between builds before a full run, see
# bench/ab-flush.sh.
#
# Settings, all from the environment (default of a full run / of SHORT=1):
#   N=200/3        measured sendmail calls per tool in figures 1, 1b and 2
#   WARMUP=3/1     unrecorded rounds before them
#   BIG_N=7/1      measured runs per tool of the big message (figure 4)
#   BIG_MB=100/10  size of that message in MiB
#   MSGS=1000/100  messages enqueued and flushed (figure 3) and submitted
#                  in parallel (figure 5)
#   CONNS="1 2 4"  the connections of figure 3: handoff's connections_per_relay
#                  and smtp-source's -s
#   FLUSH_N=5/1    rounds of figure 3 (each: enqueue MSGS per queue, then
#                  flush each, for every value of CONNS)
#   PAR=50         parallel submitters of figure 5
#   PAR_N=5/1      rounds of figure 5
#   CGO_ROW=1      also time handoff built with cgo, Go's default (row
#                  "handoff-cgo" in figures 1 and 1b; 0 leaves it out)
#   TMPFS=1        also the diagnostic rows with handoff's queue on /dev/shm
#                  (tmpfs, where fsync costs nothing): what durability costs
#                  in figures 2 and 3; 0 leaves them out
#   REV=           a commit (HEAD, a hash): build handoff from that commit
#                  (git archive) instead of the work tree as it is
#   TLS_VERIFY=0   1: both clients verify tlssink's certificate against its
#                  PEM file (tls_ca_file / --tls-trust-file) instead of
#                  skipping verification (tls_insecure / --tls-certcheck=off)
#   PORT=25251     first of three loopback ports (PORT, PORT+1, PORT+2)
#   BENCH_WORK=/var/tmp/handoff-bench   scratch: extracted Postfix,
#                  nullmailer and dma, messages, configs, queues, raw samples
#                  (kept between runs; safe to delete)
#   OUT_MD=bench/results.md  OUT_SVG=bench/results.svg  (with SHORT=1:
#                  $BENCH_WORK/short/results.md and .svg)
#
# What it does: installs what is missing from Debian (msmtp, gnuplot-nox,
# time, socat), extracts Postfix's smtp-sink and smtp-source, nullmailer
# and dma from their .deb files with dpkg -x (the machine's MTA is not
# touched; nullmailer runs from a private directory tree through its
# NULLMAILER_TEST_PREFIX, dma in a private mount namespace, `unshare -m`,
# with private directories bind-mounted over /etc/dma and /var/spool/dma,
# its compiled-in paths; empty mount points are made there if missing and
# removed at exit), builds handoff as packaging/build.sh does
# (`CGO_ENABLED=0 go build -trimpath -ldflags='-s -w'`: static; called
# through a symlink named sendmail), the exec floor (a static CGO_ENABLED=0 Go hello-world) and two
# helpers in bench/cmd (tlssink: a STARTTLS sink, since smtp-sink has no
# TLS; interleave: the timer), then measures, each figure interleaved (A B
# C, B C A, ... so noise hits every tool alike):
#
#   1.  one `sendmail -t -i` of a 2 KB message to smtp-sink on 127.0.0.1,
#       until the client exits (after the sink's 250 to the data; msmtp
#       also waits for the 221 to QUIT, handoff sends QUIT and closes, as
#       Postfix does): handoff vs msmtp vs the exec floor;
#   1b. the same with STARTTLS, to bench/cmd/tlssink;
#   2.  system mode: the same call through `handoff daemon` (started here,
#       as root, with its own socket and queue under BENCH_WORK): until the
#       front end returns (the daemon answers once the message is queued,
#       fsynced) and, with -odi, until the sink has it; vs msmtp's direct
#       call and the exec floor;
#   3.  enqueue MSGS messages with `sendmail -t -i -odq` (fsync on), one
#       call each, then flush them with `sendmail -q` at each
#       connections_per_relay of CONNS: messages/s and the connections the
#       sink saw; vs nullmailer (nullmailer-inject, then nullmailer-send in
#       one-shot mode), vs dma (`dma -t` with DEFER: queue only, then
#       `dma -D -q`) and vs smtp-source sending MSGS of the same message
#       over the same number of connections (the loopback SMTP limit);
#   4.  one BIG_MB MiB message through `sendmail -t -i` to smtp-sink: wall
#       time, MB/s and peak RSS for handoff and msmtp, against two loopback
#       limits: smtp-source sending the same file to the same sink (the
#       SMTP limit of this sink), socat copying the file raw over a
#       loopback TCP connection (the link itself), and socat piping a
#       ready-made SMTP session of it into the sink (what the sink can
#       take at all);
#   5.  PAR parallel submitters sending MSGS messages in all, standalone
#       (each call delivers to the sink) and through the daemon: wall time
#       until every call returned and until the sink has every message.
#
# It checks that the sinks received every message and that the queues are
# empty after each flush, and writes OUT_MD (tables, targets of issue 7
# met or not, machine) and OUT_SVG (chart). Only ratios within one run mean
# anything: the machine is noisy. A run that fails stops at once; a
# handoff call that failed may have left its message in root's
# ~/dead.letter, as sendmail does. No target is asserted: a target not met
# is reported, not an error.
set -euo pipefail
export LC_ALL=C

if [[ ${1:-} == -h || ${1:-} == --help ]]; then
	sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
	exit 0
fi

die() {
	echo "bench: FAILED: $*" >&2
	exit 1
}
say() { echo "bench: $*" >&2; }
trap 'die "line $LINENO: $BASH_COMMAND (exit status $?)"' ERR

SHORT=${SHORT:-0}
[[ $SHORT == [01] ]] || die "SHORT is 0 or 1"
if ((SHORT)); then
	: "${N:=3}" "${WARMUP:=1}" "${BIG_N:=1}" "${BIG_MB:=10}" "${MSGS:=100}" "${FLUSH_N:=1}" "${PAR_N:=1}"
else
	: "${N:=200}" "${WARMUP:=3}" "${BIG_N:=7}" "${BIG_MB:=100}" "${MSGS:=1000}" "${FLUSH_N:=5}" "${PAR_N:=5}"
fi
CONNS=${CONNS:-1 2 4}
PAR=${PAR:-50}
TLS_VERIFY=${TLS_VERIFY:-0}
CGO_ROW=${CGO_ROW:-1}
TMPFS=${TMPFS:-1}
PORT=${PORT:-25251}
REV=${REV:-}
BENCH_WORK=${BENCH_WORK:-/var/tmp/handoff-bench}

bench=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$bench/.." && pwd)
if ((SHORT)); then
	OUT_MD=${OUT_MD:-$BENCH_WORK/short/results.md}
	OUT_SVG=${OUT_SVG:-$BENCH_WORK/short/results.svg}
else
	OUT_MD=${OUT_MD:-$bench/results.md}
	OUT_SVG=${OUT_SVG:-$bench/results.svg}
fi
bin=$bench/bin
work=$BENCH_WORK
t_start=$SECONDS

[[ $(id -u) == 0 ]] || die "run as root: it installs packages with apt-get"
for v in N BIG_N BIG_MB MSGS FLUSH_N PAR PAR_N; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer (it is \"${!v}\")"
done
[[ $WARMUP =~ ^[0-9]+$ ]] || die "WARMUP must be a non-negative integer"
read -ra conns <<<"$CONNS"
((${#conns[@]})) || die "CONNS is empty"
for c in "${conns[@]}"; do
	if ! [[ $c =~ ^[1-9][0-9]*$ ]] || ((c > 100)); then
		die "CONNS: $c is not a number of connections from 1 to 100"
	fi
done
[[ $PORT =~ ^[0-9]+$ ]] || die "PORT must be a number"
[[ $CGO_ROW == [01] && $TLS_VERIFY == [01] && $TMPFS == [01] ]] || die "CGO_ROW, TLS_VERIFY and TMPFS are 0 or 1"
[[ $work != *[[:space:]]* && $bench != *[[:space:]]* ]] || die "paths with white space are not supported ($work, $bench)"
((${#work} <= 80)) || die "BENCH_WORK is too long for a Unix socket path under it: $work"
command -v go >/dev/null || die "go is not on PATH"
mkdir -p "$work" "$bin" "$(dirname "$OUT_MD")" "$(dirname "$OUT_SVG")"

# nap SECONDS: sleep without starting a process (a read that times out on
# a FIFO nobody writes), for the polls inside timed sections.
rm -f "$work/nap.fifo"
mkfifo "$work/nap.fifo"
exec {nap_fd}<>"$work/nap.fifo"
nap() { read -r -t "$1" -u "$nap_fd" _ || true; }

# ---------------------------------------------------------------- peers
apt_install() {
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y --no-install-recommends "$@" >"$work/apt.log" 2>&1 ||
		{ apt-get update >>"$work/apt.log" 2>&1 && apt-get install -y --no-install-recommends "$@" >>"$work/apt.log" 2>&1; } ||
		{ tail -n 20 "$work/apt.log" >&2; die "apt-get install $* failed (log: $work/apt.log)"; }
}
# apt_download DIR PACKAGE: the .deb into DIR, without installing it.
apt_download() {
	(cd "$1" && apt-get -q -o APT::Sandbox::User=root download "$2" >"$work/apt-download.log" 2>&1) ||
		{ apt-get update >/dev/null 2>&1 && (cd "$1" && apt-get -q -o APT::Sandbox::User=root download "$2" >"$work/apt-download.log" 2>&1); } ||
		{ cat "$work/apt-download.log" >&2; die "apt-get download $2 failed"; }
}
# deb_libs DEB: the lib* packages among its dependencies.
deb_libs() { dpkg-deb -f "$1" Depends | tr ',' '\n' | sed 's/[|(].*//; s/ //g' | grep '^lib' || true; }
# missing_libs LIBPATH BINARY...: the shared libraries ldd cannot find for
# the binaries, with LIBPATH (may be empty) as LD_LIBRARY_PATH.
missing_libs() {
	local path=$1
	shift
	LD_LIBRARY_PATH=$path ldd "$@" 2>&1 | grep 'not found' || true
}
# ensure_libs NAME DEB LIBPATH BINARY...: when the binaries, extracted from
# the package DEB and not installed, miss shared libraries, install the
# package's lib* dependencies; die if some are still missing.
ensure_libs() {
	local name=$1 deb=$2 path=$3 libs
	shift 3
	[[ -n $(missing_libs "$path" "$@") ]] || return 0
	mapfile -t libs < <(deb_libs "$deb")
	say "installing the libraries $name needs: ${libs[*]}"
	apt_install "${libs[@]}"
	[[ -z $(missing_libs "$path" "$@") ]] || die "$name still misses libraries: $(missing_libs "$path" "$@")"
}

need=()
command -v msmtp >/dev/null || need+=(msmtp)
command -v gnuplot >/dev/null || need+=(gnuplot-nox)
[[ -x /usr/bin/time ]] || need+=(time)
command -v socat >/dev/null || need+=(socat)
if ((${#need[@]})); then
	say "installing ${need[*]}"
	apt_install "${need[@]}"
fi
for c in msmtp gnuplot socat /usr/bin/time; do
	command -v "$c" >/dev/null || die "$c is missing after installing its package"
done

# Postfix's smtp-sink and smtp-source, from the .deb, never installed.
pf=$work/postfix
smtp_sink=$pf/root/usr/sbin/smtp-sink
smtp_source=$pf/root/usr/sbin/smtp-source
if [[ ! -x $smtp_sink || ! -x $smtp_source ]]; then
	say "extracting smtp-sink and smtp-source from the postfix package"
	rm -rf "$pf"
	mkdir -p "$pf/deb"
	apt_download "$pf/deb" postfix
	dpkg -x "$pf"/deb/postfix_*.deb "$pf/root"
	[[ -x $smtp_sink && -x $smtp_source ]] || die "the postfix package has no smtp-sink/smtp-source"
fi
# Their shared libraries: Postfix's own come from the extracted tree
# (LD_LIBRARY_PATH, only for these two), the system ones (libdb, libicu,
# libnsl, ...) are the package's lib* dependencies, installed if missing.
pflib=$pf/root/usr/lib/postfix
ensure_libs smtp-sink "$pf"/deb/postfix_*.deb "$pflib" "$smtp_sink" "$smtp_source"
postfix_version=$(basename "$pf"/deb/postfix_*.deb .deb | cut -d_ -f2)
id nobody >/dev/null 2>&1 || die "user nobody is missing (smtp-sink drops privileges to it)"

# nullmailer, from the .deb, never installed: installing it would make it
# the machine's MTA.
nm=$work/nullmailer
nm_root=$nm/root
nm_progs=("$nm_root/usr/bin/nullmailer-inject" "$nm_root/usr/sbin/nullmailer-queue" "$nm_root/usr/sbin/nullmailer-send" "$nm_root/usr/lib/nullmailer/smtp")
nm_ok() {
	local p
	for p in "${nm_progs[@]}"; do [[ -x $p ]] || return 1; done
}
if ! nm_ok; then
	say "extracting nullmailer from its package"
	rm -rf "$nm"
	mkdir -p "$nm/deb"
	apt_download "$nm/deb" nullmailer
	dpkg -x "$nm"/deb/nullmailer_*.deb "$nm_root"
	nm_ok || die "the nullmailer package lacks one of ${nm_progs[*]}"
fi
ensure_libs nullmailer "$nm"/deb/nullmailer_*.deb "" "${nm_progs[@]}"
nullmailer_version=$(dpkg-deb -f "$nm"/deb/nullmailer_*.deb Version)
grep -qa NULLMAILER_TEST_PREFIX "$nm_root/usr/sbin/nullmailer-send" ||
	die "this nullmailer ($nullmailer_version) has no NULLMAILER_TEST_PREFIX: it cannot run from a private tree"

# dma (DragonFly Mail Agent), from the .deb, never installed: installing it
# would make it the machine's MTA. It reads /etc/dma/dma.conf and spools in
# /var/spool/dma (compiled in), so it runs in a private mount namespace
# (dma_ns below). The copy keeps the package's setgid bit (group mail):
# run as root, dma switches to the user mail and writes its spool as group
# mail. dma-mbox-create (setuid root in the package, local delivery only)
# is never used here (NULLCLIENT) and loses its setuid bit.
dm=$work/dma
dma_bin=$dm/root/usr/sbin/dma
if [[ ! -x $dma_bin ]]; then
	say "extracting dma from its package"
	rm -rf "$dm"
	mkdir -p "$dm/deb"
	apt_download "$dm/deb" dma
	dpkg -x "$dm"/deb/dma_*.deb "$dm/root"
	[[ -x $dma_bin ]] || die "the dma package has no usr/sbin/dma"
fi
[[ -e $dm/root/usr/lib/dma/dma-mbox-create ]] && chmod u-s,g-s "$dm/root/usr/lib/dma/dma-mbox-create"
ensure_libs dma "$dm"/deb/dma_*.deb "" "$dma_bin"
dma_version=$(dpkg-deb -f "$dm"/deb/dma_*.deb Version)
id mail >/dev/null 2>&1 || die "user mail is missing (dma, run as root, switches to it)"
command -v unshare >/dev/null || die "unshare (util-linux) is missing: dma needs a private mount namespace"

# ---------------------------------------------------------------- builds
# handoff's source: the work tree, or with REV the tree of that commit
# (git archive into BENCH_WORK/src), so that edits in progress in the work
# tree do not leak into the numbers. The floor and the helpers always come
# from the work tree's bench/cmd.
if [[ -n $REV ]]; then
	src=$work/src
	rm -rf "$src"
	mkdir -p "$src"
	git -C "$repo" archive "$REV" | tar -x -C "$src" || die "git archive $REV failed"
	handoff_rev="$(git -C "$repo" rev-parse --short "$REV^{commit}") (REV=$REV: the commit, not the work tree)"
else
	src=$repo
	handoff_rev=$(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)
fi
say "building handoff ($handoff_rev), the floor and the helpers"
(
	cd "$src"
	CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$bin/handoff" ./cmd/handoff
	if ((CGO_ROW)); then
		mkdir -p "$bin/cgo"
		CGO_ENABLED=1 go build -trimpath -ldflags='-s -w' -o "$bin/cgo/handoff" ./cmd/handoff
	fi
	cd "$repo"
	CGO_ENABLED=0 go build -trimpath -ldflags=-s -o "$bin/floor" ./bench/cmd/floor
	go build -o "$bin/tlssink" ./bench/cmd/tlssink
	go build -o "$bin/interleave" ./bench/cmd/interleave
) || die "go build failed"
ln -sfn handoff "$bin/sendmail"
((CGO_ROW)) && ln -sfn handoff "$bin/cgo/sendmail"

# ---------------------------------------------------------------- inputs
# The 2 KB message: headers a PHP or cron caller would write, body of
# 70-character lines, 2048 octets in all.
small=$work/msg-2k.eml
{
	printf 'From: Bench Sender <root@example.com>\n'
	printf 'To: Bench Recipient <rcpt@example.net>\n'
	printf 'Subject: handoff benchmark, 2 KB\n'
	printf 'Date: Sat, 28 Nov 2026 12:00:00 +0000\n'
	printf 'Message-ID: <bench-2k@example.com>\n'
	printf 'MIME-Version: 1.0\n'
	printf 'Content-Type: text/plain; charset=us-ascii\n\n'
} >"$small"
pad=$((2048 - $(stat -c %s "$small")))
awk -v n="$pad" 'BEGIN { l = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor"
	l = substr(l, 1, 69)   # 69 + LF = 70 octets a line
	while (n > 140) { print l; n -= 70 }
	h = int(n / 2); print substr(l l, 1, h - 1); print substr(l l, 1, n - h - 1) }' >>"$small"
[[ $(stat -c %s "$small") == 2048 ]] || die "the 2 KB message is $(stat -c %s "$small") bytes"

# The big message: BIG_MB MiB exactly, 80-octet lines, made once.
big=$work/msg-${BIG_MB}m.eml
big_size=$((BIG_MB * 1024 * 1024))
if [[ ! -f $big || $(stat -c %s "$big") != "$big_size" ]]; then
	say "writing the $BIG_MB MiB message"
	hdr=$'From: Bench Sender <root@example.com>\nTo: Bench Recipient <rcpt@example.net>\nSubject: handoff benchmark, big\nMessage-ID: <bench-big@example.com>\n\n'
	line='The quick brown fox jumps over the lazy dog. 0123456789 ABCDEFGHIJKLMNOPQRSTUVW'
	body=$((big_size - ${#hdr}))
	{
		printf '%s' "$hdr"
		(yes "$line" || true) | head -c $((body - body % 80))
		((body % 80 == 0)) || printf '%*s\n' $((body % 80 - 1)) '' | tr ' ' 'z'
	} >"$big.tmp"
	mv "$big.tmp" "$big"
	[[ $(stat -c %s "$big") == "$big_size" ]] || die "the big message is $(stat -c %s "$big") bytes, not $big_size"
fi

# ---------------------------------------------------------------- servers
p_plain=$PORT p_tls=$((PORT + 1)) p_raw=$((PORT + 2))
pids=()
shm=
made_dirs=() # mount points for dma made here, removed at exit
cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	[[ -n $shm ]] && rm -rf "$shm"
	for p in "${made_dirs[@]}"; do
		rmdir "$p" 2>/dev/null || true
	done
	true
}
trap cleanup EXIT

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {
	local i
	for ((i = 0; i < 100; i++)); do
		port_busy "$1" && return 0
		nap 0.05
	done
	die "nothing listens on 127.0.0.1:$1 ($2 did not start)"
}
for p in $p_plain $p_tls $p_raw; do
	port_busy "$p" && die "127.0.0.1:$p is in use: set PORT to a free range"
done

# start_sink NAME: smtp-sink on p_plain, counting (-c) to $work/NAME.out.
start_sink() {
	# Not through a shell function: $! must be smtp-sink itself.
	LD_LIBRARY_PATH=$pflib "$smtp_sink" -u nobody -a -c "127.0.0.1:$p_plain" 1000 >"$work/$1.out" 2>"$work/$1.err" &
	sink_pid=$!
	pids+=("$sink_pid")
	wait_port "$p_plain" smtp-sink
}
# sink_counts NAME: the sink's counters now, in sk_sess (sessions ended),
# sk_quit (QUIT commands) and sk_mesg (messages), from its last -c line.
sink_counts() {
	local last
	last=$(tail -c 300 "$work/$1.out" | tr '\r' '\n' | grep -E '^sess=[0-9]+ quit=[0-9]+ mesg=[0-9]+$' | tail -n 1 || true)
	sk_sess=0 sk_quit=0 sk_mesg=0
	if [[ $last =~ ^sess=([0-9]+)\ quit=([0-9]+)\ mesg=([0-9]+)$ ]]; then
		sk_sess=${BASH_REMATCH[1]} sk_quit=${BASH_REMATCH[2]} sk_mesg=${BASH_REMATCH[3]}
	fi
}
# sink_settle NAME MESG: wait until the sink has counted MESG messages and
# every session that sent QUIT has ended (the counters lag the clients).
sink_settle() {
	local i
	for ((i = 0; i < 600; i++)); do
		sink_counts "$1"
		((sk_mesg >= $2 && sk_sess >= sk_quit)) && break
		nap 0.05
	done
	((sk_mesg == $2)) || die "smtp-sink ($1) counted $sk_mesg messages, want $2"
}
# stop_sink NAME WANT: stop it and check that it got WANT messages.
stop_sink() {
	kill "$sink_pid"
	wait "$sink_pid" 2>/dev/null || true
	local got
	got=$(tr '\r' '\n' <"$work/$1.out" | sed -n 's/.*mesg=\([0-9]*\).*/\1/p' | tail -n 1)
	[[ ${got:-0} == "$2" ]] || die "smtp-sink ($1) received ${got:-0} messages, want $2; its stderr: $(cat "$work/$1.err")"
	say "smtp-sink ($1) received all $2 messages"
}

# queue_empty DIR: no file in DIR (no process started: polled while timing).
queue_empty() {
	local f
	for f in "$1"/*; do
		[[ -e $f ]] && return 1
	done
	return 0
}
count_files() {
	local f n=0
	for f in "$1"/*; do
		[[ -e $f ]] && n=$((n + 1))
	done
	echo "$n"
}
# wait_empty DIR SECONDS: poll every 5 ms until DIR is empty; 1 on timeout.
wait_empty() {
	local limit=$((${EPOCHREALTIME//[.,]/} + $2 * 1000000))
	until queue_empty "$1"; do
		((${EPOCHREALTIME//[.,]/} < limit)) || return 1
		nap 0.005
	done
}
# secs T0 T1: the seconds from T0 to T1 (microseconds), into $elapsed.
secs() {
	local us=$(($2 - $1))
	printf -v elapsed '%d.%06d' $((us / 1000000)) $((us % 1000000))
}

# A directory on tmpfs for the diagnostic rows (TMPFS=1).
if ((TMPFS)); then
	if [[ $(stat -f -c %T /dev/shm 2>/dev/null) == tmpfs ]]; then
		shm=$(mktemp -d /dev/shm/handoff-bench.XXXXXX)
	else
		say "/dev/shm is not a tmpfs here: no diagnostic tmpfs rows"
		TMPFS=0
	fi
fi

# ---------------------------------------------------------------- configs
# handoff_config FILE PORT STARTTLS QUEUE-KEYS SOCKET [RELAY LINE]: a
# config with one relay, the sink on 127.0.0.1:PORT, checked by handoff.
nosock=$work/no-daemon.sock # never created: standalone, as on a host without the daemon
handoff_config() {
	{
		printf 'hostname = "bench.example.com"\ndomain = "example.com"\n\n'
		printf '[queue]\n%s\n\n' "$4"
		printf '[daemon]\nsocket = "%s"\n\n' "$5"
		printf '[[relay]]\nname = "sink"\nurl = "smtp://127.0.0.1:%s"\nstarttls = "%s"\n' "$2" "$3"
		[[ -n ${6:-} ]] && printf '%s\n' "$6"
		true
	} >"$1"
	"$bin/handoff" config check -C "$1" >"$1.check" 2>&1 ||
		die "handoff rejects $1: $(cat "$1.check")"
}
rm -f "$nosock"
handoff_config "$work/plain.toml" "$p_plain" none 'mode = "never"' "$nosock"
if ((TLS_VERIFY)); then
	tls_line="tls_ca_file = \"$work/tlssink.pem\""
	msmtp_check="--tls-certcheck=on --tls-trust-file=$work/tlssink.pem"
	tls_mode="both verify the sink's self-signed certificate against its PEM file (tls_ca_file / --tls-trust-file)"
else
	tls_line="tls_insecure = true"
	msmtp_check="--tls-certcheck=off"
	tls_mode="certificate verification off in both (tls_insecure = true / --tls-certcheck=off)"
fi
handoff_config "$work/tls.toml" "$p_tls" required 'mode = "never"' "$nosock" "$tls_line"

# System mode (figures 2 and 5): the daemon's socket and queue; the front
# end reads the same file (HANDOFF_CONFIG) for the socket.
dq=$work/daemon-queue dsock=$work/daemon/submit.sock
handoff_config "$work/daemon.toml" "$p_plain" none "dir = \"$dq\"" "$dsock"
if ((TMPFS)); then
	dq_t=$shm/daemon-queue dsock_t=$work/daemon-tmpfs/submit.sock
	handoff_config "$work/daemon-tmpfs.toml" "$p_plain" none "dir = \"$dq_t\"" "$dsock_t"
fi

# Figure 3: one queue, one config per number of connections.
fq=$work/flush-queue
for c in "${conns[@]}"; do
	# messages_per_connection = MSGS: the same number of connections as
	# smtp-source, which the target compares with.
	handoff_config "$work/flush-c$c.toml" "$p_plain" none "dir = \"$fq\""$'\n'"connections_per_relay = $c"$'\n'"messages_per_connection = $MSGS" "$nosock"
	((TMPFS)) && handoff_config "$work/flush-tmpfs-c$c.toml" "$p_plain" none "dir = \"$shm/flush-queue\""$'\n'"connections_per_relay = $c"$'\n'"messages_per_connection = $MSGS" "$nosock"
done

# nullmailer's private tree. With NULLMAILER_TEST_PREFIX=P its programs use
# P/conf for /etc/nullmailer, P/queue for /var/spool/nullmailer, P/sbin,
# P/bin and P/protocols for their own paths; nullmailer-queue ignores the
# prefix when it runs setuid, so its copy here has no setuid bit (all run
# as root). pausetime 0 is nullmailer-send's one-shot mode: it goes
# through the queue once and exits.
nmp=$nm/prefix
nm_reset() {
	rm -rf "$nmp"
	mkdir -p "$nmp"/{sbin,bin,protocols,conf} "$nmp"/queue/{queue,tmp,failed}
	install -m 0755 "$nm_root/usr/sbin/nullmailer-queue" "$nmp/sbin/"
	install -m 0755 "$nm_root/usr/bin/nullmailer-inject" "$nmp/bin/"
	install -m 0755 "$nm_root/usr/lib/nullmailer/smtp" "$nmp/protocols/"
	mkfifo -m 0622 "$nmp/queue/trigger"
	echo "127.0.0.1 smtp port=$p_plain" >"$nmp/conf/remotes"
	echo 0 >"$nmp/conf/pausetime"
	echo bench.example.com >"$nmp/conf/helohost"
	echo example.com >"$nmp/conf/defaulthost"
	echo example.com >"$nmp/conf/defaultdomain"
}
nm_send=$nm_root/usr/sbin/nullmailer-send

# dma's private tree: dmp/etc is bind-mounted over /etc/dma, dmp/spool
# over /var/spool/dma (root:mail 2770, as in the package), in a mount
# namespace of their own (dma_ns). The config relays everything to the
# sink (NULLCLIENT: no aliases, no local delivery), no TLS, no auth, and
# DEFER: `dma -t` only queues (fsyncing the message and its queue file),
# `dma -q` delivers.
dmp=$dm/private
for d in /etc/dma /var/spool/dma; do
	if [[ ! -d $d ]]; then
		mkdir -p "$d"
		made_dirs+=("$d")
	fi
done
dma_reset() {
	rm -rf "$dmp"
	mkdir -p "$dmp/etc" "$dmp/spool"
	chown root:mail "$dmp/spool"
	chmod 2770 "$dmp/spool"
	: >"$dmp/etc/aliases"
	printf '%s\n' "SMARTHOST 127.0.0.1" "PORT $p_plain" "MAILNAME bench.example.com" \
		"ALIASES /etc/dma/aliases" "NULLCLIENT" "DEFER" >"$dmp/etc/dma.conf"
}
# dma_ns COMMAND...: COMMAND in a private mount namespace that sees dmp's
# directories as /etc/dma and /var/spool/dma.
dma_ns() {
	# shellcheck disable=SC2016 # expanded by sh, not here
	unshare -m --propagation private sh -c 'mount --bind "$1/etc" /etc/dma && mount --bind "$1/spool" /var/spool/dma && shift && exec "$@"' dma-ns "$dmp" "$@"
}
# dma_queued DIR: whether dma's spool DIR holds a message (Q or M file; no
# process started: polled while timing).
dma_queued() {
	local f
	for f in "$1"/[QM]*; do
		[[ -e $f ]] && return 0
	done
	return 1
}

msmtp_base="msmtp -t -i --host=127.0.0.1 --from=root@example.com --domain=bench.example.com --auth=off"
handoff_plain="handoff: HANDOFF_CONFIG=$work/plain.toml $bin/sendmail -t -i"
handoff_tls="handoff: HANDOFF_CONFIG=$work/tls.toml $bin/sendmail -t -i"
msmtp_plain="msmtp: $msmtp_base --port=$p_plain --tls=off"
msmtp_tls="msmtp: $msmtp_base --port=$p_tls --tls=on --tls-starttls=on $msmtp_check"
floor="floor: $bin/floor"
cgo_plain=() cgo_tls=()
if ((CGO_ROW)); then
	cgo_plain=(-c "handoff-cgo: HANDOFF_CONFIG=$work/plain.toml $bin/cgo/sendmail -t -i")
	cgo_tls=(-c "handoff-cgo: HANDOFF_CONFIG=$work/tls.toml $bin/cgo/sendmail -t -i")
fi

# start_daemon NAME CONFIG SOCKET QUEUE: `handoff daemon` in the
# background, with an empty queue, once its socket is there.
declare -A dpid
start_daemon() {
	rm -rf "$4" "$(dirname "$3")"
	mkdir -m 0700 "$4"
	mkdir -p "$(dirname "$3")"
	"$bin/handoff" daemon -C "$2" >"$work/$1.out" 2>"$work/$1.err" &
	dpid[$1]=$!
	pids+=("${dpid[$1]}")
	local i
	for ((i = 0; i < 200; i++)); do
		[[ -S $3 ]] && return 0
		kill -0 "${dpid[$1]}" 2>/dev/null || break
		nap 0.05
	done
	die "handoff daemon ($1) did not come up on $3: $(cat "$work/$1.err")"
}
# stop_daemon NAME QUEUE: once its queue is empty (everything delivered),
# SIGTERM, which closes its relay connections with QUIT.
stop_daemon() {
	wait_empty "$2/env" 120 || die "handoff daemon ($1) still has $(count_files "$2/env") messages queued after 2 minutes: $(cat "$work/$1.err")"
	kill -TERM "${dpid[$1]}"
	local rc=0
	wait "${dpid[$1]}" || rc=$?
	((rc == 0)) || die "handoff daemon ($1) exited with status $rc: $(cat "$work/$1.err")"
	if [[ -s $work/$1.err ]]; then
		say "note: handoff daemon ($1) wrote to standard error: $(head -n 5 "$work/$1.err")"
	fi
}

# ---------------------------------------------------------------- figure 1
say "figure 1: one sendmail -t -i call, 2 KB, plain SMTP: N=$N (+$WARMUP warm-up) rounds"
start_sink sink-plain
"$bin/interleave" -n "$N" -warmup "$WARMUP" -stdin "$small" -ref handoff \
	-c "$handoff_plain" -c "$msmtp_plain" -c "$floor" "${cgo_plain[@]}" \
	-md "$work/fig1.md" -tsv "$work/fig1.tsv" -samples "$work/fig1-samples.tsv" ||
	die "figure 1 failed"
stop_sink sink-plain $(((N + WARMUP) * (2 + CGO_ROW)))

# ---------------------------------------------------------------- figure 1b
say "figure 1b: the same with STARTTLS to tlssink"
"$bin/tlssink" -listen "127.0.0.1:$p_tls" -cert-out "$work/tlssink.pem" >"$work/tlssink.out" 2>"$work/tlssink.err" &
tls_pid=$!
pids+=("$tls_pid")
wait_port "$p_tls" tlssink
"$bin/interleave" -n "$N" -warmup "$WARMUP" -stdin "$small" -ref handoff \
	-c "$handoff_tls" -c "$msmtp_tls" -c "$floor" "${cgo_tls[@]}" \
	-md "$work/fig1b.md" -tsv "$work/fig1b.tsv" -samples "$work/fig1b-samples.tsv" 2>"$work/fig1b.log" ||
	{ cat "$work/fig1b.log" >&2; die "figure 1b failed"; }
grep -v '^  note: handoff[-a-z]* wrote to standard error: .*tls_insecure' "$work/fig1b.log" >&2 || true
kill "$tls_pid"
wait "$tls_pid" 2>/dev/null || true
want=$(((N + WARMUP) * (2 + CGO_ROW)))
grep -q "tls=$want messages=$want " "$work/tlssink.out" ||
	die "tlssink did not get $want messages over TLS: $(cat "$work/tlssink.out" "$work/tlssink.err")"
say "tlssink received all $want messages, each over TLS"

# ---------------------------------------------------------------- figure 2
say "figure 2: the same call through handoff daemon: N=$N (+$WARMUP warm-up) rounds"
start_sink sink-daemon
start_daemon daemon "$work/daemon.toml" "$dsock" "$dq"
tmpfs_row=()
if ((TMPFS)); then
	start_daemon daemon-tmpfs "$work/daemon-tmpfs.toml" "$dsock_t" "$dq_t"
	tmpfs_row=(-c "handoff-daemon-tmpfs: HANDOFF_CONFIG=$work/daemon-tmpfs.toml $bin/sendmail -t -i")
fi
# The order matters a little: each command is always followed by the
# next one in this list, and a daemon row leaves a delivery running after
# it returns; msmtp (slow, so least disturbed) follows handoff-daemon.
"$bin/interleave" -n "$N" -warmup "$WARMUP" -stdin "$small" -ref handoff-daemon \
	-c "handoff-daemon: HANDOFF_CONFIG=$work/daemon.toml $bin/sendmail -t -i" \
	-c "$msmtp_plain" \
	-c "handoff-daemon-odi: HANDOFF_CONFIG=$work/daemon.toml $bin/sendmail -t -i -odi" \
	-c "$floor" "${tmpfs_row[@]}" \
	-c "handoff-standalone: HANDOFF_CONFIG=$work/plain.toml $bin/sendmail -t -i" \
	-md "$work/fig2.md" -tsv "$work/fig2.tsv" -samples "$work/fig2-samples.tsv" ||
	die "figure 2 failed"
stop_daemon daemon "$dq"
((TMPFS)) && stop_daemon daemon-tmpfs "$dq_t"
stop_sink sink-daemon $(((N + WARMUP) * (4 + TMPFS)))

# ---------------------------------------------------------------- figure 3
say "figure 3: enqueue $MSGS messages (-odq), then flush them (-q) at ${conns[*]} connections: $FLUSH_N round(s)"
flush_tools=(handoff nullmailer-send dma-q smtp-source)
enq_rows=(-c "nullmailer-inject: NULLMAILER_TEST_PREFIX=$nmp $nmp/bin/nullmailer-inject -b -f root@example.com"
	-c "dma-enqueue: $dma_bin -t -i -f root@example.com")
((TMPFS)) && flush_tools+=(handoff-tmpfs)
rm -rf "$fq"
mkdir -m 0700 "$fq"
((TMPFS)) && mkdir -m 0700 "$shm/flush-queue"
nm_reset
dma_reset
: >"$work/fig3-enqueue.tsv"
: >"$work/fig3-flush.tsv"
: >"$work/fig3-flush.err"
: >"$work/nullmailer-send.log"
: >"$work/dma-q.log"
start_sink sink-flush

# flush_once TOOL C ROUND: one timed flush of MSGS messages (or smtp-source
# sending MSGS), then checks: the queue is empty, the sink has them all.
flush_once() {
	local tool=$1 c=$2 r=$3 t0 t1 rc=0 dir=
	sink_counts sink-flush
	local s0=$sk_sess m0=$sk_mesg
	t0=${EPOCHREALTIME//[.,]/}
	case $tool in
	handoff)
		HANDOFF_CONFIG=$work/flush-c$c.toml "$bin/sendmail" -q 2>>"$work/fig3-flush.err" || rc=$?
		dir=$fq/env
		;;
	handoff-tmpfs)
		HANDOFF_CONFIG=$work/flush-tmpfs-c$c.toml "$bin/sendmail" -q 2>>"$work/fig3-flush.err" || rc=$?
		dir=$shm/flush-queue/env
		;;
	nullmailer-send)
		NULLMAILER_TEST_PREFIX=$nmp "$nm_send" >>"$work/nullmailer-send.log" 2>&1 || rc=$?
		dir=$nmp/queue/queue
		;;
	dma-q)
		# -D: in the foreground. dma forks a child per queued message and
		# delivers them in parallel; it may exit before the last child, so
		# the time runs until the spool is empty.
		dma_ns "$dma_bin" -D -q >>"$work/dma-q.log" 2>&1 || rc=$?
		if ((rc == 0)); then
			local limit=$((${EPOCHREALTIME//[.,]/} + 120000000))
			while dma_queued "$dmp/spool" && ((${EPOCHREALTIME//[.,]/} < limit)); do
				nap 0.005
			done
			if dma_queued "$dmp/spool"; then
				die "figure 3: dma -q (c=$c, round $r) left messages in $dmp/spool after 2 minutes: $(tail -n 5 "$work/dma-q.log")"
			fi
		fi
		;;
	smtp-source)
		LD_LIBRARY_PATH=$pflib "$smtp_source" -s "$c" -m "$MSGS" -d -M bench.example.com \
			-f root@example.com -t rcpt@example.net -F "$small" "127.0.0.1:$p_plain" 2>>"$work/fig3-flush.err" || rc=$?
		;;
	esac
	t1=${EPOCHREALTIME//[.,]/}
	((rc == 0)) || die "figure 3: $tool (c=$c, round $r) exited with status $rc: $(tail -n 5 "$work/fig3-flush.err" "$work/nullmailer-send.log" "$work/dma-q.log")"
	if [[ -n $dir ]] && ! queue_empty "$dir"; then
		die "figure 3: $tool (c=$c, round $r) left $(count_files "$dir") of $MSGS messages in $dir"
	fi
	sink_settle sink-flush $((m0 + MSGS))
	secs "$t0" "$t1"
	printf 'c%s/%s\t%s\t%s\n' "$c" "$tool" "$elapsed" $((sk_sess - s0)) >>"$work/fig3-flush.tsv"
}

for ((r = 1; r <= FLUSH_N; r++)); do
	for ci in "${!conns[@]}"; do
		c=${conns[ci]}
		say "  round $r/$FLUSH_N, $c connection(s): enqueue $MSGS per queue"
		rows=(-c "handoff-odq: HANDOFF_CONFIG=$work/flush-c$c.toml $bin/sendmail -t -i -odq" "${enq_rows[@]}")
		((TMPFS)) && rows+=(-c "handoff-odq-tmpfs: HANDOFF_CONFIG=$work/flush-tmpfs-c$c.toml $bin/sendmail -t -i -odq")
		# In dma's mount namespace, all rows alike.
		dma_ns "$bin/interleave" -n "$MSGS" -warmup 0 -stdin "$small" -ref handoff-odq "${rows[@]}" \
			-md "$work/fig3-enqueue-last.md" -samples "$work/fig3-enqueue-r$r-c$c.tsv" 2>"$work/fig3-enqueue.log" ||
			{ cat "$work/fig3-enqueue.log" >&2; die "figure 3: enqueueing failed"; }
		tail -n +2 "$work/fig3-enqueue-r$r-c$c.tsv" | cut -f1,3 >>"$work/fig3-enqueue.tsv"
		qs=("$fq/env" "$nmp/queue/queue")
		((TMPFS)) && qs+=("$shm/flush-queue/env")
		for q in "${qs[@]}"; do
			n=$(count_files "$q")
			((n == MSGS)) || die "figure 3: $q holds $n messages after enqueueing, want $MSGS"
		done
		n=0
		for q in "$dmp"/spool/Q*; do
			[[ -e $q ]] && n=$((n + 1))
		done
		((n == MSGS)) || die "figure 3: dma's spool $dmp/spool holds $n messages after enqueueing, want $MSGS"
		say "  round $r/$FLUSH_N, $c connection(s): flush"
		nt=${#flush_tools[@]}
		for ((k = 0; k < nt; k++)); do
			flush_once "${flush_tools[(r + ci + k) % nt]}" "$c" "$r"
		done
	done
done
stop_sink sink-flush $((FLUSH_N * ${#conns[@]} * ${#flush_tools[@]} * MSGS))
[[ -z $(ls -A "$nmp/queue/failed") ]] || die "nullmailer moved messages to $nmp/queue/failed"

# ---------------------------------------------------------------- figure 4
say "figure 4: one $BIG_MB MiB message: $BIG_N (+1 warm-up) rounds"
start_sink sink-big
# The SMTP session of the big message, ready-made (CRLF, dot-stuffed):
# socat pumps it into smtp-sink and waits for the sink to close after
# QUIT, the most any client can get this sink to take.
session=$work/session-${BIG_MB}m.smtp
if [[ ! -f $session || $session -ot $big ]]; then
	{
		printf 'EHLO bench.example.com\r\nMAIL FROM:<root@example.com>\r\nRCPT TO:<rcpt@example.net>\r\nDATA\r\n'
		sed 's/^\./../; s/$/\r/' "$big"
		printf '.\r\nQUIT\r\n'
	} >"$session"
fi
socat -u -b 262144 "TCP-LISTEN:$p_raw,bind=127.0.0.1,reuseaddr,fork" OPEN:/dev/null,wronly 2>"$work/socat.err" &
pids+=("$!")
wait_port "$p_raw" "socat listener"
"$bin/interleave" -n "$BIG_N" -warmup 1 -stdin "$big" -ref handoff -bytes "$big_size" -rss -timeout 10m \
	-c "$handoff_plain" -c "$msmtp_plain" \
	-c "smtp-source: LD_LIBRARY_PATH=$pflib $smtp_source -M bench.example.com -f root@example.com -t rcpt@example.net -F $big 127.0.0.1:$p_plain" \
	-c "raw-tcp: socat -u -b 262144 STDIN TCP:127.0.0.1:$p_raw" \
	-c "sink-limit: socat -b 262144 -t 60 OPEN:$session,rdonly!!OPEN:/dev/null,wronly TCP:127.0.0.1:$p_plain" \
	-md "$work/fig4.md" -tsv "$work/fig4.tsv" -samples "$work/fig4-samples.tsv" ||
	die "figure 4 failed"
# The same peak RSS as /usr/bin/time -v reports it, once per client.
timev() { # NAME COMMAND...
	local name=$1
	shift
	/usr/bin/time -v -o "$work/timev-$name.txt" "$@" <"$big" >/dev/null
	sed -n 's/^\tMaximum resident set size (kbytes): //p' "$work/timev-$name.txt"
}
rss_h=$(timev handoff env HANDOFF_CONFIG="$work/plain.toml" "$bin/sendmail" -t -i)
# shellcheck disable=SC2086 # msmtp_base is split into words on purpose
rss_m=$(timev msmtp $msmtp_base --port="$p_plain" --tls=off)
stop_sink sink-big $(((BIG_N + 1) * 4 + 2))

# ---------------------------------------------------------------- figure 5
say "figure 5: $PAR parallel submitters, $MSGS messages in all, standalone and through the daemon: $PAR_N round(s)"
start_sink sink-par
start_daemon daemon-par "$work/daemon.toml" "$dsock" "$dq"
: >"$work/fig5.tsv"
: >"$work/fig5.err"
# submitter CONFIG W: submitter number W of PAR sends its share of MSGS,
# one sendmail -t -i call after the other.
submitter() {
	trap - EXIT ERR
	local i
	for ((i = $2; i < MSGS; i += PAR)); do
		HANDOFF_CONFIG=$1 "$bin/sendmail" -t -i <"$small" 2>>"$work/fig5.err" || exit 1
	done
	exit 0
}
# par_once MODE ROUND: one timed round, standalone or through the daemon.
par_once() {
	local mode=$1 r=$2 cfg=$work/plain.toml t0 t1 t2 w p fail=0 ps=() returned
	[[ $mode == daemon ]] && cfg=$work/daemon.toml
	sink_counts sink-par
	local m0=$sk_mesg
	t0=${EPOCHREALTIME//[.,]/}
	for ((w = 0; w < PAR; w++)); do
		submitter "$cfg" "$w" &
		ps+=("$!")
	done
	for p in "${ps[@]}"; do
		wait "$p" || fail=1
	done
	t1=${EPOCHREALTIME//[.,]/}
	((fail == 0)) || die "figure 5 ($mode, round $r): a submitter failed: $(tail -n 5 "$work/fig5.err")"
	# Through the daemon every call has returned once its message was
	# queued; the queue is empty once the sink has them all.
	t2=$t1
	if [[ $mode == daemon ]]; then
		wait_empty "$dq/env" 120 || die "figure 5: the daemon did not deliver everything in 2 minutes"
		t2=${EPOCHREALTIME//[.,]/}
	fi
	sink_settle sink-par $((m0 + MSGS))
	secs "$t0" "$t1"
	returned=$elapsed
	secs "$t0" "$t2"
	printf '%s\t%s\t%s\n' "$mode" "$returned" "$elapsed" >>"$work/fig5.tsv"
}
for ((r = 1; r <= PAR_N; r++)); do
	if ((r % 2)); then order=(standalone daemon); else order=(daemon standalone); fi
	for m in "${order[@]}"; do
		par_once "$m" "$r"
	done
done
stop_daemon daemon-par "$dq"
stop_sink sink-par $((PAR_N * 2 * MSGS))

# ---------------------------------------------------------------- report
cpu=$(sed -n 's/^model name[[:space:]]*: *//p' /proc/cpuinfo | head -n 1)
machine="$(nproc) CPUs, ${cpu:-unknown CPU}, Linux $(uname -r), $(date -u '+%Y-%m-%d %H:%M UTC')"
go_version=$(go env GOVERSION)
msmtp_version=$(msmtp --version | sed -n '1s/^msmtp version //p')

col() { awk -F'\t' -v n="$2" -v c="$3" '$1 == n { print $c }' "$work/$1.tsv"; }
# stats: lines "key<TAB>value" in, "key n median min max sum" out (tabs).
stats() {
	sort -t "$(printf '\t')" -k1,1 -k2,2g | awk -F'\t' -v OFS='\t' '
		function out() { if (n) print key, n, (n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2), v[1], v[n], sum }
		$1 != key { out(); key = $1; n = 0; sum = 0 }
		{ v[++n] = $2; sum += $2 }
		END { out() }'
}
get() { awk -F'\t' -v k="$2" -v f="$3" '$1 == k { print $f }' "$work/$1"; } # FILE KEY FIELD
# verdict LABEL VALUE OP LIMIT: a row of the targets table.
verdict() {
	local ok
	ok=$(awk -v v="$2" -v l="$4" -v op="$3" 'BEGIN { print ((op == "<=" && v <= l) || (op == "<" && v < l) || (op == ">=" && v >= l)) ? "met" : "**not met**" }')
	printf '| %s | %s | %s %s | %s |\n' "$1" "$2" "$3" "$4" "$ok"
}
fstype() { df --output=fstype "$1" | tail -n 1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / s }'; } # messages per second

h1=$(col fig1 handoff 3) m1=$(col fig1 msmtp 3) f1=$(col fig1 floor 3)
h1b=$(col fig1b handoff 3) m1b=$(col fig1b msmtp 3) f1b=$(col fig1b floor 3)
h2=$(col fig2 handoff-daemon 3) h2i=$(col fig2 handoff-daemon-odi 3) m2=$(col fig2 msmtp 3) f2=$(col fig2 floor 3)
h4_mbps=$(col fig4 handoff 8) m4_mbps=$(col fig4 msmtp 8) src_mbps=$(col fig4 smtp-source 8) raw_mbps=$(col fig4 raw-tcp 8) lim_mbps=$(col fig4 sink-limit 8)
h4_rss=$(col fig4 handoff 7)

stats <"$work/fig3-enqueue.tsv" >"$work/fig3-enqueue.stats"
cut -f1,2 "$work/fig3-flush.tsv" | stats >"$work/fig3-flush.stats"
cut -f1,3 "$work/fig3-flush.tsv" | stats >"$work/fig3-conns.stats"
cut -f1,2 "$work/fig5.tsv" | stats >"$work/fig5-returned.stats"
cut -f1,3 "$work/fig5.tsv" | stats >"$work/fig5-delivered.stats"
flush_s() { get fig3-flush.stats "c$1/$2" 3; } # C TOOL: median seconds
flush_rate() { rate "$MSGS" "$(flush_s "$1" "$2")"; }

enqueue_table() {
	local name hmed
	hmed=$(get fig3-enqueue.stats handoff-odq 3)
	echo "| tool | median ms per call | min–max ms | handoff-odq ÷ tool | calls | calls/s, back to back |"
	echo "|---|---:|---:|---:|---:|---:|"
	for name in handoff-odq nullmailer-inject dma-enqueue handoff-odq-tmpfs; do
		[[ -n $(get fig3-enqueue.stats "$name" 2) ]] || continue
		awk -F'\t' -v n="$name" -v h="$hmed" '$1 == n { printf "| %s | %.2f | %.2f–%.2f | %.2f | %d | %.0f |\n", $1, $3, $4, $5, h / $3, $2, $2 * 1000 / $6 }' "$work/fig3-enqueue.stats"
	done
}
flush_table() {
	local c tool s lo hi n conn_lo conn_hi conn hs
	echo "| connections | tool | median s for $MSGS | min–max s | messages/s | connections the sink saw | handoff msg/s ÷ tool msg/s | rounds |"
	echo "|---:|---|---:|---:|---:|---:|---:|---:|"
	for c in "${conns[@]}"; do
		hs=$(flush_s "$c" handoff)
		for tool in handoff smtp-source nullmailer-send dma-q handoff-tmpfs; do
			s=$(flush_s "$c" "$tool")
			[[ -n $s ]] || continue
			lo=$(get fig3-flush.stats "c$c/$tool" 4) hi=$(get fig3-flush.stats "c$c/$tool" 5) n=$(get fig3-flush.stats "c$c/$tool" 2)
			conn_lo=$(get fig3-conns.stats "c$c/$tool" 4) conn_hi=$(get fig3-conns.stats "c$c/$tool" 5)
			conn=$conn_lo
			[[ $conn_lo == "$conn_hi" ]] || conn="$conn_lo–$conn_hi"
			printf '| %s | %s | %.3f | %.3f–%.3f | %s | %s | %s | %s |\n' "$c" "${tool/#dma-q/dma -q}" "$s" "$lo" "$hi" "$(rate "$MSGS" "$s")" "$conn" "$(ratio "$s" "$hs")" "$n"
		done
	done
}
par_table() {
	local mode
	echo "| mode | median s until every call returned | min–max s | messages/s | median s until the sink has all | min–max s | messages/s | rounds |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|"
	for mode in standalone daemon; do
		printf '| %s | %.3f | %.3f–%.3f | %s | %.3f | %.3f–%.3f | %s | %s |\n' "$mode" \
			"$(get fig5-returned.stats "$mode" 3)" "$(get fig5-returned.stats "$mode" 4)" "$(get fig5-returned.stats "$mode" 5)" \
			"$(rate "$MSGS" "$(get fig5-returned.stats "$mode" 3)")" \
			"$(get fig5-delivered.stats "$mode" 3)" "$(get fig5-delivered.stats "$mode" 4)" "$(get fig5-delivered.stats "$mode" 5)" \
			"$(rate "$MSGS" "$(get fig5-delivered.stats "$mode" 3)")" "$(get fig5-returned.stats "$mode" 2)"
	done
}

short_note=
((SHORT)) && short_note=" **SHORT run: too few rounds for the numbers to mean anything; it only proves the script works.**"
{
	echo "# handoff benchmarks"
	echo
	echo "Written by \`bench/run.sh\` (N=$N, WARMUP=$WARMUP, BIG_N=$BIG_N, BIG_MB=$BIG_MB, MSGS=$MSGS, CONNS=\"$CONNS\","
	echo "FLUSH_N=$FLUSH_N, PAR=$PAR, PAR_N=$PAR_N, TLS_VERIFY=$TLS_VERIFY) in $((SECONDS - t_start)) s.$short_note"
	echo "Machine: $machine."
	echo "handoff $handoff_rev built with $go_version as packaging/build.sh builds it (\`CGO_ENABLED=0\`, \`-trimpath -ldflags='-s -w'\`: static), msmtp $msmtp_version,"
	echo "nullmailer $nullmailer_version, dma $dma_version and Postfix $postfix_version smtp-sink/smtp-source (all three extracted from their .deb,"
	echo "not installed). Everything on 127.0.0.1. Each figure is measured interleaved (A B C, B C A, ...); the"
	echo "machine is noisy, so only the ratios within one run count. \"handoff ÷ tool\" is handoff's median time"
	echo "over that tool's median time (below 1: handoff is faster)."
	echo
	echo "![medians of figures 1 to 5]($(basename "$OUT_SVG"))"
	echo
	echo "## Targets (issue 7)"
	echo
	echo "| target | measured | limit | verdict |"
	echo "|---|---:|---:|---|"
	verdict "per call, plain: handoff ÷ msmtp" "$(ratio "$h1" "$m1")" "<=" 0.25
	verdict "per call, plain: handoff ÷ Go exec floor" "$(ratio "$h1" "$f1")" "<=" 2
	verdict "per call, STARTTLS: handoff ÷ msmtp" "$(ratio "$h1b" "$m1b")" "<=" 0.25
	verdict "per call, STARTTLS: handoff ÷ Go exec floor" "$(ratio "$h1b" "$f1b")" "<=" 2
	verdict "through the daemon, until queued: handoff ÷ Go exec floor" "$(ratio "$h2" "$f2")" "<=" 1.5
	verdict "through the daemon, until the sink has it (-odi): handoff ÷ msmtp" "$(ratio "$h2i" "$m2")" "<=" 0.25
	verdict "enqueue: handoff-odq ÷ dma-enqueue (median ms per call)" "$(ratio "$(get fig3-enqueue.stats handoff-odq 3)" "$(get fig3-enqueue.stats dma-enqueue 3)")" "<=" 0.75
	for c in "${conns[@]}"; do
		verdict "flush of $MSGS, $c connection(s): handoff msg/s ÷ smtp-source msg/s" "$(ratio "$(flush_s "$c" smtp-source)" "$(flush_s "$c" handoff)")" ">=" 0.5
	done
	verdict "$BIG_MB MiB: handoff peak RSS, MiB (max of runs)" "$(awk -v k="$h4_rss" 'BEGIN { printf "%.1f", k / 1024 }')" "<" 32
	verdict "$BIG_MB MiB: handoff MB/s ÷ smtp-source → smtp-sink (SMTP limit)" "$(ratio "$h4_mbps" "$src_mbps")" ">=" 0.5
	verdict "$BIG_MB MiB: handoff MB/s ÷ raw TCP copy (link limit)" "$(ratio "$h4_mbps" "$raw_mbps")" ">=" 0.5
	verdict "$BIG_MB MiB: handoff MB/s ÷ a ready-made session piped into smtp-sink (this sink's limit)" "$(ratio "$h4_mbps" "$lim_mbps")" ">=" 0.5
	echo
	echo "## 1. One \`sendmail -t -i\` call, 2 KB message, plain SMTP"
	echo
	echo "Wall time from fork to exit of one call that submits a 2,048-octet message (stdin: the file) to"
	echo "Postfix's smtp-sink on loopback; the client exits after the sink's 250 to the data (msmtp waits for the 221 to QUIT too; handoff sends QUIT and closes at once, as Postfix's smtp client does). handoff is called"
	echo "through a symlink named sendmail with HANDOFF_CONFIG naming a config with one relay"
	# shellcheck disable=SC2016 # the backquotes are Markdown
	echo '(`starttls = "none"`, `[queue] mode = "never"`, explicit hostname and domain, a `[daemon] socket` that'
	echo "does not exist: standalone, as on a host without the daemon); msmtp with \`--host\` (no config file);"
	echo "floor is a static Go hello-world with the same stdin."
	((CGO_ROW)) && echo "handoff-cgo (not a target row) is the same handoff source built with cgo (Go's default): dynamically linked, so it pays for the dynamic loader on every call."
	echo
	cat "$work/fig1.md"
	echo
	echo "N=$N rounds after $WARMUP warm-up."
	echo
	echo "## 1b. The same call with STARTTLS"
	echo
	echo "To bench/cmd/tlssink (STARTTLS, throwaway ECDSA P-256 certificate; smtp-sink has no TLS):"
	echo "handoff with \`starttls = \"required\"\`, msmtp with \`--tls=on --tls-starttls=on\`; $tls_mode."
	echo
	cat "$work/fig1b.md"
	echo
	echo "N=$N rounds after $WARMUP warm-up."
	echo
	echo "## 2. The same call through the daemon (system mode)"
	echo
	echo "\`handoff daemon -C $work/daemon.toml\` runs in the background with its socket and its queue under"
	echo "$work (file system: $(fstype "$work"); /var/spool, where a real queue is, is on $(fstype /var/spool));"
	echo "**it runs as root here**, where a real installation runs it as the user handoff: that changes the uid"
	echo "recorded in the queue and the sender policy (root may use any sender), not the work per message."
	echo "The front end is the same \`sendmail -t -i\` with HANDOFF_CONFIG naming that file, whose"
	echo "\`[daemon] socket\` is the daemon's; it hands the message over LMTP on the Unix socket."
	echo
	echo "- **handoff-daemon**: until the front end exits, which is when the daemon has queued the message"
	echo "  (message and envelope written and fsynced, directories fsynced) and said so; the daemon then"
	echo "  delivers it in the background, while the next command of the round runs."
	echo "- **handoff-daemon-odi**: the same with \`-odi\`: the daemon answers after its delivery attempt, so"
	echo "  the front end exits once the sink has the message (queued first all the same). The daemon keeps"
	echo "  its connection to the sink open between messages (relay_idle), so this row pays no TCP connect,"
	echo "  greeting or EHLO, where msmtp and handoff-standalone do."
	echo "- **handoff-standalone**: figure 1's call in this run, for comparison."
	((TMPFS)) && echo "- **handoff-daemon-tmpfs** (diagnostic, not a target row): a second daemon whose queue is on /dev/shm (tmpfs), where fsync costs nothing: the difference to handoff-daemon is what durability costs on this disk."
	echo
	cat "$work/fig2.md"
	echo
	echo "N=$N rounds after $WARMUP warm-up."
	echo
	echo "## 3. Enqueue $MSGS messages, then flush them"
	echo
	echo "For each number of connections c in ${conns[*]}, and $FLUSH_N round(s) of each: first $MSGS calls per"
	echo "queue, interleaved, of **handoff-odq** (\`sendmail -t -i -odq\`, standalone, into an empty queue"
	echo "on disk; every message fsynced, with its directory, before the call returns) and of"
	echo "**nullmailer-inject** (\`nullmailer-inject -b -f root@example.com\`, what nullmailer's sendmail -t"
	echo "runs, which runs nullmailer-queue, which fsyncs too), of **dma-enqueue** (\`dma -t -i -f root@example.com\`"
	echo "with DEFER in dma.conf: it only queues, fsyncing the message and its queue file)$( ((TMPFS)) && echo ', and of **handoff-odq-tmpfs** (the same as handoff-odq into a queue on /dev/shm)'); then,"
	echo "each timed and in an order that changes every time: handoff's \`sendmail -q\` with"
	echo "\`connections_per_relay = c\` and \`messages_per_connection = $MSGS\` (so that it uses c connections,"
	echo "as smtp-source does), **nullmailer-send** in one-shot mode (pausetime 0:"
	echo "it goes through its queue once, one message per connection, and exits), **dma -q** (\`dma -D -q\`:"
	echo "it forks one process per queued message, each delivering it over a connection of its own, all at"
	echo "once; timed until its spool is empty, since it may exit before its last child), and **smtp-source**"
	echo "\`-s c -m $MSGS -d -F msg-2k.eml\`, Postfix's load generator sending $MSGS copies of the same"
	echo "message over c connections kept open: what this sink takes over SMTP, with no queue at all."
	echo "nullmailer is not concurrent and dma takes as many connections as it has messages: neither has a"
	echo "setting for connections, and their rows are the same program at every c. The time is from the"
	echo "start of the flush to its exit (dma -q: until its spool is empty); every flush must leave its"
	echo "queue empty and the sink must have counted all $MSGS messages. \"connections the sink saw\" is"
	echo "smtp-sink's count of sessions ended during the flush."
	((TMPFS)) && echo "**handoff-tmpfs** (diagnostic, not a target row) flushes the tmpfs queue: what handoff does without the cost of fsync."
	echo
	echo "nullmailer runs from a private tree, $nmp: with NULLMAILER_TEST_PREFIX its programs take their"
	echo "configuration, queue, helpers and protocol modules from there instead of /etc/nullmailer,"
	echo "/var/spool/nullmailer and /usr/lib/nullmailer, so no bind mount and no installed package is needed;"
	echo "nullmailer-queue, setuid mail in the package, is copied without the setuid bit (nullmailer ignores"
	echo "the prefix in a setuid program), and everything runs as root."
	echo
	echo "dma reads /etc/dma/dma.conf and spools in /var/spool/dma, paths compiled in: it runs in a private"
	echo "mount namespace (\`unshare -m\`) where $dmp/etc and $dmp/spool are bind-mounted over"
	echo "them (empty mount points are made on the host if missing, and removed at exit); the enqueue rounds"
	echo "run all their rows in that namespace alike, and each \`dma -q\` is started through \`unshare\` and \`sh\`"
	echo "(a few ms on a flush). dma.conf: SMARTHOST 127.0.0.1, PORT $p_plain, NULLCLIENT (every recipient to"
	echo "the smarthost, no aliases, no local delivery), DEFER, no TLS, no auth. The dma binary keeps the"
	echo "package's setgid bit (group mail): run as root, dma switches to the user mail and writes its spool"
	echo "(root:mail, 2770, as in the package) as group mail. Its local-delivery helper dma-mbox-create, setuid"
	echo "root in the package, is never run here and its copy has the setuid bit dropped."
	echo
	echo "Enqueue, all rounds and connection counts together:"
	echo
	enqueue_table
	echo
	echo "Flush:"
	echo
	flush_table
	echo
	echo "The ratio column is a ratio of rates at the same c (the tool's median time over handoff's): 0.50"
	echo "means handoff delivers at half the tool's rate. Rates are $MSGS over the median time."
	echo
	echo "## 4. One $BIG_MB MiB message"
	echo
	echo "One call with a $big_size-octet message (80-octet lines) on stdin, to smtp-sink; MB/s is"
	echo "10⁶ octets of the file per second of wall time. Two loopback limits: **smtp-source** is Postfix's"
	echo "load generator sending the same file (\`-F\`) to the same smtp-sink, i.e. what this sink can take"
	echo "over SMTP; **raw-tcp** is \`socat -u -b 262144 STDIN TCP:...\` copying the file to a socat listener"
	echo "(also 256 KiB reads) that discards it, i.e. the loopback link with no SMTP at all; **sink-limit** is socat"
	echo "piping a ready-made SMTP session of the same message (EHLO, MAIL, RCPT, DATA, the body already in CRLF"
	echo "and dot-stuffed, the dot, QUIT: all in one stream) into the same smtp-sink and waiting for it to close,"
	echo "i.e. the most any SMTP client can get this sink to take: the receiver, not the link, is the limit of"
	echo "every SMTP row. Peak RSS is the child's ru_maxrss."
	echo
	cat "$work/fig4.md"
	echo
	echo "N=$BIG_N rounds after 1 warm-up."
	echo "Cross-check with \`/usr/bin/time -v\` (one more call each), \"Maximum resident set size\":"
	echo "handoff $rss_h KiB, msmtp $rss_m KiB."
	echo
	echo "## 5. $PAR parallel submitters, $MSGS messages in all"
	echo
	echo "$PAR submitters start at once; each sends its share of the $MSGS messages (the 2 KB one), one"
	echo "\`sendmail -t -i\` after the other. **standalone**: figure 1's config, each call delivers to the sink"
	echo "itself ($PAR connections at a time), so every call has returned when the sink has everything."
	echo "**daemon**: through \`handoff daemon\` as in figure 2, each call returns once its message is queued;"
	echo "the daemon delivers meanwhile, over its default 2 connections, and \"the sink has all\" is when its"
	echo "queue is empty (polled every 5 ms). Rounds alternate which mode goes first."
	echo
	par_table
	echo
	echo "Raw samples of this run: $work/fig*-samples.tsv, $work/fig3-*.tsv, $work/fig5.tsv."
} >"$OUT_MD"

# ---------------------------------------------------------------- chart
# hist PLOT-FILE DATA NSERIES FORMAT: a gnuplot plot command for clustered
# bars (gap 1) of NSERIES columns, with each value printed above its bar.
hist() {
	local dat=$1 ns=$2 fmt=$3 i cmd colors=('#2b6cb0' '#c05621' '#718096' '#2f855a' '#805ad5')
	cmd="plot \"$dat\" using 2:xtic(1) lc rgb \"${colors[0]}\""
	for ((i = 1; i < ns; i++)); do
		cmd+=", \"\" using $((i + 2)) lc rgb \"${colors[i]}\""
	done
	for ((i = 0; i < ns; i++)); do
		cmd+=", \"\" using (\$0+($i-($ns-1)/2.0)/($ns+1.0)):$((i + 2)):(sprintf(\"$fmt\", \$$((i + 2)))) with labels offset 0,0.6 font \"sans,8\" notitle"
	done
	echo "$cmd"
}
{
	echo '"" handoff msmtp floor'
	echo "\"plain\" $h1 $m1 $f1"
	echo "\"STARTTLS\" $h1b $m1b $f1b"
	echo "\"daemon: queued\" $h2 $m2 $f2"
	echo "\"daemon: -odi\" $h2i $m2 $f2"
} >"$work/chart1.dat"
{
	printf '""'
	ftools=(handoff smtp-source nullmailer-send dma-q)
	((TMPFS)) && ftools+=(handoff-tmpfs)
	printf ' %s' "${ftools[@]}"
	echo
	for c in "${conns[@]}"; do
		printf '"c=%s"' "$c"
		for t in "${ftools[@]}"; do printf ' %s' "$(flush_rate "$c" "$t")"; done
		echo
	done
} >"$work/chart3.dat"
{
	echo '"" MB/s'
	echo "\"handoff\" $h4_mbps"
	echo "\"msmtp\" $m4_mbps"
	echo "\"smtp-source\" $src_mbps"
	echo "\"raw-tcp\" $raw_mbps"
	echo "\"sink-limit\" $lim_mbps"
} >"$work/chart4.dat"
{
	echo '"" "all calls returned" "sink has all"'
	for mode in standalone daemon; do
		echo "\"$mode\" $(rate "$MSGS" "$(get fig5-returned.stats "$mode" 3)") $(rate "$MSGS" "$(get fig5-delivered.stats "$mode" 3)")"
	done
} >"$work/chart5.dat"
gnuplot <<EOF || die "gnuplot failed"
set terminal svg size 1100,820 noenhanced font "sans,11" background rgb "white"
set output "$OUT_SVG"
set multiplot layout 2,2 title "handoff on loopback: $machine" font "sans,12"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set key top left autotitle columnheader font "sans,9"
set grid ytics
set logscale y
set offsets 0, 0, graph 0.08, 0

set title "1, 1b, 2. One sendmail -t -i call, 2 KB (median ms, N=$N, log scale)"
set ylabel "ms per call"
set yrange [0.5:*]
$(hist "$work/chart1.dat" 3 "%.1f")

set title "3. Flush of $MSGS queued messages (messages/s, log scale)"
set ylabel "messages/s"
set yrange [10:*]
$(hist "$work/chart3.dat" "${#ftools[@]}" "%.0f")

unset logscale y
set yrange [0:*]
set offsets 0, 0, graph 0.1, 0

set title "4. One $BIG_MB MiB message (MB/s, median of $BIG_N)"
set ylabel "MB/s"
set key off
$(hist "$work/chart4.dat" 1 "%.0f")

set title "5. $PAR parallel submitters, $MSGS messages (messages/s, median of $PAR_N)"
set ylabel "messages/s"
set key top right
$(hist "$work/chart5.dat" 2 "%.0f")
unset multiplot
EOF

say "wrote $OUT_MD and $OUT_SVG in $((SECONDS - t_start)) s"
sed -n '/^## Targets/,/^## 1\./p' "$OUT_MD" | sed '$d'
