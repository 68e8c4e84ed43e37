package relay

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// --- an in-process sink ------------------------------------------------

// sink is a minimal, fast SMTP/LMTP server on 127.0.0.1:0 that accepts
// every command. It reads commands with one bufio.Reader and answers each
// in order, flushing only when no more input is buffered, so pipelined
// groups (RFC 2920) get their replies in one write and lock-step
// commands get theirs at once. It allocates nothing per command or per
// data line.
type sink struct {
	ln         net.Listener
	addr       string
	pipelining bool
	lmtp       bool

	msgs      atomic.Int64 // messages taken (end of data seen)
	dataBytes atomic.Int64 // data octets received, as sent (stuffed), without the final ".\r\n"

	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
}

func startSink(tb testing.TB, pipelining, lmtp bool) *sink {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := &sink{ln: ln, addr: ln.Addr().String(), pipelining: pipelining, lmtp: lmtp}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, conn)
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer conn.Close()
				s.serve(conn)
			}()
		}
	}()
	tb.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for _, c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *sink) opts() Options {
	return Options{Address: s.addr, TLS: NoTLS, LMTP: s.lmtp, LocalName: "bench.test"}
}

var (
	sinkEHLO           = "250-sink.test\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250 SMTPUTF8\r\n"
	sinkEHLOPipelining = "250-sink.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250 SMTPUTF8\r\n"
)

func (s *sink) serve(conn net.Conn) {
	br := bufio.NewReaderSize(conn, 64<<10)
	bw := bufio.NewWriterSize(conn, 4<<10)
	bw.WriteString("220 sink.test ESMTP\r\n")
	rcpts := 0
	for {
		if br.Buffered() == 0 {
			if bw.Flush() != nil {
				return
			}
		}
		line, err := br.ReadSlice('\n')
		if err != nil {
			return
		}
		verb := line
		if len(verb) > 4 {
			verb = verb[:4]
		}
		switch {
		case bytes.EqualFold(verb, []byte("EHLO")), bytes.EqualFold(verb, []byte("LHLO")):
			if s.pipelining {
				bw.WriteString(sinkEHLOPipelining)
			} else {
				bw.WriteString(sinkEHLO)
			}
		case bytes.EqualFold(verb, []byte("HELO")):
			bw.WriteString("250 sink.test\r\n")
		case bytes.EqualFold(verb, []byte("MAIL")):
			rcpts = 0
			bw.WriteString("250 2.1.0 ok\r\n")
		case bytes.EqualFold(verb, []byte("RCPT")):
			rcpts++
			bw.WriteString("250 2.1.5 ok\r\n")
		case bytes.EqualFold(verb, []byte("DATA")):
			bw.WriteString("354 go ahead\r\n")
			n, err := readSinkData(br, bw)
			if err != nil {
				return
			}
			s.dataBytes.Add(n)
			s.msgs.Add(1)
			replies := 1
			if s.lmtp {
				replies = rcpts
			}
			for range replies {
				bw.WriteString("250 2.0.0 queued\r\n")
			}
			rcpts = 0
		case bytes.EqualFold(verb, []byte("RSET")):
			rcpts = 0
			bw.WriteString("250 2.0.0 ok\r\n")
		case bytes.EqualFold(verb, []byte("NOOP")):
			bw.WriteString("250 2.0.0 ok\r\n")
		case bytes.EqualFold(verb, []byte("QUIT")):
			bw.WriteString("221 2.0.0 bye\r\n")
			bw.Flush()
			return
		default:
			bw.WriteString("502 5.5.2 unknown command\r\n")
		}
	}
}

// readSinkData reads message data up to the end-of-data line and returns
// the number of octets before it.
func readSinkData(br *bufio.Reader, bw *bufio.Writer) (int64, error) {
	var n int64
	bol := true
	for {
		if br.Buffered() == 0 {
			if err := bw.Flush(); err != nil {
				return n, err
			}
		}
		chunk, err := br.ReadSlice('\n')
		if err != nil && err != bufio.ErrBufferFull {
			return n, err
		}
		if bol && err == nil && string(chunk) == ".\r\n" {
			return n, nil
		}
		n += int64(len(chunk))
		bol = err == nil
	}
}

// --- generated messages --------------------------------------------------

// genBlock is 64 lines of 64 octets, CRLF included; no line starts with
// a dot, so the data on the wire is exactly the message.
var genBlock = func() []byte {
	var b bytes.Buffer
	for i := range 64 {
		fmt.Fprintf(&b, "%-62.62s\r\n", fmt.Sprintf("line %02d: the quick brown fox jumps over the lazy dog %d", i, i*7919))
	}
	return b.Bytes()
}()

// genReader yields a message of n octets made of genBlock's lines,
// generated on the fly; it holds no buffer of its own.
type genReader struct {
	remaining int64
	off       int
}

func (g *genReader) Read(p []byte) (int, error) {
	if g.remaining <= 0 {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && g.remaining > 0 {
		chunk := genBlock[g.off:]
		if int64(len(chunk)) > g.remaining {
			chunk = chunk[:g.remaining]
		}
		c := copy(p[n:], chunk)
		n += c
		g.off = (g.off + c) % len(genBlock)
		g.remaining -= int64(c)
	}
	return n, nil
}

// msg2K is a 2 KB message: headers and a body of text lines.
var msg2K = func() []byte {
	var b bytes.Buffer
	b.WriteString("From: sender@example.org\r\nTo: rcpt@example.net\r\nSubject: benchmark\r\nMessage-ID: <bench@example.org>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\n")
	for b.Len() < 2048 {
		b.Write(genBlock[:64])
	}
	b.Truncate(2046)
	b.WriteString("\r\n")
	return b.Bytes()
}()

// --- tests of the helpers and of streaming ------------------------------------

func TestGenReader(t *testing.T) {
	got, err := io.ReadAll(&genReader{remaining: 3*4096 + 128})
	if err != nil || len(got) != 3*4096+128 {
		t.Fatalf("%d bytes, %v", len(got), err)
	}
	if !bytes.Equal(got[4096:8192], genBlock) || !bytes.HasSuffix(got, []byte("\r\n")) {
		t.Error("generated data does not repeat genBlock")
	}
	for _, l := range strings.SplitAfter(string(got), "\r\n") {
		if l != "" && (len(l) != 64 || l[0] == '.') {
			t.Fatalf("line %q", l)
		}
	}
	if len(msg2K) != 2048 || !bytes.HasSuffix(msg2K, []byte("\r\n")) {
		t.Errorf("msg2K is %d bytes", len(msg2K))
	}
}

// The sink answers a pipelined group in order and counts the data.
func TestSinkPipelined(t *testing.T) {
	for _, lmtp := range []bool{false, true} {
		s := startSink(t, true, lmtp)
		c, err := Dial(bg, s.opts())
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := c.Extension("PIPELINING"); !ok {
			t.Fatal("no PIPELINING")
		}
		for range 3 {
			res, err := c.SendMail(bg, "a@x.test", []string{"b@y.test", "c@y.test"}, bytes.NewReader(msg2K), nil)
			if err != nil || res.Delivered() != 2 {
				t.Fatalf("lmtp=%v: %v %+v", lmtp, err, res)
			}
		}
		if err := c.Quit(bg); err != nil {
			t.Fatal(err)
		}
		if s.msgs.Load() != 3 || s.dataBytes.Load() != 3*int64(len(msg2K)) {
			t.Errorf("lmtp=%v: sink got %d messages, %d bytes", lmtp, s.msgs.Load(), s.dataBytes.Load())
		}
	}
}

// A large message is streamed: the client's allocations do not grow with
// its size.
func TestSendMailLargeMessageMemory(t *testing.T) {
	const size = 64 << 20
	s := startSink(t, true, false)
	c, err := Dial(bg, s.opts())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	res, err := c.SendMail(bg, "a@x.test", []string{"b@y.test"}, &genReader{remaining: size}, nil)
	runtime.ReadMemStats(&after)
	if err != nil || res.Delivered() != 1 {
		t.Fatalf("%v %+v", err, res)
	}
	if got := s.dataBytes.Load(); got != size {
		t.Errorf("sink got %d bytes, want %d", got, size)
	}
	grew := after.TotalAlloc - before.TotalAlloc
	t.Logf("TotalAlloc grew by %d bytes for a %d MB message", grew, size>>20)
	if grew >= 8<<20 {
		t.Errorf("TotalAlloc grew by %d bytes sending %d bytes: the message is not streamed", grew, size)
	}
}

// --- benchmarks ------------------------------------------------------------

func benchSendMail(b *testing.B, pipelining, lmtp bool, opts *SendOptions) {
	s := startSink(b, pipelining, lmtp)
	c, err := Dial(bg, s.opts())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	to := []string{"rcpt@example.net"}
	r := bytes.NewReader(msg2K)
	b.ReportAllocs()
	b.SetBytes(int64(len(msg2K)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r.Reset(msg2K)
		if _, err := c.SendMail(bg, "sender@example.org", to, r, opts); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	if err := c.Quit(bg); err != nil {
		b.Fatal(err)
	}
	if got := s.msgs.Load(); got != int64(b.N) {
		b.Fatalf("sink got %d messages, want %d", got, b.N)
	}
}

// MAIL, RCPT and DATA in one write, their replies in one read.
func BenchmarkSendMailPipelined(b *testing.B) { benchSendMail(b, true, false, nil) }

// As a queue run sends: the next message's MAIL, RCPT and DATA go out
// behind each message's final dot (SendOptions.Next), one round trip a
// message.
func BenchmarkSendMailAhead(b *testing.B) {
	size := &SendOptions{Mail: MailOptions{Size: int64(len(msg2K))}}
	opts := *size
	opts.Next = &NextMessage{From: "sender@example.org", To: []string{"rcpt@example.net"}, Options: size}
	benchSendMail(b, true, false, &opts)
}

// One round trip per command: the server does not offer PIPELINING.
func BenchmarkSendMailLockStep(b *testing.B) { benchSendMail(b, false, false, nil) }

// LMTP, pipelined, one reply per recipient after the data.
func BenchmarkSendMailLMTPPipelined(b *testing.B) { benchSendMail(b, true, true, nil) }

// One 100 MB message, generated as it is read, per iteration.
func BenchmarkSendMail100MB(b *testing.B) { benchSendMailSize(b, 100<<20) }

// The same at other sizes, to see whether B/op and allocs/op depend on
// the size of the message.
func BenchmarkSendMailSize(b *testing.B) {
	for _, mb := range []int64{1, 10, 100} {
		b.Run(fmt.Sprintf("%dMB", mb), func(b *testing.B) { benchSendMailSize(b, mb<<20) })
	}
}

func benchSendMailSize(b *testing.B, size int64) {
	s := startSink(b, true, false)
	c, err := Dial(bg, s.opts())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	to := []string{"rcpt@example.net"}
	g := &genReader{}
	b.ReportAllocs()
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		*g = genReader{remaining: size}
		if _, err := c.SendMail(bg, "sender@example.org", to, g, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if got := s.dataBytes.Load(); got != int64(b.N)*size {
		b.Fatalf("sink got %d bytes, want %d", got, int64(b.N)*size)
	}
}

// A typical 10-line EHLO reply.
func BenchmarkReadReply(b *testing.B) {
	data := []byte("250-mail.example.org\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY\r\n250-ETRN\r\n250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250 SMTPUTF8\r\n")
	rd := bytes.NewReader(data)
	br := bufio.NewReaderSize(rd, 4096)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		rd.Reset(data)
		br.Reset(rd)
		r, err := readReply(br, nil)
		if err != nil || len(r.Lines) != 10 {
			b.Fatalf("%v %v", r, err)
		}
	}
}
