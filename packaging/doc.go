// Package packaging holds handoff's .deb and .rpm packaging: the nfpm
// description (nfpm.yaml), the build and CI scripts (build.sh, ci.sh),
// the systemd units, the shipped configuration file (handoff.toml,
// installed as /etc/handoff/handoff.toml) and example configurations for
// common providers (examples/). README.md says how to build and what the
// package contains.
//
// The package has no code, only tests: they parse the shipped
// configuration file and every example with config.Parse, so that a key
// renamed or removed in the config package, or a typo in an example,
// fails "go test ./..." instead of a user's "handoff config check". The
// shipped file must also mean exactly the built-in defaults, both as
// shipped (every line commented out) and with every "#key = value" line
// uncommented, which proves that the defaults it shows are the real ones.
package packaging
