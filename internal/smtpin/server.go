package smtpin

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Defaults and limits. The package documentation says why each is what
// it is.
const (
	// DefaultMaxRecipients is Server.MaxRecipients when that is 0. RFC
	// 5321 §4.5.3.1.8 asks for at least 100.
	DefaultMaxRecipients = 1000
	// DefaultTimeout is Server.Timeout when that is 0: the server's
	// timeout of RFC 5321 §4.5.3.2.7.
	DefaultTimeout = 5 * time.Minute
	// MaxLine is the longest command line accepted, line ending included.
	MaxLine = 4096
	// MaxErrors is how many protocol errors (replies 500, 501, 502, 503,
	// 553, 554, 555 to commands) a session may make; after the last one's
	// reply the server says 421 and ends the session.
	MaxErrors = 20

	// readBufSize is the input buffer; message data is handed to the
	// Handler in pieces of at most this size.
	readBufSize = 32 << 10
	// maxReplyText is the longest text of one reply line: 512 octets
	// (RFC 5321 §4.5.3.1.5) less the code, separator and CRLF.
	maxReplyText = 512 - 6
)

// ErrTooManyErrors is wrapped by the error Serve returns when the client
// made more than MaxErrors protocol errors.
var ErrTooManyErrors = errors.New("smtpin: too many protocol errors")

// Envelope is the envelope of one message.
type Envelope struct {
	// From is the reverse-path of MAIL FROM, without angle brackets and
	// in canonical form (see "Addresses"); "" for the null sender.
	From string
	// NullSender is set for MAIL FROM:<>.
	NullSender bool
	// To holds the recipients accepted, in order, duplicates kept.
	To []string
	// Body8Bit is set when MAIL had BODY=8BITMIME (RFC 6152).
	Body8Bit bool
	// SMTPUTF8 is set when MAIL had SMTPUTF8 (RFC 6531).
	SMTPUTF8 bool
	// Size is the SIZE= estimate of MAIL (RFC 1870), 0 if not given.
	Size int64
	// Return is the DSN RET value, "FULL" or "HDRS" (upper case), "" when
	// not given or when the server does not offer DSN.
	Return string
	// EnvelopeID is the DSN ENVID, xtext decoded; "" when not given or
	// when the server does not offer DSN.
	EnvelopeID string
	// Rcpts holds, parallel to To, the DSN parameters of each accepted
	// recipient (zero values when the server does not offer DSN).
	Rcpts []RcptParams
	// Params holds the values of the Server.Params keywords given on
	// MAIL, keyed by the keyword in upper case; nil when none was given.
	Params map[string]string
}

// RcptParams are the DSN parameters of one RCPT (RFC 3461 §4.1, §4.2).
type RcptParams struct {
	// Notify is the NOTIFY list in upper case (NEVER alone, or some of
	// SUCCESS, FAILURE, DELAY; checked as RFC 3461 §4.1 says), nil when
	// not given.
	Notify []string
	// ORcpt is the ORCPT value decoded from xtext, as "rfc822;addr" (the
	// address type in lower case), "" when not given.
	ORcpt string
}

// Reply is an SMTP reply. Text may hold "\n" for a multi-line reply and
// starts with an RFC 3463 enhanced code, as in "2.0.0 Ok: queued as X".
// The server adds the code "c.0.0" (c the class of Code) to a text
// without one of the right class, repeats the first line's code on the
// following lines that lack one, turns CR and other control characters
// into "?", and cuts lines over 506 octets.
type Reply struct {
	Code int
	Text string
}

// Handler receives what the server accepts. Its methods are called from
// the goroutine that runs Serve, one at a time.
type Handler interface {
	// CheckSender validates the address of MAIL FROM ("" for <>); a
	// non-nil *Reply refuses it, with a code from 400 to 599.
	CheckSender(from string) *Reply
	// CheckRecipient validates the address of RCPT TO; a non-nil *Reply
	// refuses it, with a code from 400 to 599.
	CheckRecipient(to string) *Reply
	// Deliver takes one message and returns the reply to the end of data
	// (one reply for the whole message; an LMTP server calls
	// LMTPHandler.DeliverLMTP instead). data
	// yields the message with dot-stuffing removed and CRLF line endings,
	// and must not be used after Deliver returns; what is left unread is
	// drained by the server.
	//
	// data returns io.EOF only after the client's end-of-data line, and
	// the message must be committed only then. Any other error means the
	// message did not arrive whole and must not be delivered:
	// io.ErrUnexpectedEOF when the input ended, ErrMessageTooBig past
	// Server.MaxMessageSize (the server then answers 552 5.3.4 whatever
	// Deliver returns), an error wrapping os.ErrDeadlineExceeded after
	// Server.Timeout without input, or the reader's own error. When the
	// input failed, the reply is never sent.
	Deliver(env Envelope, data io.Reader) Reply
}

// CommandHandler is implemented by a Handler that takes commands of its
// own, whose verbs start with X (RFC 5321 §4.1.5 leaves those to private
// use). Command gets the verb in upper case and the rest of the line;
// it returns the reply (2xx, 4xx or 5xx, made safe as Reply says) and
// true, or false for a verb it does not know (500, a protocol error).
type CommandHandler interface {
	Command(verb, arg string) (Reply, bool)
}

// LMTPHandler is the Handler of an LMTP server.
type LMTPHandler interface {
	Handler
	// DeliverLMTP takes one message, like Deliver, and returns one reply
	// per recipient of env.To, in order (a missing or extra reply is a
	// bug: the server then answers 451 4.3.0 for the missing ones and
	// ignores the extra). The replies are made safe as Reply says, each
	// on its own. When the input failed none is sent; when the message
	// was too big every recipient gets 552 5.3.4 instead.
	DeliverLMTP(env Envelope, data io.Reader) []Reply
}

// Server is an SMTP or LMTP server for one client on a reader and a
// writer. Its fields are read, never written, by Serve, so one Server may
// serve many sessions at once.
type Server struct {
	// Hostname is the name in the greeting and the EHLO reply; default
	// "localhost".
	Hostname string
	// MaxMessageSize is advertised with SIZE (RFC 1870); 0 advertises SIZE
	// without a number and sets no limit. A MAIL with a bigger SIZE= is
	// refused, and a bigger message is read to its end and refused, with
	// 552 5.3.4.
	MaxMessageSize int64
	// MaxRecipients per transaction; 0 means DefaultMaxRecipients. More
	// are answered 452 4.5.3 (RFC 5321 §4.5.3.1.10).
	MaxRecipients int
	// Handler validates addresses and delivers messages. Required.
	Handler Handler
	// Timeout bounds each wait for input; 0 means DefaultTimeout and a
	// negative value no limit.
	Timeout time.Duration
	// LMTP speaks LMTP (RFC 2033) instead of SMTP: the greeting says
	// LMTP, LHLO is the only hello (EHLO and HELO get 500 5.5.1), and
	// after the data there is one reply per accepted recipient, in order,
	// from the Handler's DeliverLMTP (the Handler must then implement
	// LMTPHandler; Serve returns an error at once if it does not).
	LMTP bool
	// DSN offers the DSN extension (RFC 3461): MAIL takes RET and ENVID,
	// RCPT takes NOTIFY and ORCPT, and their values land in the Envelope
	// (xtext decoded, checked: malformed values get 501 5.5.4). Without
	// DSN, RET and ENVID on MAIL and NOTIFY and ORCPT on RCPT are accepted
	// and ignored, as before DSN was offered.
	DSN bool
	// Params are extra MAIL FROM keywords the server accepts (e.g.
	// "XHANDOFF-MODE"; matched without regard to case), advertised each
	// as a line of the EHLO/LHLO reply; their values (xtext decoded; ""
	// when given without =value) land in Envelope.Params. Serve returns
	// an error at once when one is not an RFC 5321 esmtp-keyword, is
	// repeated, or is a MAIL parameter the server handles itself (SIZE,
	// BODY, SMTPUTF8, RET, ENVID, AUTH).
	Params []string
}

// Serve speaks SMTP (or LMTP) on r and w until QUIT or the end of input.
// It returns nil after QUIT and when the input ends between transactions,
// an error wrapping io.ErrUnexpectedEOF when it ends inside one (the
// transaction is abandoned and nothing is delivered), and errors
// wrapping ErrTooManyErrors, os.ErrDeadlineExceeded (after a 421 4.4.2),
// or a failure of r or w. A Server it cannot run (no Handler, LMTP with
// a Handler that is not an LMTPHandler, bad Params) is an error before
// anything is read or written.
func (s *Server) Serve(r io.Reader, w io.Writer) error {
	if s.Handler == nil {
		return errors.New("smtpin: Server.Handler is nil")
	}
	ss := &session{
		h:       s.Handler,
		host:    clean(s.Hostname),
		maxSize: max(s.MaxMessageSize, 0),
		maxRcpt: s.MaxRecipients,
		timeout: s.Timeout,
		dsn:     s.DSN,
	}
	if s.LMTP {
		lh, ok := s.Handler.(LMTPHandler)
		if !ok {
			return fmt.Errorf("smtpin: Server.LMTP is set but the Handler (%T) does not implement LMTPHandler", s.Handler)
		}
		ss.lmtp = lh
	}
	for _, k := range s.Params {
		key := strings.ToUpper(k)
		switch {
		case !validKeyword(k):
			return fmt.Errorf("smtpin: Server.Params: %q is not an ESMTP keyword", k)
		case ss.params[key]:
			return fmt.Errorf("smtpin: Server.Params: %q given twice", k)
		case builtinMailParams[key]:
			return fmt.Errorf("smtpin: Server.Params: %q is a parameter the server handles itself", k)
		}
		if ss.params == nil {
			ss.params = map[string]bool{}
		}
		ss.params[key] = true
		ss.paramList = append(ss.paramList, key)
	}
	if ss.host == "" {
		ss.host = "localhost"
	}
	if ss.maxRcpt <= 0 {
		ss.maxRcpt = DefaultMaxRecipients
	}
	if ss.timeout == 0 {
		ss.timeout = DefaultTimeout
	}
	dw := newDeadlineWriter(w, ss.timeout)
	defer clearWriteDeadline(dw)
	ss.bw = bufio.NewWriterSize(dw, 4096)
	ss.in = newInputReader(r, ss.flush, ss.timeout)
	defer ss.in.close()
	ss.br = bufio.NewReaderSize(ss.in, readBufSize)
	return ss.run()
}

// builtinMailParams are the MAIL parameters the server knows itself,
// which Server.Params cannot name.
var builtinMailParams = map[string]bool{"SIZE": true, "BODY": true, "SMTPUTF8": true, "RET": true, "ENVID": true, "AUTH": true}

// session is one SMTP or LMTP session.
type session struct {
	h       Handler
	lmtp    LMTPHandler // set for LMTP
	host    string
	maxSize int64
	maxRcpt int
	timeout time.Duration
	dsn     bool
	// params are Server.Params in upper case, as a set and in order.
	params    map[string]bool
	paramList []string

	br   *bufio.Reader
	bw   *bufio.Writer
	in   *inputReader
	werr error // the first write error
	line []byte

	nerr int // protocol errors so far

	// The transaction, when inTx.
	inTx      bool
	env       Envelope
	rcptTried bool // a RCPT was given, accepted or not
}

// errQuit ends run without an error.
var errQuit = errors.New("quit")

func (ss *session) run() error {
	if ss.lmtp != nil {
		ss.reply(220, ss.host+" LMTP handoff")
	} else {
		ss.reply(220, ss.host+" ESMTP handoff")
	}
	for {
		line, lineCRLF, tooLong, err := ss.readCommand()
		if err != nil {
			return ss.inputFailed(err, "")
		}
		if tooLong {
			err = ss.protocolError(500, "5.5.2 Error: line too long")
		} else {
			err = ss.command(line, lineCRLF)
		}
		if err == errQuit {
			return ss.finish()
		}
		if err != nil {
			return err
		}
	}
}

// readCommand reads one command line and returns it without its line
// ending; lineCRLF says whether that was CRLF or a bare LF. A line over
// MaxLine is read to its end and reported with tooLong. An incomplete
// last line is dropped: the client vanished in the middle of it.
func (ss *session) readCommand() (line string, lineCRLF, tooLong bool, err error) {
	ss.line = ss.line[:0]
	for {
		chunk, err := ss.br.ReadSlice('\n')
		if !tooLong {
			if len(ss.line)+len(chunk) > MaxLine {
				tooLong, ss.line = true, ss.line[:0]
			} else {
				ss.line = append(ss.line, chunk...)
			}
		}
		if err == nil {
			break
		}
		if err != bufio.ErrBufferFull {
			return "", false, false, err
		}
	}
	if tooLong {
		return "", false, true, nil
	}
	b := ss.line[:len(ss.line)-1]
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b, lineCRLF = b[:n-1], true
	}
	return string(b), lineCRLF, false, nil
}

// inputFailed turns a failure to read input into Serve's result. where
// names the stage for the message ("" between commands).
func (ss *session) inputFailed(err error, where string) error {
	if ss.werr != nil {
		return fmt.Errorf("smtpin: writing a reply: %w", ss.werr)
	}
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		if where == "" && !ss.inTx {
			return ss.finish()
		}
		if where == "" {
			where = "a mail transaction"
		}
		ss.flush()
		return fmt.Errorf("smtpin: input ended inside %s; nothing delivered: %w", where, io.ErrUnexpectedEOF)
	case errors.Is(err, os.ErrDeadlineExceeded):
		ss.reply(421, "4.4.2 "+ss.host+" Error: timeout exceeded")
		ss.flush()
		return fmt.Errorf("smtpin: no input for %v: %w", ss.timeout, err)
	}
	return fmt.Errorf("smtpin: reading input: %w", err)
}

// flush sends the replies written so far and records the first write
// error, which it returns from then on.
func (ss *session) flush() error {
	if ss.werr != nil {
		return ss.werr
	}
	if err := ss.bw.Flush(); err != nil {
		ss.werr = err
	}
	return ss.werr
}

// finish sends what is left to send at the end of a session.
func (ss *session) finish() error {
	if err := ss.flush(); err != nil {
		return fmt.Errorf("smtpin: writing a reply: %w", err)
	}
	return nil
}

// reply writes a reply made by the server itself; text may hold "\n".
func (ss *session) reply(code int, text string) {
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		sep := byte(' ')
		if i < len(lines)-1 {
			sep = '-'
		}
		ss.bw.WriteString(strconv.Itoa(code))
		ss.bw.WriteByte(sep)
		ss.bw.WriteString(l)
		ss.bw.WriteString("\r\n")
	}
}

// protocolError replies and counts the error. Past MaxErrors it says
// 421 and returns an error wrapping ErrTooManyErrors.
func (ss *session) protocolError(code int, text string) error {
	ss.reply(code, text)
	ss.nerr++
	if ss.nerr < MaxErrors {
		return nil
	}
	ss.reply(421, "4.7.0 "+ss.host+" Error: too many errors")
	if err := ss.finish(); err != nil {
		return err
	}
	return fmt.Errorf("%w (%d)", ErrTooManyErrors, ss.nerr)
}

func (ss *session) resetTx() {
	ss.inTx, ss.env, ss.rcptTried = false, Envelope{}, false
}

// command runs one command line. It returns errQuit after QUIT, and an
// error when the session must end.
func (ss *session) command(line string, lineCRLF bool) error {
	line = strings.TrimRight(line, " \t")
	verb, arg, _ := strings.Cut(line, " ")
	arg = strings.TrimLeft(arg, " ")
	switch v := strings.ToUpper(verb); v {
	case "EHLO", "HELO":
		if ss.lmtp != nil {
			return ss.protocolError(500, "5.5.1 Error: this is LMTP; use LHLO")
		}
		return ss.hello(v, arg)
	case "LHLO":
		if ss.lmtp == nil {
			return ss.protocolError(500, "5.5.2 Error: command not recognized")
		}
		return ss.hello(v, arg)
	case "MAIL":
		return ss.mail(arg)
	case "RCPT":
		return ss.rcpt(arg)
	case "DATA":
		return ss.data(arg, lineCRLF)
	case "RSET":
		if arg != "" {
			return ss.protocolError(501, "5.5.4 Syntax: RSET")
		}
		ss.resetTx()
		ss.reply(250, "2.0.0 Ok")
	case "NOOP":
		ss.reply(250, "2.0.0 Ok")
	case "VRFY":
		if arg == "" {
			return ss.protocolError(501, "5.5.4 Syntax: VRFY address")
		}
		ss.reply(252, "2.5.2 Cannot VRFY user, but will accept message and attempt delivery")
	case "HELP":
		if ss.lmtp != nil {
			ss.reply(214, "2.0.0 Commands: LHLO MAIL RCPT DATA RSET NOOP VRFY HELP QUIT")
		} else {
			ss.reply(214, "2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP VRFY HELP QUIT")
		}
	case "QUIT":
		ss.reply(221, "2.0.0 Bye")
		return errQuit
	case "STARTTLS", "AUTH", "BDAT", "ETRN", "EXPN", "TURN", "ATRN", "SEND", "SOML", "SAML":
		return ss.protocolError(502, "5.5.1 Error: command not implemented")
	default:
		if ch, ok := ss.h.(CommandHandler); ok && strings.HasPrefix(v, "X") {
			if r, ok := ch.Command(v, arg); ok {
				ss.handlerReply(r, false)
				return nil
			}
		}
		return ss.protocolError(500, "5.5.2 Error: command not recognized")
	}
	return nil
}

func (ss *session) hello(verb, arg string) error {
	if arg == "" || hasControl(arg) {
		return ss.protocolError(501, "5.5.4 Syntax: "+verb+" hostname")
	}
	ss.resetTx()
	if verb == "HELO" {
		ss.reply(250, ss.host)
		return nil
	}
	size := "SIZE"
	if ss.maxSize > 0 {
		size += " " + strconv.FormatInt(ss.maxSize, 10)
	}
	ext := []string{ss.host, "PIPELINING", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", size}
	if ss.dsn {
		ext = append(ext, "DSN")
	}
	ext = append(ext, ss.paramList...)
	ss.reply(250, strings.Join(ext, "\n"))
	return nil
}

// cutPrefixFold removes prefix from s, ignoring ASCII case.
func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return s, false
	}
	return s[len(prefix):], true
}

// pathArg splits the argument of MAIL or RCPT ("FROM:<path> params")
// into the path and its parameters. When the syntax is wrong it answers
// 501 and returns ok false with the error to return.
func (ss *session) pathArg(arg, prefix, syntax string) (path string, params []param, ok bool, err error) {
	rest, found := cutPrefixFold(arg, prefix)
	if !found {
		return "", nil, false, ss.protocolError(501, syntax)
	}
	path, rest, found = splitPath(strings.TrimLeft(rest, " "))
	if !found || (rest != "" && rest[0] != ' ') {
		return "", nil, false, ss.protocolError(501, syntax)
	}
	params, perr := parseParams(rest)
	if perr != nil {
		return "", nil, false, ss.protocolError(501, "5.5.4 Error: "+perr.Error())
	}
	return path, params, true, nil
}

func (ss *session) mail(arg string) error {
	if ss.inTx {
		return ss.protocolError(503, "5.5.1 Error: nested MAIL command")
	}
	path, params, ok, err := ss.pathArg(arg, "FROM:", "5.5.4 Syntax: MAIL FROM:<address>")
	if !ok {
		return err
	}
	env := Envelope{}
	seen := map[string]bool{}
	for _, p := range params {
		if seen[p.key] {
			return ss.protocolError(501, "5.5.4 Error: "+p.key+" given twice")
		}
		seen[p.key] = true
		switch p.key {
		case "SIZE":
			n, ok := parseSize(p.value)
			if !ok {
				return ss.protocolError(501, "5.5.4 Error: bad SIZE value")
			}
			env.Size = n
		case "BODY":
			switch strings.ToUpper(p.value) {
			case "7BIT":
			case "8BITMIME":
				env.Body8Bit = true
			default:
				return ss.protocolError(555, "5.5.4 Error: unsupported BODY type")
			}
		case "SMTPUTF8":
			if p.eq {
				return ss.protocolError(501, "5.5.4 Error: SMTPUTF8 takes no value")
			}
			env.SMTPUTF8 = true
		case "RET":
			if !ss.dsn {
				break // DSN (RFC 3461) not offered: accepted and ignored
			}
			v := strings.ToUpper(p.value)
			if v != "FULL" && v != "HDRS" {
				return ss.protocolError(501, "5.5.4 Error: bad RET value")
			}
			env.Return = v
		case "ENVID":
			if !ss.dsn {
				break
			}
			// RFC 3461 §4.4: printable US-ASCII once decoded.
			v, ok := decodeXtext(p.value)
			if !p.eq || !ok || !isPrintableASCII(v) {
				return ss.protocolError(501, "5.5.4 Error: bad ENVID value")
			}
			env.EnvelopeID = v
		case "AUTH":
			// AUTH= (RFC 4954 §5): the extension is not offered;
			// accepted and ignored.
		default:
			if !ss.params[p.key] {
				return ss.protocolError(555, "5.5.4 Error: unsupported parameter "+p.key)
			}
			v, ok := decodeXtext(p.value)
			if !ok || hasControl(v) || !utf8.ValidString(v) {
				return ss.protocolError(501, "5.5.4 Error: bad "+p.key+" value")
			}
			if env.Params == nil {
				env.Params = map[string]string{}
			}
			env.Params[p.key] = v
		}
	}
	if path == "" {
		env.NullSender = true
	} else {
		from, err := parseMailbox(path, env.SMTPUTF8)
		if err == errNonASCII {
			return ss.protocolError(553, "5.6.7 Error: non-ASCII sender address needs SMTPUTF8")
		}
		if err != nil {
			return ss.protocolError(501, "5.1.7 Bad sender address syntax: "+err.Error())
		}
		env.From = from
	}
	if ss.maxSize > 0 && env.Size > ss.maxSize {
		ss.reply(552, "5.3.4 Message size exceeds fixed maximum message size")
		return nil
	}
	if r := ss.h.CheckSender(env.From); r != nil {
		ss.handlerReply(*r, true)
		return nil
	}
	ss.inTx, ss.env, ss.rcptTried = true, env, false
	ss.reply(250, "2.1.0 Ok")
	return nil
}

// parseSize reads a SIZE= value: 1 to 20 digits (RFC 1870 §3); values
// past the range of int64 are taken as its maximum.
func parseSize(v string) (int64, bool) {
	if v == "" || len(v) > 20 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if n > (math.MaxInt64-d)/10 {
			n = math.MaxInt64
			continue
		}
		n = n*10 + d
	}
	return n, true
}

func (ss *session) rcpt(arg string) error {
	if !ss.inTx {
		return ss.protocolError(503, "5.5.1 Error: need MAIL command")
	}
	path, params, ok, err := ss.pathArg(arg, "TO:", "5.5.4 Syntax: RCPT TO:<address>")
	if !ok {
		return err
	}
	var rp RcptParams
	seen := map[string]bool{}
	for _, p := range params {
		switch p.key {
		case "NOTIFY", "ORCPT":
			if !ss.dsn {
				break // DSN (RFC 3461) not offered: accepted and ignored
			}
			if seen[p.key] {
				return ss.protocolError(501, "5.5.4 Error: "+p.key+" given twice")
			}
			seen[p.key] = true
			var ok bool
			if p.key == "NOTIFY" {
				rp.Notify, ok = parseNotify(p.value)
			} else {
				rp.ORcpt, ok = parseORcpt(p.value)
			}
			if !ok {
				return ss.protocolError(501, "5.5.4 Error: bad "+p.key+" value")
			}
		default:
			return ss.protocolError(555, "5.5.4 Error: unsupported parameter "+p.key)
		}
	}
	if path == "" {
		return ss.protocolError(501, "5.1.3 Bad recipient address syntax: empty address")
	}
	to, err := parseMailbox(path, ss.env.SMTPUTF8)
	if err == errNonASCII {
		return ss.protocolError(553, "5.6.7 Error: non-ASCII recipient address needs SMTPUTF8")
	}
	if err != nil {
		return ss.protocolError(501, "5.1.3 Bad recipient address syntax: "+err.Error())
	}
	ss.rcptTried = true
	if len(ss.env.To) >= ss.maxRcpt {
		ss.reply(452, "4.5.3 Error: too many recipients")
		return nil
	}
	if r := ss.h.CheckRecipient(to); r != nil {
		ss.handlerReply(*r, true)
		return nil
	}
	ss.env.To = append(ss.env.To, to)
	ss.env.Rcpts = append(ss.env.Rcpts, rp)
	ss.reply(250, "2.1.5 Ok")
	return nil
}

func (ss *session) data(arg string, lineCRLF bool) error {
	switch {
	case arg != "":
		return ss.protocolError(501, "5.5.4 Syntax: DATA")
	case !ss.inTx:
		return ss.protocolError(503, "5.5.1 Error: need MAIL command")
	case len(ss.env.To) == 0 && ss.rcptTried && ss.lmtp != nil:
		// RFC 2033 §4.2: 503 in LMTP.
		return ss.protocolError(503, "5.5.1 Error: no valid recipients")
	case len(ss.env.To) == 0 && ss.rcptTried:
		return ss.protocolError(554, "5.5.1 Error: no valid recipients")
	case len(ss.env.To) == 0:
		return ss.protocolError(503, "5.5.1 Error: need RCPT command")
	}
	ss.reply(354, "End data with <CR><LF>.<CR><LF>")
	env := ss.env
	ss.resetTx()
	d := newDataReader(ss.br, !lineCRLF, ss.maxSize)
	if ss.lmtp != nil {
		return ss.dataLMTP(env, d)
	}
	r := ss.h.Deliver(env, d)
	d.drain()
	if d.end != io.EOF {
		return ss.inputFailed(d.end, "DATA")
	}
	if d.tooBig {
		ss.reply(552, "5.3.4 Message size exceeds fixed maximum message size")
		return nil
	}
	ss.handlerReply(r, false)
	return nil
}

// dataLMTP hands the message to DeliverLMTP and answers once per
// recipient of env.To, in order (RFC 2033 §4.2).
func (ss *session) dataLMTP(env Envelope, d *dataReader) error {
	n := len(env.To)
	rs := ss.lmtp.DeliverLMTP(env, d)
	d.drain()
	if d.end != io.EOF {
		return ss.inputFailed(d.end, "DATA")
	}
	for i := 0; i < n; i++ {
		switch {
		case d.tooBig:
			ss.reply(552, "5.3.4 Message size exceeds fixed maximum message size")
		case i < len(rs):
			ss.handlerReply(rs[i], false)
		default:
			ss.reply(451, "4.3.0 Error: internal error (no reply from the handler)")
		}
	}
	return nil
}

// handlerReply writes a reply from the Handler, made safe as Reply
// describes. A refusal (from CheckSender or CheckRecipient) must have a
// 4xx or 5xx code, the reply of Deliver a 2xx, 4xx or 5xx one; one that
// breaks this becomes 451 4.3.0.
func (ss *session) handlerReply(r Reply, refusal bool) {
	code, text := r.Code, r.Text
	if code < 200 || code > 599 || code/100 == 3 || (refusal && code < 400) {
		code, text = 451, "4.3.0 Error: internal error (bad reply from the handler)"
	}
	class := code / 100
	lines := strings.Split(text, "\n")
	enh := ""
	for i, l := range lines {
		l = clean(l)
		e, rest, ok := cutEnhanced(l)
		switch {
		case ok && e[0] == byte('0'+class):
			if i == 0 {
				enh = e
			}
		case i == 0:
			if ok {
				l = rest // of the wrong class: dropped
			}
			enh = strconv.Itoa(class) + ".0.0"
			l = enh + " " + l
		default:
			l = enh + " " + l
		}
		lines[i] = truncate(strings.TrimRight(l, " "), maxReplyText)
	}
	ss.reply(code, strings.Join(lines, "\n"))
}

// cutEnhanced splits an RFC 3463 code ("2.1.5", class 2 to 5, subject
// and detail of 1 to 3 digits) off the front of s, followed by a space
// or the end.
func cutEnhanced(s string) (code, rest string, ok bool) {
	if len(s) < 5 || s[0] < '2' || s[0] > '5' || s[1] != '.' {
		return "", s, false
	}
	i := 2
	for part := 0; part < 2; part++ {
		j := i
		for j < len(s) && j-i < 3 && '0' <= s[j] && s[j] <= '9' {
			j++
		}
		if j == i {
			return "", s, false
		}
		i = j
		if part == 0 {
			if i >= len(s) || s[i] != '.' {
				return "", s, false
			}
			i++
		}
	}
	if i < len(s) && s[i] != ' ' {
		return "", s, false
	}
	return s[:i], strings.TrimLeft(s[i:], " "), true
}

// clean replaces control characters (CR, LF, NUL, tab...) with "?", so a
// value cannot break a reply line.
func clean(s string) string {
	if !hasControl(s) {
		return s
	}
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c == 0x7f {
			b[i] = '?'
		}
	}
	return string(b)
}

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return true
		}
	}
	return false
}

// truncate cuts s to at most n octets without splitting a UTF-8
// sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
