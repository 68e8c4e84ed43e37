// Package tests holds handoff's end-to-end tests: they build the real
// binary (go build ./cmd/handoff), call it by its sendmail names
// (symlinks sendmail, mailq, newaliases, rmail, as an installation makes
// them) with the exact argument vectors and the kind of input that the
// real callers of PRODUCT.md §2 use — PHP mail(), Debian cron, cronie,
// systemd-cron, at, mutt, git send-email, Rails, sudo, mailx, Symfony and
// Laravel — and check what a real relay received: a private Postfix that
// authenticates through Dovecot and delivers to Dovecot Maildirs
// (internal/realserver). Each test checks the exit status, standard
// output and error, and what was stored: the envelope (Return-Path,
// Delivered-To), the header block and the body bytes.
//
// The failure paths (a refused sender, a temporary or unknown recipient,
// a wrong password, a relay that is down) check the sysexits status, one
// line on standard error per failed recipient, and ~/dead.letter.
//
// # dead.letter and the private home
//
// handoff writes dead.letter to the home directory of the real user from
// the passwd database (research/sendmail-compat.md §7 point 19), not to
// $HOME, and the tests run as root. So that no test writes the real
// /root/dead.letter, every run of the binary goes through a wrapper (the
// test binary itself, re-executed) that enters a private mount namespace,
// bind-mounts a fresh temporary directory over the user's home and then
// execs the handoff symlink with the caller's exact argv and an
// environment of PATH, HOME (the same directory) and HANDOFF_CONFIG only.
// Where mount namespaces are not available the binary is run directly
// and the tests that would write dead.letter are skipped, loudly (or fail
// when HANDOFF_REQUIRE_INTEGRATION=1).
//
// The tests that need the servers skip, saying what is missing, when
// Postfix or Dovecot is not installed, and fail instead when
// HANDOFF_REQUIRE_INTEGRATION=1 is set, as CI does.
//
//	HANDOFF_REQUIRE_INTEGRATION=1 go test -race -count=1 -v ./tests/
package tests
