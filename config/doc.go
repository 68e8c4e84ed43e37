// Package config reads handoff's configuration, /etc/handoff/handoff.toml
// (PRODUCT §4), strictly.
//
// # Loading
//
// Load reads the file, Parse does the work on bytes already read. The
// document is decoded with github.com/BurntSushi/toml into a generic map
// and then walked key by key against the schema below, so that:
//
//   - an unknown key is an error, with a suggestion when a known key is
//     close ("did you mean password?") or lives in another table;
//   - keys are case-sensitive, as TOML says ("Hostname" is unknown);
//   - a value of the wrong type is reported and the walk goes on, so one
//     run reports every problem.
//
// (The decoder's own struct mapping stops at the first type error and
// matches field names case-insensitively, which is why it is not used.)
// Semantic checks follow: enumerations, durations, URLs, globs, host
// names, file paths, password sources, TLS pins. Every problem carries
// its key path ("relay[2].starttls", relays numbered from 1), the
// line it is on, the bad value (never a secret) and what is allowed. They
// come back together in one *Error, sorted by line, one per line of its
// Error text:
//
//	handoff.toml:14: relay[2].pasword: unknown key; did you mean password?
//
// TOML syntax errors are reported the same way, with the column. The
// decoder gives positions only for syntax errors, so key lines come from a
// small scanner over the source (lines.go) that knows TOML's strings,
// arrays, inline tables and table headers.
//
// A key whose default is "" (sender, aliases_file, username, the
// password keys, tls_ca_file, tls_cert_file, tls_key_file,
// tls_server_name) may be set to "", which means the same as leaving it
// out.
//
// Problems that do not stop handoff (a world-readable password_file, TLS
// verification turned off) are Config.Warnings.
//
// # Defaults
//
// Default returns the built-in configuration, used when no file exists:
// no relays, so mail for local users goes to their mailbox in /var/mail
// and other mail fails. The doc comments on Config, Queue, Relay, Log and
// Daemon are the reference of every key and its default;
// testdata/full.toml is a commented example with every key.
//
// # File paths
//
// Every path in the file (aliases_file, password_file, tls_*_file,
// queue.dir, daemon.socket, an mbox: directory) must be absolute, so the
// meaning of the file never depends on the directory handoff was started
// in. aliases_file is read at load time; password_file, the TLS files,
// a systemd credential (password_credential, client_secret_credential:
// $CREDENTIALS_DIRECTORY/NAME) and an OAuth2 token_file or
// client_secret_file are read only when a relay is used (RelayOptions),
// because in system mode only the daemon can read them.
//
// # OAuth2
//
// A relay with a [relay.oauth2] table gets its XOAUTH2/OAUTHBEARER
// access token from internal/oauth: RelayOptions reads the token file
// and, when the token expires within two minutes, refreshes it at the
// provider (under a lock shared by every handoff process). Parse fills
// in the provider's defaults (endpoints, scopes, Microsoft's tenant) and
// the token file, /var/lib/handoff/oauth2/NAME.json; internal/oauth
// knows the providers and does not import this package.
//
// # Security
//
// Passwords and OAuth2 client secrets never appear in an error, a
// warning or WriteEffective's output, nor does a token. password_command is run without a shell, only by RelayOptions,
// never at load time and never by WriteEffective. Whether a user-supplied
// file (sendmail -C) may be trusted with secrets is the caller's decision.
package config
