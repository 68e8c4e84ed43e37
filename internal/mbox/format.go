package mbox

import (
	"bufio"
	"fmt"
	"io"
	"sync"
)

// Buffer sizes. A line longer than readBufSize is handled in pieces.
const (
	readBufSize  = 32 << 10
	writeBufSize = 64 << 10
)

// copier holds the buffers of one delivery; they are pooled.
type copier struct {
	src stickyReader
	r   *bufio.Reader
	w   *bufio.Writer
}

var copiers = sync.Pool{New: func() any {
	c := &copier{w: bufio.NewWriterSize(nil, writeBufSize)}
	c.r = bufio.NewReaderSize(&c.src, readBufSize)
	return c
}}

func getCopier(dst io.Writer, src io.Reader) *copier {
	c := copiers.Get().(*copier)
	c.src = stickyReader{r: src}
	c.r.Reset(&c.src)
	c.w.Reset(dst)
	return c
}

func putCopier(c *copier) {
	c.src = stickyReader{}
	c.r.Reset(&c.src)
	c.w.Reset(nil)
	copiers.Put(c)
}

// stickyReader returns the first error of r (io.EOF included) forever
// after, without reading r again: a terminal gives EOF once and would
// block on the next read, and bufio.Reader.Peek forgets an error it has
// returned.
type stickyReader struct {
	r   io.Reader
	err error
}

func (s *stickyReader) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	n, err := s.r.Read(p)
	s.err = err
	return n, err
}

// copyBody copies the message from c.r to c.w in mboxrd form: CRLF line
// ends become LF, lines matching ^>*From  get one more '>', a missing
// final newline is added, and the empty line that ends an mbox message is
// written. tick, when not nil, is called at every chunk.
//
// Quoting is decided at the start of each line and needs only five bytes
// of look-ahead: the extra '>' goes right before "From ", after the '>'
// already there, which is the same bytes as putting it first.
//
// A read error is returned wrapped as "reading message"; a write error is
// returned as it is. bufio.Writer errors are sticky, so checking the
// writes of line contents (and Flush, by the caller) finds them all.
func (c *copier) copyBody(tick func()) error {
	r, w := c.r, c.w
	atStart := true    // the next byte begins a line
	midLine := false   // part of an unterminated line has been written
	pendingCR := false // a chunk ended in CR, held back in case LF follows
	for {
		if tick != nil {
			tick()
		}
		if atStart {
			p, err := r.Peek(5)
			if err != nil && err != io.EOF {
				return fmt.Errorf("reading message: %w", err)
			}
			n := 0
			for n < len(p) && p[n] == '>' {
				n++
			}
			if n > 0 {
				if _, err := w.Write(p[:n]); err != nil {
					return err
				}
				r.Discard(n)
				midLine = true
				continue
			}
			if string(p) == "From " {
				w.WriteByte('>')
				midLine = true
			}
			atStart = false
		}

		line, err := r.ReadSlice('\n')
		if pendingCR && len(line) > 0 {
			pendingCR = false
			if line[0] != '\n' {
				w.WriteByte('\r') // a bare CR after all
			}
		}
		if n := len(line); n > 0 && line[n-1] == '\n' {
			body := line[:n-1]
			if m := len(body); m > 0 && body[m-1] == '\r' {
				body = body[:m-1]
			}
			if _, err := w.Write(body); err != nil {
				return err
			}
			w.WriteByte('\n')
			atStart, midLine = true, false
		} else if n > 0 {
			if line[n-1] == '\r' {
				line = line[:n-1]
				pendingCR = true
			}
			if _, err := w.Write(line); err != nil {
				return err
			}
			midLine = true
		}

		switch err {
		case nil, bufio.ErrBufferFull:
		case io.EOF:
			// A CR at the very end is taken for the start of a CRLF.
			if midLine || pendingCR {
				w.WriteByte('\n')
			}
			_, err := w.WriteString("\n")
			return err
		default:
			return fmt.Errorf("reading message: %w", err)
		}
	}
}
