package message

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// Defaults for the zero values of Options.
const (
	// DefaultMaxHeaderBytes bounds the header block: 1 MiB, far above any
	// real message (Postfix's header_size_limit is 100 KiB).
	DefaultMaxHeaderBytes = 1 << 20
	// DefaultSpillThreshold is how much body stays in memory before it
	// goes to a temporary file: 64 KiB, more than a cron or PHP message.
	DefaultSpillThreshold = 64 << 10
)

// Options says how to prepare one message. The zero value reads to a lone
// "." line, extracts no recipients, and adds headers for the null sender
// on os.Hostname().
type Options struct {
	// IgnoreDots (-i, -oi): a line that is exactly "." is data. Without
	// it such a line ends the message and the rest of the input is read
	// and discarded (Message.Drained says how much).
	IgnoreDots bool
	// ExtractRecipients (-t): Message.Recipients gets the addresses of
	// To, Cc and Bcc, or of Resent-To, Resent-Cc and Resent-Bcc when any
	// of these exists. The caller adds its command-line recipients.
	ExtractRecipients bool
	// Sender is the envelope sender the caller decided, used as it is for
	// a missing From: field. "" is the null sender <>; From: is then
	// "MAILER-DAEMON@" + Hostname, as Postfix writes for bounces.
	Sender string
	// FullName (-F, then $NAME, then the passwd gecos, chosen by the
	// caller) is the display name of a generated From: field. Non-ASCII
	// is RFC 2047-encoded; control characters become spaces.
	FullName string
	// Hostname is the right-hand side of generated Message-IDs
	// (<unique@Hostname>) and of the null sender's From:. Default
	// os.Hostname(), else "localhost".
	Hostname string
	// Qualify maps a local address — no "@", or the domain "localhost" or
	// Hostname (compared without case) — to its final form (aliases, then
	// the mail domain). It is called only for such addresses, in From,
	// To, Cc, Bcc (before removal), Reply-To, Sender and their Resent-
	// forms, and for the recipients of ExtractRecipients. It must return
	// a non-empty address without control characters. nil leaves
	// addresses as they are.
	Qualify func(addr string) string
	// RewriteFrom, when set, replaces every address in the From: field
	// (display names kept) and is the address of a generated From:. It
	// is the forced sender of config's sender with rewrite_from.
	RewriteFrom string
	// Now gives the time of generated Date: and Resent-Date: fields and
	// of Message-IDs. Default time.Now.
	Now func() time.Time
	// Rand is the random source of Message-IDs. Default crypto/rand.
	Rand io.Reader
	// MaxHeaderBytes bounds the header block as read, line endings
	// included; a longer one is an *Error. Default DefaultMaxHeaderBytes.
	MaxHeaderBytes int
	// SpillThreshold is how many body octets are kept in memory before
	// the body goes to a temporary file. Default DefaultSpillThreshold.
	SpillThreshold int
	// TempDir is where the spill file is created. Default os.TempDir().
	TempDir string
}

// Message is a prepared message: a header block in memory and a body in
// memory or in a temporary file. Close it when done.
type Message struct {
	// Header is the prepared header block with CRLF line endings, ending
	// with the empty line (CRLF CRLF).
	Header []byte
	// Recipients are the addr-specs found with Options.ExtractRecipients,
	// qualified, de-duplicated (the domain compared without case), in the
	// order of the header fields. Empty without ExtractRecipients.
	Recipients []string
	// Has8Bit: an octet over 127 in the prepared header block or the
	// body (a removed Bcc does not count); the relay sends BODY=8BITMIME.
	Has8Bit bool
	// NeedsSMTPUTF8: an address is non-ASCII, in From, To, Cc, Bcc,
	// Sender, Reply-To (or their Resent- forms) or among the recipients;
	// the relay needs SMTPUTF8 (RFC 6531). UTF-8 elsewhere in the header
	// (a Subject, a display name) only sets Has8Bit: it travels as 8-bit
	// content, which every relay takes, while asking for SMTPUTF8 makes it
	// bounce at the first hop without it (as Postfix does to Dovecot 2.3).
	NeedsSMTPUTF8 bool
	// HasNUL: a NUL octet in the header block or the body. It is carried
	// as it is; the caller may refuse it or send BINARYMIME.
	HasNUL bool
	// Size is the length of the prepared message, Header and body, as
	// Reader returns it: CRLF line endings, before dot-stuffing.
	Size int64
	// Drained is how many octets followed a lone "." line and were read
	// and discarded.
	Drained int64

	body   spool
	closed bool
}

// ErrClosed is returned by Reader after Close.
var ErrClosed = errors.New("message: already closed")

// Prepare reads a message from r and prepares it for sending as the
// package documentation describes. It reads r to its end (also after a
// lone "." line) and never holds more of the body in memory than
// opts.SpillThreshold.
//
// Errors: an *Error for malformed input (exit 65); a wrapped error from r
// or from the spill file otherwise (exit 74); a plain error for invalid
// Options. On error nothing needs closing.
func Prepare(r io.Reader, opts Options) (*Message, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	m := &Message{body: spool{threshold: opts.SpillThreshold, dir: opts.TempDir}}
	p := &parser{opts: &opts, lr: newLineReader(r), body: &m.body}
	err := p.read()
	p.lr.release()
	if err == nil {
		err = m.body.finish()
	}
	if err == nil {
		err = p.prepareHeader(m)
	}
	if err != nil {
		_ = m.body.close()
		return nil, err
	}
	m.Drained = p.drained
	m.Has8Bit = m.Has8Bit || m.body.has8Bit
	m.HasNUL = m.HasNUL || m.body.hasNUL
	m.Size = int64(len(m.Header)) + m.body.n
	return m, nil
}

// setDefaults fills in the zero values and checks the rest.
func (o *Options) setDefaults() error {
	if o.Hostname == "" {
		if h, err := os.Hostname(); err == nil && validHostname(h) {
			o.Hostname = h
		} else {
			o.Hostname = "localhost"
		}
	}
	if !validHostname(o.Hostname) {
		return fmt.Errorf("message: Options.Hostname %q is not a host name", o.Hostname)
	}
	if hasControl(o.RewriteFrom) {
		return fmt.Errorf("message: Options.RewriteFrom %q has a control character", o.RewriteFrom)
	}
	if hasControl(o.Sender) {
		return fmt.Errorf("message: Options.Sender %q has a control character", o.Sender)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if o.SpillThreshold <= 0 {
		o.SpillThreshold = DefaultSpillThreshold
	}
	if o.TempDir == "" {
		o.TempDir = os.TempDir()
	}
	return nil
}

// Reader returns the whole prepared message, header block then body, with
// CRLF line endings, Size octets long. Each call returns a new reader at
// offset 0, so the relay can send the message again after a failover; the
// readers share nothing but the Message and may be used at the same time.
// After Close it returns ErrClosed.
func (m *Message) Reader() (io.ReadSeeker, error) {
	if m.closed {
		return nil, ErrClosed
	}
	c := &concatReaderAt{head: m.Header, body: m.body.readerAt(), bodyLen: m.body.n}
	return io.NewSectionReader(c, 0, m.Size), nil
}

// Close releases the body and removes the spill file, if any. Readers
// returned before must not be used afterwards (those of a spilled body
// fail). Calling it again does nothing.
func (m *Message) Close() error {
	if m.closed {
		return nil
	}
	m.closed = true
	err := m.body.close()
	m.body.mem = nil
	return err
}

// parser reads the input: the header block into fields, the body into
// the spool.
type parser struct {
	opts *Options
	lr   *lineReader
	body *spool

	fields      []*field
	headerBytes int // header octets read so far, line endings included
	drained     int64
}

// eolLen is the length of a line ending as read.
func eolLen(e eol) int {
	switch e {
	case eolCRLF:
		return 2
	case eolLF, eolCR:
		return 1
	}
	return 0
}

// read reads the header block and then the body.
func (p *parser) read() error {
	var (
		cur         []byte // the line being read
		first       = true // no line taken yet: a mbox "From " line may come
		pendingFold bool   // the last field line ended in a bare CR
		skipping    bool   // dropping the rest of a long mbox "From " line
	)
	for {
		data, e, err := p.lr.next()
		if err != nil {
			return fmt.Errorf("message: reading input: %w", err)
		}
		if skipping {
			if e == eolNone {
				continue
			}
			skipping, first = false, false
			if e == eolEOF {
				return nil
			}
			continue
		}
		cur = append(cur, data...)

		if e == eolNone {
			// Part of a line: decide as early as possible whether it is
			// body, so a long body line is streamed, not accumulated.
			if first {
				switch mboxFromLine(cur) {
				case yes:
					skipping, cur = true, cur[:0]
					continue
				case maybe:
					continue
				}
			}
			continuation := pendingFold || (len(p.fields) > 0 && isWSP(cur[0]))
			if !continuation && classifyFieldLine(cur, false) == no {
				return p.readBody(cur, eolNone)
			}
			if err := p.checkHeaderSize(len(cur)); err != nil {
				return err
			}
			continue
		}

		// A whole line.
		line := cur
		cur = cur[:0]
		if !p.opts.IgnoreDots && len(line) == 1 && line[0] == '.' {
			p.drained = p.lr.drain()
			return nil
		}
		if first && mboxFromLine(line) == yes {
			first = false
			if e == eolEOF {
				return nil
			}
			continue
		}
		first = false
		switch {
		case pendingFold && len(line) == 0:
			// CRs right before the line end: drop them.
		case pendingFold:
			// The text after a bare CR continues the field.
			if err := p.addLine(line, e, true); err != nil {
				return err
			}
		case len(line) == 0:
			if e == eolEOF {
				return nil
			}
			return p.readBody(nil, e) // the empty line ends the header block
		case isWSP(line[0]) && len(p.fields) > 0:
			if err := p.addLine(line, e, false); err != nil {
				return err
			}
		case classifyFieldLine(line, true) == yes:
			if err := p.addField(line, e); err != nil {
				return err
			}
		default:
			// Not a header field: the body starts here.
			return p.readBody(line, e)
		}
		pendingFold = e == eolCR
		if e == eolEOF {
			return nil
		}
	}
}

// checkHeaderSize fails when the header block with n more octets would be
// over the limit.
func (p *parser) checkHeaderSize(n int) error {
	if p.headerBytes+n > p.opts.MaxHeaderBytes {
		return &Error{Msg: fmt.Sprintf("header block is longer than %d octets", p.opts.MaxHeaderBytes)}
	}
	return nil
}

// addField starts a new header field with line.
func (p *parser) addField(line []byte, e eol) error {
	if err := p.checkHeaderSize(len(line) + eolLen(e)); err != nil {
		return err
	}
	p.headerBytes += len(line) + eolLen(e)
	p.fields = append(p.fields, newField(line))
	return nil
}

// addLine adds a continuation line to the last field, with a space in
// front when it has none and fold is set (text after a bare CR).
func (p *parser) addLine(line []byte, e eol, fold bool) error {
	if err := p.checkHeaderSize(len(line) + eolLen(e)); err != nil {
		return err
	}
	p.headerBytes += len(line) + eolLen(e)
	f := p.fields[len(p.fields)-1]
	if fold && !isWSP(line[0]) {
		f.raw = append(f.raw, ' ')
	}
	f.raw = append(f.raw, line...)
	f.raw = append(f.raw, '\r', '\n')
	return nil
}

// readBody reads the body to the end of the input or to a lone ".".
// start is the beginning of its first line, already read, and e how it
// ended (eolNone: the line goes on; eolCRLF with no start: the header
// block just ended).
func (p *parser) readBody(start []byte, e eol) error {
	crlf := []byte("\r\n")
	lineLen := len(start) // octets of the current line so far
	heldDot := false      // the current line so far is ".", not yet written
	if err := p.body.write(start); err != nil {
		return err
	}
	if len(start) > 0 && e != eolNone {
		if err := p.body.write(crlf); err != nil {
			return err
		}
		if e == eolEOF {
			return nil
		}
		lineLen = 0
	}
	for {
		data, e, err := p.lr.next()
		if err != nil {
			return fmt.Errorf("message: reading input: %w", err)
		}
		if !p.opts.IgnoreDots {
			if heldDot {
				heldDot = false
				if len(data) == 0 && e != eolNone {
					p.drained = p.lr.drain()
					return nil
				}
				if err := p.body.write([]byte{'.'}); err != nil {
					return err
				}
			} else if lineLen == 0 && len(data) == 1 && data[0] == '.' {
				if e != eolNone {
					p.drained = p.lr.drain()
					return nil
				}
				heldDot, lineLen = true, 1
				continue
			}
		}
		if err := p.body.write(data); err != nil {
			return err
		}
		lineLen += len(data)
		switch e {
		case eolNone:
			continue
		case eolEOF:
			if lineLen > 0 {
				return p.body.write(crlf)
			}
			return nil
		}
		if err := p.body.write(crlf); err != nil {
			return err
		}
		lineLen = 0
	}
}

// tri is a yes/no answer that may need more input.
type tri int

const (
	no tri = iota
	yes
	maybe
)

// mboxFromLine says whether line starts with "From " or ">From ".
func mboxFromLine(line []byte) tri {
	for _, prefix := range []string{"From ", ">From "} {
		if len(line) >= len(prefix) {
			if string(line[:len(prefix)]) == prefix {
				return yes
			}
		} else if string(line) == prefix[:len(line)] {
			return maybe
		}
	}
	return no
}

// maxLine is the longest line RFC 5322 §2.1.1 allows, without CRLF.
const maxLine = 998

// classifyFieldLine says whether line starts a header field: a field name
// of printable US-ASCII other than ":", optional blanks (obsolete syntax,
// RFC 5322 §4.5) and a colon. With whole false, line may be the start of
// a longer line and the answer may be maybe; a name longer than a line
// may be is no.
func classifyFieldLine(line []byte, whole bool) tri {
	i := 0
	for i < len(line) && line[i] > ' ' && line[i] < 0x7f && line[i] != ':' {
		i++
	}
	name := i
	for i < len(line) && isWSP(line[i]) {
		i++
	}
	switch {
	case i < len(line) && line[i] == ':' && name > 0:
		return yes
	case i < len(line):
		return no
	case whole || i >= maxLine:
		return no
	}
	return maybe
}

func isWSP(c byte) bool { return c == ' ' || c == '\t' }

// hasControl reports whether s has an ASCII control character.
func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] == 0x7f {
			return true
		}
	}
	return false
}

// validHostname accepts what may follow "@" in a Message-ID: a non-empty
// run of printable ASCII without white space or the specials that would
// end the msg-id.
func validHostname(h string) bool {
	if h == "" {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if c <= ' ' || c >= 0x7f || c == '<' || c == '>' || c == '@' || c == '(' || c == ')' || c == '"' || c == ',' || c == ';' || c == '\\' {
			return false
		}
	}
	return true
}
