package message

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
)

// spool stores the prepared body: in memory up to threshold octets, then
// in a temporary file. It also notes whether the body has 8-bit octets or
// NUL.
type spool struct {
	threshold int
	dir       string

	mem  []byte
	file *os.File
	w    *bufio.Writer
	// path is the file's name while it is still linked: on Linux it is
	// unlinked as soon as it is created, so nothing is left behind if the
	// process dies, and path is "".
	path string
	n    int64

	has8Bit, hasNUL bool
}

// write appends p to the body.
func (s *spool) write(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	s.n += int64(len(p))
	if !s.has8Bit || !s.hasNUL {
		scan(p, &s.has8Bit, &s.hasNUL)
	}
	if s.file == nil {
		if len(s.mem)+len(p) <= s.threshold {
			s.mem = append(s.mem, p...)
			return nil
		}
		if err := s.spill(); err != nil {
			return err
		}
	}
	if _, err := s.w.Write(p); err != nil {
		return fmt.Errorf("message: writing spill file: %w", err)
	}
	return nil
}

// spill moves the body from memory to a new temporary file.
func (s *spool) spill() error {
	f, err := os.CreateTemp(s.dir, "handoff-body-*")
	if err != nil {
		return fmt.Errorf("message: creating spill file: %w", err)
	}
	// CreateTemp makes the file 0600. Unlink it at once where the system
	// lets an open file outlive its name; elsewhere Close removes it.
	if err := os.Remove(f.Name()); err != nil {
		s.path = f.Name()
	}
	s.file = f
	s.w = bufio.NewWriterSize(f, 64<<10)
	if _, err := s.w.Write(s.mem); err != nil {
		return fmt.Errorf("message: writing spill file: %w", err)
	}
	s.mem = nil
	return nil
}

// finish flushes the file, if any.
func (s *spool) finish() error {
	if s.w == nil {
		return nil
	}
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("message: writing spill file: %w", err)
	}
	return nil
}

// readerAt returns the stored body for reading at any offset.
func (s *spool) readerAt() io.ReaderAt {
	if s.file != nil {
		return s.file
	}
	return bytesReaderAt(s.mem)
}

// close closes and removes the file, if any.
func (s *spool) close() error {
	if s.file == nil {
		return nil
	}
	err := s.file.Close()
	if s.path != "" {
		if rerr := os.Remove(s.path); rerr != nil && err == nil {
			err = rerr
		}
		s.path = ""
	}
	s.file, s.w = nil, nil
	if err != nil {
		return fmt.Errorf("message: removing spill file: %w", err)
	}
	return nil
}

// scan sets *has8Bit when p has an octet over 127 and *hasNUL when it has
// a NUL.
func scan(p []byte, has8Bit, hasNUL *bool) {
	if !*hasNUL && bytes.IndexByte(p, 0) >= 0 {
		*hasNUL = true
	}
	if *has8Bit {
		return
	}
	// Eight octets at a time: this runs over every body byte.
	const high = 0x8080808080808080
	for len(p) >= 8 {
		if binary.LittleEndian.Uint64(p)&high != 0 {
			*has8Bit = true
			return
		}
		p = p[8:]
	}
	for _, c := range p {
		if c >= 0x80 {
			*has8Bit = true
			return
		}
	}
}

// bytesReaderAt is a []byte as an io.ReaderAt.
type bytesReaderAt []byte

func (b bytesReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(b)) {
		return 0, io.EOF
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// concatReaderAt reads head, then the first bodyLen octets of body.
type concatReaderAt struct {
	head    []byte
	body    io.ReaderAt
	bodyLen int64
}

func (c *concatReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	if off < int64(len(c.head)) {
		n = copy(p, c.head[off:])
		off += int64(n)
		p = p[n:]
	}
	if len(p) == 0 {
		return n, nil
	}
	off -= int64(len(c.head))
	if off >= c.bodyLen {
		return n, io.EOF
	}
	eof := false
	if rest := c.bodyLen - off; int64(len(p)) > rest {
		p = p[:rest]
		eof = true
	}
	m, err := c.body.ReadAt(p, off)
	n += m
	if err == io.EOF && m == len(p) {
		err = nil
	}
	if err == nil && eof {
		err = io.EOF
	}
	return n, err
}
