#!/usr/bin/env bash
# CI step for handoff's packages. Runs as root on Debian 12 after
# "apt-get update" (.ci/run runs it after the Go tests):
#
#	bash packaging/ci.sh
#
#  1. installs lintian and php-cli;
#  2. builds the .deb and .rpm (packaging/build.sh);
#  3. shellcheck on the packaging scripts (when shellcheck is there);
#  4. lintian on the .deb: errors fail, warnings are shown;
#  5. systemd-analyze verify on the units as packaged (any message
#     fails), and systemd-analyze security under a threshold;
#  6. installs the .deb with apt-get, which removes the installed MTA
#     (Postfix here: handoff Conflicts with mail-transport-agent, as
#     every Debian MTA does), and checks what the installation did;
#  7. one PHP mail() through the installed /usr/sbin/sendmail, which
#     must land in /var/mail/root (no relay: local delivery), and the
#     README's check: the real cron daemon mails a job's output the same
#     way (this waits for the next minute);
#  8. purges handoff and puts the MTAs it replaced back, also when a
#     check fails, so that the script can run again and Postfix's
#     binaries stay for the tests.
set -euo pipefail

export PATH="$PATH:/usr/local/go/bin:/usr/sbin:/sbin"
export DEBIAN_FRONTEND=noninteractive
cd "$(dirname "$0")/.."

step() { printf '\n=== packaging: %s\n' "$*"; }
fail() {
	echo "FATAL: $*" >&2
	exit 1
}

# Keep maintainer scripts from starting services (Postfix when it comes
# back, handoff's units), unless the machine has a policy of its own.
policy=/usr/sbin/policy-rc.d
made_policy=
installed=
replaced=()
root=
# swap_back purges handoff and reinstalls what it replaced, in one
# transaction, so that what depends on an MTA (bsd-mailx, say) is never
# left without one and removed. It says what is wrong and returns 1.
swap_back() {
	local ok=0 pkg
	installed=
	step "purge handoff, reinstall what it replaced: ${replaced[*]:-nothing}"
	apt-get purge -y --no-install-recommends handoff "${replaced[@]/%/+}" ||
		{ echo "FATAL: could not purge handoff and reinstall ${replaced[*]:-nothing}" >&2; ok=1; }
	for pkg in "${replaced[@]}"; do
		[[ $(dpkg-query --show --showformat='${db:Status-Abbrev}' "$pkg" 2>/dev/null) == ii* ]] ||
			{ echo "FATAL: $pkg is not installed again" >&2; ok=1; }
	done
	if [[ $(dpkg-query --show --showformat='${db:Status-Abbrev}' handoff 2>/dev/null) == ?i* ]]; then
		echo "FATAL: handoff is still installed" >&2
		ok=1
	fi
	return "$ok"
}
cleanup() {
	local status=$?
	set +e
	if [[ -n $root ]]; then
		rm -rf "$root"
	fi
	if [[ -n $installed ]]; then
		swap_back || status=1
	fi
	if [[ -n $made_policy ]]; then
		rm -f "$policy"
	fi
	exit "$status"
}
trap cleanup EXIT
if [[ ! -e $policy ]]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	made_policy=1
fi

step "install lintian, php-cli and cron"
apt-get install -y --no-install-recommends lintian php-cli cron
lintian --version
php --version | head -n 1

step "build the packages"
rm -f dist/handoff_*.deb dist/handoff_*.rpm
bash packaging/build.sh
debs=(dist/handoff_*.deb)
rpms=(dist/handoff_*.rpm)
[[ ${#debs[@]} == 1 && -s ${debs[0]} ]] || fail "expected one .deb in dist/, found: ${debs[*]}"
[[ ${#rpms[@]} == 1 && -s ${rpms[0]} ]] || fail "expected one .rpm in dist/, found: ${rpms[*]}"
deb=${debs[0]}
ls -l "$deb" "${rpms[0]}"
dpkg-deb --info "$deb"

step "shellcheck the packaging scripts"
if command -v shellcheck >/dev/null; then
	shellcheck packaging/build.sh packaging/ci.sh
	shellcheck -s sh packaging/scripts/deb/* packaging/scripts/rpm/*
	echo "shellcheck: clean"
else
	echo "shellcheck is not installed; skipped"
fi

step "lintian $deb (errors fail, warnings shown)"
# As an unprivileged user when possible: lintian unpacks the package.
chmod a+r "$deb"
lint=(lintian --fail-on error)
if id nobody >/dev/null 2>&1; then
	lint=(runuser -u nobody -- "${lint[@]}")
fi
"${lint[@]}" "$deb"
echo "lintian: no errors"

# The package's files, unpacked into a scratch root for the unit checks.
root=$(mktemp -d)
dpkg-deb --extract "$deb" "$root"
units=(handoff.socket handoff.service handoff.timer handoff-queue.service handoff-queue.timer)

step "systemd-analyze verify ${units[*]}"
# In the scratch root, with the host's units beside handoff's (for
# sockets.target, network.target, ...) and its man pages for the
# Documentation= check; ExecStart= is checked against the packaged binary.
cp -an /usr/lib/systemd/system/. "$root/usr/lib/systemd/system/"
verify_out=$(cd "$root/usr/lib/systemd/system" &&
	MANPATH="$root/usr/share/man" systemd-analyze verify --root="$root" "${units[@]}" 2>&1) ||
	fail "systemd-analyze verify failed:"$'\n'"$verify_out"
[[ -z $verify_out ]] || fail "systemd-analyze verify complained:"$'\n'"$verify_out"
echo "systemd-analyze verify: clean"

step "systemd-analyze security (exposure at most 2.5 for the daemon, 3.0 for the root queue run)"
for check in handoff.service:25 handoff-queue.service:30; do
	unit=${check%:*}
	security_out=$(cd "$root/usr/lib/systemd/system" &&
		systemd-analyze security --offline=true --root="$root" --threshold="${check#*:}" "$unit" 2>&1) ||
		fail "$unit is more exposed than allowed:"$'\n'"$security_out"
	grep -F 'Overall exposure' <<<"$security_out"
done

step "install $deb (replaces the installed mail-transport-agent)"
while read -r status package provides; do
	if [[ $status == ii && $provides == *mail-transport-agent* && $package != handoff ]]; then
		replaced+=("$package")
	fi
done < <(dpkg-query --show --showformat='${db:Status-Abbrev} ${Package} ${Provides}\n')
echo "installed MTAs: ${replaced[*]:-none}"
# The user may exist already (tests/daemon_test.go makes one; so does an
# earlier run): then the package leaves it as it is.
had_user=
if getent passwd handoff >/dev/null; then
	had_user=1
fi
installed=1
apt-get install -y "./$deb"
dpkg-query --show --showformat='${Package} ${Version} ${db:Status-Abbrev}\n' handoff

step "check the installation"
sendmail=$(readlink -f /usr/sbin/sendmail)
[[ $sendmail == /usr/sbin/handoff ]] || fail "/usr/sbin/sendmail resolves to $sendmail, not /usr/sbin/handoff"
echo "/usr/sbin/sendmail -> $sendmail ($(/usr/sbin/handoff version))"
for name in /usr/bin/mailq /usr/bin/newaliases /usr/sbin/rmail /usr/sbin/runq /usr/lib/sendmail; do
	[[ $(readlink -f "$name") == /usr/sbin/handoff ]] || fail "$name does not resolve to /usr/sbin/handoff"
done
echo "mailq, newaliases, rmail, runq, /usr/lib/sendmail -> /usr/sbin/handoff"
for pkg in "${replaced[@]}"; do
	[[ $(dpkg-query --show --showformat='${db:Status-Abbrev}' "$pkg" 2>/dev/null) != ii* ]] ||
		fail "$pkg is still installed next to handoff"
done
getent passwd handoff || fail "no user handoff"
if [[ -z $had_user ]]; then
	[[ $(getent passwd handoff | cut -d: -f6,7) == /var/spool/handoff:/usr/sbin/nologin ]] ||
		fail "the user handoff the package created has the wrong home or shell"
	echo "created the user handoff"
else
	echo "the user handoff existed already and was kept"
fi
for want in "/var/spool/handoff 700 handoff:handoff" "/run/handoff 755 handoff:handoff" \
	"/var/lib/handoff 700 handoff:handoff" "/var/lib/handoff/oauth2 700 handoff:handoff"; do
	read -r dir mode owner <<<"$want"
	got=$(stat -c '%a %U:%G' "$dir") || fail "$dir was not created"
	[[ $got == "$mode $owner" ]] || fail "$dir is $got, not $mode $owner"
	echo "$dir $got"
done
grep -qx /etc/handoff/handoff.toml /var/lib/dpkg/info/handoff.conffiles ||
	fail "/etc/handoff/handoff.toml is not a conffile"
handoff config check >/dev/null || fail "handoff config check fails on the shipped configuration"
echo "handoff config check: the shipped configuration is valid"
[[ -L /etc/systemd/system/timers.target.wants/handoff-queue.timer ]] ||
	fail "handoff-queue.timer was not enabled"
echo "enabled: handoff-queue.timer"
if [[ -L /etc/systemd/system/sockets.target.wants/handoff.socket ]]; then
	[[ -L /etc/systemd/system/timers.target.wants/handoff.timer ]] ||
		fail "handoff.socket was enabled without handoff.timer"
	echo "enabled: handoff.socket and handoff.timer (the binary has 'handoff daemon')"
else
	echo "not enabled: handoff.socket (the binary has no 'handoff daemon')"
fi

step "PHP mail() through the installed /usr/sbin/sendmail"
echo "sendmail_path: $(php -r 'echo ini_get("sendmail_path");')"
marker="handoff-ci-$(date +%s)-$$"
mbox=/var/mail/root
HANDOFF_CI_SUBJECT=$marker php -r \
	'exit(mail("root", getenv("HANDOFF_CI_SUBJECT"), "Sent by packaging/ci.sh through PHP mail().\n") ? 0 : 1);' ||
	fail "PHP mail() returned false"
grep -qx "Subject: $marker" "$mbox" || fail "no message with Subject: $marker in $mbox"
echo "$mbox has the message:"
awk -v m="Subject: $marker" '/^From /{msg=""} {msg=msg $0 "\n"} $0==m{found=1} found && /^$/{printf "%s", msg; exit}' "$mbox"

step "cron: a job's output mailed through the installed /usr/sbin/sendmail (the README's check)"
cron_marker="handoff-ci-cron-$(date +%s)-$$"
printf '* * * * * root echo %s\n' "$cron_marker" >/etc/cron.d/handoff-ci
chmod 644 /etc/cron.d/handoff-ci
cron -f &
cron_pid=$!
found=
for _ in $(seq 150); do
	if grep -q "^$cron_marker\$" "$mbox" 2>/dev/null; then
		found=1
		break
	fi
	sleep 1
done
kill "$cron_pid" 2>/dev/null || true
wait "$cron_pid" 2>/dev/null || true
rm -f /etc/cron.d/handoff-ci
[[ -n $found ]] || fail "cron's mail with $cron_marker did not reach $mbox within 150 s"
awk -v m="$cron_marker" '/^From /{msg=""} {msg=msg $0 "\n"} $0==m{printf "%s", msg; exit}' "$mbox"
grep -q '^From: root\(@[^ ]*\)\? (Cron Daemon)$' "$mbox" || fail "no 'From: root@HOST (Cron Daemon)' in $mbox"

swap_back || exit 1
step "check the purge"
for gone in /etc/handoff /var/lib/handoff /usr/sbin/handoff /usr/lib/systemd/system/handoff.socket \
	/etc/systemd/system/timers.target.wants/handoff-queue.timer; do
	[[ ! -e $gone && ! -L $gone ]] || fail "$gone is still there after the purge"
done
echo "removed: /etc/handoff, /var/lib/handoff, the binary, the units and their enablement"
if [[ -e /usr/sbin/sendmail ]]; then
	echo "/usr/sbin/sendmail is $(dpkg-query --search /usr/sbin/sendmail)"
fi
if [[ " ${replaced[*]} " == *" postfix "* ]]; then
	echo "postfix $(postconf -dh mail_version) is back"
fi
