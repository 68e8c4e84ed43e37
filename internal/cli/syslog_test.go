package cli

import (
	"bufio"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

var syslogLine = regexp.MustCompile(`^<22>[A-Z][a-z]{2} [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2} handoff\[([0-9]+)\]: 1K1C4: to=<bob@example\.net>, status=sent$`)

// useSyslogPath points syslogPath at path for one test.
func useSyslogPath(t *testing.T, path string) {
	old := syslogPath
	syslogPath = path
	t.Cleanup(func() { syslogPath = old })
}

// The delivery log reaches a datagram syslog socket (journald's /dev/log)
// as one message per line: facility mail, severity info, tag and pid.
// When the syslog daemon restarts, the next line goes to the new socket.
func TestSyslogDatagram(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	useSyslogPath(t, path)
	listen := func() *net.UnixConn {
		c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	l := listen()
	w, err := dialSyslog()
	if err != nil {
		t.Fatal(err)
	}
	read := func(l *net.UnixConn) {
		t.Helper()
		buf := make([]byte, 2048)
		n, err := l.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		m := syslogLine.FindStringSubmatch(string(buf[:n]))
		if m == nil || m[1] != strconv.Itoa(os.Getpid()) {
			t.Errorf("syslog got %q", buf[:n])
		}
	}
	if _, err := w.Write([]byte("1K1C4: to=<bob@example.net>, status=sent\n")); err != nil {
		t.Fatal(err)
	}
	read(l)
	// The daemon restarts: its socket is made anew.
	l.Close()
	os.Remove(path)
	l = listen()
	defer l.Close()
	if _, err := w.Write([]byte("1K1C4: to=<bob@example.net>, status=sent\n")); err != nil {
		t.Fatalf("after the restart: %v", err)
	}
	read(l)
}

// A stream syslog socket (some rsyslog setups) gets newline-terminated
// messages; no socket at all is an error, which logWriter turns into no
// log (delivery never fails for want of one).
func TestSyslogStreamAndAbsent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	useSyslogPath(t, path)
	if _, err := dialSyslog(); err == nil {
		t.Fatal("dialSyslog succeeded with no socket")
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan string, 2)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		for range 2 {
			l, err := br.ReadString('\n')
			if err != nil {
				return
			}
			got <- l
		}
	}()
	w, err := dialSyslog()
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := w.Write([]byte("1K1C4: to=<bob@example.net>, status=sent")); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		l := <-got
		if !syslogLine.MatchString(l[:len(l)-1]) {
			t.Errorf("syslog got %q", l)
		}
	}
}
