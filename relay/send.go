package relay

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// BodyType is the BODY parameter of MAIL (RFC 6152, RFC 3030).
type BodyType string

const (
	Body7Bit       BodyType = "7BIT"
	Body8BitMIME   BodyType = "8BITMIME"
	BodyBinaryMIME BodyType = "BINARYMIME"
)

// DSNReturn is the RET parameter of MAIL (RFC 3461 §4.3).
type DSNReturn string

const (
	ReturnFull    DSNReturn = "FULL"
	ReturnHeaders DSNReturn = "HDRS"
)

// DSNNotify is one value of the NOTIFY parameter of RCPT (RFC 3461 §4.1).
type DSNNotify string

const (
	NotifyNever   DSNNotify = "NEVER"
	NotifySuccess DSNNotify = "SUCCESS"
	NotifyFailure DSNNotify = "FAILURE"
	NotifyDelay   DSNNotify = "DELAY"
)

// MailOptions are the ESMTP parameters of MAIL FROM. Each is sent only
// when the server offers its extension; when the server lacks one the
// request needs (8-bit body, UTF-8 addresses, REQUIRETLS), MAIL is not
// sent and the error wraps ErrNotSupported. After a HELO fallback no
// parameter is sent at all (and Extra is refused). Extra goes out
// whatever the server offers.
type MailOptions struct {
	// Size is the message size in octets with CRLF line endings, before
	// dot-stuffing (RFC 1870: an estimate). 0: unknown, not sent. When the server's
	// declared limit is smaller, the message is refused locally with
	// 552 5.3.4 before MAIL.
	Size int64
	// Body declares the content: "" sends no BODY parameter. 8BITMIME
	// needs the 8BITMIME extension, BINARYMIME needs CHUNKING and
	// BINARYMIME and makes SendMail use BDAT.
	Body BodyType
	// UTF8 asks for SMTPUTF8 (RFC 6531), needed when a header carries
	// UTF-8. It is also set on its own when the sender or a recipient is
	// not ASCII. Never sent for ASCII-only mail.
	UTF8 bool
	// RequireTLS asks for REQUIRETLS (RFC 8689): only over TLS, to a
	// server that offers it.
	RequireTLS bool
	// Return and EnvelopeID are the DSN RET and ENVID parameters
	// (RFC 3461), sent when the server offers DSN.
	Return     DSNReturn
	EnvelopeID string
	// Auth is the AUTH= parameter (RFC 4954 §5): the authenticated
	// identity of the submitter, or "<>"; sent when the session is
	// authenticated.
	Auth string
	// Extra are further parameters, smtplib's mail_options: each
	// "KEYWORD" or "KEYWORD=value", sent as given, in order, after the
	// parameters above, whatever the server advertises (the caller
	// decides, as with smtplib). The keyword is an RFC 5321 esmtp-keyword
	// (a letter or digit, then letters, digits and "-"); the value an
	// esmtp-value (one or more printable ASCII characters other than "="
	// and space: encode it, as xtext for instance, before). Anything else
	// is refused with ErrInvalidArgument before MAIL is sent. Extra
	// parameters need ESMTP: after a HELO fallback MAIL is refused with
	// ErrNotSupported rather than sent without them. A keyword that one
	// of the fields above also sends goes out twice; set it there
	// instead.
	Extra []string
}

// RcptOptions are the ESMTP parameters of RCPT TO, sent when the server
// offers DSN.
type RcptOptions struct {
	// Notify is the DSN NOTIFY list; NEVER must stand alone.
	Notify []DSNNotify
	// OriginalRecipient is the ORCPT address (RFC 3461 §4.2), sent as
	// "rfc822;" xtext, or "utf-8;" unitext (RFC 6533) when not ASCII.
	OriginalRecipient string
}

// formatPath returns "<addr>" for MAIL and RCPT, with the local part
// quoted when it is not a dot-atom (RFC 5321 §4.1.2). "" and "<>" are the
// null reverse-path. utf8 reports a non-ASCII address.
func formatPath(addr string) (path string, utf8 bool, err error) {
	if err := checkLine(addr); err != nil {
		return "", false, invalidArg("address %q contains CR, LF or NUL", addr)
	}
	a := strings.TrimSpace(addr)
	if strings.HasPrefix(a, "<") && strings.HasSuffix(a, ">") {
		a = a[1 : len(a)-1]
	}
	if a == "" {
		return "<>", false, nil
	}
	for i := 0; i < len(a); i++ {
		if a[i] >= 0x80 {
			utf8 = true
			break
		}
	}
	local, domain := a, ""
	if i := strings.LastIndexByte(a, '@'); i >= 0 {
		local, domain = a[:i], a[i:]
	}
	if !isDotAtom(local) && !(len(local) >= 2 && local[0] == '"' && local[len(local)-1] == '"') {
		var b strings.Builder
		b.WriteByte('"')
		for i := 0; i < len(local); i++ {
			if local[i] == '"' || local[i] == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(local[i])
		}
		b.WriteByte('"')
		local = b.String()
	}
	if strings.ContainsAny(domain, " <>") {
		return "", utf8, invalidArg("bad domain in address %q", addr)
	}
	return "<" + local + domain + ">", utf8, nil
}

// isDotAtom checks RFC 5321 Dot-string: atoms of atext joined by single
// dots. UTF-8 octets count as atext (RFC 6531 §3.3).
func isDotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 0x80, 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', isDigit(c):
		case strings.IndexByte("!#$%&'*+-/=?^_`{|}~.", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// xtext encodes a DSN parameter value (RFC 3461 §4): "+XX" for "+", "="
// and octets outside "!".."~".
func xtext(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '!' || c > '~' || c == '+' || c == '=' {
			fmt.Fprintf(&b, "+%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// unitext encodes a UTF-8 ORCPT address (RFC 6533 §3): non-ASCII
// characters as \x{HEX}, and the xtext specials the same way.
func unitext(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r < '!' || r > '~' || r == '+' || r == '=' || r == '\\' {
			fmt.Fprintf(&b, `\x{%X}`, r)
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// mailLine builds and checks MAIL FROM for this session. smtputf8
// reports whether the line starts an SMTPUTF8 transaction, by
// MailOptions or by an Extra parameter.
func (c *Client) mailLine(from string, o *MailOptions, utf8 bool) (line string, smtputf8 bool, err error) {
	if o == nil {
		o = &MailOptions{}
	}
	extraUTF8 := false
	for _, p := range o.Extra {
		if err := checkMailParam(p); err != nil {
			return "", false, err
		}
		extraUTF8 = extraUTF8 || strings.EqualFold(p, "SMTPUTF8")
	}
	path, u, err := formatPath(from)
	if err != nil {
		return "", false, err
	}
	utf8 = utf8 || u || o.UTF8
	line = "MAIL FROM:" + path
	if utf8 {
		if _, ok := c.Extension("SMTPUTF8"); !ok {
			return "", false, notSupported(EnhancedCode{5, 6, 7}, "%s: the message needs SMTPUTF8 (non-ASCII address or header) but the server does not offer it", c.server)
		}
		line += " SMTPUTF8"
	}
	if !c.esmtp {
		if o.Body == Body8BitMIME || o.Body == BodyBinaryMIME {
			return "", false, notSupported(EnhancedCode{5, 6, 3}, "%s: the message has 8-bit content but the server does not speak ESMTP (8BITMIME)", c.server)
		}
		if o.RequireTLS {
			return "", false, notSupported(EnhancedCode{5, 7, 30}, "%s: REQUIRETLS needed but the server does not speak ESMTP", c.server)
		}
		if len(o.Extra) > 0 {
			return "", false, notSupported(EnhancedCode{5, 5, 4}, "%s: MAIL parameters %s need ESMTP but the server does not speak it", c.server, strings.Join(o.Extra, " "))
		}
		return line, utf8, nil
	}
	if o.Size > 0 {
		if limit, ok := c.MaxSize(); ok && o.Size > limit {
			return "", false, &localError{code: 552, enh: EnhancedCode{5, 3, 4},
				msg:   fmt.Sprintf("message size %d exceeds size limit %d of server %s", o.Size, limit, c.server),
				kinds: []error{ErrSenderRefused}}
		}
		if _, ok := c.Extension("SIZE"); ok {
			line += " SIZE=" + strconv.FormatInt(o.Size, 10)
		}
	}
	switch o.Body {
	case "":
	case Body7Bit:
		if _, ok := c.Extension("8BITMIME"); ok {
			line += " BODY=7BIT"
		}
	case Body8BitMIME:
		if _, ok := c.Extension("8BITMIME"); !ok {
			// RFC 6531 §3.1: a server that offers SMTPUTF8 takes 8-bit
			// data even when it forgets 8BITMIME (Postfix assumes so).
			if _, u8 := c.Extension("SMTPUTF8"); !u8 {
				return "", false, notSupported(EnhancedCode{5, 6, 3}, "%s: the message has 8-bit content but the server does not offer 8BITMIME", c.server)
			}
		}
		line += " BODY=8BITMIME"
	case BodyBinaryMIME:
		_, bin := c.Extension("BINARYMIME")
		_, chunk := c.Extension("CHUNKING")
		if !bin || !chunk {
			return "", false, notSupported(EnhancedCode{5, 6, 3}, "%s: the message is binary but the server does not offer BINARYMIME and CHUNKING", c.server)
		}
		line += " BODY=BINARYMIME"
	default:
		return "", false, invalidArg("unknown BODY type %q", o.Body)
	}
	if o.RequireTLS {
		_, ok := c.Extension("REQUIRETLS")
		if c.tlsState == nil || !ok {
			return "", false, notSupported(EnhancedCode{5, 7, 30}, "%s: REQUIRETLS support required (TLS and the REQUIRETLS extension)", c.server)
		}
		line += " REQUIRETLS"
	}
	if _, ok := c.Extension("DSN"); ok {
		switch o.Return {
		case "":
		case ReturnFull, ReturnHeaders:
			line += " RET=" + string(o.Return)
		default:
			return "", false, invalidArg("unknown DSN RET value %q", o.Return)
		}
		if o.EnvelopeID != "" {
			if err := checkLine(o.EnvelopeID); err != nil {
				return "", false, err
			}
			line += " ENVID=" + xtext(o.EnvelopeID)
		}
	}
	if o.Auth != "" && c.authed {
		if o.Auth == "<>" {
			line += " AUTH=<>"
		} else {
			line += " AUTH=" + xtext(o.Auth)
		}
	}
	for _, p := range o.Extra {
		line += " " + p
	}
	if err := checkLine(line); err != nil {
		return "", false, err
	}
	return line, utf8 || extraUTF8, nil
}

// rcptLine builds and checks RCPT TO for this session.
func (c *Client) rcptLine(to string, o *RcptOptions, utf8 bool) (string, error) {
	path, u, err := formatPath(to)
	if err != nil {
		return "", err
	}
	if path == "<>" {
		return "", invalidArg("empty recipient address")
	}
	if u && !utf8 {
		return "", notSupported(EnhancedCode{5, 6, 7}, "%s: recipient %q needs SMTPUTF8 but the transaction did not ask for it", c.server, to)
	}
	line := "RCPT TO:" + path
	if _, ok := c.Extension("DSN"); ok && o != nil {
		if len(o.Notify) > 0 {
			vals := make([]string, len(o.Notify))
			for i, n := range o.Notify {
				switch n {
				case NotifyNever, NotifySuccess, NotifyFailure, NotifyDelay:
				default:
					return "", invalidArg("unknown DSN NOTIFY value %q", n)
				}
				if n == NotifyNever && len(o.Notify) > 1 {
					return "", invalidArg("DSN NOTIFY=NEVER cannot be combined")
				}
				vals[i] = string(n)
			}
			line += " NOTIFY=" + strings.Join(vals, ",")
		}
		if o.OriginalRecipient != "" {
			if err := checkLine(o.OriginalRecipient); err != nil {
				return "", err
			}
			orcpt := strings.Trim(o.OriginalRecipient, "<>")
			if isASCII(orcpt) {
				line += " ORCPT=rfc822;" + xtext(orcpt)
			} else {
				line += " ORCPT=utf-8;" + unitext(orcpt)
			}
		}
	}
	return line, nil
}

// checkMailParam checks one of MailOptions.Extra: esmtp-keyword
// ["=" esmtp-value] (RFC 5321 §4.1.2), the value printable ASCII.
func checkMailParam(p string) error {
	k, v, eq := strings.Cut(p, "=")
	if k == "" {
		return invalidArg("MAIL parameter %q has no keyword", p)
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || isDigit(c)
		if !alnum && (i == 0 || c != '-') {
			return invalidArg("MAIL parameter %q: bad keyword %q (letters, digits and \"-\", not first)", p, k)
		}
	}
	if !eq {
		return nil
	}
	if v == "" {
		return invalidArg("MAIL parameter %q: empty value", p)
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < '!' || c > '~' || c == '=' {
			return invalidArg("MAIL parameter %q: bad value (printable ASCII only, no space or \"=\")", p)
		}
	}
	return nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// Mail sends MAIL FROM (smtplib's mail), starting a transaction. from may
// be "" or "<>" for the null sender. A refusal is an *Error wrapping
// ErrSenderRefused; see MailOptions for the local refusals.
func (c *Client) Mail(ctx context.Context, from string, opts *MailOptions) (*Reply, error) {
	if err := c.Hello(ctx); err != nil {
		return nil, err
	}
	line, smtputf8, err := c.mailLine(from, opts, false)
	if err != nil {
		return nil, err
	}
	c.rcpts = nil
	c.utf8 = smtputf8
	r, err := c.roundTrip(ctx, "MAIL", c.to.Mail, line, "")
	if err != nil {
		return nil, err
	}
	return r, c.expect(r, 2, line, ErrSenderRefused)
}

// Rcpt sends RCPT TO (smtplib's rcpt). 250 and 251 accept the recipient;
// any other reply is an *Error wrapping ErrRecipientsRefused. A
// non-ASCII address needs a transaction started with SMTPUTF8.
func (c *Client) Rcpt(ctx context.Context, to string, opts *RcptOptions) (*Reply, error) {
	line, err := c.rcptLine(to, opts, c.utf8)
	if err != nil {
		return nil, err
	}
	r, err := c.roundTrip(ctx, "RCPT", c.to.Rcpt, line, "")
	if err != nil {
		return nil, err
	}
	if err := c.expect(r, 2, line, ErrRecipientsRefused); err != nil {
		return r, err
	}
	c.rcpts = append(c.rcpts, to)
	return r, nil
}

// Data sends DATA and, after the 354, the message from r: line endings
// made CRLF, dot-stuffed, lines over 998 octets broken, ended with
// CRLF.CRLF, streamed without holding the message in memory. It returns
// the end-of-data reply. For LMTP it reads one reply per accepted
// recipient and returns the first negative one (or the last), with a
// *RecipientsError when any recipient failed; use LMTPData for all of
// them. A refused DATA or end of data is an *Error wrapping ErrData; a
// lost connection after the final dot wraps ErrOutcomeUnknown.
func (c *Client) Data(ctx context.Context, r io.Reader) (*Reply, error) {
	if c.lmtp {
		res, err := c.LMTPData(ctx, r)
		if err != nil && len(res) == 0 {
			return nil, err
		}
		var first *Reply
		for _, rr := range res {
			if rr.Reply != nil && (first == nil || !rr.Reply.Positive() && first.Positive()) {
				first = rr.Reply
			}
		}
		return first, err
	}
	dr, err := c.roundTrip(ctx, "DATA", c.to.DataInit, "DATA", "")
	if err != nil {
		return nil, err
	}
	if dr.Code != 354 {
		c.rcpts = nil
		return dr, &Error{Reply: *dr, Command: "DATA", Server: c.server, kind: ErrData}
	}
	if early, err := c.writeData(ctx, r, nil); err != nil {
		return early, err
	}
	c.rcpts = nil
	end, err := c.readReplyStage(ctx, "waiting for the reply to the end of data", c.to.DataDone)
	if err != nil {
		return nil, withOutcomeUnknown(err)
	}
	return end, c.expect(end, 2, "end of data", ErrData)
}

// LMTPData sends DATA and the message, then reads one reply per
// recipient accepted in this transaction, in order (RFC 2033 §4.2),
// duplicates included. Each result's Err is nil for 2xx, an *Error for a
// refusal, or a connection error wrapping ErrOutcomeUnknown when the
// connection was lost before that recipient's reply. The returned error
// is a *RecipientsError (wrapping ErrData) when any recipient failed, or
// an error about DATA itself.
func (c *Client) LMTPData(ctx context.Context, r io.Reader) ([]RecipientResult, error) {
	rcpts := c.rcpts
	c.rcpts = nil
	dr, err := c.roundTrip(ctx, "DATA", c.to.DataInit, "DATA", "")
	if err != nil {
		return nil, err
	}
	if dr.Code != 354 {
		return nil, &Error{Reply: *dr, Command: "DATA", Server: c.server, kind: ErrData}
	}
	if _, err := c.writeData(ctx, r, nil); err != nil {
		return nil, err
	}
	return c.lmtpReplies(ctx, rcpts)
}

// lmtpReplies reads the per-recipient replies after the end of data.
func (c *Client) lmtpReplies(ctx context.Context, rcpts []string) ([]RecipientResult, error) {
	res := make([]RecipientResult, len(rcpts))
	failed := false
	for i, rc := range rcpts {
		res[i].Address = rc
		if c.broken != nil {
			res[i].Err = withOutcomeUnknown(c.broken)
			failed = true
			continue
		}
		rep, err := c.readReplyStage(ctx, "waiting for the reply to the end of data", c.to.DataDone)
		if err != nil {
			res[i].Err = withOutcomeUnknown(err)
			failed = true
			continue
		}
		res[i].Reply = rep
		if !rep.Positive() {
			res[i].Err = &Error{Reply: *rep, Command: "end of data for " + rc, Server: c.server, kind: ErrData}
			failed = true
		}
	}
	if failed {
		kinds := []error{ErrData}
		for _, k := range []error{ErrOutcomeUnknown, ErrServerDisconnected} {
			for _, rr := range res {
				if errors.Is(rr.Err, k) {
					kinds = append(kinds, k)
					break
				}
			}
		}
		return res, &RecipientsError{Recipients: res, kinds: kinds}
	}
	return res, nil
}

// withOutcomeUnknown marks a connection failure after the end of data.
func withOutcomeUnknown(err error) error {
	var ce *ConnError
	if errors.As(err, &ce) && !errors.Is(err, ErrOutcomeUnknown) {
		cp := *ce
		cp.kinds = append(append([]error{}, ce.kinds...), ErrOutcomeUnknown)
		return &cp
	}
	return err
}

// writeData streams the encoded message after a 354. On a write error it
// returns the server's early reply when there is one (an *Error wrapping
// ErrData), else a connection error. A failing reader closes the
// connection without ending the data, so a truncated message is never
// delivered.
func (c *Client) writeData(ctx context.Context, r io.Reader, trailer []byte) (*Reply, error) {
	bw := &blockWriter{c: c, ctx: ctx}
	defer bw.watch()()
	dw := newDataWriter(bw, 998)
	defer dw.release()
	in := dataBufPool.Get().(*[dataBufSize]byte)
	defer dataBufPool.Put(in)
	// The wrapper hides WriterTo/ReaderFrom, which would bring their own
	// buffers.
	_, err := io.CopyBuffer(dw, struct{ io.Reader }{r}, in[:])
	if err == nil {
		err = dw.closeWith(trailer)
	}
	c.debugf("data: %d octets", dw.Written())
	if err == nil {
		return nil, nil
	}
	if bw.err == nil {
		// The reader failed, not the connection.
		return nil, c.fail(ctx, "reading the message (connection closed without ending the data)", err)
	}
	if early := c.earlyReply(); early != nil {
		c.fail(ctx, "sending message data", err)
		return early, &Error{Reply: *early, Command: "DATA (during transfer)", Server: c.server, kind: ErrData}
	}
	return nil, c.fail(ctx, "sending message data", err)
}

// watch interrupts the writes when the context is cancelled, for the
// whole data phase; the returned function stops watching.
func (w *blockWriter) watch() func() {
	if w.ctx.Done() == nil {
		return func() {}
	}
	conn := w.c.conn
	done := make(chan struct{})
	stop := context.AfterFunc(w.ctx, func() {
		conn.SetWriteDeadline(aLongTimeAgo)
		close(done)
	})
	return func() {
		if !stop() {
			<-done
		}
	}
}

// blockWriter writes message data to the connection with a fresh
// DataBlock deadline for each block (RFC 5321 §4.5.3.2.5: "a timer is
// set ... for each buffer of the data transfer").
type blockWriter struct {
	c   *Client
	ctx context.Context
	err error
}

func (w *blockWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	c := w.c
	if c.broken != nil {
		w.err = c.broken
		return 0, w.err
	}
	var deadline time.Time
	if c.to.DataBlock > 0 {
		deadline = time.Now().Add(c.to.DataBlock)
	}
	if dl, ok := w.ctx.Deadline(); ok && (deadline.IsZero() || dl.Before(deadline)) {
		deadline = dl
	}
	c.conn.SetWriteDeadline(deadline)
	// A cancellation that came before the deadline was set is seen here;
	// one that comes later moves the deadline into the past (watch).
	if err := w.ctx.Err(); err != nil {
		w.err = err
		return 0, err
	}
	n, err := c.conn.Write(p)
	if err != nil {
		if w.ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", context.Cause(w.ctx), err)
		}
		w.err = err
	}
	return n, err
}

// --- SendMail ----------------------------------------------------------

// SendOptions tune SendMail.
type SendOptions struct {
	// Mail holds the MAIL FROM parameters. When Size is 0 it is estimated
	// from the message's remaining length when it is an *os.File,
	// *bytes.Reader or *strings.Reader (line endings not yet CRLF, so it
	// can be a little low) and left 0 otherwise.
	Mail MailOptions
	// Rcpt holds the RCPT TO parameters used for every recipient, except
	// OriginalRecipient, which comes from OriginalRecipients.
	Rcpt RcptOptions
	// OriginalRecipients maps a recipient to its ORCPT address.
	OriginalRecipients map[string]string
	// Chunking sends the message with BDAT (RFC 3030) when the server
	// offers CHUNKING, without dot-stuffing. BINARYMIME forces it.
	Chunking bool
	// ChunkSize is the BDAT chunk size; default 1 MiB.
	ChunkSize int
	// MaxRecipients per transaction; 0 means 100 (RFC 5321 §4.5.3.1.8),
	// negative means no limit. More recipients, and those a server
	// defers with "too many recipients", go in further transactions on
	// the same connection, which needs a message that is an io.Seeker;
	// otherwise they get a temporary error.
	MaxRecipients int
	// NoPipelining sends commands one at a time even when the server
	// offers PIPELINING.
	NoPipelining bool
	// Next, when set, is the message the caller sends next on this
	// connection. With PIPELINING, over SMTP and DATA, its MAIL, RCPT
	// and DATA commands go out right behind this message's final dot
	// (RFC 2920 §3.1: message content may open a group, DATA closes it),
	// so the next SendMail finds their replies waiting instead of making
	// a round trip for them. It must then be called with the same sender,
	// recipients and options. Any other use of the connection first takes
	// those replies and undoes that transaction: RSET, or, when the server
	// already said 354 to a DATA with recipients, closing the connection
	// (ending that data would deliver an empty message).
	Next *NextMessage
}

// NextMessage is the envelope of the message that follows (see
// SendOptions.Next). Options.Next is ignored.
type NextMessage struct {
	From    string
	To      []string
	Options *SendOptions
}

// pendingTx is a transaction whose commands went out ahead of its
// SendMail (SendOptions.Next): their replies wait to be read.
type pendingTx struct {
	cmds []txCmd
}

// txCmd is one command of a transaction: its stage name for errors, its
// line, and its timeout.
type txCmd struct {
	stage string
	line  string
	d     time.Duration
}

// Result is what SendMail reports: one entry per recipient, in the order
// given, with the reply that decided it.
type Result struct {
	Recipients []RecipientResult
	// Reply is the end-of-data reply of the last SMTP transaction (nil for
	// LMTP, where each recipient has its own).
	Reply *Reply
	// Transactions is how many MAIL transactions were used.
	Transactions int
}

// Refused returns smtplib's dictionary: each recipient that was not
// delivered, with its error.
func (r *Result) Refused() map[string]error {
	m := make(map[string]error)
	for _, rr := range r.Recipients {
		if rr.Err != nil {
			m[rr.Address] = rr.Err
		}
	}
	return m
}

// Delivered counts the recipients the server took responsibility for.
func (r *Result) Delivered() int {
	n := 0
	for _, rr := range r.Recipients {
		if rr.Err == nil {
			n++
		}
	}
	return n
}

// SendMail delivers one message to many recipients (smtplib's sendmail):
// EHLO if not done yet, MAIL, the RCPTs and DATA pipelined when the
// server offers PIPELINING (RFC 2920) and in lock-step otherwise, then
// the message streamed from msg, or BDAT chunks (RFC 3030) when asked.
//
// When some recipients are accepted the error is nil and the Result lists
// the refused ones with their replies. When none is accepted the error
// is a *RecipientsError (ErrRecipientsRefused). A refused MAIL is an
// *Error wrapping ErrSenderRefused; a refused DATA or end of data an
// *Error wrapping ErrData; a connection lost after the final dot wraps
// ErrOutcomeUnknown. LMTP failures per recipient after the data are in
// the Result, and a *RecipientsError wrapping ErrData when all failed.
//
// After a failed transaction RSET is sent, so the same Client can carry
// the next message; after a 421 or a broken connection it is closed.
// The Result is returned, as far as it goes, with every error but a local
// refusal before MAIL.
func (c *Client) SendMail(ctx context.Context, from string, to []string, msg io.Reader, opts *SendOptions) (*Result, error) {
	if opts == nil {
		opts = &SendOptions{}
	}
	if err := c.Hello(ctx); err != nil {
		return nil, err
	}
	if len(to) == 0 {
		return nil, invalidArg("no recipients")
	}
	mailLine, mailUTF8, lines, chunking, err := c.envelope(from, to, opts, msg)
	if err != nil {
		return nil, err
	}
	limit := opts.recipientLimit()
	seeker, _ := msg.(io.Seeker)
	var start int64
	if seeker != nil {
		if start, err = seeker.Seek(0, io.SeekCurrent); err != nil {
			seeker = nil
		}
	}

	res := &Result{Recipients: make([]RecipientResult, len(to))}
	for i, t := range to {
		res.Recipients[i].Address = t
	}
	todo := make([]int, len(to))
	for i := range todo {
		todo[i] = i
	}
	for len(todo) > 0 {
		if res.Transactions > 0 {
			if seeker == nil {
				for _, i := range todo {
					res.Recipients[i].Err = &localError{code: 452, enh: EnhancedCode{4, 5, 3},
						msg: "not sent: needs another transaction and the message cannot be read twice", kinds: []error{ErrRecipientsRefused}}
				}
				break
			}
			if _, err := seeker.Seek(start, io.SeekStart); err != nil {
				return res, fmt.Errorf("rewinding the message: %w", err)
			}
		}
		batch := todo
		if limit > 0 && len(batch) > limit {
			batch = batch[:limit]
		}
		todo = todo[len(batch):]
		res.Transactions++
		var next *NextMessage
		if len(todo) == 0 {
			next = opts.Next // sent ahead only behind the last transaction
		}
		retry, err := c.transaction(ctx, mailLine, mailUTF8, lines, batch, msg, chunking, opts, next, res)
		if err != nil {
			// Recipients not yet tried share the transaction's fate.
			for _, i := range todo {
				res.Recipients[i].Err = err
			}
			return res, err
		}
		todo = append(retry, todo...)
		if len(retry) > 0 && len(retry) == len(batch) {
			// No progress: the server deferred every recipient. Those not
			// tried share their fate.
			for _, i := range todo {
				if res.Recipients[i].Err == nil {
					res.Recipients[i].Err = &localError{code: 452, enh: EnhancedCode{4, 5, 3},
						msg: "not sent: the server deferred every recipient of the previous transaction", kinds: []error{ErrRecipientsRefused}}
				}
			}
			break
		}
	}
	if res.Delivered() == 0 {
		// The error is also each stage sentinel that some recipient's
		// error carries, so that errors.Is(err, ErrOutcomeUnknown) warns
		// of a possible duplicate.
		kinds := []error{ErrRecipientsRefused}
		for _, k := range []error{ErrData, ErrOutcomeUnknown, ErrServerDisconnected} {
			for _, rr := range res.Recipients {
				if errors.Is(rr.Err, k) {
					kinds = append(kinds, k)
					break
				}
			}
		}
		return res, &RecipientsError{Recipients: res.Recipients, kinds: kinds}
	}
	return res, nil
}

// envelope returns the MAIL line of a message (and whether it asks for
// SMTPUTF8), the RCPT line of each recipient, and whether the data goes
// by BDAT. When opts.Mail.Size is 0 the size is estimated from msg
// (readerSize; nil: none).
func (c *Client) envelope(from string, to []string, opts *SendOptions, msg io.Reader) (mailLine string, mailUTF8 bool, lines []string, chunking bool, err error) {
	mo := opts.Mail
	if mo.Size == 0 {
		mo.Size = readerSize(msg)
	}
	utf8 := mo.UTF8
	if !isASCII(from) {
		utf8 = true
	}
	for _, t := range to {
		if !isASCII(t) {
			utf8 = true
		}
	}
	mailLine, mailUTF8, err = c.mailLine(from, &mo, utf8)
	if err != nil {
		return "", false, nil, false, err
	}
	lines = make([]string, len(to))
	for i, t := range to {
		ro := opts.Rcpt
		ro.OriginalRecipient = opts.OriginalRecipients[t]
		if lines[i], err = c.rcptLine(t, &ro, utf8); err != nil {
			return "", false, nil, false, err
		}
	}
	if _, ok := c.Extension("CHUNKING"); ok && (opts.Chunking || mo.Body == BodyBinaryMIME) {
		chunking = true
	}
	return mailLine, mailUTF8, lines, chunking, nil
}

// recipientLimit is MaxRecipients with its default.
func (o *SendOptions) recipientLimit() int {
	if o.MaxRecipients == 0 {
		return 100
	}
	return o.MaxRecipients
}

// commands returns a transaction's commands in order: MAIL, one RCPT per
// recipient of batch, and DATA unless the data goes by BDAT.
func (c *Client) commands(mailLine string, lines []string, batch []int, useDataCmd bool) []txCmd {
	cmds := make([]txCmd, 0, len(batch)+2)
	cmds = append(cmds, txCmd{"MAIL", mailLine, c.to.Mail})
	for _, i := range batch {
		cmds = append(cmds, txCmd{"RCPT", lines[i], c.to.Rcpt})
	}
	if useDataCmd {
		cmds = append(cmds, txCmd{"DATA", "DATA", c.to.DataInit})
	}
	return cmds
}

// aheadCommands returns the commands of the next message's first
// transaction when they can go ahead (SendOptions.Next): the server
// pipelines, the session is SMTP, the next message goes by DATA, its
// MAIL line can be known now, and its commands fit in one group. nil
// otherwise.
func (c *Client) aheadCommands(next *NextMessage) []txCmd {
	opts := next.Options
	if opts == nil {
		opts = &SendOptions{}
	}
	if c.lmtp || opts.NoPipelining || len(next.To) == 0 {
		return nil
	}
	if _, ok := c.Extension("PIPELINING"); !ok {
		return nil
	}
	if _, ok := c.Extension("SIZE"); ok && opts.Mail.Size == 0 {
		// SendMail will estimate the size from the message, which is
		// not here yet: its MAIL line cannot be known.
		return nil
	}
	mailLine, _, lines, chunking, err := c.envelope(next.From, next.To, opts, nil)
	if err != nil || chunking {
		return nil
	}
	n := len(lines)
	if limit := opts.recipientLimit(); limit > 0 && n > limit {
		n = limit
	}
	batch := make([]int, n)
	for i := range batch {
		batch[i] = i
	}
	cmds := c.commands(mailLine, lines, batch, true)
	size := 0
	for _, cm := range cmds {
		if checkLine(cm.line) != nil {
			return nil
		}
		size += len(cm.line) + 2
	}
	if size >= 4096 {
		return nil
	}
	return cmds
}

// matches reports whether cmds are the commands this transaction sent
// ahead.
func (p *pendingTx) matches(cmds []txCmd) bool {
	return slices.EqualFunc(p.cmds, cmds, func(a, b txCmd) bool { return a.line == b.line })
}

// abandonPending reads the replies of a transaction sent ahead and not
// wanted after all, and undoes it: a 354 to its DATA with a recipient
// accepted closes the connection (the server drops data that never
// ended; a dot would deliver an empty message); a 354 with none gets the
// lone dot of RFC 2920 §3.1; an accepted MAIL gets RSET.
func (c *Client) abandonPending(ctx context.Context) {
	p := c.pending
	c.pending = nil
	if p == nil || c.broken != nil {
		return
	}
	replies := make([]*Reply, 0, len(p.cmds))
	for _, cm := range p.cmds {
		r, err := c.readReplyStage(ctx, cm.stage+" (sent ahead)", cm.d)
		if err != nil {
			return
		}
		replies = append(replies, r)
	}
	accepted := false
	for _, r := range replies[1 : len(replies)-1] {
		if r.Positive() {
			accepted = true
		}
	}
	if replies[len(replies)-1].Code == 354 {
		if accepted {
			c.closeConn()
			return
		}
		c.endEmptyData(ctx)
	}
	if replies[0].Positive() && c.broken == nil {
		c.Reset(ctx)
	}
}

// readerSize returns the size the remaining message will have on the
// wire with CRLF line endings, for *bytes.Reader and *strings.Reader
// counted without moving them (not counting the CRLF the encoder adds to
// a last line without one, as smtplib counts), as the byte count for a
// regular *os.File (an estimate: bare LFs will grow), or 0.
func readerSize(r io.Reader) int64 {
	type memReader interface {
		io.ReaderAt
		Len() int
		Size() int64
	}
	if m, ok := r.(memReader); ok {
		return crlfSize(m, m.Size()-int64(m.Len()), m.Size())
	}
	f, ok := r.(interface{ Stat() (os.FileInfo, error) })
	s, ok2 := r.(io.Seeker)
	if !ok || !ok2 {
		return 0
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return 0
	}
	off, err := s.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0
	}
	return fi.Size() - off
}

// tooManyRecipients reports a RCPT refusal that means "try these in
// another transaction": 452, or 552 (RFC 5321 §4.5.3.1.10), with the
// enhanced code 4.5.3/5.5.3 or none.
func tooManyRecipients(r *Reply) bool {
	if r.Code != 452 && r.Code != 552 {
		return false
	}
	e := r.Enhanced
	return e == (EnhancedCode{}) || (e[1] == 5 && e[2] == 3)
}

// transaction runs one MAIL/RCPT/DATA transaction for the recipients
// at indexes batch, filling res. It returns the indexes to retry in a new
// transaction (recipients refused as "too many"), or an error that ends
// SendMail.
func (c *Client) transaction(ctx context.Context, mailLine string, mailUTF8 bool, lines []string, batch []int, msg io.Reader, chunking bool, opts *SendOptions, next *NextMessage, res *Result) (retry []int, err error) {
	pipelined := !opts.NoPipelining
	if _, ok := c.Extension("PIPELINING"); !ok {
		pipelined = false
	}
	useDataCmd := !chunking
	for _, i := range batch {
		// A recipient deferred by an earlier transaction starts afresh.
		res.Recipients[i].Reply, res.Recipients[i].Err = nil, nil
	}
	c.rcpts = nil
	c.utf8 = mailUTF8

	// Commands in order: MAIL, RCPT..., [DATA].
	cmds := c.commands(mailLine, lines, batch, useDataCmd)
	replies := make([]*Reply, len(cmds))
	var ioErr error
	ahead := false // the commands went out ahead (SendOptions.Next)
	if c.pending != nil {
		ahead = pipelined && c.pending.matches(cmds)
		if ahead {
			c.pending = nil
		} else {
			c.abandonPending(ctx)
		}
		if !ahead && c.broken != nil {
			for _, i := range batch {
				res.Recipients[i].Err = c.broken
			}
			return nil, c.broken
		}
	}
	if ahead {
		for k, cm := range cmds {
			r, err := c.readReplyStage(ctx, cm.stage, cm.d)
			if err != nil {
				ioErr = err
				break
			}
			replies[k] = r
		}
	} else if pipelined {
		// Write in groups whose unacknowledged bytes stay under 4 KiB,
		// reading the replies of a group before writing more, so neither
		// side can block on a full TCP window (Postfix does the same).
		sent, read := 0, 0
		for sent < len(cmds) && ioErr == nil {
			unacked := 0
			disarm := c.arm(ctx, cmds[sent].d)
			for sent < len(cmds) && (unacked == 0 || unacked+len(cmds[sent].line) < 4096) {
				c.writeLine(cmds[sent].line, "")
				unacked += len(cmds[sent].line) + 2
				sent++
			}
			werr := c.bw.Flush()
			disarm()
			if werr != nil {
				ioErr = c.failWrite(ctx, cmds[read].stage, werr)
				break
			}
			for ; read < sent; read++ {
				r, err := c.readReplyStage(ctx, cmds[read].stage, cmds[read].d)
				if err != nil {
					ioErr = err
					break
				}
				replies[read] = r
			}
		}
	} else {
		for k, cm := range cmds {
			r, err := c.roundTrip(ctx, cm.stage, cm.d, cm.line, "")
			if err != nil {
				ioErr = err
				break
			}
			replies[k] = r
			if k == 0 && !r.Positive() {
				break // MAIL refused: no RCPT
			}
			if r.Code == 421 {
				break
			}
			if cm.stage == "RCPT" && k == len(batch) && useDataCmd {
				// Last RCPT: send DATA only when someone was accepted.
				any := false
				for _, rr := range replies[1 : len(batch)+1] {
					if rr != nil && rr.Positive() {
						any = true
					}
				}
				if !any {
					break
				}
			}
		}
	}

	fail := func(i int, e error) { res.Recipients[i].Err = e }
	// A 421 anywhere closed the connection (RFC 5321 §3.8); recipients
	// left without a reply, and accepted ones whose data was never sent,
	// get that reply as their (temporary) error.
	var closing error
	for k, r := range replies {
		if r != nil && r.Code == 421 {
			kind := ErrRecipientsRefused
			switch cmds[k].stage {
			case "MAIL":
				kind = ErrSenderRefused
			case "DATA":
				kind = ErrData
			}
			closing = &Error{Reply: *r, Command: cmds[k].line, Server: c.server, kind: kind}
			break
		}
	}

	// MAIL.
	mr := replies[0]
	if mr == nil {
		for _, i := range batch {
			fail(i, ioErr)
		}
		return nil, ioErr
	}
	if !mr.Positive() {
		e := &Error{Reply: *mr, Command: mailLine, Server: c.server, kind: ErrSenderRefused}
		if pipelined && useDataCmd && replies[len(replies)-1] != nil && replies[len(replies)-1].Code == 354 {
			c.endEmptyData(ctx)
		}
		for _, i := range batch {
			fail(i, e)
		}
		c.resetAfterFailure(ctx)
		return nil, e
	}
	// RCPTs.
	var accepted []int
	for k, i := range batch {
		r := replies[k+1]
		res.Recipients[i].Reply = r
		switch {
		case r == nil:
			e := closing
			if e == nil {
				e = ioErr
			}
			if e == nil {
				e = &localError{code: 421, enh: EnhancedCode{4, 4, 2}, msg: "not sent: the server closed the connection", kinds: []error{ErrRecipientsRefused}}
			}
			fail(i, e)
		case r.Positive():
			accepted = append(accepted, i)
			c.rcpts = append(c.rcpts, res.Recipients[i].Address)
		case tooManyRecipients(r):
			retry = append(retry, i)
			fail(i, &Error{Reply: *r, Command: lines[i], Server: c.server, kind: ErrRecipientsRefused})
		default:
			fail(i, &Error{Reply: *r, Command: lines[i], Server: c.server, kind: ErrRecipientsRefused})
		}
	}
	if c.broken != nil && len(accepted) > 0 && (ioErr != nil || useDataCmd && replies[len(replies)-1] == nil) {
		// The connection went away before the data: nothing was sent.
		e := closing
		if e == nil {
			e = ioErr
		}
		if e == nil {
			e = c.broken
		}
		for _, i := range accepted {
			fail(i, e)
		}
		return nil, e
	}
	if len(accepted) == 0 {
		if useDataCmd && pipelined {
			if dr := replies[len(replies)-1]; dr != nil && dr.Code == 354 {
				// RFC 2920 §3.1: DATA was accepted with no recipient;
				// send a lone dot.
				c.endEmptyData(ctx)
			}
		}
		c.resetAfterFailure(ctx)
		if closing != nil {
			return nil, closing
		}
		if ioErr != nil && len(retry) == 0 {
			return nil, ioErr
		}
		if len(retry) > 0 && c.broken == nil {
			return retry, nil
		}
		return nil, nil
	}

	// DATA or BDAT.
	var endReplies []RecipientResult
	var endReply *Reply
	var derr error
	if useDataCmd {
		dr := replies[len(replies)-1]
		if dr.Code != 354 {
			e := &Error{Reply: *dr, Command: "DATA", Server: c.server, kind: ErrData}
			for _, i := range accepted {
				fail(i, e)
			}
			c.resetAfterFailure(ctx)
			return nil, e
		}
		// The next message's commands, when they can go ahead, leave in
		// the same write as the final dot: a server that answers the
		// dot before it has read them would send its replies in two
		// writes, and the second could wait for a delayed ACK (Nagle).
		var ahead []txCmd
		var trailer []byte
		if next != nil && pipelined && len(retry) == 0 {
			ahead = c.aheadCommands(next)
			for _, cm := range ahead {
				trailer = append(append(trailer, cm.line...), "\r\n"...)
			}
		}
		_, werr := c.writeData(ctx, msg, trailer)
		if werr == nil && len(ahead) > 0 {
			for _, cm := range ahead {
				c.debugf("send: %s", cm.line)
			}
			c.pending = &pendingTx{cmds: ahead}
		}
		if werr != nil {
			for _, i := range accepted {
				fail(i, werr)
			}
			return nil, werr
		}
	} else {
		if endReply, derr = c.sendBDAT(ctx, msg, opts.ChunkSize); derr != nil {
			for _, i := range accepted {
				fail(i, derr)
			}
			if c.broken == nil {
				c.resetAfterFailure(ctx)
			}
			return nil, derr
		}
	}
	if c.lmtp {
		rcpts := c.rcpts
		c.rcpts = nil
		if endReply != nil {
			// With BDAT the reply to BDAT LAST, read by sendBDAT, is the
			// first recipient's (RFC 2033 §4.3).
			rr := RecipientResult{Address: rcpts[0], Reply: endReply}
			if !endReply.Positive() {
				rr.Err = &Error{Reply: *endReply, Command: "end of data for " + rcpts[0], Server: c.server, kind: ErrData}
			}
			endReplies = append(endReplies, rr)
			rcpts = rcpts[1:]
		}
		rest, _ := c.lmtpReplies(ctx, rcpts)
		endReplies = append(endReplies, rest...)
		for k, i := range accepted {
			res.Recipients[i].Reply = endReplies[k].Reply
			res.Recipients[i].Err = endReplies[k].Err
		}
		if c.broken == nil {
			for _, rr := range endReplies {
				if rr.Err != nil {
					c.resetAfterFailure(ctx)
					break
				}
			}
		}
		return retry, nil
	}
	if useDataCmd {
		endReply, derr = c.readReplyStage(ctx, "waiting for the reply to the end of data", c.to.DataDone)
		if derr != nil {
			derr = withOutcomeUnknown(derr)
			for _, i := range accepted {
				fail(i, derr)
			}
			return nil, derr
		}
	}
	c.rcpts = nil
	res.Reply = endReply
	if !endReply.Positive() {
		e := &Error{Reply: *endReply, Command: "end of data", Server: c.server, kind: ErrData}
		for _, i := range accepted {
			res.Recipients[i].Reply = endReply
			fail(i, e)
		}
		if c.pending != nil {
			// The reply ended the transaction (RFC 5321 §4.1.1.4); the
			// next one is under way: no RSET.
			c.utf8 = false
		} else {
			c.resetAfterFailure(ctx)
		}
		return nil, e
	}
	for _, i := range accepted {
		res.Recipients[i].Reply = endReply
	}
	return retry, nil
}

// endEmptyData answers a 354 that came for a transaction with no
// recipient by sending a lone dot (RFC 2920 §3.1) and reading its reply.
func (c *Client) endEmptyData(ctx context.Context) {
	c.roundTrip(ctx, "end of empty data", c.to.DataDone, ".", "")
}

// resetAfterFailure sends RSET after a failed transaction so the
// connection can carry the next one; a disconnect here is not reported
// (the error belongs to the next command, smtplib issue 17498).
func (c *Client) resetAfterFailure(ctx context.Context) {
	c.rcpts, c.utf8 = nil, false
	if c.broken == nil {
		c.Reset(ctx)
	}
}

// sendBDAT sends the message in BDAT chunks (RFC 3030 §2): line endings
// made CRLF, no dot-stuffing, the last chunk marked LAST. It returns the
// reply to BDAT LAST (for LMTP, the first recipient's reply).
func (c *Client) sendBDAT(ctx context.Context, msg io.Reader, size int) (*Reply, error) {
	if size <= 0 {
		size = 1 << 20
	}
	src := bufio.NewReaderSize(newCRLFReader(msg, 998), size)
	buf := make([]byte, size)
	var total int64
	bw := &blockWriter{c: c, ctx: ctx}
	defer bw.watch()()
	for {
		n, rerr := io.ReadFull(src, buf)
		if rerr == io.ErrUnexpectedEOF || rerr == io.EOF {
			rerr = nil
		}
		if rerr != nil {
			return nil, c.fail(ctx, "reading the message (connection closed without ending the data)", rerr)
		}
		_, peek := src.Peek(1)
		last := n < size || peek != nil
		total += int64(n)
		line := "BDAT " + strconv.Itoa(n)
		if last {
			line += " LAST"
		}
		c.debugf("send: %s", line)
		_, err := bw.Write([]byte(line + "\r\n"))
		if err == nil {
			_, err = bw.Write(buf[:n])
		}
		if err != nil {
			if early := c.earlyReply(); early != nil {
				c.fail(ctx, "sending message data", err)
				return nil, &Error{Reply: *early, Command: "BDAT (during transfer)", Server: c.server, kind: ErrData}
			}
			return nil, c.fail(ctx, "sending message data", err)
		}
		stage, d := "BDAT", c.to.DataInit
		if last {
			stage, d = "waiting for the reply to BDAT LAST", c.to.DataDone
		}
		r, err := c.readReplyStage(ctx, stage, d)
		if err != nil {
			if last {
				return nil, withOutcomeUnknown(err)
			}
			return nil, err
		}
		if last {
			c.debugf("data: %d octets in BDAT chunks", total)
			return r, nil
		}
		if !r.Positive() {
			return nil, &Error{Reply: *r, Command: line, Server: c.server, kind: ErrData}
		}
	}
}

// crlfSize counts the octets of r[from:to] once bare LFs and bare CRs
// have become CRLF.
func crlfSize(r io.ReaderAt, from, to int64) int64 {
	pb := dataBufPool.Get().(*[dataBufSize]byte)
	defer dataBufPool.Put(pb)
	buf := pb[:]
	n := to - from
	prevCR := false
	for off := from; off < to; {
		k, err := r.ReadAt(buf[:min(int64(len(buf)), to-off)], off)
		for _, b := range buf[:k] {
			switch {
			case b == '\n' && !prevCR:
				n++ // bare LF gains a CR
			case b != '\n' && prevCR:
				n++ // bare CR gains an LF
			}
			prevCR = b == '\r'
		}
		off += int64(k)
		if err != nil && k == 0 {
			break
		}
	}
	if prevCR {
		n++
	}
	return n
}
