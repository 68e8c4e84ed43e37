// Package relay is handoff's mail client: SMTP (RFC 5321) with STARTTLS
// (RFC 3207), SMTPS with implicit TLS (RFC 8314), and LMTP (RFC 2033)
// over TCP or a Unix socket. It does what Python's smtplib does, under Go
// names, and what smtplib lacks.
//
// # Sessions
//
// Dial connects, reads the greeting, sends EHLO (LHLO for LMTP), upgrades
// with STARTTLS as Options.TLS says, sends EHLO again, and authenticates
// when Options.Auth is set. NewClient starts a session on a connection the
// caller opened. A Client is one conversation and is driven by one
// goroutine.
//
//	smtplib                      relay
//	SMTP(host, port)             Dial(ctx, Options{Address: "host:port"})
//	SMTP_SSL                     Options{TLS: ImplicitTLS}
//	LMTP("/run/dovecot/lmtp")    Options{Address: "/run/dovecot/lmtp", LMTP: true}
//	set_debuglevel(1 or 2)       Options{Debug: w, DebugLevel: 1 or 2}
//	connect("host:port")         Options.Address; ParseURL("smtp://host:port")
//	helo / ehlo                  Client.Helo / Client.Ehlo
//	ehlo_or_helo_if_needed       Client.Hello
//	has_extn, esmtp_features     Client.Extension, Client.Extensions, MaxSize, AuthMechanisms
//	starttls                     Client.StartTLS (re-sends EHLO itself)
//	login, auth                  Client.Login (picks the mechanism), Client.Auth
//	verify, expn, help           Client.Verify, Client.Expand, Client.Help
//	noop, rset, quit, close      Client.Noop, Client.Reset, Client.Quit, Client.Close
//	mail, rcpt, data             Client.Mail, Client.Rcpt, Client.Data (LMTPData for LMTP)
//	mail_options                 MailOptions (typed) and MailOptions.Extra (as given)
//	docmd                        Client.Docmd
//	sendmail                     Client.SendMail
//
// Every call takes a context.Context; cancelling it interrupts the I/O at
// once and closes the connection. Each stage also has its own timeout
// with the RFC 5321 §4.5.3.2 default (Timeouts).
//
// # Sending
//
// SendMail runs one transaction: MAIL with the parameters the server
// supports (SIZE, BODY, SMTPUTF8 only when an address or the caller needs
// it, DSN RET/ENVID, REQUIRETLS, AUTH=), followed by the caller's own
// MailOptions.Extra, checked against RFC 5321's esmtp-keyword and
// esmtp-value syntax and sent as given whether advertised or not; then
// one RCPT per recipient (DSN NOTIFY/ORCPT), then DATA or BDAT. With PIPELINING (RFC 2920) MAIL, the
// RCPTs and DATA go out together, in groups of at most 4 KiB so neither
// side can block on a full window, and every reply is matched to its
// command by counting. Without it each command waits for its reply.
//
// The message is read from an io.Reader and never held in memory: it is
// converted to CRLF line endings line by line (bare LF and bare CR
// included), dot-stuffed (RFC 5321 §4.5.2), lines longer than 998 octets
// are broken with CRLF SPACE as Postfix does, and it ends with exactly
// one CRLF.CRLF. With SendOptions.Chunking and a server offering CHUNKING
// it goes in BDAT chunks instead (RFC 3030).
//
// Some recipients refused: SendMail returns a nil error and the Result
// lists every recipient with the reply that decided it. All refused: a
// *RecipientsError. After a failed transaction the client sends RSET so
// the connection can carry the next message (after a 421 it is closed).
// A "452 too many recipients" (or 552, RFC 5321 §4.5.3.1.10) defers the
// rest to another transaction on the same connection, as does
// SendOptions.MaxRecipients (default 100); that needs a message that can
// be read again (an io.Seeker). LMTP reads one reply per accepted
// recipient after the data, in order, duplicates included, so one
// recipient's "452 over quota" is retried alone.
//
// # Errors
//
// Every error wraps a sentinel named after smtplib's exception classes:
// ErrServerDisconnected, ErrConnect, ErrHelo, ErrAuthentication,
// ErrSenderRefused, ErrRecipientsRefused, ErrData, ErrNotSupported, plus
// ErrOutcomeUnknown (the connection was lost after the final dot: the
// message may have been delivered, and a retry may duplicate it), ErrTLS,
// ErrProtocol and ErrInvalidArgument. A server's reply is an *Error with
// Code, Enhanced (RFC 3463) and the text; a failure of the connection is
// a *ConnError naming the stage; per-recipient refusals are a
// *RecipientsError. IsTemporary is the one classification: 4xx,
// connection failures and anything unknown are temporary; 5xx and local
// refusals (ErrNotSupported, ErrInvalidArgument, SIZE over the limit)
// are permanent.
//
// A reply line over 8192 octets, a reply over 1000 lines or 64 KiB, a
// continuation line with another code, or a code outside 2xx-5xx is a
// protocol error and closes the connection, since the next reply's start
// is no longer known. So do data pipelined by the server after its 220 to
// STARTTLS (the STARTTLS injection class, CVE-2021-38371) and more than
// five AUTH challenges. CR, LF and NUL are refused in every argument
// before anything is written.
//
// # TLS and AUTH
//
// Certificates are verified by default against the system roots (or
// TLSOptions.CAFile / RootCAs) and the configured host name
// (TLSOptions.ServerName when dialling an address), TLS 1.2 at least;
// SHA-256 public-key pins and client certificates are supported.
// STARTTLSRequired (the default over TCP) never continues in plain text
// and never sends AUTH before TLS. Credentials are sent only over TLS, a
// Unix socket or loopback, unless Options.AllowInsecureAuth says
// otherwise. Login picks the strongest mechanism both sides have:
// SCRAM-SHA-256, CRAM-MD5, PLAIN, LOGIN, or OAUTHBEARER and XOAUTH2 for an
// OAuth2 token. It moves to the next mechanism only when the server
// answers 504 or 534, never after 535 (wrong credentials).
//
// # Transcript
//
// Options.Debug receives "connect:", "send:", "reply:", "tls:", "data:"
// and "error:" lines, each AUTH payload replaced by "<redacted>"; the
// message body itself is not shown, only its size.
//
// # Known limitations
//
//   - No 7-bit downgrade: an 8-bit message for a server without 8BITMIME
//     fails with ErrNotSupported (the caller may re-encode and retry).
//   - SASL security layers are not negotiated (none of the mechanisms
//     here has one); SCRAM-SHA-256 applies no SASLprep to the password.
//   - LMTP's default port is 24 (Dovecot, Cyrus); smtplib's is 2003.
package relay
