// Package smtpin is the server side of "sendmail -bs": an RFC 5321 SMTP
// server spoken on standard input and output, as Symfony Mailer, Laravel
// and Alpine expect (research/sendmail-compat.md §1.2 and §7 point 4).
// Each message it accepts is handed to a Handler, which feeds the same
// delivery pipeline as the command line. With Server.LMTP it speaks
// LMTP (RFC 2033) instead, which the daemon offers local processes on
// its Unix socket; see "LMTP" and "DSN and other parameters".
//
// # Dialogue
//
// Server.Serve greets with "220 <host> ESMTP handoff" and then reads one
// command line at a time from a buffered reader and answers each in order:
//
//	EHLO name      250, multi-line: PIPELINING, 8BITMIME, SMTPUTF8,
//	               ENHANCEDSTATUSCODES, SIZE [n] (RFC 2920, 6152, 6531,
//	               2034, 1870), then DSN (RFC 3461) with Server.DSN and
//	               each of Server.Params; resets the transaction
//	HELO name      250; resets the transaction
//	MAIL FROM:<a>  parameters SIZE=n, BODY=7BIT|8BITMIME, SMTPUTF8, the
//	               keywords of Server.Params, and the DSN parameters RET=
//	               and ENVID= (checked and passed on with Server.DSN,
//	               accepted and ignored without); AUTH= is accepted and
//	               ignored (AUTH is not offered); any other is 555 5.5.4
//	RCPT TO:<a>    DSN NOTIFY= and ORCPT= (checked and passed on with
//	               Server.DSN, accepted and ignored without); any other
//	               parameter is 555 5.5.4
//	DATA           354, then the message up to the end-of-data line
//	RSET, NOOP     250 2.0.0
//	VRFY           252 2.5.2 (RFC 5321 §3.5.3: no answer, no refusal)
//	HELP           214 2.0.0
//	QUIT           221 2.0.0, and Serve returns nil
//
// In LMTP mode the greeting is "220 <host> LMTP handoff", LHLO takes the
// place of EHLO with the same reply, and EHLO and HELO are 500 5.5.1.
//
// STARTTLS, AUTH, BDAT, ETRN, EXPN, TURN, ATRN, SEND, SOML and SAML are
// answered 502 5.5.1: standard input is local, so there is nothing to
// encrypt or authenticate, and none of them is advertised. A command out
// of sequence is 503 5.5.1; an unknown one 500 5.5.2; bad arguments 501
// 5.5.4; a bad address 501 5.1.7 (sender) or 501 5.1.3 (recipient); a
// non-ASCII address in a transaction without SMTPUTF8 553 5.6.7 (RFC 6531
// §3.7.4.1). DATA after every RCPT was refused is 554 5.5.1, and DATA
// before any RCPT 503 5.5.1, as Postfix answers (in LMTP both are 503
// 5.5.1, as RFC 2033 §4.2 requires). After 20 such protocol
// errors the server says 421 4.7.0 and returns ErrTooManyErrors, so that
// a message piped into "sendmail -bs" by mistake ends quickly.
//
// # Pipelining and flushing
//
// Replies are written to a buffer that is flushed only when the server
// is about to wait for more input, that is when every command already
// received has been answered. A pipelined group (RFC 2920) therefore
// gets its replies together, in order, in one write, and a client that
// sends one command at a time gets each reply at once. Neither side can
// deadlock, because the server never waits for input with replies held
// back.
//
// # Lines
//
// Command lines end in CRLF or a bare LF (many stdio clients write bare
// LF). A command line may be 4096 octets long, line ending included: RFC
// 5321 §4.5.3.1.4 sets 512 and lets extensions raise it, and SIZE, BODY,
// SMTPUTF8 with UTF-8 addresses, and DSN's ORCPT all do, and a generous
// fixed limit is simpler than one that depends on the parameters. A
// longer line is read to its end, discarded, and answered 500 5.5.2.
//
// # Message data
//
// Handler.Deliver receives the message as a stream read straight from the
// input buffer; it is never held whole in memory. Lines come out with
// CRLF endings (a bare LF becomes CRLF; a CR not followed by LF is
// content and passes through) and with the first "." of every line that
// begins with one removed (RFC 5321 §4.5.2). Lines may be of any length.
//
// The end of the data is decided by how the client ended the DATA
// command itself:
//
//   - "DATA" CRLF: only CRLF "." CRLF ends the data, as RFC 5321 §4.1.1.4
//     requires: a "." line ended with CRLF whose previous line also ended
//     with CRLF (or that is the first line). A "." line next to a bare LF
//     is data (its dot removed like any leading dot). This is Postfix's
//     smtpd_forbid_bare_newline rule and closes the "SMTP smuggling"
//     hole (CVE-2023-51764): a client such as Symfony that dot-stuffs
//     only after CRLF cannot have a body's bare "\n.\n" end its message
//     early and have the rest read as commands.
//   - "DATA" with a bare LF: a client that writes bare LF must also end
//     its data that way, so a "." line with either ending ends the data.
//
// The data reader returns io.EOF only after the end-of-data line has been
// read. A Handler must deliver only after it has seen io.EOF: every other
// error (io.ErrUnexpectedEOF when the input ended first, ErrMessageTooBig
// over Server.MaxMessageSize, a timeout or I/O error) means the message
// did not arrive whole. Whatever the Handler leaves unread is drained
// after Deliver returns, so the dialogue can go on; a message over the
// limit is read to its end and answered 552 5.3.4, whatever the Handler
// said.
//
// # LMTP
//
// An LMTP server (RFC 2033) hands each message to the Handler's
// DeliverLMTP, which returns one reply per recipient of the envelope, and
// answers the end of data with those replies, one per accepted RCPT, in
// order, duplicates included (§4.2). Each reply is made safe on its own,
// as Reply says; a reply the Handler failed to give is 451 4.3.0, and
// replies past the number of recipients are dropped. A message over
// Server.MaxMessageSize gets 552 5.3.4 for every recipient. When the
// input fails inside the data nothing is answered, as in SMTP. MAIL
// without LHLO is accepted, as it is without EHLO in SMTP.
//
// # DSN and other parameters
//
// With Server.DSN the EHLO (LHLO) reply offers DSN and the server takes
// its parameters (RFC 3461 §4): RET=FULL|HDRS and ENVID= on MAIL,
// NOTIFY= and ORCPT= on RCPT, each at most once. They land in
// Envelope.Return, Envelope.EnvelopeID and Envelope.Rcpts, which runs
// parallel to Envelope.To. Values are xtext: "+" and two upper-case hex
// digits for an octet, any other octet from "!" to "~" but "+" and "="
// as itself. RET must be FULL or HDRS (any case); ENVID and the address
// of ORCPT must decode to printable US-ASCII (§4.2, §4.4); ORCPT must be
// "addr-type;xtext" with an atom for the type, which is lower-cased
// ("RFC822;a+2Bb@x" gives "rfc822;a+b@x"); NOTIFY is NEVER alone or a
// list of SUCCESS, FAILURE and DELAY (§4.1), in any case, passed on in
// upper case. Anything else is 501 5.5.4 and the command has no effect.
// Without Server.DSN the four are accepted and ignored, whatever their
// values, as they always were.
//
// Server.Params declares further MAIL keywords, such as the daemon's
// XHANDOFF-MODE. Each is advertised on its own line of the EHLO reply,
// after the extensions above, and accepted on MAIL at most once, in any
// case, with or without a value. The value is xtext decoded and must
// decode to UTF-8 without control characters (501 5.5.4 otherwise); it
// lands in Envelope.Params under the keyword in upper case, "" when
// there was no "=value". An undeclared keyword is 555 5.5.4 as before.
//
// # Addresses
//
// The path may carry a source route (RFC 5321 §4.1.2, "@a,@b:u@c"), which
// is dropped. Leniencies, all shared with Postfix's defaults: a space
// after "FROM:" or "TO:", a path without angle brackets when it has no
// space, MAIL without a HELO/EHLO first, a local part without a domain
// ("root"; the pipeline qualifies it), and a local part with leading,
// trailing or doubled dots. Refused: CR, LF, NUL and every other control
// character anywhere in a path, a bad quoted string, a bad domain or
// address literal, an empty RCPT path, and invalid UTF-8. Addresses
// reach the Handler in one canonical form: a quoted local part whose
// content is a dot-atom loses its quotes ("<\"john\"@x>" gives
// "john@x"), any other is quoted again with only '"' and '\' escaped,
// which is how the relay package writes them back out.
//
// # Timeouts and errors
//
// Server.Timeout bounds each wait for input (RFC 5321 §4.5.3.2.7: 5
// minutes), during commands and message data alike. A reader that has
// SetReadDeadline (a net.Conn, a pollable *os.File) gets a deadline
// before each read; any other reader, such as a blocking standard input,
// is read by a helper goroutine that Serve stops waiting for when the time
// is up. On a timeout the server says 421 4.4.2 and Serve returns an
// error wrapping os.ErrDeadlineExceeded. Writes get the same deadline when
// the writer has SetWriteDeadline.
//
// Serve returns nil after QUIT, and also when the input ends between
// transactions. When the input ends inside a transaction (after MAIL,
// before the end of data) the transaction is abandoned, no message is
// delivered, and Serve returns an error wrapping io.ErrUnexpectedEOF.
// Other errors wrap ErrTooManyErrors, os.ErrDeadlineExceeded, or the
// error of the reader or writer.
//
// # Limitations
//
// DSN is offered only with Server.DSN. The RFC 3461 length limits of
// ENVID (100 characters) and ORCPT (500) are not enforced beyond the
// 4096-octet command line. An ORCPT of type "utf-8" (RFC 6533) is passed
// on with its \x{...} escapes as written, and one with raw UTF-8 is
// refused as bad xtext. CHUNKING is not offered, so a client that sends BDAT
// anyway gets 502 and its chunk is read as commands (and ends in 421
// 4.7.0 after 20 errors). Replies from the Handler get an RFC 3463 code
// added when they lack one, and lines over 506 octets are cut.
package smtpin
