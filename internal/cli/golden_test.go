package cli

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files of TestGolden")

// TestGolden runs the whole program in-process for each folder under
// testdata/golden: the caller's exact argv, its stdin, a config, and a
// scripted SMTP sink; it compares the bytes the sink received, stdout,
// stderr, the exit status and any local mailbox with the want.* files.
//
// A case folder holds:
//
//	args          argv, one per line; the first is the name called by
//	stdin         the input (optional)
//	config.toml   the config named by HANDOFF_CONFIG; {{SINK}} is the
//	              sink's address, {{DOWN}} an address where nothing
//	              listens, {{SPOOL}} the mailbox directory (optional:
//	              default is hostname/domain only, so local delivery)
//	alt.toml      a second config, at {{TMP}}/alt.toml, for -C
//	              ({{TMP}} in args is the case's temporary directory)
//	script        sink replies: "PREFIX => REPLY" lines; the first rule
//	              whose PREFIX starts the client's line wins; REPLY may
//	              hold "\n" for multi-line replies (optional)
//	want.wire     what the client sent to the sink
//	want.stdout, want.stderr, want.exit
//	want.mbox.USER   the mailbox of USER after the run (optional)
//	want.dead.letter ~/dead.letter after the run (optional; checked
//	              absent otherwise)
func TestGolden(t *testing.T) {
	dirs, err := filepath.Glob("testdata/golden/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no golden cases: %v", err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) { runGolden(t, dir) })
	}
}

func readOpt(t *testing.T, path string) (string, bool) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b), true
}

func runGolden(t *testing.T, dir string) {
	argsText, ok := readOpt(t, filepath.Join(dir, "args"))
	if !ok {
		t.Fatal("no args file")
	}
	args := strings.Split(strings.TrimRight(argsText, "\n"), "\n")
	stdin, _ := readOpt(t, filepath.Join(dir, "stdin"))
	script, _ := readOpt(t, filepath.Join(dir, "script"))

	sink := startSink(t, script)
	down := closedAddr(t)
	tmp := t.TempDir()
	home := filepath.Join(tmp, "home")
	spool := filepath.Join(tmp, "spool")
	os.MkdirAll(home, 0o755)
	os.MkdirAll(spool, 0o1777)

	cfgText, ok := readOpt(t, filepath.Join(dir, "config.toml"))
	if !ok {
		cfgText = "hostname = \"host.example.org\"\ndomain = \"example.org\"\n"
	}
	cfgText = strings.NewReplacer("{{SINK}}", sink.addr, "{{DOWN}}", down, "{{SPOOL}}", spool).Replace(cfgText)
	cfgPath := filepath.Join(tmp, "handoff.toml")
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	// alt.toml, when present, is a second config for -C.
	if alt, ok := readOpt(t, filepath.Join(dir, "alt.toml")); ok {
		alt = strings.NewReplacer("{{SINK}}", sink.addr, "{{DOWN}}", down, "{{SPOOL}}", spool).Replace(alt)
		if err := os.WriteFile(filepath.Join(tmp, "alt.toml"), []byte(alt), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for i := range args {
		args[i] = strings.ReplaceAll(args[i], "{{TMP}}", tmp)
	}

	var stdout, stderr bytes.Buffer
	env := &Env{
		Stdin:  strings.NewReader(stdin),
		Stdout: &stdout,
		Stderr: &stderr,
		Getenv: func(k string) string {
			if k == "HANDOFF_CONFIG" {
				return cfgPath
			}
			return ""
		},
		User: func() (*user.User, error) {
			return &user.User{Uid: "1000", Gid: "1000", Username: "alice", Name: "Alice Example,,,", HomeDir: home}, nil
		},
		Now:             func() time.Time { return time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC) },
		StdinIsTerminal: func() bool { return false },
		MailSpool:       spool,
		Rand:            &countingRand{},
	}
	code := RunEnv(args, env)
	sink.close()

	// Paths and ports differ per run; the golden files use placeholders.
	clean := func(s string) string {
		return strings.NewReplacer(sink.addr, "{{SINK}}", down, "{{DOWN}}", tmp, "{{TMP}}").Replace(s)
	}
	got := map[string]string{
		"want.wire":   clean(sink.received()),
		"want.stdout": clean(stdout.String()),
		"want.stderr": clean(stderr.String()),
		"want.exit":   strconv.Itoa(code) + "\n",
	}
	if d, ok := readOpt(t, filepath.Join(home, "dead.letter")); ok {
		got["want.dead.letter"] = d
	}
	boxes, _ := filepath.Glob(filepath.Join(spool, "*"))
	for _, b := range boxes {
		if strings.HasSuffix(b, ".lock") {
			continue
		}
		data, _ := os.ReadFile(b)
		got["want.mbox."+filepath.Base(b)] = string(data)
	}
	if *update {
		old, _ := filepath.Glob(filepath.Join(dir, "want.*"))
		for _, f := range old {
			os.Remove(f)
		}
		for name, content := range got {
			if content == "" && name != "want.exit" && name != "want.wire" {
				continue
			}
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	names := make([]string, 0, len(got))
	for n := range got {
		names = append(names, n)
	}
	existing, _ := filepath.Glob(filepath.Join(dir, "want.*"))
	for _, f := range existing {
		if _, ok := got[filepath.Base(f)]; !ok {
			t.Errorf("%s: expected, but the run produced nothing", filepath.Base(f))
		}
	}
	sort.Strings(names)
	for _, name := range names {
		want, _ := readOpt(t, filepath.Join(dir, name))
		if got[name] != want {
			t.Errorf("%s differs:\n--- got\n%s\n--- want\n%s", name, got[name], want)
		}
	}
}

// countingRand is a deterministic random source for Message-IDs.
type countingRand struct{ n byte }

func (r *countingRand) Read(p []byte) (int, error) {
	for i := range p {
		r.n++
		p[i] = r.n
	}
	return len(p), nil
}

// closedAddr returns a loopback address where nothing listens.
func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().String()
	ln.Close()
	return a
}

// sink is a scripted SMTP server that records everything the client
// sends, for any number of connections, one after another.
type sink struct {
	ln    net.Listener
	addr  string
	rules [][2]string
	wg    sync.WaitGroup
	mu    sync.Mutex
	rx    bytes.Buffer
	// discard, when set, keeps message data out of rx: only its size
	// and longest line are recorded (for large-message tests).
	discard   bool
	dataBytes int64
	maxLine   int
}

func startSink(t *testing.T, script string) *sink {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &sink{ln: ln, addr: ln.Addr().String()}
	for _, l := range strings.Split(script, "\n") {
		if p, r, ok := strings.Cut(l, " => "); ok {
			s.rules = append(s.rules, [2]string{p, strings.ReplaceAll(r, `\n`, "\n")})
		}
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.serve(c)
		}
	}()
	t.Cleanup(s.close)
	return s
}

func (s *sink) close() { s.ln.Close(); s.wg.Wait() }

func (s *sink) received() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rx.String()
}

// reply finds the scripted reply for a client line, or def.
func (s *sink) reply(line, def string) string {
	for _, r := range s.rules {
		if strings.HasPrefix(line, r[0]) {
			return r[1]
		}
	}
	return def
}

func (s *sink) serve(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	inData := false
	br := bufio.NewReader(io.TeeReader(c, writerFunc(func(p []byte) {
		s.mu.Lock()
		if !(s.discard && inData) {
			s.rx.Write(p)
		}
		s.mu.Unlock()
	})))
	bw := bufio.NewWriter(c)
	send := func(r string) {
		lines := strings.Split(r, "\n")
		for _, l := range lines {
			fmt.Fprintf(bw, "%s\r\n", l)
		}
		if br.Buffered() == 0 {
			bw.Flush()
		}
	}
	greet := s.reply("<greeting>", "220 sink.test ESMTP")
	send(greet)
	bw.Flush()
	if !strings.HasPrefix(greet, "220") {
		return
	}
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			bw.Flush()
			return
		}
		l = strings.TrimRight(l, "\r\n")
		verb := strings.ToUpper(strings.SplitN(l, " ", 2)[0])
		switch verb {
		case "EHLO", "LHLO":
			send(s.reply(l, "250-sink.test\n250-PIPELINING\n250-8BITMIME\n250-SIZE 10000000\n250-DSN\n250-SMTPUTF8\n250 ENHANCEDSTATUSCODES"))
		case "DATA":
			r := s.reply(l, "354 go ahead")
			send(r)
			bw.Flush()
			if !strings.HasPrefix(r, "354") {
				continue
			}
			for {
				inData = s.discard
				d, err := br.ReadSlice('\n')
				if err == bufio.ErrBufferFull {
					s.mu.Lock()
					s.dataBytes += int64(len(d))
					s.maxLine = max(s.maxLine, 1<<30) // longer than the reader's buffer
					s.mu.Unlock()
					continue
				}
				if err != nil {
					return
				}
				s.mu.Lock()
				s.dataBytes += int64(len(d))
				s.maxLine = max(s.maxLine, len(d))
				s.mu.Unlock()
				if string(d) == ".\r\n" {
					break
				}
			}
			inData = false
			send(s.reply("<end of data>", "250 2.0.0 Ok: queued as SINK1"))
		case "QUIT":
			send(s.reply(l, "221 2.0.0 bye"))
			bw.Flush()
			return
		default:
			r := s.reply(l, "250 2.0.0 Ok")
			send(r)
			if strings.HasPrefix(r, "421") {
				bw.Flush()
				return
			}
		}
	}
}

type writerFunc func([]byte)

func (f writerFunc) Write(p []byte) (int, error) { f(p); return len(p), nil }
