package message

import (
	"bufio"
	"bytes"
	"io"
	"sync"
)

// eol says how a piece of input returned by lineReader.next ends.
type eol int

const (
	eolNone eol = iota // the line goes on in the next piece
	eolLF              // bare LF
	eolCRLF            // CR LF
	eolCR              // bare CR
	eolEOF             // end of input; the piece is the last line, unterminated
)

// readBufferSize is the size of the input buffer and so the largest piece
// of a line next returns: a 10 MB line is handled 64 KiB at a time.
const readBufferSize = 64 << 10

// lineReader splits its input into lines ended by CRLF, LF or a bare CR,
// without holding a whole line: next returns a long line in pieces.
type lineReader struct {
	br *bufio.Reader
}

// readers keeps the 64 KiB buffers for the next message (the daemon and
// -bs prepare many).
var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufferSize) }}

func newLineReader(r io.Reader) *lineReader {
	br := readers.Get().(*bufio.Reader)
	br.Reset(r)
	return &lineReader{br: br}
}

// release gives the buffer back; the lineReader is not used afterwards.
// Nothing read may be kept: every piece is copied out before the next.
func (lr *lineReader) release() {
	lr.br.Reset(nil)
	readers.Put(lr.br)
	lr.br = nil
}

// next returns the next piece of input, without its line ending, and how
// it ends. The piece is only valid until the next call. At the end of the
// input it returns eolEOF, with the unterminated last line if any. The
// error is the underlying reader's, never io.EOF.
func (lr *lineReader) next() ([]byte, eol, error) {
	if _, err := lr.br.Peek(1); err != nil {
		if err == io.EOF {
			return nil, eolEOF, nil
		}
		return nil, eolNone, err
	}
	buf, _ := lr.br.Peek(lr.br.Buffered())
	i := indexEOL(buf)
	switch {
	case i < 0:
		lr.discard(len(buf))
		return buf, eolNone, nil
	case buf[i] == '\n':
		lr.discard(i + 1)
		return buf[:i], eolLF, nil
	case i+1 < len(buf):
		if buf[i+1] == '\n' {
			lr.discard(i + 2)
			return buf[:i], eolCRLF, nil
		}
		lr.discard(i + 1)
		return buf[:i], eolCR, nil
	case i > 0:
		// The CR is the last byte buffered: hand out what is before it,
		// and look at the byte after it on the next call.
		lr.discard(i)
		return buf[:i], eolNone, nil
	}
	// buf is a lone CR; read one more byte to tell CRLF from a bare CR.
	p, err := lr.br.Peek(2)
	if len(p) == 2 && p[1] == '\n' {
		lr.discard(2)
		return nil, eolCRLF, nil
	}
	if len(p) < 2 && err != io.EOF {
		return nil, eolNone, err
	}
	lr.discard(1)
	return nil, eolCR, nil
}

// discard drops n buffered bytes; they are buffered, so it cannot fail.
func (lr *lineReader) discard(n int) {
	_, _ = lr.br.Discard(n)
}

// drain reads the rest of the input and returns how many octets it read.
// A read error stops it; the message is complete by then, so it is not
// reported.
func (lr *lineReader) drain() int64 {
	n, _ := lr.br.WriteTo(io.Discard)
	return n
}

// indexEOL returns the index of the first CR or LF in b, or -1.
func indexEOL(b []byte) int {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return bytes.IndexByte(b, '\r')
	}
	if j := bytes.IndexByte(b[:i], '\r'); j >= 0 {
		return j
	}
	return i
}
