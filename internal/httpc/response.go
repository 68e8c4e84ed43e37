package httpc

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// ReadResponse reads an answer to a request with method from br: the
// status line and header fields, after any interim 1xx answers, and the
// body. It reads untrusted input: every length is bounded (maxHead,
// MaxBody), and its errors never quote what was read.
//
// Errors: ErrMalformed (wrapped) for what is not HTTP/1.x;
// ErrBodyTooLarge; io.ErrUnexpectedEOF for an answer cut short; the
// reader's own errors.
func ReadResponse(br *bufio.Reader, method string) (*Response, error) {
	status, h, err := readHead(br)
	if err != nil {
		return nil, err
	}
	resp := &Response{StatusCode: status, Header: h}
	// RFC 9112 §6.3: the answers that have no body whatever they say.
	if method == "HEAD" || status == 204 || status == 304 || method == "CONNECT" && status/100 == 2 {
		return resp, nil
	}
	te, hasTE := h["transfer-encoding"]
	cl, hasCL := h["content-length"]
	switch {
	case hasTE:
		// Transfer-Encoding overrides Content-Length (§6.3, 3). Only
		// chunked is expected: the request sends no TE field.
		if !strings.EqualFold(strings.TrimSpace(te), "chunked") {
			return nil, fmt.Errorf("%w: unsupported Transfer-Encoding", ErrMalformed)
		}
		resp.Body, err = readChunked(br)
	case hasCL:
		var n int64
		if n, err = contentLength(cl); err == nil {
			resp.Body, err = readN(br, n)
		}
	default:
		resp.Body, err = readToEOF(br)
	}
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// readToEOF reads a body delimited by the end of the connection.
func readToEOF(br *bufio.Reader) ([]byte, error) {
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, io.LimitReader(br, MaxBody+1)); err != nil {
		return nil, err
	}
	if buf.Len() > MaxBody {
		return nil, ErrBodyTooLarge
	}
	return buf.Bytes(), nil
}

// readHead reads status lines and header fields until a final (not 1xx)
// answer's, and returns its status and fields.
func readHead(br *bufio.Reader) (int, Header, error) {
	budget := maxHead
	for n := 0; ; n++ {
		line, err := readLine(br, &budget)
		if err == io.EOF {
			return 0, nil, fmt.Errorf("the connection was closed before an answer: %w", io.ErrUnexpectedEOF)
		}
		if err != nil {
			return 0, nil, err
		}
		status, err := statusLine(line)
		if err != nil {
			return 0, nil, err
		}
		h, err := readFields(br, &budget)
		if err != nil {
			return 0, nil, err
		}
		switch {
		case status == 101:
			// Nothing asked to switch protocols.
			return 0, nil, fmt.Errorf("%w: unexpected 101 Switching Protocols", ErrMalformed)
		case status/100 != 1:
			return status, h, nil
		case n >= maxInterim:
			return 0, nil, fmt.Errorf("%w: too many 1xx answers", ErrMalformed)
		}
	}
}

// statusLine parses "HTTP/1.x NNN reason" (RFC 9112 §4); the reason may
// be empty or missing.
func statusLine(line string) (int, error) {
	rest, ok := strings.CutPrefix(line, "HTTP/1.")
	if !ok || len(rest) < 5 || !isDigit(rest[0]) || rest[1] != ' ' ||
		!isDigit(rest[2]) || !isDigit(rest[3]) || !isDigit(rest[4]) || rest[2] == '0' ||
		len(rest) > 5 && rest[5] != ' ' {
		return 0, fmt.Errorf("%w: bad status line", ErrMalformed)
	}
	return int(rest[2]-'0')*100 + int(rest[3]-'0')*10 + int(rest[4]-'0'), nil
}

// readFields reads header fields up to the empty line (RFC 9112 §5).
// A line folded onto the next (obsolete, §5.2) is joined with a space.
func readFields(br *bufio.Reader, budget *int) (Header, error) {
	h := Header{}
	last := ""
	for {
		line, err := readLine(br, budget)
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			return nil, err
		}
		if line == "" {
			return h, nil
		}
		if line[0] == ' ' || line[0] == '\t' {
			if last == "" {
				return nil, fmt.Errorf("%w: continuation line without a field", ErrMalformed)
			}
			h[last] = join(h[last], " ", strings.Trim(line, " \t"))
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || !isToken(name) {
			return nil, fmt.Errorf("%w: bad header field", ErrMalformed)
		}
		name = strings.ToLower(name)
		h[name] = join(h[name], ", ", strings.Trim(value, " \t"))
		last = name
	}
}

// readLine returns the next line without its CRLF or LF, taking its
// length from *budget; io.EOF only when nothing is left at all.
func readLine(br *bufio.Reader, budget *int) (string, error) {
	var line []byte
	for {
		frag, err := br.ReadSlice('\n')
		if len(line)+len(frag) > *budget {
			return "", fmt.Errorf("%w: header larger than %d KiB", ErrMalformed, maxHead>>10)
		}
		line = append(line, frag...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF && len(line) > 0 {
			return "", io.ErrUnexpectedEOF
		}
		if err != nil {
			return "", err
		}
		break
	}
	*budget -= len(line)
	line = bytes.TrimSuffix(line[:len(line)-1], []byte("\r"))
	return string(line), nil
}

// contentLength parses a Content-Length value: digits, or a list of the
// same digits (RFC 9110 §8.6 allows a recipient to take the repeated
// value).
func contentLength(v string) (int64, error) {
	n := int64(-1)
	for s := range strings.SplitSeq(v, ",") {
		s = strings.Trim(s, " \t")
		if s == "" || len(s) > 18 || strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
			return 0, fmt.Errorf("%w: bad Content-Length", ErrMalformed)
		}
		m, _ := strconv.ParseInt(s, 10, 64)
		if n >= 0 && m != n {
			return 0, fmt.Errorf("%w: conflicting Content-Length", ErrMalformed)
		}
		n = m
	}
	return n, nil
}

// readN reads a body of n bytes (at most MaxBody), growing the buffer as
// they come rather than trusting n for an allocation.
func readN(br *bufio.Reader, n int64) ([]byte, error) {
	if n > MaxBody {
		return nil, ErrBodyTooLarge
	}
	var buf bytes.Buffer
	if _, err := io.CopyN(&buf, br, n); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf.Bytes(), nil
}

// maxChunkLine caps a chunk-size line, extensions included, and each
// trailer line (within maxHead in all).
const maxChunkLine = 4 << 10

// readChunked reads a chunked body (RFC 9112 §7.1): chunk-size lines
// in hexadecimal with optional extensions (ignored), the data, the last
// chunk of size 0, and trailer fields (ignored). The end of the
// connection right after the last chunk is taken as the end of the
// trailers: the body is complete.
func readChunked(br *bufio.Reader) ([]byte, error) {
	var body bytes.Buffer
	for {
		budget := maxChunkLine
		line, err := readLine(br, &budget)
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			return nil, err
		}
		hex, _, _ := strings.Cut(line, ";")
		hex = strings.Trim(hex, " \t")
		if hex == "" || len(hex) > 8 {
			return nil, fmt.Errorf("%w: bad chunk size", ErrMalformed)
		}
		size, err := strconv.ParseUint(hex, 16, 32)
		if err != nil {
			return nil, fmt.Errorf("%w: bad chunk size", ErrMalformed)
		}
		if size == 0 {
			break
		}
		if uint64(body.Len())+size > MaxBody {
			return nil, ErrBodyTooLarge
		}
		if _, err := io.CopyN(&body, br, int64(size)); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		budget = 2
		switch crlf, err := readLine(br, &budget); {
		case err == io.EOF:
			return nil, io.ErrUnexpectedEOF
		case err != nil:
			return nil, fmt.Errorf("%w: no line end after a chunk", ErrMalformed)
		case crlf != "":
			return nil, fmt.Errorf("%w: no line end after a chunk", ErrMalformed)
		}
	}
	budget := maxHead
	for {
		line, err := readLine(br, &budget)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if line == "" {
			break
		}
	}
	return body.Bytes(), nil
}

// join joins two parts of a field value with sep, leaving out an empty
// one.
func join(a, sep, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + sep + b
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// isToken reports whether s is a token (RFC 9110 §5.6.2), as field
// names must be.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"(),/:;<=>?@[\\]{}", c) >= 0 {
			return false
		}
	}
	return true
}
