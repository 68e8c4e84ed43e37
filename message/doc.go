// Package message prepares a message between reading it from standard
// input and handing it to a relay or a mailbox. It exists because this is
// the only place in handoff that parses untrusted message input: whatever
// a program pipes into sendmail, the relay, the queue and the mbox writer
// only ever see what Prepare produced — CRLF lines, a header block that
// parses, no Bcc. It keeps only the header block in memory; the body is
// streamed to a buffer that spills to a temporary file.
//
// # Algorithm
//
// Prepare reads the input line by line. CRLF, a bare LF and a bare CR
// each end a line, decided for every line on its own (never from the
// first line, unlike Postfix's "strict" mode), so PHP 8's CRLF headers
// followed by an LF body come out right; only CRLF is written
// (research/sendmail-compat.md §2.7, §7 point 14).
//
// Without Options.IgnoreDots a line that is exactly "." ends the message,
// as in Postfix, Exim and sendmail 8; the rest of the input is read and
// discarded (Message.Drained) so the writer never gets SIGPIPE. No other
// dot processing is done: a line starting with "." is data, and the
// relay dot-stuffs (§2.6, §7 point 13).
//
// The header block runs from the first line to the first empty line
// (RFC 5322 §2.1). A leading mbox "From " or ">From " line is dropped
// (§2.9). A header field starts with a field name (printable US-ASCII
// except ":"), optional blanks and a colon — the blanks being the
// obsolete syntax of RFC 5322 §4.5 that Postfix also accepts; a line
// starting with a space or tab continues the field above it. If the first
// line is not a header field there is no header block: everything is
// body (§2.10). If a later line in the header block is neither a field
// nor a continuation, the body starts with it and the empty line is
// inserted, as Postfix's cleanup does.
//
// In the header block a bare CR that is followed by more text folds the
// field: the text after it becomes a continuation line, with a space put
// in front when it has none (Exim's rule, §7 point 14). A CR directly
// before the line's end is dropped, so "Subject: x\r\r\n" is one line.
// A line that starts with a bare CR is an empty line and ends the header
// block. In the body a bare CR is an ordinary line end.
//
// The header block, at most Options.MaxHeaderBytes octets, is then
// rewritten:
//
//   - With Options.ExtractRecipients (-t) the recipients are the
//     addr-specs of To, Cc and Bcc, or of Resent-To, Resent-Cc and
//     Resent-Bcc when any of those three exists (§2.2, §7 point 6),
//     qualified, de-duplicated with the domain compared without case, in
//     order. A field among those that does not parse is an *Error.
//   - Bcc and Resent-Bcc are always removed, with or without -t, and so
//     are Return-Path and Content-Length (§2.3, §7 point 8).
//   - Addresses in From, To, Cc, Reply-To and Sender, and in their
//     Resent- forms, that are local (no "@", or the domain "localhost" or
//     Options.Hostname) are passed through Options.Qualify. Only the
//     addr-spec is replaced; the display name, comments and the rest of
//     the field keep their bytes. A field that does not parse is left as
//     it is (§2.12, §7 point 9).
//   - Date, Message-ID and From are added at the end of the header block
//     when missing, in that order; when the message has Resent- fields but
//     no Resent-Date or Resent-Message-ID, those are added in front of the
//     first Resent- field, where RFC 5322 §3.6.6 puts the newest resent
//     block (§2.12, §7 point 11). No To is added.
//   - No header line is longer than 998 octets (RFC 5322 §2.1.1): a longer
//     line, and every generated field, is folded at white space, at 78
//     octets where possible; a run of 998 octets without white space is
//     broken with CRLF SPACE, as Postfix does (§2.8, §7 point 15).
//
// Body lines are stored as read, with CRLF line endings; a final line
// without a line ending gets one. Long body lines are left to the relay,
// which breaks them.
//
// # Addresses
//
// ParseAddressList is an RFC 5322 §3.4 address-list parser with the
// obsolete forms of §4.4 (empty list elements, routes, CFWS around dots,
// "." in display names) and RFC 6532 UTF-8. It is written here rather than
// taken from go-message's mail.ParseAddressList (Go's net/mail) for two
// reasons: net/mail refuses an addr-spec without "@domain" — exactly the
// "root" and "Cron Daemon <root>" that cron, at, mdadm and logwatch write
// and that handoff exists to qualify — and it reports no positions, so a
// qualified address could not be put back into a field without
// re-serialising the display name. Beyond RFC 5322 it accepts a local
// part alone ("root"), encoded words that contain specials (written by
// broken encoders, "=?utf-8?q?M=C3=BCller,_Hans?="), a missing ";" at the
// end of a group, and "a@b <a@b>" (an unquoted address used as display
// name). Addresses must be valid UTF-8 without control characters.
// FuzzParseAddressList checks that every list go-message's parser accepts
// gives the same addresses here; go-message's textproto checks in the
// tests that every prepared header block parses.
//
// # Errors
//
// Malformed input — a header block over the limit, an unparseable
// recipient field with -t — is an *Error; the sendmail front end exits 65
// (EX_DATAERR) for it. Failures to read the input or to write the spill
// file are returned wrapped (exit 74, EX_IOERR). Invalid Options (a
// control character in Sender, Hostname, or an address returned by
// Qualify) are plain errors.
//
// # Known limitations
//
//   - No Received: trace field is added; the caller adds one if it wants.
//   - No MIME processing: 8-bit and binary content, NUL included, is
//     carried as it is and reported (Has8Bit, HasNUL); nothing is
//     re-encoded.
//   - A header field over MaxHeaderBytes is refused, not truncated.
//   - Hard-breaking a header line longer than 998 octets that has no white
//     space inserts a space into its value.
package message
