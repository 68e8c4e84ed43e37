package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestUsageErrors(t *testing.T) {
	cases := map[string][]string{
		"unknown command": {"handoff", "frobnicate"},
		"probe no url":    {"handoff", "probe"},
		"probe bad url":   {"handoff", "probe", "gopher://x"},
		"probe bad flag":  {"handoff", "probe", "-x", "smtp://x"},
	}
	for name, argv := range cases {
		var out, errb bytes.Buffer
		if code := Run(argv, nil, &out, &errb); code != exUsage {
			t.Errorf("%s: exit %d, stderr %q", name, code, errb.String())
		}
	}
	var out bytes.Buffer
	if code := Run([]string{"handoff", "version"}, nil, &out, &out); code != 0 || !strings.HasPrefix(out.String(), "handoff ") {
		t.Errorf("version: %d %q", code, out.String())
	}
}

// probe against a minimal server: greeting, EHLO with extensions, QUIT.
func TestProbe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		c.Write([]byte("220 probe.test ESMTP\r\n"))
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				return
			}
			switch {
			case strings.HasPrefix(l, "EHLO"):
				c.Write([]byte("250-probe.test\r\n250-SIZE 1000\r\n250 PIPELINING\r\n"))
			case strings.HasPrefix(l, "QUIT"):
				c.Write([]byte("221 bye\r\n"))
				return
			default:
				c.Write([]byte("500 what\r\n"))
			}
		}
	}()
	var out, errb bytes.Buffer
	code := Run([]string{"handoff", "probe", "-v", "smtp://" + ln.Addr().String()}, nil, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, w := range []string{"greeting:   220 probe.test ESMTP", "tls:        none", "extension:  PIPELINING", "extension:  SIZE 1000"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("output lacks %q:\n%s", w, out.String())
		}
	}
	if !strings.Contains(errb.String(), "send: QUIT") {
		t.Errorf("-v transcript missing:\n%s", errb.String())
	}
}

func TestProbeUnreachable(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	var out, errb bytes.Buffer
	if code := Run([]string{"handoff", "probe", "smtp://" + addr}, nil, &out, &errb); code != exTempFail {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
	if strings.Count(errb.String(), "\n") != 1 {
		t.Errorf("want one line, got %q", errb.String())
	}
}

// testEnv runs the sendmail interface in-process against a config.
func testEnv(t *testing.T, cfg string, stdin io.Reader) (*Env, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	tmp := t.TempDir()
	cfgPath := filepath.Join(tmp, "handoff.toml")
	if !strings.Contains(cfg, "[queue]") {
		// Never /var/spool/handoff.
		cfg += "\n[queue]\ndir = \"" + filepath.Join(tmp, "queue") + "\"\n"
	}
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	home := filepath.Join(tmp, "home")
	os.Mkdir(home, 0o755)
	return &Env{
		Stdin: stdin, Stdout: &stdout, Stderr: &stderr,
		Getenv: func(k string) string {
			if k == "HANDOFF_CONFIG" {
				return cfgPath
			}
			return ""
		},
		User: func() (*user.User, error) {
			return &user.User{Uid: "1000", Gid: "1000", Username: "alice", Name: "Alice", HomeDir: home}, nil
		},
		Now:             time.Now,
		StdinIsTerminal: func() bool { return false },
		MailSpool:       filepath.Join(tmp, "spool"),
		Log:             io.Discard,
	}, &stdout, &stderr
}

// Hostile input through the whole pipeline: a 9 MB line, NUL bytes,
// non-UTF-8 headers. It is delivered, no line on the wire exceeds 1000
// octets, and memory stays bounded.
func TestHostileInputDelivered(t *testing.T) {
	s := startSink(t, "")
	s.discard = true
	cfg := "hostname = \"h.example.org\"\ndomain = \"example.org\"\n[[relay]]\nurl = \"smtp://" + s.addr + "\"\nstarttls = \"none\"\n"
	input := io.MultiReader(
		strings.NewReader("Subject: caf\xe9 \xff\nX-Bin: a\x00b\n\n"),
		io.LimitReader(repeatReader('x'), 9<<20),
		strings.NewReader("\nend\x00\n"),
	)
	env, _, stderr := testEnv(t, cfg, input)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	code := RunEnv([]string{"sendmail", "-i", "bob@example.net"}, env)
	runtime.ReadMemStats(&after)
	s.close()
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if s.dataBytes < 9<<20 {
		t.Fatalf("only %d bytes of data reached the server", s.dataBytes)
	}
	if s.maxLine > 1000 {
		t.Errorf("a line of %d octets (CRLF included) went on the wire", s.maxLine)
	}
	if wire := s.received(); !strings.Contains(wire, "BODY=8BITMIME") {
		t.Errorf("8-bit content not declared: %q", wire)
	}
	if grown := after.HeapInuse - min(after.HeapInuse, before.HeapInuse); grown > 8<<20 {
		t.Errorf("heap grew by %d bytes for a 9 MB message", grown)
	}
}

type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

// CR, LF or NUL in an envelope value is refused with exit 65 before
// anything is read or sent.
func TestEnvelopeInjectionRefused(t *testing.T) {
	s := startSink(t, "")
	cfg := "hostname = \"h.example.org\"\ndomain = \"example.org\"\n[[relay]]\nurl = \"smtp://" + s.addr + "\"\nstarttls = \"none\"\n"
	for _, args := range [][]string{
		{"sendmail", "-f", "a@b\r\nRCPT TO:<evil@x>", "bob@example.net"},
		{"sendmail", "-F", "Name\nBcc: evil@x", "bob@example.net"},
		{"sendmail", "bob@example.net\nevil@x"},
		{"sendmail", "-f", "a\x00b", "bob@example.net"},
	} {
		env, _, stderr := testEnv(t, cfg, strings.NewReader("Subject: x\n\nbody\n"))
		if code := RunEnv(args, env); code != exDataErr {
			t.Errorf("%q: exit %d, stderr %q", args, code, stderr.String())
		}
		if strings.Count(stderr.String(), "\n") != 1 {
			t.Errorf("%q: want one line, got %q", args, stderr.String())
		}
	}
	s.close()
	if got := s.received(); got != "" {
		t.Errorf("something reached the server: %q", got)
	}
}

// [log] format = "json": one JSON object per recipient per attempt, with
// the fields of PRODUCT.md §8.
func TestDeliveryLogJSON(t *testing.T) {
	s := startSink(t, "RCPT TO:<bad@example.net> => 550 5.1.1 no such user")
	cfg := "hostname = \"h.example.org\"\ndomain = \"example.org\"\n[log]\nformat = \"json\"\n[[relay]]\nname = \"isp\"\nurl = \"smtp://" + s.addr + "\"\nstarttls = \"none\"\n"
	env, _, _ := testEnv(t, cfg, strings.NewReader("Subject: x\n\nbody\n"))
	var log bytes.Buffer
	env.Log = &log
	RunEnv([]string{"sendmail", "-i", "bob@example.net", "bad@example.net"}, env)
	s.close()
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 log lines:\n%s", log.String())
	}
	want := map[string]string{"bob@example.net": "sent", "bad@example.net": "bounced"}
	for _, l := range lines {
		var e logEntry
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		if e.QueueID != "-" || e.From != "alice@example.org" || e.Relay != "isp" || e.Server != s.addr || want[e.To] != e.Status || e.Reply == "" {
			t.Errorf("entry %+v", e)
		}
	}
}
