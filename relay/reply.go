package relay

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Limits on what the client accepts from a server. A reply that breaks one
// of them is a protocol error and the connection is closed: the client
// cannot know where the next reply starts.
const (
	// MaxReplyLine is the longest reply line accepted, CRLF included.
	// CPython's smtplib uses the same 8192 ("more than 8 times larger than
	// RFC 821, 4.5.3"); RFC 5321 §4.5.3.1.5 says 512, which real servers
	// exceed.
	MaxReplyLine = 8192
	// MaxReplyLines is the most lines one multi-line reply may have. An
	// EHLO reply has a few dozen at most.
	MaxReplyLines = 1000
	// MaxReplyBytes caps the total size of one reply.
	MaxReplyBytes = 64 * 1024
)

// EnhancedCode is an RFC 3463 enhanced status code: class, subject,
// detail, as in 5.1.1. The zero value means the reply carried none.
type EnhancedCode [3]int

// String returns the code in dotted form, or "" for the zero value.
func (e EnhancedCode) String() string {
	if e == (EnhancedCode{}) {
		return ""
	}
	return fmt.Sprintf("%d.%d.%d", e[0], e[1], e[2])
}

// Reply is one complete server reply (RFC 5321 §4.2).
type Reply struct {
	// Code is the three-digit reply code.
	Code int
	// Enhanced is the RFC 3463 code of the first line, when the server
	// gave one whose class agrees with Code; otherwise zero.
	Enhanced EnhancedCode
	// Lines holds the text of each line, without the code, the separator
	// and (where it was parsed) the enhanced code.
	Lines []string
}

// Text returns the reply text with lines joined by "\n", as smtplib does.
func (r *Reply) Text() string { return strings.Join(r.Lines, "\n") }

// String returns the reply as one line, "550 5.1.1 text", for logs.
func (r *Reply) String() string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(r.Code))
	if e := r.Enhanced.String(); e != "" {
		b.WriteByte(' ')
		b.WriteString(e)
	}
	if t := strings.Join(r.Lines, " "); t != "" {
		b.WriteByte(' ')
		b.WriteString(t)
	}
	return b.String()
}

// Positive reports a 2xx reply.
func (r *Reply) Positive() bool { return r.Code/100 == 2 }

// errMalformed is wrapped by every reply-syntax error; it marks the
// connection as unusable.
var errMalformed = errors.New("malformed reply")

// readReply reads one reply: "ddd-text" lines followed by a "ddd text" or
// "ddd" line (RFC 5321 §4.2.1). Every line must carry the same code, the
// first digit must be 2 to 5, and the limits above apply. An error
// wrapping errMalformed means the reply broke the syntax; any other error
// comes from the reader. raw, when not nil, is called with each line read
// (without CRLF) for the debug transcript.
func readReply(br *bufio.Reader, raw func(string)) (*Reply, error) {
	r := &Reply{}
	total := 0
	for n := 0; ; n++ {
		line, err := readLine(br)
		if err != nil {
			return nil, err
		}
		if raw != nil {
			raw(string(line))
		}
		total += len(line) + 2
		if n >= MaxReplyLines || total > MaxReplyBytes {
			return nil, fmt.Errorf("%w: reply longer than %d lines or %d bytes", errMalformed, MaxReplyLines, MaxReplyBytes)
		}
		code, more, text, err := parseReplyLine(line)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			r.Code = code
		} else if code != r.Code {
			return nil, fmt.Errorf("%w: line with code %d inside a %d reply", errMalformed, code, r.Code)
		}
		enh, rest := parseEnhanced(code, text)
		if n == 0 {
			r.Enhanced = enh
		}
		if enh != (EnhancedCode{}) {
			text = rest
		}
		r.Lines = append(r.Lines, text)
		if !more {
			return r, nil
		}
	}
}

// readLine returns one line without its line ending, refusing lines over
// MaxReplyLine. A bare LF is accepted as a line ending, as most clients do.
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(line)+len(chunk) > MaxReplyLine {
			return nil, fmt.Errorf("%w: reply line longer than %d bytes", errMalformed, MaxReplyLine)
		}
		line = append(line, chunk...)
		if err == nil {
			break
		}
		if err != bufio.ErrBufferFull {
			return nil, err
		}
	}
	line = bytes.TrimSuffix(line[:len(line)-1], []byte("\r"))
	return line, nil
}

// parseReplyLine splits "250-text", "250 text" or "250" into its parts.
func parseReplyLine(line []byte) (code int, more bool, text string, err error) {
	if len(line) < 3 || !isDigit(line[0]) || !isDigit(line[1]) || !isDigit(line[2]) {
		return 0, false, "", fmt.Errorf("%w: %q", errMalformed, clip(line))
	}
	if line[0] < '2' || line[0] > '5' {
		return 0, false, "", fmt.Errorf("%w: reply code %s outside 2xx-5xx", errMalformed, line[:3])
	}
	code = int(line[0]-'0')*100 + int(line[1]-'0')*10 + int(line[2]-'0')
	if len(line) == 3 {
		return code, false, "", nil
	}
	switch line[3] {
	case '-':
		more = true
	case ' ':
	default:
		return 0, false, "", fmt.Errorf("%w: %q", errMalformed, clip(line))
	}
	return code, more, strings.TrimRight(string(line[4:]), " \t"), nil
}

// parseEnhanced takes an RFC 3463 code off the front of text when its
// class matches the reply code's first digit (RFC 2034 §4; Postfix ignores
// a mismatching one the same way). It returns the zero code and the text
// unchanged otherwise.
func parseEnhanced(code int, text string) (EnhancedCode, string) {
	var e EnhancedCode
	if code/100 == 3 || len(text) < 5 {
		return e, text
	}
	rest := text
	for i := 0; i < 3; i++ {
		j := 0
		for j < len(rest) && j < 3 && isDigit(rest[j]) {
			j++
		}
		if j == 0 || (i == 0 && j != 1) {
			return EnhancedCode{}, text
		}
		e[i], _ = strconv.Atoi(rest[:j])
		rest = rest[j:]
		if i < 2 {
			if rest == "" || rest[0] != '.' {
				return EnhancedCode{}, text
			}
			rest = rest[1:]
		}
	}
	if rest != "" && rest[0] != ' ' && rest[0] != '\t' {
		return EnhancedCode{}, text
	}
	if e[0] != code/100 {
		return EnhancedCode{}, text
	}
	return e, strings.TrimLeft(rest, " \t")
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// clip shortens a line for an error message.
func clip(b []byte) string {
	if len(b) > 64 {
		return string(b[:64]) + "..."
	}
	return string(b)
}

// parseExtensions reads the keyword lines of an EHLO or LHLO reply (all
// but the first) into a map of upper-case keyword to parameter string.
// AUTH lines are merged, including the pre-RFC "AUTH=LOGIN PLAIN" form.
func parseExtensions(lines []string) (ext map[string]string, auth []string) {
	ext = make(map[string]string)
	seen := make(map[string]bool)
	addAuth := func(params string) {
		for _, m := range strings.Fields(params) {
			m = strings.ToUpper(m)
			if !seen[m] {
				seen[m] = true
				auth = append(auth, m)
			}
		}
	}
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if len(l) > 5 && strings.EqualFold(l[:5], "AUTH=") {
			addAuth(l[5:])
			if _, ok := ext["AUTH"]; !ok {
				ext["AUTH"] = ""
			}
			continue
		}
		kw, params, _ := strings.Cut(l, " ")
		if !validKeyword(kw) {
			continue
		}
		kw = strings.ToUpper(kw)
		params = strings.TrimSpace(params)
		if kw == "AUTH" {
			addAuth(params)
			if old := ext["AUTH"]; old != "" && params != "" {
				params = old + " " + params
			} else if old != "" {
				params = old
			}
		}
		ext[kw] = params
	}
	return ext, auth
}

// validKeyword checks an ehlo-keyword: ALPHA / DIGIT followed by ALPHA,
// DIGIT or "-" (RFC 5321 §4.1.1.1).
func validKeyword(kw string) bool {
	if kw == "" {
		return false
	}
	for i := 0; i < len(kw); i++ {
		c := kw[i]
		alnum := isDigit(c) || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
		if !alnum && (i == 0 || c != '-') {
			return false
		}
	}
	return true
}
