#!/usr/bin/env bash
# bench/run.sh: handoff side by side with msmtp and the floors, on loopback.
#
# Usage (as root, from anywhere; Debian 12, Go on PATH):
#
#   bash bench/run.sh               # full run: N=200 calls per tool, 7 x 100 MB
#   N=20 BIG_N=2 bash bench/run.sh  # quick run (what CI may use to prove it works)
#   bash bench/run.sh -h            # this text
#
# Settings, all from the environment:
#   N=200          measured sendmail calls per tool in figures 1 and 1b
#   WARMUP=3       unrecorded rounds before them
#   BIG_N=7        measured runs per tool of the 100 MB message (figure 4)
#   BIG_MB=100     size of that message in MiB
#   NOCGO=1        also time handoff built with CGO_ENABLED=0 (row
#                  "handoff-nocgo" in figures 1 and 1b; 0 leaves it out)
#   TLS_VERIFY=0   1: both clients verify tlssink's certificate against its
#                  PEM file (tls_ca_file / --tls-trust-file) instead of
#                  skipping verification (tls_insecure / --tls-certcheck=off)
#   PORT=25251     first of three loopback ports (PORT, PORT+1, PORT+2)
#   BENCH_WORK=/var/tmp/handoff-bench   scratch: extracted Postfix, messages,
#                  configs, raw samples (kept between runs; safe to delete)
#   OUT_MD=bench/results.md  OUT_SVG=bench/results.svg
#
# What it does: installs what is missing from Debian (msmtp, gnuplot-nox,
# time, socat), extracts Postfix's smtp-sink and smtp-source from the
# postfix .deb with dpkg -x (the machine's MTA is not touched), builds
# handoff with `go build -trimpath -ldflags=-s` (default cgo setting;
# called through a symlink named sendmail), the exec floor (a static CGO_ENABLED=0 Go
# hello-world) and two helpers in bench/cmd (tlssink: a STARTTLS sink,
# since smtp-sink has no TLS; interleave: the timer), then measures, each
# figure interleaved (A B C, B C A, ... so noise hits every tool alike):
#
#   1.  one `sendmail -t -i` of a 2 KB message to smtp-sink on 127.0.0.1,
#       until the client exits (after the sink's 250 and 221): handoff vs
#       msmtp vs the exec floor;
#   1b. the same with STARTTLS, to bench/cmd/tlssink;
#   4.  one 100 MB message through `sendmail -t -i` to smtp-sink: wall
#       time, MB/s and peak RSS for handoff and msmtp, against two loopback
#       limits: Postfix's smtp-source sending the same file to the same
#       sink (the SMTP limit of this sink), and socat copying the file raw
#       over a loopback TCP connection (the link itself).
#
# It checks that the sinks received every message, and writes OUT_MD
# (tables, targets of issue 7 met or not, machine) and OUT_SVG (chart).
# Only ratios within one run mean anything: the machine is noisy.
# A run that fails stops at once; a handoff call that failed may have
# left its message in root's ~/dead.letter, as sendmail does.
set -euo pipefail

if [[ ${1:-} == -h || ${1:-} == --help ]]; then
	sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
	exit 0
fi

N=${N:-200}
WARMUP=${WARMUP:-3}
BIG_N=${BIG_N:-7}
BIG_MB=${BIG_MB:-100}
TLS_VERIFY=${TLS_VERIFY:-0}
NOCGO=${NOCGO:-1}
PORT=${PORT:-25251}
BENCH_WORK=${BENCH_WORK:-/var/tmp/handoff-bench}

bench=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$bench/.." && pwd)
OUT_MD=${OUT_MD:-$bench/results.md}
OUT_SVG=${OUT_SVG:-$bench/results.svg}
bin=$bench/bin
work=$BENCH_WORK
t_start=$(date +%s)

die() {
	echo "bench: FAILED: $*" >&2
	exit 1
}
say() { echo "bench: $*" >&2; }
trap 'die "line $LINENO: $BASH_COMMAND (exit status $?)"' ERR

[[ $(id -u) == 0 ]] || die "run as root: it installs packages with apt-get"
[[ $N =~ ^[1-9][0-9]*$ && $WARMUP =~ ^[0-9]+$ && $BIG_N =~ ^[1-9][0-9]*$ && $BIG_MB =~ ^[1-9][0-9]*$ ]] ||
	die "N, BIG_N and BIG_MB must be positive integers, WARMUP a non-negative one"
[[ $PORT =~ ^[0-9]+$ ]] || die "PORT must be a number"
[[ $NOCGO == [01] && $TLS_VERIFY == [01] ]] || die "NOCGO and TLS_VERIFY are 0 or 1"
[[ $work != *[[:space:]]* && $bench != *[[:space:]]* ]] || die "paths with white space are not supported ($work, $bench)"
command -v go >/dev/null || die "go is not on PATH"
mkdir -p "$work" "$bin"

# ---------------------------------------------------------------- peers
apt_install() {
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y --no-install-recommends "$@" >"$work/apt.log" 2>&1 ||
		{ apt-get update >>"$work/apt.log" 2>&1 && apt-get install -y --no-install-recommends "$@" >>"$work/apt.log" 2>&1; } ||
		{ tail -n 20 "$work/apt.log" >&2; die "apt-get install $* failed (log: $work/apt.log)"; }
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
	(cd "$pf/deb" && apt-get -q -o APT::Sandbox::User=root download postfix >"$work/apt-download.log" 2>&1) ||
		{ apt-get update >/dev/null 2>&1 && (cd "$pf/deb" && apt-get -q -o APT::Sandbox::User=root download postfix >"$work/apt-download.log" 2>&1); } ||
		{ cat "$work/apt-download.log" >&2; die "apt-get download postfix failed"; }
	dpkg -x "$pf"/deb/postfix_*.deb "$pf/root"
	[[ -x $smtp_sink && -x $smtp_source ]] || die "the postfix package has no smtp-sink/smtp-source"
fi
# Their shared libraries: Postfix's own come from the extracted tree
# (LD_LIBRARY_PATH, only for these two), the system ones (libdb, libicu,
# libnsl, ...) are the package's lib* dependencies, installed if missing.
pflib=$pf/root/usr/lib/postfix
missing_libs() { LD_LIBRARY_PATH=$pflib ldd "$smtp_sink" "$smtp_source" 2>&1 | grep 'not found' || true; }
if [[ -n $(missing_libs) ]]; then
	mapfile -t libs < <(dpkg-deb -f "$pf"/deb/postfix_*.deb Depends | tr ',' '\n' | sed 's/[|(].*//; s/ //g' | grep '^lib' || true)
	say "installing the libraries smtp-sink needs: ${libs[*]}"
	apt_install "${libs[@]}"
	[[ -z $(missing_libs) ]] || die "smtp-sink still misses libraries: $(missing_libs)"
fi
postfix_version=$(basename "$pf"/deb/postfix_*.deb .deb | cut -d_ -f2)
id nobody >/dev/null 2>&1 || die "user nobody is missing (smtp-sink drops privileges to it)"

# ---------------------------------------------------------------- builds
say "building handoff, the floor and the helpers"
(
	cd "$repo"
	go build -trimpath -ldflags=-s -o "$bin/handoff" ./cmd/handoff
	if ((NOCGO)); then
		mkdir -p "$bin/nocgo"
		CGO_ENABLED=0 go build -trimpath -ldflags=-s -o "$bin/nocgo/handoff" ./cmd/handoff
	fi
	CGO_ENABLED=0 go build -trimpath -ldflags=-s -o "$bin/floor" ./bench/cmd/floor
	go build -o "$bin/tlssink" ./bench/cmd/tlssink
	go build -o "$bin/interleave" ./bench/cmd/interleave
) || die "go build failed"
ln -sfn handoff "$bin/sendmail"
((NOCGO)) && ln -sfn handoff "$bin/nocgo/sendmail"
handoff_rev=$(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)

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
cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	wait 2>/dev/null || true
}
trap cleanup EXIT

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {
	local i
	for ((i = 0; i < 100; i++)); do
		port_busy "$1" && return 0
		sleep 0.05
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
# stop_sink NAME WANT: stop it and check that it got WANT messages.
stop_sink() {
	kill "$sink_pid"
	wait "$sink_pid" 2>/dev/null || true
	local got
	got=$(tr '\r' '\n' <"$work/$1.out" | sed -n 's/.*mesg=\([0-9]*\).*/\1/p' | tail -n 1)
	[[ ${got:-0} == "$2" ]] || die "smtp-sink ($1) received ${got:-0} messages, want $2; its stderr: $(cat "$work/$1.err")"
	say "smtp-sink ($1) received all $2 messages"
}

# ---------------------------------------------------------------- configs
write_config() { # FILE PORT STARTTLS [TLS LINE]
	local with_queue=$5
	{
		printf 'hostname = "bench.example.com"\ndomain = "example.com"\n\n'
		((with_queue)) && printf '[queue]\nmode = "never"\n\n'
		printf '[[relay]]\nname = "sink"\nurl = "smtp://127.0.0.1:%s"\nstarttls = "%s"\n' "$2" "$3"
		[[ -n $4 ]] && printf '%s\n' "$4"
		true
	} >"$1"
}
# [queue] mode = "never" where the key exists: handoff config check says.
queue_key=1
write_config "$work/probe.toml" "$p_plain" none "" 1
"$bin/handoff" config check -C "$work/probe.toml" >/dev/null 2>&1 || queue_key=0
write_config "$work/plain.toml" "$p_plain" none "" "$queue_key"
if ((TLS_VERIFY)); then
	tls_line="tls_ca_file = \"$work/tlssink.pem\""
	msmtp_check="--tls-certcheck=on --tls-trust-file=$work/tlssink.pem"
	tls_mode="both verify the sink's self-signed certificate against its PEM file (tls_ca_file / --tls-trust-file)"
else
	tls_line="tls_insecure = true"
	msmtp_check="--tls-certcheck=off"
	tls_mode="certificate verification off in both (tls_insecure = true / --tls-certcheck=off)"
fi
write_config "$work/tls.toml" "$p_tls" required "$tls_line" "$queue_key"
for f in plain tls; do
	"$bin/handoff" config check -C "$work/$f.toml" >"$work/$f.check" 2>&1 ||
		die "handoff rejects $work/$f.toml: $(cat "$work/$f.check")"
done

msmtp_base="msmtp -t -i --host=127.0.0.1 --from=root@example.com --domain=bench.example.com --auth=off"
handoff_plain="handoff: HANDOFF_CONFIG=$work/plain.toml $bin/sendmail -t -i"
handoff_tls="handoff: HANDOFF_CONFIG=$work/tls.toml $bin/sendmail -t -i"
msmtp_plain="msmtp: $msmtp_base --port=$p_plain --tls=off"
msmtp_tls="msmtp: $msmtp_base --port=$p_tls --tls=on --tls-starttls=on $msmtp_check"
floor="floor: $bin/floor"
nocgo_plain=() nocgo_tls=()
if ((NOCGO)); then
	nocgo_plain=(-c "handoff-nocgo: HANDOFF_CONFIG=$work/plain.toml $bin/nocgo/sendmail -t -i")
	nocgo_tls=(-c "handoff-nocgo: HANDOFF_CONFIG=$work/tls.toml $bin/nocgo/sendmail -t -i")
fi

# ---------------------------------------------------------------- figure 1
say "figure 1: one sendmail -t -i call, 2 KB, plain SMTP: N=$N (+$WARMUP warm-up) rounds"
start_sink sink-plain
"$bin/interleave" -n "$N" -warmup "$WARMUP" -stdin "$small" -ref handoff \
	-c "$handoff_plain" -c "$msmtp_plain" -c "$floor" "${nocgo_plain[@]}" \
	-md "$work/fig1.md" -tsv "$work/fig1.tsv" -samples "$work/fig1-samples.tsv" ||
	die "figure 1 failed"
stop_sink sink-plain $(((N + WARMUP) * (2 + NOCGO)))

# ---------------------------------------------------------------- figure 1b
say "figure 1b: the same with STARTTLS to tlssink"
"$bin/tlssink" -listen "127.0.0.1:$p_tls" -cert-out "$work/tlssink.pem" >"$work/tlssink.out" 2>"$work/tlssink.err" &
tls_pid=$!
pids+=("$tls_pid")
wait_port "$p_tls" tlssink
"$bin/interleave" -n "$N" -warmup "$WARMUP" -stdin "$small" -ref handoff \
	-c "$handoff_tls" -c "$msmtp_tls" -c "$floor" "${nocgo_tls[@]}" \
	-md "$work/fig1b.md" -tsv "$work/fig1b.tsv" -samples "$work/fig1b-samples.tsv" 2>"$work/fig1b.log" ||
	{ cat "$work/fig1b.log" >&2; die "figure 1b failed"; }
grep -v '^  note: handoff[-a-z]* wrote to standard error: .*tls_insecure' "$work/fig1b.log" >&2 || true
kill "$tls_pid"
wait "$tls_pid" 2>/dev/null || true
want=$(((N + WARMUP) * (2 + NOCGO)))
grep -q "tls=$want messages=$want " "$work/tlssink.out" ||
	die "tlssink did not get $want messages over TLS: $(cat "$work/tlssink.out" "$work/tlssink.err")"
say "tlssink received all $want messages, each over TLS"

# ---------------------------------------------------------------- figure 4
say "figure 4: one $BIG_MB MiB message: $BIG_N (+1 warm-up) rounds"
start_sink sink-big
socat -u -b 262144 "TCP-LISTEN:$p_raw,bind=127.0.0.1,reuseaddr,fork" OPEN:/dev/null,wronly 2>"$work/socat.err" &
pids+=("$!")
wait_port "$p_raw" "socat listener"
"$bin/interleave" -n "$BIG_N" -warmup 1 -stdin "$big" -ref handoff -bytes "$big_size" -rss -timeout 10m \
	-c "$handoff_plain" -c "$msmtp_plain" \
	-c "smtp-source: LD_LIBRARY_PATH=$pflib $smtp_source -M bench.example.com -f root@example.com -t rcpt@example.net -F $big 127.0.0.1:$p_plain" \
	-c "raw-tcp: socat -u -b 262144 STDIN TCP:127.0.0.1:$p_raw" \
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
stop_sink sink-big $(((BIG_N + 1) * 3 + 2))

# ---------------------------------------------------------------- report
cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -n 1)
machine="$(nproc) CPUs, ${cpu:-unknown CPU}, Linux $(uname -r), $(date -u '+%Y-%m-%d %H:%M UTC')"
go_version=$(go env GOVERSION)
msmtp_version=$(msmtp --version | sed -n '1s/^msmtp version //p')

col() { awk -F'\t' -v n="$2" -v c="$3" '$1 == n { print $c }' "$work/$1.tsv"; }
# verdict LABEL VALUE OP LIMIT: a row of the targets table.
verdict() {
	local ok
	ok=$(awk -v v="$2" -v l="$4" -v op="$3" 'BEGIN { print ((op == "<=" && v <= l) || (op == "<" && v < l) || (op == ">=" && v >= l)) ? "met" : "**not met**" }')
	printf '| %s | %s | %s %s | %s |\n' "$1" "$2" "$3" "$4" "$ok"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

h1=$(col fig1 handoff 3) m1=$(col fig1 msmtp 3) f1=$(col fig1 floor 3)
h1b=$(col fig1b handoff 3) m1b=$(col fig1b msmtp 3) f1b=$(col fig1b floor 3)
h4_mbps=$(col fig4 handoff 8) src_mbps=$(col fig4 smtp-source 8) raw_mbps=$(col fig4 raw-tcp 8)
h4_rss=$(col fig4 handoff 7)

{
	echo "# handoff benchmarks"
	echo
	echo "Written by \`bench/run.sh\` (N=$N, WARMUP=$WARMUP, BIG_N=$BIG_N, BIG_MB=$BIG_MB, TLS_VERIFY=$TLS_VERIFY)."
	echo "Machine: $machine."
	echo "handoff $handoff_rev built with $go_version (\`-trimpath -ldflags=-s\`, default cgo setting), msmtp $msmtp_version,"
	echo "Postfix $postfix_version smtp-sink/smtp-source (extracted from the .deb). Everything on 127.0.0.1."
	echo "Each figure is measured interleaved (A B C, B C A, ...); the machine is noisy, so only the"
	echo "ratios within one run count. \"handoff ÷ tool\" is handoff's median over that tool's median."
	echo
	echo '![median ms per call](results.svg)'
	echo
	echo "## Targets (issue 7)"
	echo
	echo "| target | measured | limit | verdict |"
	echo "|---|---:|---:|---|"
	verdict "per call, plain: handoff ÷ msmtp" "$(ratio "$h1" "$m1")" "<=" 0.25
	verdict "per call, plain: handoff ÷ Go exec floor" "$(ratio "$h1" "$f1")" "<=" 2
	verdict "per call, STARTTLS: handoff ÷ msmtp" "$(ratio "$h1b" "$m1b")" "<=" 0.25
	verdict "per call, STARTTLS: handoff ÷ Go exec floor" "$(ratio "$h1b" "$f1b")" "<=" 2
	verdict "$BIG_MB MiB: handoff peak RSS, MiB (max of runs)" "$(awk -v k="$h4_rss" 'BEGIN { printf "%.1f", k / 1024 }')" "<" 32
	verdict "$BIG_MB MiB: handoff MB/s ÷ smtp-source → smtp-sink (SMTP limit)" "$(ratio "$h4_mbps" "$src_mbps")" ">=" 0.5
	verdict "$BIG_MB MiB: handoff MB/s ÷ raw TCP copy (link limit)" "$(ratio "$h4_mbps" "$raw_mbps")" ">=" 0.5
	echo
	echo "## 1. One \`sendmail -t -i\` call, 2 KB message, plain SMTP"
	echo
	echo "Wall time from fork to exit of one call that submits a 2,048-octet message (stdin: the file) to"
	echo "Postfix's smtp-sink on loopback; the client exits after the sink's 250 and 221. handoff is called"
	echo "through a symlink named sendmail with HANDOFF_CONFIG naming a config with one relay"
	# shellcheck disable=SC2016 # the backquotes are Markdown
	echo "(\`starttls = \"none\"\`$( ((queue_key)) && echo ', `[queue] mode = "never"`'), explicit hostname and domain);"
	echo "msmtp with \`--host\` (no config file); floor is a static Go hello-world with the same stdin."
	((NOCGO)) && echo "handoff-nocgo (not a target row) is the same handoff source built with \`CGO_ENABLED=0\`: static, pure-Go os/user and resolver."
	echo
	cat "$work/fig1.md"
	echo
	echo "N=$N rounds after $WARMUP warm-up; $machine."
	echo
	echo "## 1b. The same call with STARTTLS"
	echo
	echo "To bench/cmd/tlssink (STARTTLS, throwaway ECDSA P-256 certificate; smtp-sink has no TLS):"
	echo "handoff with \`starttls = \"required\"\`, msmtp with \`--tls=on --tls-starttls=on\`; $tls_mode."
	echo
	cat "$work/fig1b.md"
	echo
	echo "N=$N rounds after $WARMUP warm-up; $machine."
	echo
	echo "## 4. One $BIG_MB MiB message"
	echo
	echo "One call with a $big_size-octet message (80-octet lines) on stdin, to smtp-sink; MB/s is"
	echo "10⁶ octets of the file per second of wall time. Two loopback limits: **smtp-source** is Postfix's"
	echo "load generator sending the same file (\`-F\`) to the same smtp-sink, i.e. what this sink can take"
	echo "over SMTP; **raw-tcp** is \`socat -u -b 262144 STDIN TCP:...\` copying the file to a socat listener"
	echo "(also 256 KiB reads) that discards it, i.e. the loopback link with no SMTP at all. Peak RSS is the child's ru_maxrss."
	echo
	cat "$work/fig4.md"
	echo
	echo "N=$BIG_N rounds after 1 warm-up; $machine."
	echo "Cross-check with \`/usr/bin/time -v\` (one more call each), \"Maximum resident set size\":"
	echo "handoff $rss_h KiB, msmtp $rss_m KiB."
	echo
	echo "Raw samples of this run: $work/fig*-samples.tsv."
} >"$OUT_MD"

# ---------------------------------------------------------------- chart
{
	echo "variant handoff msmtp floor"
	echo "plain $h1 $m1 $f1"
	echo "STARTTLS $h1b $m1b $f1b"
} >"$work/chart.dat"
gnuplot <<EOF || die "gnuplot failed"
set terminal svg size 760,460 noenhanced font "sans,12" background rgb "white"
set output "$OUT_SVG"
set title "One sendmail -t -i call, 2 KB message, loopback sink (median ms, N=$N)\n$machine" font "sans,11"
set ylabel "ms per call (median)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set key top left autotitle columnheader
set yrange [0:*]
set xrange [-0.6:1.6]
set grid ytics
set offsets 0, 0, graph 0.08, 0
# Clustered bars of 3 columns with gap 1 sit at x = row - 0.25, row, row + 0.25.
plot "$work/chart.dat" using 2:xtic(1) lc rgb "#2b6cb0", \
     "" using 3 lc rgb "#c05621", \
     "" using 4 lc rgb "#718096", \
     "" using (\$0-0.25):2:(sprintf("%.1f", \$2)) with labels offset 0,0.7 notitle, \
     "" using (\$0):3:(sprintf("%.1f", \$3)) with labels offset 0,0.7 notitle, \
     "" using (\$0+0.25):4:(sprintf("%.1f", \$4)) with labels offset 0,0.7 notitle
EOF

say "wrote $OUT_MD and $OUT_SVG in $(($(date +%s) - t_start)) s"
sed -n '/^## Targets/,/^## 1\./p' "$OUT_MD" | sed '$d'
