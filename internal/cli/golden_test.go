package cli

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files of TestGolden")

// TestGolden runs the whole program in-process for each folder under
// testdata/golden: the caller's exact argv, its stdin, a config, and a
// scripted SMTP sink; it compares the bytes the sink received, stdout,
// stderr, the exit status, any local mailbox and the queue with the
// want.* files.
//
// A case folder holds:
//
//	args          argv, one per line; the first is the name called by
//	stdin         the input (optional)
//	config.toml   the config named by HANDOFF_CONFIG; {{SINK}} is the
//	              sink's address, {{DOWN}} an address where nothing
//	              listens, {{SPOOL}} the mailbox directory, {{QUEUE}}
//	              the queue directory, {{TMP}}/queue, {{TMP}} the case's
//	              temporary directory (optional: default is
//	              hostname/domain only, so local delivery). A config
//	              without a [queue] table gets one with dir = {{QUEUE}};
//	              one with a [queue] table must set dir = "{{QUEUE}}"
//	              or "{{TMP}}/...": no test touches /var/spool/handoff.
//	alt.toml      a second config, at {{TMP}}/alt.toml, for -C
//	              ({{TMP}} in args is the case's temporary directory)
//	script        sink replies: "PREFIX => REPLY" lines; the first rule
//	              whose PREFIX starts the client's line wins; REPLY may
//	              hold "\n" for multi-line replies (optional)
//	uid           "0" to run as root (default: alice, uid 1000); uidN
//	              for run N of then
//	then          follow-up runs in the same directories, queue and
//	              sink: argv blocks (one argument a line) separated by
//	              an empty line. Run N (2, 3, ...) reads stdinN (default
//	              empty), the sink answers by scriptN (default: the
//	              rules of the run before), and the clock is 2 hours
//	              later than at the run before, so that what the first
//	              run queued is due. {{QID1}}, {{QID2}}, ... in the argv
//	              are the ids in the queue when the run starts, oldest
//	              first. Each run's output is preceded by a line
//	              "=== run N" in want.wire, want.stdout and want.stderr,
//	              want.exit has one line per run, and want.queue the
//	              queue after each run, preceded by "=== after run N".
//	want.wire     what the client sent to the sink
//	want.stdout, want.stderr, want.exit
//	want.mbox.USER   the mailbox of USER after the run (optional)
//	want.dead.letter ~/dead.letter after the run (optional; checked
//	              absent otherwise)
//	want.queue    the envelope files of the queue after the run, oldest
//	              first, each followed by an empty line (optional;
//	              checked empty otherwise)
//
// Volatile values are replaced everywhere: queue ids by {{ID1}},
// {{ID2}}, ... in the order of arrival, next-attempt times by {{NEXT}},
// the random parts of DSN boundaries and Message-IDs by {{BOUNDARY}}
// and {{RAND}}.
func TestGolden(t *testing.T) {
	dirs, err := filepath.Glob("testdata/golden/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no golden cases: %v", err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) { runGolden(t, dir) })
	}
}

func TestMain(m *testing.M) {
	// mailq shows arrival times in local time: the golden files are in
	// UTC.
	time.Local = time.UTC
	os.Exit(m.Run())
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

// withQueue gives a config text a [queue] table in the test's directory,
// or checks that it has one.
func withQueue(t *testing.T, cfg string) string {
	t.Helper()
	if !strings.Contains(cfg, "[queue]") {
		return strings.TrimRight(cfg, "\n") + "\n\n[queue]\ndir = \"{{QUEUE}}\"\n"
	}
	if !strings.Contains(cfg, `dir = "{{QUEUE}}"`) && !strings.Contains(cfg, `dir = "{{TMP}}/`) {
		t.Fatal(`a config with a [queue] table must set dir = "{{QUEUE}}" (or "{{TMP}}/...")`)
	}
	return cfg
}

// goldenEnv is the Env of a golden run.
func goldenEnv(cfgPath, home, spool string, stdin string, stdout, stderr, log io.Writer, root bool, now time.Time) *Env {
	u := &user.User{Uid: "1000", Gid: "1000", Username: "alice", Name: "Alice Example,,,", HomeDir: home}
	if root {
		u = &user.User{Uid: "0", Gid: "0", Username: "root", Name: "root", HomeDir: home}
	}
	return &Env{
		Stdin:  strings.NewReader(stdin),
		Stdout: stdout,
		Stderr: stderr,
		Log:    log,
		Getenv: func(k string) string {
			if k == "HANDOFF_CONFIG" {
				return cfgPath
			}
			return ""
		},
		User:            func() (*user.User, error) { return u, nil },
		Now:             func() time.Time { return now },
		StdinIsTerminal: func() bool { return false },
		MailSpool:       spool,
		Rand:            &countingRand{},
		// -q<interval> ends after its first run.
		Sleep: func(context.Context, time.Duration) error { return context.Canceled },
	}
}

func runGolden(t *testing.T, dir string) {
	argsText, ok := readOpt(t, filepath.Join(dir, "args"))
	if !ok {
		t.Fatal("no args file")
	}
	runs := [][]string{strings.Split(strings.TrimRight(argsText, "\n"), "\n")}
	if then, ok := readOpt(t, filepath.Join(dir, "then")); ok {
		for _, block := range strings.Split(strings.TrimSpace(then), "\n\n") {
			runs = append(runs, strings.Split(strings.TrimSpace(block), "\n"))
		}
	}
	stdin, _ := readOpt(t, filepath.Join(dir, "stdin"))
	script, _ := readOpt(t, filepath.Join(dir, "script"))

	sink := startSink(t, script)
	down := closedAddr(t)
	tmp := t.TempDir()
	home := filepath.Join(tmp, "home")
	spool := filepath.Join(tmp, "spool")
	qdir := filepath.Join(tmp, "queue")
	os.MkdirAll(home, 0o755)
	os.MkdirAll(spool, 0o1777)

	subst := strings.NewReplacer("{{SINK}}", sink.addr, "{{DOWN}}", down, "{{SPOOL}}", spool, "{{QUEUE}}", qdir, "{{TMP}}", tmp)
	cfgText, ok := readOpt(t, filepath.Join(dir, "config.toml"))
	if !ok {
		cfgText = "hostname = \"host.example.org\"\ndomain = \"example.org\"\n"
	}
	cfgText = subst.Replace(withQueue(t, cfgText))
	cfgPath := filepath.Join(tmp, "handoff.toml")
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	// alt.toml, when present, is a second config for -C.
	if alt, ok := readOpt(t, filepath.Join(dir, "alt.toml")); ok {
		alt = subst.Replace(withQueue(t, alt))
		if err := os.WriteFile(filepath.Join(tmp, "alt.toml"), []byte(alt), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	var stdout, stderr, logBuf bytes.Buffer
	var exits, queues strings.Builder
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	for n, args := range runs {
		var qids []string
		for i, id := range queueIDs(qdir) {
			qids = append(qids, fmt.Sprintf("{{QID%d}}", i+1), id)
		}
		r := strings.NewReplacer(append(qids, "{{TMP}}", tmp)...)
		for i := range args {
			args[i] = r.Replace(args[i])
		}
		in := stdin
		if n > 0 {
			marker := fmt.Sprintf("=== run %d\n", n+1)
			stdout.WriteString(marker)
			stderr.WriteString(marker)
			logBuf.WriteString(marker)
			sink.mark(marker)
			in, _ = readOpt(t, filepath.Join(dir, fmt.Sprintf("stdin%d", n+1)))
			if sc, ok := readOpt(t, filepath.Join(dir, fmt.Sprintf("script%d", n+1))); ok {
				sink.setRules(sc)
			}
			now = now.Add(2 * time.Hour)
		}
		uidFile := "uid"
		if n > 0 {
			uidFile = fmt.Sprintf("uid%d", n+1)
		}
		uid, _ := readOpt(t, filepath.Join(dir, uidFile))
		env := goldenEnv(cfgPath, home, spool, in, &stdout, &stderr, &logBuf, strings.TrimSpace(uid) == "0", now)
		code := RunEnv(args, env)
		fmt.Fprintf(&exits, "%d\n", code)
		if len(runs) > 1 {
			fmt.Fprintf(&queues, "=== after run %d\n", n+1)
		}
		queues.WriteString(queueFiles(t, qdir))
	}
	sink.close()

	got := map[string]string{
		"want.wire":   sink.received(),
		"want.stdout": stdout.String(),
		"want.stderr": stderr.String(),
		"want.exit":   exits.String(),
		"want.queue":  queues.String(),
		"want.log":    logBuf.String(),
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
	// Paths and ports differ per run; the golden files use placeholders.
	clean := strings.NewReplacer(sink.addr, "{{SINK}}", down, "{{DOWN}}", qdir, "{{QUEUE}}", tmp, "{{TMP}}")
	for k, v := range got {
		got[k] = clean.Replace(v)
	}
	normalizeVolatile(got)
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

// queueIDs returns the ids in the queue in dir, oldest first.
func queueIDs(dir string) []string {
	names, _ := filepath.Glob(filepath.Join(dir, "env", "*"))
	var ids []string
	for _, n := range names {
		if b := filepath.Base(n); !strings.HasPrefix(b, ".") {
			ids = append(ids, b)
		}
	}
	sort.Strings(ids)
	return ids
}

// queueFiles returns the envelope files of the queue in dir, oldest
// first, each followed by an empty line; "" for an empty queue.
func queueFiles(t *testing.T, dir string) string {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join(dir, "env", "*"))
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		if strings.HasPrefix(filepath.Base(n), ".") {
			continue
		}
		data, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(data)
		b.WriteString("\n")
	}
	return b.String()
}

var (
	idRE       = regexp.MustCompile(`\b[0-9A-HJKMNP-TV-Z]{16}\b`)
	boundaryRE = regexp.MustCompile(`=_handoff_[0-9a-f]{24}`)
	dsnMsgIDRE = regexp.MustCompile(`(\{\{ID[0-9]+\}\})\.[0-9a-f]{12}@`)
	nextRE     = regexp.MustCompile(`(?m)^next-attempt: \S+$`)
)

// normalizeVolatile replaces what differs from run to run in every
// output: queue ids (numbered in the order of arrival, which is their
// order as strings), next-attempt times and the random parts of DSNs.
func normalizeVolatile(got map[string]string) {
	var ids []string
	seen := map[string]bool{}
	for _, v := range got {
		for _, id := range idRE.FindAllString(v, -1) {
			if !seen[id] && isRecentID(id) {
				seen[id] = true
				ids = append(ids, id)
			}
		}
	}
	sort.Strings(ids)
	var pairs []string
	for i, id := range ids {
		pairs = append(pairs, id, fmt.Sprintf("{{ID%d}}", i+1))
	}
	r := strings.NewReplacer(pairs...)
	for k, v := range got {
		v = r.Replace(v)
		v = boundaryRE.ReplaceAllString(v, "=_handoff_{{BOUNDARY}}")
		v = dsnMsgIDRE.ReplaceAllString(v, "$1.{{RAND}}@")
		v = nextRE.ReplaceAllString(v, "next-attempt: {{NEXT}}")
		got[k] = v
	}
}

// isRecentID reports whether a word of queue id syntax is a queue id
// made by this test: its time part (microseconds since 1970, base32) is
// within a day of now. That tells ids from other 16-character words
// (Message-ID parts, hex).
func isRecentID(id string) bool {
	const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	var v int64
	for i := 0; i < 11; i++ {
		v = v<<5 | int64(strings.IndexByte(alphabet, id[i]))
	}
	d := time.Since(time.UnixMicro(v))
	return d > -24*time.Hour && d < 24*time.Hour
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
	// serving is 1 while a connection is being served: a client that
	// hangs up after QUIT does not wait for the sink to read it.
	serving atomic.Int32
}

func startSink(t *testing.T, script string) *sink {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &sink{ln: ln, addr: ln.Addr().String(), rules: parseRules(script)}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.serving.Store(1)
			s.serve(c)
			s.serving.Store(0)
		}
	}()
	t.Cleanup(s.close)
	return s
}

func (s *sink) close() { s.ln.Close(); s.wg.Wait() }

func (s *sink) received() string {
	s.waitIdle()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rx.String()
}

// setRules replaces the sink's rules (for a follow-up run).
func (s *sink) setRules(script string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = parseRules(script)
}

// waitIdle waits (5 s at most) until no connection is being served.
func (s *sink) waitIdle() {
	for i := 0; s.serving.Load() != 0 && i < 5000; i++ {
		time.Sleep(time.Millisecond)
	}
}

// mark appends a line to what the sink received (between runs), once
// the sink has read to the end of the last run's connection.
func (s *sink) mark(line string) {
	s.waitIdle()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rx.WriteString(line)
}

func parseRules(script string) [][2]string {
	var rules [][2]string
	for _, l := range strings.Split(script, "\n") {
		if p, r, ok := strings.Cut(l, " => "); ok {
			rules = append(rules, [2]string{p, strings.ReplaceAll(r, `\n`, "\n")})
		}
	}
	return rules
}

// reply finds the scripted reply for a client line, or def.
func (s *sink) reply(line, def string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
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
			r = s.reply("<end of data>", "250 2.0.0 Ok: queued as SINK1")
			if r, ok := strings.CutSuffix(r, "\n<close>"); ok {
				// The server takes one message per connection.
				send(r)
				bw.Flush()
				return
			}
			send(r)
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
