package relay

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"sync"
)

// This file holds the streaming encoders for message content: dataWriter
// for the DATA command and crlfReader for BDAT. Both use crlfNormalizer,
// so their line handling cannot differ.

// dataBufSize is the size of the block dataWriter hands to its writer in
// one Write call, and of crlfReader's input buffer.
const dataBufSize = 32 << 10

// maxExpand is the most output that crlfNormalizer.encode can produce for
// one input octet: a fold (CR LF SP) followed by the octet itself. A dot
// at the start of a line gives two octets and never coincides with a fold;
// a line ending gives two.
const maxExpand = 4

// errDataClosed is returned by dataWriter.Write and dataWriter.Close once
// Close has completed successfully.
var errDataClosed = errors.New("relay: DATA writer already closed")

// crlfNormalizer is the state machine shared by dataWriter and
// crlfReader. It rewrites a message into the canonical line form that SMTP
// requires on the wire (RFC 5321 §2.3.8: lines end in CRLF, and CR and LF
// never appear on their own):
//
//   - CR LF is kept as one line ending.
//   - A bare LF becomes CR LF.
//   - A bare CR becomes CR LF. So CR CR LF is two line endings (the first
//     CR is bare), and CR at the end of one input slice followed by LF at
//     the start of the next is one line ending, because the state carries
//     over from one call to the next.
//   - With stuff set (the DATA command, RFC 5321 §4.5.2), a line that
//     begins with "." gets one more "." in front, at the start of the data
//     and after every line ending, including those made from a bare CR or
//     LF. BDAT chunks (RFC 3030 §2) are sent without stuffing.
//   - With limit > 0, a line that has reached limit octets (not counting
//     its CR LF or a stuffed dot) and goes on is broken with CR LF and a
//     single SP, and the rest follows after that SP, which counts towards
//     the new line's length. This is Postfix's smtp_line_length_limit: it
//     keeps every line within the 1000 octets of RFC 5321 §4.5.3.1.6 (998
//     plus CR LF, the limit of RFC 5322 §2.1.1) when the client uses 998,
//     turns an over-long header line into a folded one (RFC 5322 §2.2.3),
//     and, because the continuation begins with SP, never makes a line
//     that needs stuffing or that reads as the end-of-data ".". A line of
//     exactly limit octets is left alone. With limit 1 the continuation
//     lines are " x", two octets each, since each must carry at least one
//     octet of the message. limit <= 0 disables breaking.
//
// It holds no buffer, only the few small fields below, whatever the size
// of the message.
type crlfNormalizer struct {
	limit   int  // line length limit; <= 0 means none
	stuff   bool // dot-stuff lines (DATA) or not (BDAT)
	bol     bool // at the beginning of a line: nothing emitted since the last CR LF
	skipLF  bool // the last input octet was a CR, already emitted as CR LF
	lineLen int  // octets of the current output line, less a stuffed dot
}

// newCRLFNormalizer returns a normaliser at the start of a message.
func newCRLFNormalizer(limit int, stuff bool) crlfNormalizer {
	return crlfNormalizer{limit: limit, stuff: stuff, bol: true}
}

// encode normalises as much of src into dst as fits and returns the
// number of octets written to dst and read from src. It stops when src is
// used up or when dst has fewer than maxExpand octets of room left, so with
// len(dst) >= maxExpand and a non-empty src it always reads at least one
// octet. (It may write none: an LF that completes a CR LF gives no output
// of its own.)
func (n *crlfNormalizer) encode(dst, src []byte) (nDst, nSrc int) {
	// src[nSrc:lfAt] holds no LF; lfAt is either the index of the next
	// LF or the end of the stretch searched so far. The search is bounded
	// by the room in dst, so that a long src without LF is not searched
	// again on every call.
	lfAt := 0
	for nSrc < len(src) && len(dst)-nDst >= maxExpand {
		c := src[nSrc]
		switch c {
		case '\n':
			nSrc++
			if n.skipLF {
				n.skipLF = false
				continue
			}
			dst[nDst], dst[nDst+1] = '\r', '\n'
			nDst += 2
			n.bol, n.lineLen = true, 0
		case '\r':
			nSrc++
			dst[nDst], dst[nDst+1] = '\r', '\n'
			nDst += 2
			n.bol, n.lineLen, n.skipLF = true, 0, true
		default:
			n.skipLF = false
			if n.bol {
				if n.stuff && c == '.' {
					dst[nDst] = '.'
					nDst++
				}
				n.bol = false
			} else if n.limit > 0 && n.lineLen >= n.limit {
				dst[nDst], dst[nDst+1], dst[nDst+2] = '\r', '\n', ' '
				nDst += 3
				n.lineLen = 1
			}
			// Copy a run of ordinary octets in one go. It stops at a CR
			// or LF, at the end of the room in dst, and where the line
			// reaches the limit; it is at least one octet long. Each
			// octet is looked at a bounded number of times, so a run of
			// bare CRs costs no more than plain text.
			run := min(len(src)-nSrc, len(dst)-nDst)
			if n.limit > 0 {
				run = min(run, max(n.limit-n.lineLen, 1))
			}
			seg := src[nSrc : nSrc+run]
			if lfAt <= nSrc {
				end := min(len(src), nSrc+len(dst)-nDst)
				if k := bytes.IndexByte(src[nSrc:end], '\n'); k >= 0 {
					lfAt = nSrc + k
				} else {
					lfAt = end
				}
			}
			i := min(len(seg), lfAt-nSrc)
			if k := bytes.IndexByte(seg[:i], '\r'); k >= 0 {
				i = k
			}
			copy(dst[nDst:], seg[:i])
			nDst += i
			nSrc += i
			n.lineLen += i
		}
	}
	return nDst, nSrc
}

// finish ends the message: if the last line has no line ending yet it
// writes CR LF to dst, which must have room for two octets. It returns the
// number of octets written. An empty message stays empty.
func (n *crlfNormalizer) finish(dst []byte) int {
	if n.bol {
		return 0
	}
	dst[0], dst[1] = '\r', '\n'
	n.bol, n.lineLen, n.skipLF = true, 0, false
	return 2
}

// dataWriter encodes a message for the DATA command (RFC 5321 §4.1.1.4)
// in one pass. Line endings are made canonical, lines are dot-stuffed
// (RFC 5321 §4.5.2) and over-long lines are broken, as crlfNormalizer
// describes. Close ends the last line if it has no line ending and then
// sends the end-of-data line "." CR LF, so empty data gives exactly
// ".\r\n" and data ending in a line ending never gets an extra blank line.
//
// The output is gathered in one fixed buffer of dataBufSize octets and
// handed to w only when that buffer is full and on Close, so each w.Write
// is one large data block on which the caller can put a deadline. Memory
// use does not grow with the message.
//
// An error from w is returned unchanged, and from then on by every Write
// and Close. After a successful Close, Write and Close return
// errDataClosed. A dataWriter is not safe for concurrent use.
type dataWriter struct {
	w       io.Writer
	norm    crlfNormalizer
	buf     []byte // fixed, len dataBufSize
	n       int    // octets pending in buf
	written int64  // octets accepted by w
	input   int64  // octets of input encoded
	saw8bit bool
	sawNUL  bool
	err     error // sticky: an error from w, or errDataClosed
}

// newDataWriter returns a dataWriter that writes to w and breaks lines
// longer than lineLimit octets; lineLimit <= 0 disables that.
func newDataWriter(w io.Writer, lineLimit int) *dataWriter {
	return &dataWriter{
		w:    w,
		norm: newCRLFNormalizer(lineLimit, true),
		buf:  dataBufPool.Get().(*[dataBufSize]byte)[:],
	}
}

// dataBufPool recycles encoder buffers, so that a connection carrying
// many small messages does not allocate 32 KiB for each.
var dataBufPool = sync.Pool{New: func() any { return new([dataBufSize]byte) }}

// release returns the buffer to the pool; the writer fails afterwards.
func (d *dataWriter) release() {
	if d.buf == nil {
		return
	}
	dataBufPool.Put((*[dataBufSize]byte)(d.buf[:dataBufSize]))
	d.buf = nil
	if d.err == nil {
		d.err = errDataClosed
	}
}

// Write encodes p. It returns the number of octets of p taken into the
// encoder, which is len(p) unless an error from the underlying writer
// stopped it.
func (d *dataWriter) Write(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	total := 0
	for len(p) > 0 {
		nd, ns := d.norm.encode(d.buf[d.n:], p)
		d.note(p[:ns])
		d.n += nd
		total += ns
		p = p[ns:]
		if len(p) > 0 {
			// encode stopped because the buffer is full.
			if err := d.flush(); err != nil {
				return total, err
			}
		}
	}
	return total, nil
}

// note records what the encoder has read: its length, and whether it had
// an octet with the high bit set or a NUL.
func (d *dataWriter) note(p []byte) {
	d.input += int64(len(p))
	if !d.saw8bit && has8bit(p) {
		d.saw8bit = true
	}
	if !d.sawNUL && hasNUL(p) {
		d.sawNUL = true
	}
}

// Close ends the last line if needed, writes the end-of-data line and
// hands everything pending to w.
func (d *dataWriter) Close() error { return d.closeWith(nil) }

// closeWith is Close, with trailer (the commands that follow the data,
// pipelined) sent in the same write as the final dot when it fits in the
// buffer. Written does not count it.
func (d *dataWriter) closeWith(trailer []byte) error {
	if d.err != nil {
		return d.err
	}
	if len(d.buf)-d.n < 5+len(trailer) {
		if err := d.flush(); err != nil {
			return err
		}
	}
	d.n += d.norm.finish(d.buf[d.n:])
	d.n += copy(d.buf[d.n:], ".\r\n")
	t := copy(d.buf[d.n:], trailer)
	d.n += t
	err := d.flush()
	if err == nil && t < len(trailer) {
		_, err = d.w.Write(trailer[t:])
	}
	d.written -= int64(t)
	if err != nil {
		d.err = err
		return err
	}
	d.err = errDataClosed
	return nil
}

// flush hands the pending buffer to w in one Write.
func (d *dataWriter) flush() error {
	if d.n == 0 {
		return nil
	}
	n, err := d.w.Write(d.buf[:d.n])
	if n > 0 {
		d.written += int64(min(n, d.n))
	}
	if err == nil && n < d.n {
		err = io.ErrShortWrite
	}
	if err != nil {
		d.err = err
		return err
	}
	d.n = 0
	return nil
}

// Written returns the number of octets handed to the underlying writer so
// far, dot-stuffing, line endings and the end-of-data line included.
func (d *dataWriter) Written() int64 { return d.written }

// Input returns the number of octets of message read by Write so far.
func (d *dataWriter) Input() int64 { return d.input }

// Saw8Bit reports whether the message so far had an octet of 0x80 or more,
// which needs 8BITMIME (RFC 6152) or BINARYMIME (RFC 3030 §3).
func (d *dataWriter) Saw8Bit() bool { return d.saw8bit }

// SawNUL reports whether the message so far had a NUL octet, which neither
// 7bit nor 8bit data may carry (RFC 2045 §2.7, §2.8); only binary data,
// sent with BINARYMIME (RFC 3030 §3), may.
func (d *dataWriter) SawNUL() bool { return d.sawNUL }

// has8bit reports whether p has an octet of 0x80 or more.
func has8bit(p []byte) bool {
	const high = 0x8080808080808080
	for len(p) >= 8 {
		if binary.LittleEndian.Uint64(p)&high != 0 {
			return true
		}
		p = p[8:]
	}
	for _, c := range p {
		if c >= 0x80 {
			return true
		}
	}
	return false
}

// hasNUL reports whether p has a NUL octet.
func hasNUL(p []byte) bool {
	return bytes.IndexByte(p, 0) >= 0
}

// crlfReader yields a message in the form BDAT sends it (RFC 3030 §2):
// the same canonical lines as dataWriter (crlfNormalizer, including line
// breaking at the limit) but without dot-stuffing and without an
// end-of-data line, since BDAT counts octets instead. A last line without
// a line ending gets CR LF at the end; empty input yields nothing. The
// caller cuts the stream into chunks and sends their sizes.
//
// It reads r through one fixed buffer of dataBufSize octets. Data read
// before an error from r is yielded first; then the error is returned,
// unchanged, by every Read. The final CR LF is added only at io.EOF.
type crlfReader struct {
	r     io.Reader
	norm  crlfNormalizer
	in    []byte // fixed input buffer, len dataBufSize
	inLo  int    // in[inLo:inHi] is read from r but not yet encoded
	inHi  int
	small [2 * maxExpand]byte // output for Read calls with too small a p
	outLo int                 // small[outLo:outHi] is encoded but not yet returned
	outHi int
	err   error // sticky error from r, io.EOF included
	done  bool  // err is set and everything before it has been encoded
}

// newCRLFReader returns a reader that yields r's content normalised for
// BDAT, breaking lines longer than lineLimit octets; lineLimit <= 0
// disables that.
func newCRLFReader(r io.Reader, lineLimit int) io.Reader {
	return &crlfReader{
		r:    r,
		norm: newCRLFNormalizer(lineLimit, false),
		in:   make([]byte, dataBufSize),
	}
}

// maxEmptyReads is how many times in a row crlfReader accepts a read of
// nothing without an error from r before it gives up with
// io.ErrNoProgress.
const maxEmptyReads = 100

// Read fills p with normalised octets. It reads from r only when all that
// was read before has been handed out.
func (c *crlfReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	empty := 0
	for {
		if c.outLo < c.outHi {
			n := copy(p, c.small[c.outLo:c.outHi])
			c.outLo += n
			return n, nil
		}
		if c.done {
			return 0, c.err
		}
		dst := p
		if len(p) < maxExpand {
			dst = c.small[:]
			c.outLo, c.outHi = 0, 0
		}
		var n int
		switch {
		case c.inLo < c.inHi:
			nd, ns := c.norm.encode(dst, c.in[c.inLo:c.inHi])
			c.inLo += ns
			n = nd
		case c.err != nil:
			if c.err == io.EOF {
				n = c.norm.finish(dst)
			}
			c.done = true
		default:
			m, err := c.r.Read(c.in)
			c.inLo, c.inHi = 0, m
			c.err = err
			if m == 0 && err == nil {
				if empty++; empty >= maxEmptyReads {
					return 0, io.ErrNoProgress
				}
			}
			continue
		}
		if n > 0 {
			if len(p) < maxExpand {
				c.outHi = n
				continue
			}
			return n, nil
		}
	}
}
