package queue

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// MaxDSNHeader caps the original header block ReadHeader returns for a
// DSN: 64 KiB, enough for any real header, small enough for a bounce.
const MaxDSNHeader = 64 << 10

// BuildDSN returns a delivery status notification (RFC 3464) about rcpts
// of the message env, to be queued from the null sender <> to env.Sender
// (see DSNEnvelope): a failure report (Action: failed) or, with delayed,
// a delay warning (Action: delayed).
//
// The message is multipart/report; report-type=delivery-status (RFC 6522)
// with three parts:
//
//  1. text/plain: what happened, for people, one line per recipient with
//     its last reply;
//  2. message/delivery-status: Reporting-MTA: dns; reportingMTA,
//     X-Handoff-Queue-ID, Original-Envelope-Id (when ENVID was given),
//     Arrival-Date; then for each recipient Final-Recipient: rfc822;
//     ADDR, Original-Recipient: rfc822; ORCPT (when given), Action,
//     Status (the enhanced code of its last reply, else the reply's class
//     with .0.0, else 5.0.0 for a failure and 4.0.0 for a delay),
//     Diagnostic-Code (smtp; REPLY for a server reply, X-Handoff; TEXT
//     for a local error such as a refused connection) and
//     Last-Attempt-Date;
//  3. text/rfc822-headers: origHeader, the original message's header
//     block (see ReadHeader).
//
// The message itself is never returned, only its headers, whatever RET
// says (RET=FULL is treated as HDRS): bounces stay small and a DSN does
// not carry the content to an address that may be forged. With SMTPUTF8
// (or a non-ASCII address) parts 2 and 3 are message/global-delivery-status
// and message/global-headers, with "utf-8" address types (RFC 6533).
//
// The headers are From: MAILER-DAEMON@reportingMTA, To: the sender,
// Auto-Submitted: auto-replied (RFC 3834), Date and Message-ID. Lines end
// in CRLF.
//
// Errors: ErrNullSender when env.Sender is "" (a DSN never goes to <>);
// ErrInvalid for no recipients or a reportingMTA that is not a host name.
func BuildDSN(env *Envelope, rcpts []Recipient, origHeader []byte, reportingMTA string, now time.Time, delayed bool) ([]byte, error) {
	if env.Sender == "" {
		return nil, ErrNullSender
	}
	if len(rcpts) == 0 {
		return nil, fmt.Errorf("%w: a DSN without recipients", ErrInvalid)
	}
	if reportingMTA == "" || strings.ContainsAny(reportingMTA, " \t\r\n<>@;\"") || checkValue("reporting MTA", reportingMTA) != nil {
		return nil, fmt.Errorf("%w: reporting MTA %q is not a host name", ErrInvalid, reportingMTA)
	}
	for _, v := range []string{env.Sender, env.EnvID, env.ID} {
		if err := checkValue("value", v); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
	}
	for _, rc := range rcpts {
		for _, v := range []string{rc.Addr, rc.ORCPT, rc.LastReply, rc.Relay} {
			if err := checkValue("value", v); err != nil {
				return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
			}
		}
	}

	global := env.SMTPUTF8 || !isASCII(env.Sender)
	for _, rc := range rcpts {
		if !isASCII(rc.Addr) || !isASCII(rc.ORCPT) {
			global = true
		}
	}
	var rnd [12]byte
	rand.Read(rnd[:])
	boundary := "=_handoff_" + hex.EncodeToString(rnd[:])
	date := func(t time.Time) string { return t.Format(time.RFC1123Z) }

	var b bytes.Buffer
	w := func(format string, a ...any) {
		fmt.Fprintf(&b, format, a...)
		b.WriteString("\r\n")
	}
	subject := "Undelivered Mail Returned to Sender"
	if delayed {
		subject = "Delayed Mail (still being retried)"
	}
	w("From: Mail Delivery System <MAILER-DAEMON@%s>", reportingMTA)
	w("To: %s", env.Sender)
	w("Subject: %s", subject)
	w("Date: %s", date(now))
	w("Message-ID: <%s.%s@%s>", env.ID, hex.EncodeToString(rnd[:6]), reportingMTA)
	w("Auto-Submitted: auto-replied")
	w("MIME-Version: 1.0")
	w("Content-Type: multipart/report; report-type=delivery-status;")
	w("\tboundary=\"%s\"", boundary)
	w("")
	w("This is a MIME-encapsulated message.")
	w("")

	// Part 1: for people.
	w("--%s", boundary)
	w("Content-Description: Notification")
	w("Content-Type: text/plain; charset=utf-8")
	w("")
	w("This is the mail system at %s.", reportingMTA)
	w("")
	if delayed {
		w("This is a warning only: you do not need to send your message again.")
		w("")
		w("Your message, queued on %s, has not been delivered yet to the", date(env.Created))
		w("recipients below. Delivery will be tried again; you will be told if")
		w("it fails for good.")
	} else {
		w("Your message, queued on %s, could not be delivered to the", date(env.Created))
		w("recipients below. It has been given up. Its headers are attached.")
	}
	w("")
	for _, rc := range rcpts {
		reason := rc.LastReply
		if reason == "" {
			reason = "no reply"
		}
		w("<%s>: %s", rc.Addr, reason)
	}
	w("")

	// Part 2: for programs.
	ds, hdrs, addrType := "message/delivery-status", "text/rfc822-headers", func(string) string { return "rfc822" }
	if global {
		ds, hdrs = "message/global-delivery-status", "message/global-headers"
		addrType = func(a string) string {
			if isASCII(a) {
				return "rfc822"
			}
			return "utf-8"
		}
	}
	w("--%s", boundary)
	w("Content-Description: Delivery report")
	w("Content-Type: %s", ds)
	w("")
	w("Reporting-MTA: dns; %s", reportingMTA)
	w("X-Handoff-Queue-ID: %s", env.ID)
	if env.EnvID != "" {
		w("Original-Envelope-Id: %s", env.EnvID)
	}
	w("Arrival-Date: %s", date(env.Created))
	action := "failed"
	if delayed {
		action = "delayed"
	}
	for _, rc := range rcpts {
		w("")
		w("Final-Recipient: %s; %s", addrType(rc.Addr), rc.Addr)
		if rc.ORCPT != "" {
			w("Original-Recipient: %s; %s", addrType(rc.ORCPT), rc.ORCPT)
		}
		w("Action: %s", action)
		w("Status: %s", dsnStatus(rc.LastReply, delayed))
		if rc.LastReply != "" {
			if _, ok := replyCode(rc.LastReply); ok {
				w("Diagnostic-Code: smtp; %s", rc.LastReply)
			} else {
				w("Diagnostic-Code: X-Handoff; %s", rc.LastReply)
			}
		}
		if !rc.LastAttempt.IsZero() {
			w("Last-Attempt-Date: %s", date(rc.LastAttempt))
		}
	}
	w("")

	// Part 3: the original headers.
	w("--%s", boundary)
	w("Content-Description: Undelivered Message Headers")
	w("Content-Type: %s", hdrs)
	w("")
	for _, line := range headerLines(origHeader) {
		w("%s", line)
	}
	w("")
	w("--%s--", boundary)
	return b.Bytes(), nil
}

// headerLines splits a header block into lines without their line ends,
// stopping at the first empty line; a stray CR becomes a space.
func headerLines(h []byte) []string {
	var out []string
	for len(h) > 0 {
		var line []byte
		if i := bytes.IndexByte(h, '\n'); i >= 0 {
			line, h = h[:i], h[i+1:]
		} else {
			line, h = h, nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			break
		}
		out = append(out, strings.ReplaceAll(string(line), "\r", " "))
	}
	return out
}

// replyCode returns the code of a reply line "ddd text" or "ddd".
func replyCode(s string) (int, bool) {
	if len(s) < 3 || (len(s) > 3 && s[3] != ' ' && s[3] != '-') {
		return 0, false
	}
	n := 0
	for i := 0; i < 3; i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	if n < 200 || n > 599 {
		return 0, false
	}
	return n, true
}

// dsnStatus returns the RFC 3463 status for a recipient whose last reply
// is reply: the reply's enhanced code when it has one whose class agrees
// with the reply code, else the class with ".0.0"; without a reply 4.0.0
// for a delay, 5.0.0 for a failure.
func dsnStatus(reply string, delayed bool) string {
	code, ok := replyCode(reply)
	if !ok {
		if delayed {
			return "4.0.0"
		}
		return "5.0.0"
	}
	class := code / 100
	if len(reply) > 4 {
		tok, _, _ := strings.Cut(reply[4:], " ")
		if isEnhanced(tok, class) {
			return tok
		}
	}
	return fmt.Sprintf("%d.0.0", class)
}

// isEnhanced reports an RFC 3463 code class.subject.detail of the class.
func isEnhanced(s string, class int) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || parts[0] != fmt.Sprint(class) {
		return false
	}
	for _, p := range parts[1:] {
		if len(p) == 0 || len(p) > 3 {
			return false
		}
		for i := 0; i < len(p); i++ {
			if p[i] < '0' || p[i] > '9' {
				return false
			}
		}
	}
	return true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// DSNEnvelope returns the envelope to Enqueue a DSN built by BuildDSN
// with: from the null sender <> (so that it can never bounce in turn), to
// orig's sender, with SMTPUTF8 when that address is not ASCII or orig
// needed it, BODY=8BITMIME when dsn has 8-bit bytes, and orig's UID and
// User (the submitter sees the bounce of its message in mailq).
func DSNEnvelope(orig *Envelope, dsn []byte) *Envelope {
	return &Envelope{
		Recipients: []Recipient{{Addr: orig.Sender}},
		SMTPUTF8:   orig.SMTPUTF8 || !isASCII(orig.Sender),
		Body8Bit:   !isASCII(string(dsn)),
		UID:        orig.UID,
		User:       orig.User,
	}
}

// ReadHeader reads a message's header block, up to the empty line that
// ends it (or the end of the message), for BuildDSN: at most limit bytes
// (MaxDSNHeader when limit ≤ 0), cut at a line end; a line longer than 8
// KiB also ends it there. The lines keep their endings; the empty line is
// not included. Only the error of r is returned.
func ReadHeader(r io.Reader, limit int) ([]byte, error) {
	if limit <= 0 {
		limit = MaxDSNHeader
	}
	br := bufio.NewReaderSize(r, 8<<10)
	var out []byte
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return out, nil
		}
		if err != nil && err != io.EOF {
			return out, err
		}
		if len(line) == 0 || string(line) == "\n" || string(line) == "\r\n" || len(out)+len(line) > limit {
			break
		}
		out = append(out, line...)
		if err == io.EOF {
			break
		}
	}
	return out, nil
}
