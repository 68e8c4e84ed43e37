package relay

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeServer is a scripted SMTP/LMTP peer on 127.0.0.1:0 for one
// connection. The script runs in its own goroutine; every byte the client
// sends is recorded so tests can compare exact transcripts.
type fakeServer struct {
	t    testing.TB
	ln   net.Listener
	addr string
	done chan struct{}

	mu sync.Mutex
	rx bytes.Buffer
}

// session is the server side of one connection, used by a script.
type session struct {
	t    testing.TB
	srv  *fakeServer
	conn net.Conn
	br   *bufio.Reader
	// failed is set when the script saw something unexpected; the script
	// should return.
	failed bool
}

// startFake listens on a loopback port and runs script on the first
// connection. The test fails if the script reports a mismatch.
func startFake(t testing.TB, script func(s *session)) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return startFakeListener(t, ln, script)
}

// startFakeListener is startFake on a listener the test made (a TLS
// listener for implicit TLS, a Unix socket).
func startFakeListener(t testing.TB, ln net.Listener, script func(s *session)) *fakeServer {
	t.Helper()
	f := &fakeServer{t: t, ln: ln, addr: ln.Addr().String(), done: make(chan struct{})}
	go func() {
		defer close(f.done)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(20 * time.Second))
		s := &session{t: t, srv: f, conn: conn}
		s.setConn(conn)
		script(s)
	}()
	t.Cleanup(func() {
		ln.Close()
		select {
		case <-f.done:
		case <-time.After(25 * time.Second):
			t.Error("fake server script did not finish")
		}
	})
	return f
}

func (s *session) setConn(c net.Conn) {
	s.conn = c
	s.br = bufio.NewReader(io.TeeReader(c, recorder{s.srv}))
}

type recorder struct{ f *fakeServer }

func (r recorder) Write(p []byte) (int, error) {
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	return r.f.rx.Write(p)
}

// received returns everything the client sent so far (waits for the
// script to end first).
func (f *fakeServer) received() string {
	<-f.done
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rx.String()
}

// wait blocks until the script has returned.
func (f *fakeServer) wait() { <-f.done }

// send writes reply lines, each followed by CRLF.
func (s *session) send(lines ...string) {
	for _, l := range lines {
		if _, err := io.WriteString(s.conn, l+"\r\n"); err != nil {
			s.failed = true
			return
		}
	}
}

// raw writes bytes as they are.
func (s *session) raw(b string) { io.WriteString(s.conn, b) }

// line reads one client line without CRLF; "" and failed on EOF.
func (s *session) line() string {
	l, err := s.br.ReadString('\n')
	if err != nil {
		s.failed = true
		return ""
	}
	return strings.TrimSuffix(l, "\r\n")
}

// expect reads one line and checks it.
func (s *session) expect(want string) bool {
	if s.failed {
		return false
	}
	got := s.line()
	if got != want {
		s.t.Errorf("server expected %q, got %q", want, got)
		s.failed = true
		return false
	}
	return true
}

// expectPrefix reads one line and checks its start.
func (s *session) expectPrefix(want string) string {
	if s.failed {
		return ""
	}
	got := s.line()
	if !strings.HasPrefix(got, want) {
		s.t.Errorf("server expected a line starting %q, got %q", want, got)
		s.failed = true
	}
	return got
}

// data reads message data up to and including the final "." line and
// returns it as sent (still stuffed), without the final ".\r\n".
func (s *session) data() string {
	var b strings.Builder
	for !s.failed {
		l, err := s.br.ReadString('\n')
		if err != nil {
			s.failed = true
			break
		}
		if l == ".\r\n" {
			break
		}
		b.WriteString(l)
	}
	return b.String()
}

// readN reads exactly n bytes (for BDAT).
func (s *session) readN(n int) string {
	buf := make([]byte, n)
	if _, err := io.ReadFull(s.br, buf); err != nil {
		s.failed = true
	}
	return string(buf)
}

// greetEHLO sends the greeting and answers EHLO with the given keywords.
func (s *session) greetEHLO(ext ...string) bool {
	s.send("220 fake.test ESMTP")
	if s.expectPrefix("EHLO ") == "" && s.failed {
		return false
	}
	s.ehloReply(ext...)
	return !s.failed
}

func (s *session) ehloReply(ext ...string) {
	if len(ext) == 0 {
		s.send("250 fake.test")
		return
	}
	s.send("250-fake.test")
	for i, e := range ext {
		if i == len(ext)-1 {
			s.send("250 " + e)
		} else {
			s.send("250-" + e)
		}
	}
}

// startTLS answers STARTTLS and wraps the server side in TLS.
func (s *session) startTLS(cfg *tls.Config) bool {
	if !s.expect("STARTTLS") {
		return false
	}
	s.send("220 2.0.0 go ahead")
	tc := tls.Server(s.conn, cfg)
	if err := tc.Handshake(); err != nil {
		s.failed = true
		return false
	}
	s.setConn(tc)
	return true
}

// quit answers QUIT if it comes.
func (s *session) quit() {
	if s.expect("QUIT") {
		s.send("221 2.0.0 bye")
	}
}

// plainOpts dials the fake server without TLS.
func plainOpts(f *fakeServer) Options {
	return Options{Address: f.addr, TLS: NoTLS, LocalName: "client.test"}
}

func dialFake(t testing.TB, f *fakeServer, o Options) *Client {
	t.Helper()
	c, err := Dial(context.Background(), o)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
