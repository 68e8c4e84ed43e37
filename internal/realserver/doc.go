// Package realserver starts real Postfix and Dovecot daemons for integration
// tests of handoff's SMTP, SMTPS and LMTP client.
//
// Every server is a complete private instance: its configuration, queue,
// sockets, logs and mailboxes live in a temporary directory of the test, it
// listens only on 127.0.0.1 on ports picked by the harness, and it is stopped
// (with all its processes) by t.Cleanup. Nothing in the system's
// /etc/postfix, /etc/dovecot or /var/spool/postfix is written, and port 25
// is never used, so several tests may start servers in parallel.
//
// The daemons need root (Postfix's master refuses to run otherwise) and the
// Debian packages postfix, dovecot-core and dovecot-lmtpd. A test calls
// Require first: without the packages it is skipped with a loud message, or
// fails when HANDOFF_REQUIRE_INTEGRATION=1 is set (as CI does).
//
// The mail domain is example.test (Domain). Dovecot knows the users alice
// (password alicepass) and bob (password bobpass), delivers with LMTP into a
// Maildir per user, and serves SASL to Postfix. Postfix offers STARTTLS on
// Addr and implicit TLS on SMTPSAddr with a certificate from a throwaway CA,
// AUTH only under TLS, relays only for authenticated clients, and hands mail
// for example.test to Dovecot's LMTP.
package realserver
