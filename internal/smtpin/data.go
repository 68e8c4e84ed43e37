package smtpin

import (
	"bufio"
	"errors"
	"io"
)

// ErrMessageTooBig is returned by the data reader once the message has
// grown past Server.MaxMessageSize. The server reads the rest of the data
// and answers 552 5.3.4 itself.
var ErrMessageTooBig = errors.New("smtpin: message exceeds the maximum size")

// errDataClosed is returned by a data reader used after Deliver returned.
var errDataClosed = errors.New("smtpin: message data read after Deliver returned")

var (
	crlf = []byte("\r\n")
	cr   = []byte("\r")
)

// dataReader yields the message data of one DATA command (RFC 5321
// §4.1.1.4) from the session's buffered reader: dot-stuffing removed
// (§4.5.2), every line ending CRLF, up to but not including the
// end-of-data line. The rules are in the package documentation under
// "Message data".
//
// It reads one line, or one buffer's worth of a long line, at a time
// with ReadSlice and hands out the slice it got before reading again, so
// it copies the data once and holds no more than the bufio.Reader's
// buffer. A line is handed out as head (a CR held back from the previous
// piece of the same line, when it turned out not to start a CRLF), body
// (the octets) and tail (the CRLF).
type dataReader struct {
	br *bufio.Reader
	// lfEnd: the DATA command ended in a bare LF, so a "." line with
	// either ending ends the data.
	lfEnd bool
	// bol: the next octet read starts a line.
	bol bool
	// prevCRLF: the previous line ended in CRLF (true at the start).
	prevCRLF bool
	// heldCR: the last piece read ended in CR and the line goes on; the
	// CR is not handed out until the next piece shows whether an LF
	// follows.
	heldCR bool

	head, body, tail []byte

	n      int64 // octets yielded (or drained), line endings included
	max    int64 // limit on n; <= 0: none
	tooBig bool
	// end is io.EOF once the end-of-data line was read, or the error that
	// stopped the input (io.ErrUnexpectedEOF for the end of input).
	end    error
	closed bool
}

func newDataReader(br *bufio.Reader, lfEnd bool, max int64) *dataReader {
	return &dataReader{br: br, lfEnd: lfEnd, bol: true, prevCRLF: true, max: max}
}

// advance reads the next line or piece of a line into head, body and
// tail, which must be empty, or sets end.
func (d *dataReader) advance() {
	chunk, err := d.br.ReadSlice('\n')
	switch err {
	case nil:
		line := chunk[:len(chunk)-1]
		lineCRLF := false
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line, lineCRLF = line[:n-1], true
		} else if n == 0 && d.heldCR {
			// The CR ending the previous piece and this LF are one CRLF.
			lineCRLF, d.heldCR = true, false
		}
		if d.heldCR {
			d.head, d.heldCR = cr, false
		}
		if d.bol && len(line) > 0 && line[0] == '.' {
			if len(line) == 1 && (d.lfEnd || (lineCRLF && d.prevCRLF)) {
				d.end = io.EOF
				return
			}
			line = line[1:]
		}
		d.body, d.tail = line, crlf
		d.bol, d.prevCRLF = true, lineCRLF
	case bufio.ErrBufferFull:
		// A piece of a line longer than the buffer: never the end of the
		// data, since that line is one octet long.
		if d.heldCR {
			d.head, d.heldCR = cr, false
		}
		if d.bol && chunk[0] == '.' {
			chunk = chunk[1:]
		}
		if n := len(chunk); n > 0 && chunk[n-1] == '\r' {
			chunk, d.heldCR = chunk[:n-1], true
		}
		d.body, d.bol = chunk, false
	case io.EOF:
		d.end = io.ErrUnexpectedEOF
	default:
		d.end = err
	}
}

// Read yields message data. It returns io.EOF only after the end-of-data
// line; see the Handler documentation for the other errors.
func (d *dataReader) Read(p []byte) (int, error) {
	if d.closed {
		return 0, errDataClosed
	}
	if d.tooBig {
		return 0, ErrMessageTooBig
	}
	n := 0
fill:
	for n < len(p) {
		switch {
		case len(d.head) > 0:
			k := copy(p[n:], d.head)
			d.head = d.head[k:]
			n += k
		case len(d.body) > 0:
			k := copy(p[n:], d.body)
			d.body = d.body[k:]
			n += k
		case len(d.tail) > 0:
			k := copy(p[n:], d.tail)
			d.tail = d.tail[k:]
			n += k
		case d.end != nil:
			break fill
		case n > 0 && d.br.Buffered() == 0:
			// Return what we have rather than wait for the client.
			break fill
		default:
			d.advance()
		}
	}
	d.n += int64(n)
	if d.max > 0 && d.n > d.max {
		d.tooBig = true
		return n, ErrMessageTooBig
	}
	if n == 0 && d.end != nil {
		return 0, d.end
	}
	return n, nil
}

// drain reads and discards the rest of the data, still counting its
// size, and closes the reader. Afterwards end says how the data ended.
func (d *dataReader) drain() {
	for {
		d.n += int64(len(d.head) + len(d.body) + len(d.tail))
		d.head, d.body, d.tail = nil, nil, nil
		if d.end != nil {
			break
		}
		d.advance()
	}
	if d.max > 0 && d.n > d.max {
		d.tooBig = true
	}
	d.closed = true
}
