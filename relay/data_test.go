package relay

import (
	"bytes"
	"errors"
	"io"
	"math/rand"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
)

// dataCase is one table entry: the message, the line limit, and the
// DATA output without the final ".\r\n".
type dataCase struct {
	name  string
	in    string
	limit int
	want  string
}

func dataCases() []dataCase {
	x := func(n int) string { return strings.Repeat("x", n) }
	return []dataCase{
		{"empty", "", 998, ""},
		{"a", "a", 998, "a\r\n"},
		{"a LF", "a\n", 998, "a\r\n"},
		{"a CRLF", "a\r\n", 998, "a\r\n"},
		{"a CR", "a\r", 998, "a\r\n"},
		{"a CR b", "a\rb", 998, "a\r\nb\r\n"},
		{"a CR CRLF b", "a\r\r\nb", 998, "a\r\n\r\nb\r\n"},
		{"a LF CR b", "a\n\rb", 998, "a\r\n\r\nb\r\n"},
		{"LF", "\n", 998, "\r\n"},
		{"CR", "\r", 998, "\r\n"},
		{"CRLF", "\r\n", 998, "\r\n"},
		{"CR CR", "\r\r", 998, "\r\n\r\n"},
		{"CRLF CRLF", "\r\n\r\n", 998, "\r\n\r\n"},
		{"LF LF", "\n\n", 998, "\r\n\r\n"},
		{"dot LF", ".\n", 998, "..\r\n"},
		{"dot dot LF", "..\n", 998, "...\r\n"},
		{"just dot", ".", 998, "..\r\n"},
		{"just dot CRLF", ".\r\n", 998, "..\r\n"},
		{"mixed", "abc\n.jkl\rfoo\r\n..blue", 998, "abc\r\n..jkl\r\nfoo\r\n...blue\r\n"},
		{"dot lines", ".A test\n.mes.sage.", 998, "..A test\r\n..mes.sage.\r\n"},
		{"LF dot LF", "\n.\n", 998, "\r\n..\r\n"},
		{"CRLF dot LF", "\r\n.\n", 998, "\r\n..\r\n"},
		{"CR dot CR", "\r.\r", 998, "\r\n..\r\n"},
		{"dots after every ending", ".\r.\r\n.\n.", 998, "..\r\n..\r\n..\r\n..\r\n"},
		{"dot mid-line", "a.\nb.c", 998, "a.\r\nb.c\r\n"},
		{"space dot", " .x\n", 998, " .x\r\n"},
		{"CRLF dot CRLF", "a\r\n.\r\nb", 998, "a\r\n..\r\nb\r\n"},
		{"998", x(998), 998, x(998) + "\r\n"},
		{"998 CRLF", x(998) + "\r\ny", 998, x(998) + "\r\ny\r\n"},
		{"998 CR", x(998) + "\r", 998, x(998) + "\r\n"},
		{"998 LF", x(998) + "\n", 998, x(998) + "\r\n"},
		{"999", x(999), 998, x(998) + "\r\n x\r\n"},
		{"999 LF", x(999) + "\n", 998, x(998) + "\r\n x\r\n"},
		{"1995", x(1995), 998, x(998) + "\r\n " + x(997) + "\r\n"},
		{"1996", x(1996), 998, x(998) + "\r\n " + x(997) + "\r\n x\r\n"},
		{"2000", x(2000), 998, x(998) + "\r\n " + x(997) + "\r\n " + x(5) + "\r\n"},
		{"2000 twice", x(2000) + "\n" + x(2000), 998,
			x(998) + "\r\n " + x(997) + "\r\n " + x(5) + "\r\n" +
				x(998) + "\r\n " + x(997) + "\r\n " + x(5) + "\r\n"},
		{"998 no limit", x(998), 0, x(998) + "\r\n"},
		{"999 no limit", x(999), 0, x(999) + "\r\n"},
		{"2000 no limit", x(2000), 0, x(2000) + "\r\n"},
		{"2000 negative limit", x(2000), -1, x(2000) + "\r\n"},
		{"dot 998", "." + x(997), 998, ".." + x(997) + "\r\n"},
		{"dot 999", "." + x(998), 998, ".." + x(997) + "\r\n x\r\n"},
		{"dot at fold", x(998) + ".y", 998, x(998) + "\r\n .y\r\n"},
		{"dot 998 no limit", "." + x(997), 0, ".." + x(997) + "\r\n"},
		{"binary", "\x00\xff\x80a\n\x00", 998, "\x00\xff\x80a\r\n\x00\r\n"},
		{"binary dot", "\xff\r.\x00", 998, "\xff\r\n..\x00\r\n"},
		{"limit 3", "abcdef", 3, "abc\r\n de\r\n f\r\n"},
		{"limit 3 exact", "abc\ndef\n", 3, "abc\r\ndef\r\n"},
		{"limit 3 dot", ".abcd", 3, "..ab\r\n cd\r\n"},
		{"limit 2", "abcd", 2, "ab\r\n c\r\n d\r\n"},
		{"limit 1", "abc\r.", 1, "a\r\n b\r\n c\r\n..\r\n"},
	}
}

// dataEncode runs in through a dataWriter, one Write per chunk, and
// returns everything it wrote.
func dataEncode(t testing.TB, limit int, chunks ...[]byte) []byte {
	t.Helper()
	var out bytes.Buffer
	d := newDataWriter(&out, limit)
	for _, c := range chunks {
		n, err := d.Write(c)
		if err != nil || n != len(c) {
			t.Fatalf("Write(%q) = %d, %v", c, n, err)
		}
	}
	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if d.Written() != int64(out.Len()) {
		t.Fatalf("Written() = %d, wrote %d", d.Written(), out.Len())
	}
	return out.Bytes()
}

// dataBDATEncode runs in (as consecutive reads of the chunks) through a
// crlfReader and reads it all with reads of readSize octets.
func dataBDATEncode(t testing.TB, limit, readSize int, chunks ...[]byte) []byte {
	t.Helper()
	rs := make([]io.Reader, len(chunks))
	for i, c := range chunks {
		rs[i] = bytes.NewReader(c)
	}
	r := newCRLFReader(io.MultiReader(rs...), limit)
	var out []byte
	buf := make([]byte, readSize)
	for {
		n, err := r.Read(buf)
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		if n == 0 {
			t.Fatalf("Read returned 0, nil")
		}
	}
}

// dataRefNormalize is the plain reference for crlfNormalizer without
// stuffing: split into lines at CRLF, bare CR and bare LF, break each line
// longer than limit into its first limit octets and then pieces of
// limit-1 (at least 1) octets each behind a SP, and end every line with
// CRLF.
func dataRefNormalize(in []byte, limit int) []byte {
	var lines [][]byte
	start := 0
	for i := 0; i < len(in); i++ {
		switch in[i] {
		case '\r':
			lines = append(lines, in[start:i])
			if i+1 < len(in) && in[i+1] == '\n' {
				i++
			}
			start = i + 1
		case '\n':
			lines = append(lines, in[start:i])
			start = i + 1
		}
	}
	if start < len(in) {
		lines = append(lines, in[start:])
	}
	var out []byte
	for _, l := range lines {
		if limit <= 0 || len(l) <= limit {
			out = append(append(out, l...), "\r\n"...)
			continue
		}
		out = append(append(out, l[:limit]...), "\r\n"...)
		rest := l[limit:]
		step := max(limit-1, 1)
		for len(rest) > 0 {
			k := min(step, len(rest))
			out = append(append(append(out, ' '), rest[:k]...), "\r\n"...)
			rest = rest[k:]
		}
	}
	return out
}

// dataServerDecode reads DATA output the way a server does (RFC 5321
// §4.5.2): lines end at CRLF, the data ends at the first line that is
// exactly ".", one leading dot is removed from other lines. It returns the
// text with every line ended by CRLF, and what followed the end line.
func dataServerDecode(out []byte) (text, trailer []byte, err error) {
	rest := out
	for {
		i := bytes.Index(rest, []byte("\r\n"))
		if i < 0 {
			return nil, nil, errors.New("no end-of-data line")
		}
		line := rest[:i]
		rest = rest[i+2:]
		if string(line) == "." {
			return text, rest, nil
		}
		if len(line) > 0 && line[0] == '.' {
			line = line[1:]
		}
		text = append(append(text, line...), "\r\n"...)
	}
}

// dataCheckBareEndings fails if out has a CR not followed by LF or an LF not
// after a CR.
func dataCheckBareEndings(t testing.TB, out []byte) {
	t.Helper()
	for i, c := range out {
		if c == '\r' && (i+1 == len(out) || out[i+1] != '\n') {
			t.Fatalf("bare CR at %d in %q", i, out)
		}
		if c == '\n' && (i == 0 || out[i-1] != '\r') {
			t.Fatalf("bare LF at %d in %q", i, out)
		}
	}
}

// dataCheckLineLengths fails if a line of out is longer than limit+1 octets,
// or longer than limit without a stuffed dot (when stuffed) or at all
// (when not), for limits of 2 and more; limit 1 allows " x" lines of 2.
func dataCheckLineLengths(t testing.TB, out []byte, limit int, stuffed bool) {
	t.Helper()
	if limit <= 0 {
		return
	}
	for l := range bytes.SplitSeq(out, []byte("\r\n")) {
		if len(l) > limit+1 {
			t.Fatalf("line of %d octets > limit %d+1: %q", len(l), limit, l)
		}
		if limit >= 2 && len(l) == limit+1 && !(stuffed && bytes.HasPrefix(l, []byte(".."))) {
			t.Fatalf("line of %d octets > limit %d without stuffing: %q", len(l), limit, l)
		}
	}
}

// dataCheck checks the DATA encoding out of in against every property
// the encoder promises.
func dataCheck(t testing.TB, in, out []byte, limit int) {
	t.Helper()
	dataCheckBareEndings(t, out)
	if len(in) == 0 {
		if string(out) != ".\r\n" {
			t.Fatalf("empty input gave %q, want %q", out, ".\r\n")
		}
		return
	}
	if !bytes.HasSuffix(out, []byte("\r\n.\r\n")) {
		t.Fatalf("output does not end in CRLF . CRLF: %q", out)
	}
	if i := bytes.Index(out, []byte("\r\n.\r\n")); i != len(out)-5 {
		t.Fatalf("early end of data at %d of %d: %q", i, len(out), out)
	}
	if bytes.HasPrefix(out, []byte(".\r\n")) {
		t.Fatalf("output starts with the end line: %q", out)
	}
	dataCheckLineLengths(t, out, limit, true)
	text, trailer, err := dataServerDecode(out)
	if err != nil {
		t.Fatalf("decode %q: %v", out, err)
	}
	if len(trailer) != 0 {
		t.Fatalf("data after end line: %q", trailer)
	}
	if want := dataRefNormalize(in, limit); !bytes.Equal(text, want) {
		t.Fatalf("input %q limit %d\ndecoded %q\nwant    %q", in, limit, text, want)
	}
}

// dataCheckBDAT checks the BDAT encoding out of in.
func dataCheckBDAT(t testing.TB, in, out []byte, limit int) {
	t.Helper()
	dataCheckBareEndings(t, out)
	dataCheckLineLengths(t, out, limit, false)
	if want := dataRefNormalize(in, limit); !bytes.Equal(out, want) {
		t.Fatalf("input %q limit %d\ngot  %q\nwant %q", in, limit, out, want)
	}
}

// dataUnstuff removes one leading dot from every CRLF line of s.
func dataUnstuff(s string) string {
	lines := strings.SplitAfter(s, "\r\n")
	for i, l := range lines {
		lines[i] = strings.TrimPrefix(l, ".")
	}
	return strings.Join(lines, "")
}

func TestDataWriterTable(t *testing.T) {
	for _, tc := range dataCases() {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(tc.in)
			want := tc.want + ".\r\n"
			if got := dataEncode(t, tc.limit, in); string(got) != want {
				t.Fatalf("got  %q\nwant %q", got, want)
			}
			dataCheck(t, in, []byte(want), tc.limit)
		})
	}
}

func TestCRLFReaderTable(t *testing.T) {
	for _, tc := range dataCases() {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(tc.in)
			want := dataUnstuff(tc.want)
			for _, size := range []int{1, 2, 3, 4, 5, 7, 512, 64 << 10} {
				if got := dataBDATEncode(t, tc.limit, size, in); string(got) != want {
					t.Fatalf("read size %d:\ngot  %q\nwant %q", size, got, want)
				}
			}
			dataCheckBDAT(t, in, []byte(want), tc.limit)
			if err := iotest.TestReader(newCRLFReader(bytes.NewReader(in), tc.limit), []byte(want)); err != nil {
				t.Fatal(err)
			}
			r := newCRLFReader(iotest.OneByteReader(bytes.NewReader(in)), tc.limit)
			if got, err := io.ReadAll(iotest.OneByteReader(r)); err != nil || string(got) != want {
				t.Fatalf("one byte at a time: %q, %v; want %q", got, err, want)
			}
		})
	}
}

// dataSplitInputs are the table inputs plus some that cross the writer's
// buffer size.
func dataSplitInputs() []dataCase {
	cases := dataCases()
	var b strings.Builder
	for i := 0; b.Len() < 3*dataBufSize; i++ {
		switch i % 5 {
		case 0:
			b.WriteString(".dot line\r\n")
		case 1:
			b.WriteString(strings.Repeat("y", 1200) + "\r")
		case 2:
			b.WriteString("short\n")
		default:
			b.WriteString(strings.Repeat("z", i%97) + "\r\n")
		}
	}
	cases = append(cases,
		dataCase{name: "big", in: b.String(), limit: 998},
		dataCase{name: "big limit 0", in: b.String(), limit: 0},
		dataCase{name: "big limit 10", in: b.String(), limit: 10},
		dataCase{name: "CR at buffer edge", in: strings.Repeat("a\r", dataBufSize), limit: 998},
		dataCase{name: "dots at buffer edge", in: strings.Repeat(".\n", dataBufSize), limit: 998},
	)
	return cases
}

// dataSplitPoints returns every split point of an input of n octets, or for
// longer inputs a sample: the first and last few, some spread over the
// input, and those next to the first multiples of the line limits used in
// the tables and of the writer's buffer size.
func dataSplitPoints(n int) []int {
	if n <= 1100 {
		ps := make([]int, n+1)
		for i := range ps {
			ps[i] = i
		}
		return ps
	}
	seen := make(map[int]bool)
	var ps []int
	add := func(c, d int) {
		for i := c - d; i <= c+d; i++ {
			if i >= 0 && i <= n && !seen[i] {
				seen[i] = true
				ps = append(ps, i)
			}
		}
	}
	add(0, 8)
	add(n, 8)
	for i := 0; i < n; i += 4999 {
		add(i, 0)
	}
	for _, m := range []int{997, 998, 999, 1000, dataBufSize} {
		for k := 1; k <= 4; k++ {
			add(k*m, 2)
		}
	}
	return ps
}

func TestDataWriterSplitWrites(t *testing.T) {
	for _, tc := range dataSplitInputs() {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(tc.in)
			whole := dataEncode(t, tc.limit, in)
			dataCheck(t, in, whole, tc.limit)
			if tc.want != "" || tc.in == "" {
				if string(whole) != tc.want+".\r\n" {
					t.Fatalf("got %q, want %q", whole, tc.want+".\r\n")
				}
			}
			bytewise := make([][]byte, len(in))
			for i := range in {
				bytewise[i] = in[i : i+1]
			}
			if got := dataEncode(t, tc.limit, bytewise...); !bytes.Equal(got, whole) {
				t.Fatalf("byte by byte:\ngot  %q\nwant %q", got, whole)
			}
			for _, i := range dataSplitPoints(len(in)) {
				if got := dataEncode(t, tc.limit, in[:i], in[i:]); !bytes.Equal(got, whole) {
					t.Fatalf("split at %d:\ngot  %q\nwant %q", i, got, whole)
				}
			}
		})
	}
}

func TestCRLFReaderSplitReads(t *testing.T) {
	for _, tc := range dataSplitInputs() {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(tc.in)
			whole := dataBDATEncode(t, tc.limit, 4096, in)
			dataCheckBDAT(t, in, whole, tc.limit)
			bytewise := make([][]byte, len(in))
			for i := range in {
				bytewise[i] = in[i : i+1]
			}
			if got := dataBDATEncode(t, tc.limit, 3, bytewise...); !bytes.Equal(got, whole) {
				t.Fatalf("byte by byte:\ngot  %q\nwant %q", got, whole)
			}
			for _, i := range dataSplitPoints(len(in)) {
				if got := dataBDATEncode(t, tc.limit, 4096, in[:i], in[i:]); !bytes.Equal(got, whole) {
					t.Fatalf("split at %d:\ngot  %q\nwant %q", i, got, whole)
				}
			}
		})
	}
}

// dataWriteRecorder records the size of each Write.
type dataWriteRecorder struct {
	sizes []int
	n     int64
}

func (w *dataWriteRecorder) Write(p []byte) (int, error) {
	w.sizes = append(w.sizes, len(p))
	w.n += int64(len(p))
	return len(p), nil
}

func TestDataWriterBlocks(t *testing.T) {
	var w dataWriteRecorder
	d := newDataWriter(&w, 998)
	line := []byte("a line of text that is not very long, with LF\n")
	for range 10000 {
		if _, err := d.Write(line); err != nil {
			t.Fatal(err)
		}
	}
	if len(w.sizes) == 0 {
		t.Fatal("nothing written before Close")
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	for i, s := range w.sizes {
		if s > dataBufSize {
			t.Errorf("write %d of %d octets > buffer %d", i, s, dataBufSize)
		}
		if i < len(w.sizes)-1 && s < dataBufSize-maxExpand+1 {
			t.Errorf("write %d of %d octets: buffer not full", i, s)
		}
	}
	want := int64(10000*(len(line)+1) + 3)
	if d.Written() != want || w.n != want {
		t.Errorf("Written() = %d, writer got %d, want %d", d.Written(), w.n, want)
	}
}

func TestDataWriterCounters(t *testing.T) {
	for _, tc := range []struct {
		in           string
		eight, nul   bool
		input, wrote int64
	}{
		{"", false, false, 0, 3},
		{"abc\n", false, false, 4, 5 + 3},
		{".x", false, false, 2, 5 + 3},
		{"a\x00b", false, true, 3, 5 + 3},
		{"caf\xc3\xa9\r\n", true, false, 7, 7 + 3},
		{"0123456789\xff", true, false, 11, 13 + 3},
		{"\x00\x80", true, true, 2, 4 + 3},
	} {
		var out bytes.Buffer
		d := newDataWriter(&out, 998)
		// Two writes, so that the flags must stick.
		half := len(tc.in) / 2
		d.Write([]byte(tc.in[:half]))
		d.Write([]byte(tc.in[half:]))
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		if d.Saw8Bit() != tc.eight || d.SawNUL() != tc.nul || d.Input() != tc.input || d.Written() != tc.wrote {
			t.Errorf("%q: Saw8Bit %v SawNUL %v Input %d Written %d; want %v %v %d %d",
				tc.in, d.Saw8Bit(), d.SawNUL(), d.Input(), d.Written(), tc.eight, tc.nul, tc.input, tc.wrote)
		}
		if d.Written() != int64(out.Len()) {
			t.Errorf("%q: Written %d, output %d", tc.in, d.Written(), out.Len())
		}
	}
}

func TestDataHas8bit(t *testing.T) {
	for n := range 40 {
		p := bytes.Repeat([]byte{'a'}, n)
		if has8bit(p) {
			t.Fatalf("has8bit(%d ASCII octets) = true", n)
		}
		for i := range n {
			p[i] = 0x80
			if !has8bit(p) {
				t.Fatalf("has8bit misses 0x80 at %d of %d", i, n)
			}
			p[i] = 'a'
		}
	}
}

// dataFailWriter accepts ok writes and then fails with err, having taken
// part octets of the failing write.
type dataFailWriter struct {
	ok   int
	part int
	err  error
	got  int64 // octets taken
}

func (w *dataFailWriter) Write(p []byte) (int, error) {
	if w.ok > 0 {
		w.ok--
		w.got += int64(len(p))
		return len(p), nil
	}
	n := min(w.part, len(p))
	w.got += int64(n)
	return n, w.err
}

type dataTestError struct{ msg string }

func (e *dataTestError) Error() string { return e.msg }

func TestDataWriterErrors(t *testing.T) {
	werr := &dataTestError{"write deadline"}
	big := bytes.Repeat([]byte("0123456789\n"), 3*dataBufSize/11)

	t.Run("in Write", func(t *testing.T) {
		w := &dataFailWriter{ok: 1, part: 100, err: werr}
		d := newDataWriter(w, 998)
		n, err := d.Write(big)
		if err != werr {
			t.Fatalf("Write error %v (%T), want the writer's own", err, err)
		}
		if n <= 0 || n >= len(big) {
			t.Fatalf("Write = %d of %d", n, len(big))
		}
		if d.Written() != w.got || w.got < dataBufSize-maxExpand+1+100 {
			t.Errorf("Written() = %d, writer took %d", d.Written(), w.got)
		}
		if n, err := d.Write([]byte("x")); n != 0 || err != werr {
			t.Errorf("Write after error = %d, %v", n, err)
		}
		if err := d.Close(); err != werr {
			t.Errorf("Close after error = %v", err)
		}
	})
	t.Run("in Close", func(t *testing.T) {
		w := &dataFailWriter{err: werr}
		d := newDataWriter(w, 998)
		if _, err := d.Write([]byte("hello\n")); err != nil {
			t.Fatal(err)
		}
		if err := d.Close(); err != werr {
			t.Fatalf("Close = %v", err)
		}
		if err := d.Close(); err != werr {
			t.Errorf("second Close = %v", err)
		}
		if _, err := d.Write([]byte("x")); err != werr {
			t.Errorf("Write after failed Close = %v", err)
		}
		if d.Written() != 0 {
			t.Errorf("Written() = %d", d.Written())
		}
	})
	t.Run("short write", func(t *testing.T) {
		d := newDataWriter(&dataFailWriter{part: 2}, 998)
		d.Write([]byte("hello"))
		if err := d.Close(); err != io.ErrShortWrite {
			t.Fatalf("Close = %v, want io.ErrShortWrite", err)
		}
		if d.Written() != 2 {
			t.Errorf("Written() = %d, want 2", d.Written())
		}
	})
	t.Run("after Close", func(t *testing.T) {
		var out bytes.Buffer
		d := newDataWriter(&out, 998)
		d.Write([]byte("x"))
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		if n, err := d.Write([]byte("y")); n != 0 || err != errDataClosed {
			t.Errorf("Write after Close = %d, %v", n, err)
		}
		if err := d.Close(); err != errDataClosed {
			t.Errorf("second Close = %v", err)
		}
		if out.String() != "x\r\n.\r\n" {
			t.Errorf("output %q", out.String())
		}
	})
	t.Run("empty Write", func(t *testing.T) {
		var out bytes.Buffer
		d := newDataWriter(&out, 998)
		if n, err := d.Write(nil); n != 0 || err != nil {
			t.Fatalf("Write(nil) = %d, %v", n, err)
		}
		d.Close()
		if out.String() != ".\r\n" {
			t.Errorf("output %q", out.String())
		}
	})
}

func TestCRLFReaderErrors(t *testing.T) {
	rerr := &dataTestError{"read failed"}
	r := newCRLFReader(io.MultiReader(strings.NewReader("a\nb"), iotest.ErrReader(rerr)), 998)
	got, err := io.ReadAll(r)
	if err != rerr {
		t.Fatalf("error %v, want the reader's own", err)
	}
	// No CRLF is added to a message cut short by an error.
	if string(got) != "a\r\nb" {
		t.Fatalf("got %q", got)
	}
	if n, err := r.Read(make([]byte, 10)); n != 0 || err != rerr {
		t.Fatalf("Read after error = %d, %v", n, err)
	}

	// Data that comes with the error is still yielded.
	r = newCRLFReader(iotest.DataErrReader(strings.NewReader("x\ry")), 998)
	if got, err := io.ReadAll(r); err != nil || string(got) != "x\r\ny\r\n" {
		t.Fatalf("DataErrReader: %q, %v", got, err)
	}

	r = newCRLFReader(dataEmptyReader{}, 998)
	if _, err := r.Read(make([]byte, 10)); err != io.ErrNoProgress {
		t.Fatalf("endless empty reads: %v", err)
	}
	if n, err := r.Read(nil); n != 0 || err != nil {
		t.Fatalf("Read(nil) = %d, %v", n, err)
	}
}

type dataEmptyReader struct{}

func (dataEmptyReader) Read([]byte) (int, error) { return 0, nil }

// dataRandom returns n octets drawn from alphabet.
func dataRandom(rng *rand.Rand, n int, alphabet string) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = alphabet[rng.Intn(len(alphabet))]
	}
	return p
}

// dataRandomSplit cuts p into pieces at random points.
func dataRandomSplit(rng *rand.Rand, p []byte) [][]byte {
	var parts [][]byte
	for len(p) > 0 {
		k := rng.Intn(len(p) + 1)
		if rng.Intn(4) == 0 {
			k = min(1, len(p))
		}
		parts = append(parts, p[:k])
		p = p[k:]
	}
	return parts
}

func TestDataWriterProperties(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	limits := []int{0, 998, 1, 2, 3, 5, 8, 13}
	for i := range 2000 {
		in := dataRandom(rng, rng.Intn(300), "a.\r\n\x00\xff ")
		limit := limits[rng.Intn(len(limits))]
		parts := dataRandomSplit(rng, in)
		out := dataEncode(t, limit, parts...)
		dataCheck(t, in, out, limit)
		if whole := dataEncode(t, limit, in); !bytes.Equal(out, whole) {
			t.Fatalf("case %d: split writes differ from one write", i)
		}
		bdat := dataBDATEncode(t, limit, 1+rng.Intn(64), parts...)
		dataCheckBDAT(t, in, bdat, limit)
	}
}

// dataCountWriter counts what it is given and keeps nothing.
type dataCountWriter struct{ n int64 }

func (w *dataCountWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}

// dataMemBlock is 64 KiB of mail-like text with long lines, dots and
// every kind of line ending; it ends with a line ending.
func dataMemBlock() []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < 64<<10-2100; i++ {
		switch i % 7 {
		case 0:
			b.WriteString(".leading dot\n")
		case 1:
			b.WriteString(strings.Repeat("long ", 400) + "\r\n")
		case 2:
			b.WriteString("bare cr\r")
		default:
			b.WriteString("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do\n")
		}
	}
	return b.Bytes()
}

func TestDataWriterConstantMemory(t *testing.T) {
	total := 100 << 20
	if testing.Short() {
		total = 10 << 20
	}
	block := dataMemBlock()
	perBlock := int64(len(dataEncode(t, 998, block))) - 3

	var w dataCountWriter
	d := newDataWriter(&w, 998)
	if a := testing.AllocsPerRun(100, func() { d.Write(block) }); a != 0 {
		t.Errorf("Write allocates %v times per call", a)
	}

	var before, after runtime.MemStats
	w = dataCountWriter{}
	runtime.GC()
	runtime.ReadMemStats(&before)
	d = newDataWriter(&w, 998)
	blocks := 0
	for n := 0; n < total; n += len(block) {
		if _, err := d.Write(block); err != nil {
			t.Fatal(err)
		}
		blocks++
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)

	if want := int64(blocks)*perBlock + 3; w.n != want || d.Written() != want {
		t.Errorf("wrote %d (Written %d), want %d", w.n, d.Written(), want)
	}
	if d.Input() != int64(blocks*len(block)) {
		t.Errorf("Input() = %d, want %d", d.Input(), blocks*len(block))
	}
	// The writer itself is one or two allocations (its buffer, and the
	// struct if it escapes). The bounds leave room for whatever else the
	// test binary runs meanwhile, but are far below one allocation per
	// Write (1600 of them for 100 MiB) or anything that grows with the
	// input.
	mallocs := after.Mallocs - before.Mallocs
	bytesAlloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d MiB in: %d allocations, %d bytes allocated", blocks*len(block)>>20, mallocs, bytesAlloc)
	if mallocs > 1000 || bytesAlloc > 4<<20 {
		t.Errorf("%d allocations, %d bytes for %d MiB of input", mallocs, bytesAlloc, total>>20)
	}
}

func TestCRLFReaderConstantMemory(t *testing.T) {
	total := 100 << 20
	if testing.Short() {
		total = 10 << 20
	}
	block := dataMemBlock()
	n := (total + len(block) - 1) / len(block)
	perBlock := int64(len(dataRefNormalize(block, 998)))
	src := &dataRepeatReader{block: block, left: n}
	buf := make([]byte, 32<<10)
	var w dataCountWriter

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r := newCRLFReader(src, 998)
	if _, err := io.CopyBuffer(&w, r, buf); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if want := int64(n) * perBlock; w.n != want {
		t.Errorf("read %d, want %d", w.n, want)
	}
	mallocs := after.Mallocs - before.Mallocs
	bytesAlloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d MiB in: %d allocations, %d bytes allocated", n*len(block)>>20, mallocs, bytesAlloc)
	if mallocs > 1000 || bytesAlloc > 4<<20 {
		t.Errorf("%d allocations, %d bytes for %d MiB of input", mallocs, bytesAlloc, total>>20)
	}
}

// dataRepeatReader yields block left times, without allocating.
type dataRepeatReader struct {
	block []byte
	off   int
	left  int
}

func (r *dataRepeatReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.block[r.off:])
	r.off += n
	if r.off == len(r.block) {
		r.off = 0
		r.left--
	}
	return n, nil
}

// dataSeeds are inputs for the fuzz targets.
func dataSeeds() []string {
	seeds := []string{"\r\n.\r\n", "..\r\r\n.\n\r", strings.Repeat("x", 1000) + "\r.", "\x00\xff.\r"}
	for _, tc := range dataCases() {
		if len(tc.in) < 100 {
			seeds = append(seeds, tc.in)
		}
	}
	return seeds
}

func FuzzDataWriter(f *testing.F) {
	for i, s := range dataSeeds() {
		f.Add([]byte(s), uint(i), uint8(i%5))
	}
	f.Add([]byte(strings.Repeat("a", 300)+"\r\n."), uint(299), uint8(255))
	f.Fuzz(func(t *testing.T, in []byte, split uint, limit uint8) {
		i := int(split % uint(len(in)+1))
		out := dataEncode(t, int(limit), in[:i], in[i:])
		dataCheck(t, in, out, int(limit))
		if whole := dataEncode(t, int(limit), in); !bytes.Equal(out, whole) {
			t.Fatalf("split at %d differs from one write:\n%q\n%q", i, out, whole)
		}
		// DATA and BDAT must agree on the lines.
		text, _, _ := dataServerDecode(out)
		if bdat := dataBDATEncode(t, int(limit), 512, in); !bytes.Equal(text, bdat) {
			t.Fatalf("DATA and BDAT differ:\n%q\n%q", text, bdat)
		}
	})
}

func FuzzCRLFReader(f *testing.F) {
	for i, s := range dataSeeds() {
		f.Add([]byte(s), uint(i), uint8(i%5), uint8(i))
	}
	f.Fuzz(func(t *testing.T, in []byte, split uint, limit, readSize uint8) {
		i := int(split % uint(len(in)+1))
		out := dataBDATEncode(t, int(limit), 1+int(readSize), in[:i], in[i:])
		dataCheckBDAT(t, in, out, int(limit))
	})
}

// dataBenchBody is about 1 MiB of mail: a header, then text lines of
// about 70 octets, some starting with a dot, ended by eol.
func dataBenchBody(eol string) []byte {
	var b bytes.Buffer
	b.WriteString("From: a@example.org" + eol + "To: b@example.net" + eol +
		"Subject: benchmark" + eol + eol)
	words := strings.Fields("the quick brown fox jumps over a lazy dog while " +
		"mail flows through the relay and postfix qmail exim sendmail handoff")
	rng := rand.New(rand.NewSource(7))
	for b.Len() < 1<<20 {
		var line []byte
		if rng.Intn(20) == 0 {
			line = append(line, '.')
		}
		for len(line) < 60+rng.Intn(15) {
			line = append(append(line, words[rng.Intn(len(words))]...), ' ')
		}
		b.Write(line)
		b.WriteString(eol)
	}
	return b.Bytes()[:1<<20]
}

// dataBenchBodies are the benchmark inputs: realistic mail with LF and
// with CRLF line endings, and two unusual ones that must not be slow: bare
// CRs all through, and 1 MiB without any line ending.
func dataBenchBodies() []struct {
	name string
	body []byte
} {
	return []struct {
		name string
		body []byte
	}{
		{"LF", dataBenchBody("\n")},
		{"CRLF", dataBenchBody("\r\n")},
		{"BareCR", bytes.Repeat([]byte("a\r"), 1<<19)},
		{"NoEOL", bytes.Repeat([]byte("x"), 1<<20)},
	}
}

func BenchmarkDataWriter(b *testing.B) {
	for _, bb := range dataBenchBodies() {
		b.Run(bb.name, func(b *testing.B) {
			var w dataCountWriter
			b.SetBytes(int64(len(bb.body)))
			b.ReportAllocs()
			for b.Loop() {
				d := newDataWriter(&w, 998)
				d.Write(bb.body)
				if err := d.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkCRLFReader(b *testing.B) {
	for _, bb := range dataBenchBodies() {
		b.Run(bb.name, func(b *testing.B) {
			buf := make([]byte, 32<<10)
			src := bytes.NewReader(bb.body)
			var w dataCountWriter
			b.SetBytes(int64(len(bb.body)))
			b.ReportAllocs()
			for b.Loop() {
				src.Reset(bb.body)
				if _, err := io.CopyBuffer(&w, newCRLFReader(src, 998), buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// A stuffed first line may have limit+1 octets; its continuation starts
// with SP and is not stuffed.
func TestDataWriterStuffedLineLength(t *testing.T) {
	in := "." + strings.Repeat("x", 1500)
	out := dataEncode(t, 998, []byte(in))
	lines := strings.Split(string(out), "\r\n")
	if len(lines[0]) != 999 || lines[0][:2] != ".." {
		t.Fatalf("first line %d octets %q...", len(lines[0]), lines[0][:5])
	}
	if len(lines[1]) != 1+1501-998 || lines[1][0] != ' ' {
		t.Fatalf("second line %q", lines[1])
	}
}
