#!/usr/bin/env bash
# Builds handoff's .deb and .rpm from packaging/nfpm.yaml:
#
#	packaging/build.sh [VERSION]
#
# VERSION is semver, MAJOR.MINOR.PATCH[-PRERELEASE]; by default the
# Version of internal/cli. Writes dist/handoff_VERSION_ARCH.deb and
# dist/handoff_VERSION_ARCH.rpm (ARCH is Go's, amd64 on a PC), after
# building the binary without cgo, statically linked and not PIE,
# stripped, with -trimpath and the version set. Static: every sendmail
# call starts a process, and a dynamically linked PIE spends about a
# millisecond (a third of a whole call to a relay) in the dynamic loader
# relocating the Go binary before main. Users that only NSS knows (LDAP,
# sssd) are still found: internal/userdb asks getent(1) for a name that
# /etc/passwd lacks.
#
# nfpm runs as a Go tool at a pinned version, outside go.mod:
# "go run github.com/goreleaser/nfpm/v2/cmd/nfpm@NFPM_VERSION".
#
# Environment: MAINTAINER (the package's Maintainer field),
# SOURCE_DATE_EPOCH (file times; default: the last commit's time, for
# reproducible packages), NFPM_VERSION.
set -euo pipefail

cd "$(dirname "$0")/.."

NFPM_VERSION=${NFPM_VERSION:-v2.45.2}
MAINTAINER=${MAINTAINER:-handoff maintainers <maintainers@handoff-mta.example>}
cli_version() {
	sed -n 's/^var Version = "\(.*\)"$/\1/p' internal/cli/cli.go
}
VERSION=${1:-$(cli_version)}
if [[ ! $VERSION =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.]+)?$ ]]; then
	echo "build.sh: version \"$VERSION\" is not MAJOR.MINOR.PATCH[-PRERELEASE]" >&2
	exit 64
fi
# Debian and RPM order a prerelease before its release with '~'.
pkg_version=${VERSION/-/\~}
ARCH=$(go env GOARCH)

if [[ -z ${SOURCE_DATE_EPOCH:-} ]]; then
	SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || date +%s)
fi
export SOURCE_DATE_EPOCH

stage=dist/stage
rm -rf "$stage"
mkdir -p "$stage/man"

echo "build.sh: handoff $VERSION ($pkg_version) for $ARCH"
CGO_ENABLED=0 go build -trimpath \
	-ldflags "-s -w -X github.com/handoff-mta/handoff/internal/cli.Version=$VERSION" \
	-o "$stage/handoff" ./cmd/handoff
# What dh_strip removes too: the compiler's version strings.
strip --remove-section=.comment "$stage/handoff"
got=$("$stage/handoff" version)
if [[ $got != "handoff $VERSION" ]]; then
	echo "build.sh: the binary says \"$got\", not \"handoff $VERSION\"" >&2
	exit 1
fi

# Every Go module linked into the binary must be in the copyright file.
missing=
while read -r kind path _; do
	if [[ $kind == dep ]] && ! grep -q "^\(Files:\)\? *${path//./\\.}/\*" packaging/copyright; then
		missing="$missing $path"
	fi
done < <(go version -m "$stage/handoff")
if [[ -n $missing ]]; then
	echo "build.sh: packaging/copyright does not cover the modules:$missing" >&2
	exit 1
fi

if ! file "$stage/handoff" | grep -q 'statically linked'; then
	echo "build.sh: the binary is not statically linked" >&2
	exit 1
fi

for page in man/*.[58]; do
	name=$(basename "$page")
	gzip -9n <"$page" >"$stage/man/$name.gz"
done

# The Debian changelog: one entry for this build (the history is git's),
# for the package's version: nfpm.yaml's release 1 is the Debian
# revision.
commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
{
	printf 'handoff (%s-1) unstable; urgency=medium\n\n' "$pkg_version"
	printf '  * Built from the handoff source tree at commit %s.\n\n' "$commit"
	printf ' -- %s  %s\n' "$MAINTAINER" "$(date -u -R -d "@$SOURCE_DATE_EPOCH")"
} | gzip -9n >"$stage/changelog.gz"

export VERSION ARCH MAINTAINER
for packager in deb rpm; do
	out="dist/handoff_${VERSION}_${ARCH}.$packager"
	rm -f "$out"
	go run "github.com/goreleaser/nfpm/v2/cmd/nfpm@$NFPM_VERSION" package \
		--config packaging/nfpm.yaml --packager "$packager" --target "$out"
done
if command -v dpkg-deb >/dev/null 2>&1; then
	got=$(dpkg-deb --field "dist/handoff_${VERSION}_${ARCH}.deb" Version)
	if [[ $got != "$pkg_version-1" ]]; then
		echo "build.sh: the .deb has version $got, the changelog $pkg_version-1" >&2
		exit 1
	fi
fi
echo "build.sh: wrote dist/handoff_${VERSION}_${ARCH}.deb and .rpm"
