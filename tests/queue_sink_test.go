package tests

// The helpers of the queue tests (queue_*_test.go): a scripted SMTP sink
// that records each message it takes, with its envelope and the marker
// of its body, and whose behaviour the test switches at run time; a
// config that relays to it and queues in a temporary directory; and a
// way to run the binary that tolerates being killed.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// sinkFault is how the sink behaves: at stage (one of the sinkStage
// constants) it does action: a reply ("451 4.3.0 try later"),
// actClose (closes the connection) or actSilence (says nothing until the
// client goes away). The zero sinkFault accepts everything.
type sinkFault struct {
	stage  string
	action string
	// slow is a pause after the final dot, before the reply.
	slow time.Duration
}

// Stages and special actions of a sinkFault.
const (
	stGreeting = "greeting"
	stEHLO     = "ehlo"
	stMail     = "mail"
	stRcpt     = "rcpt"
	stData     = "data" // the reply to DATA
	stDot      = "dot"  // the reply after the final dot

	actClose   = "close"
	actSilence = "silence"
)

// Shorthands for the modes the brief names.
var (
	sinkAccept       = sinkFault{}
	sinkRcpt451      = sinkFault{stage: stRcpt, action: "451 4.3.0 Mailbox temporarily unavailable"}
	sinkDropAfterDot = sinkFault{stage: stDot, action: actClose}
	sinkCloseGreet   = sinkFault{stage: stGreeting, action: actClose}
)

// sinkMsg is one message the sink received in full (up to the final
// dot).
type sinkMsg struct {
	from   string
	rcpts  []string
	marker string // "" when the body has none
	epoch  int    // the sink's epoch when the connection was accepted
	acked  bool   // the sink answered 250 after the dot (else it dropped, refused or went silent)
}

// sink is an in-process SMTP server on 127.0.0.1.
type sink struct {
	t    *testing.T
	ln   net.Listener
	addr string

	mu    sync.Mutex
	fault sinkFault
	epoch int
	msgs  []sinkMsg
	conns int
	// active is the number of open sessions, peak its highest value.
	active, peak int

	wg     sync.WaitGroup
	ctx    context.Context
	cancel context.CancelFunc
}

// markerRE finds the marker of a test message in its body.
var markerRE = regexp.MustCompile(`QMARK-[A-Za-z0-9_-]+`)

// startSink starts a sink that accepts everything; it is stopped at the
// end of the test.
func startSink(t *testing.T) *sink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &sink{t: t, ln: ln, addr: ln.Addr().String(), ctx: ctx, cancel: cancel}
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(func() {
		cancel()
		ln.Close()
		s.wg.Wait()
	})
	return s
}

// set switches the sink's behaviour for the connections accepted from
// now on.
func (s *sink) set(f sinkFault) {
	s.mu.Lock()
	s.fault = f
	s.mu.Unlock()
}

// setEpoch tags the connections accepted from now on.
func (s *sink) setEpoch(n int) {
	s.mu.Lock()
	s.epoch = n
	s.mu.Unlock()
}

// messages returns a copy of what the sink received.
func (s *sink) messages() []sinkMsg {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sinkMsg(nil), s.msgs...)
}

// connections returns how many connections the sink accepted.
func (s *sink) connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

// peakConnections returns the most sessions that were open at once.
func (s *sink) peakConnections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak
}

// delivered counts the acknowledged deliveries per marker and recipient
// ("marker rcpt").
func (s *sink) delivered() map[string]int {
	n := map[string]int{}
	for _, m := range s.messages() {
		if !m.acked {
			continue
		}
		for _, r := range m.rcpts {
			n[m.marker+" "+r]++
		}
	}
	return n
}

func (s *sink) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		f, epoch := s.fault, s.epoch
		s.conns++
		s.active++
		s.peak = max(s.peak, s.active)
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.session(c, f, epoch)
			s.mu.Lock()
			s.active--
			s.mu.Unlock()
		}()
	}
}

// session is one SMTP session with the behaviour f.
func (s *sink) session(c net.Conn, f sinkFault, epoch int) {
	defer c.Close()
	// No session outlives the test, nor lasts more than 20s.
	stop := context.AfterFunc(s.ctx, func() { c.Close() })
	defer stop()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	r := bufio.NewReader(c)
	w := bufio.NewWriter(c)
	// act applies the fault at stage, if any: it returns whether the
	// session goes on normally (false: the session is over, or the fault
	// replied and the command is refused: see replied).
	act := func(stage string) (handled, over bool) {
		if f.stage != stage {
			return false, false
		}
		switch f.action {
		case actClose:
			return true, true
		case actSilence:
			// Read until the client gives up.
			buf := make([]byte, 512)
			for {
				if _, err := c.Read(buf); err != nil {
					return true, true
				}
			}
		}
		fmt.Fprintf(w, "%s\r\n", f.action)
		w.Flush()
		return true, strings.HasPrefix(f.action, "421")
	}
	reply := func(line string) bool {
		fmt.Fprintf(w, "%s\r\n", line)
		return w.Flush() == nil
	}
	if handled, over := act(stGreeting); over {
		return
	} else if handled {
		// A refusing greeting (554): the client should QUIT.
		return
	}
	if !reply("220 sink.example.test ESMTP test sink") {
		return
	}
	var from string
	var rcpts []string
	haveMail := false
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		verb := strings.ToUpper(line)
		if i := strings.IndexAny(verb, " :"); i >= 0 {
			verb = verb[:i]
		}
		switch verb {
		case "EHLO", "HELO":
			if handled, over := act(stEHLO); over {
				return
			} else if handled {
				continue
			}
			if verb == "HELO" {
				reply("250 sink.example.test")
			} else {
				reply("250-sink.example.test\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES")
			}
		case "MAIL":
			if handled, over := act(stMail); over {
				return
			} else if handled {
				continue
			}
			from = addrOf(line)
			rcpts = nil
			haveMail = true
			reply("250 2.1.0 Ok")
		case "RCPT":
			if !haveMail {
				reply("503 5.5.1 MAIL first")
				continue
			}
			if handled, over := act(stRcpt); over {
				return
			} else if handled {
				continue
			}
			rcpts = append(rcpts, addrOf(line))
			reply("250 2.1.5 Ok")
		case "DATA":
			if len(rcpts) == 0 {
				reply("554 5.5.1 No valid recipients")
				continue
			}
			if handled, over := act(stData); over {
				return
			} else if handled {
				continue
			}
			reply("354 End data with <CR><LF>.<CR><LF>")
			var body bytes.Buffer
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return // the client went away before the dot
				}
				if l == ".\r\n" || l == ".\n" {
					break
				}
				body.WriteString(strings.TrimPrefix(l, "."))
			}
			m := sinkMsg{from: from, rcpts: rcpts, marker: markerRE.FindString(body.String()), epoch: epoch}
			if f.slow > 0 {
				time.Sleep(f.slow)
			}
			haveMail, rcpts = false, nil
			if f.stage == stDot {
				// The message arrived; the reply will not say so.
				s.record(m)
				if handled, over := act(stDot); over {
					return
				} else if handled {
					continue
				}
			}
			// The server takes responsibility when it says 250: count
			// the message then, whether or not the client reads it.
			m.acked = true
			s.record(m)
			reply("250 2.0.0 Ok: queued")
		case "RSET":
			haveMail, rcpts, from = false, nil, ""
			reply("250 2.0.0 Ok")
		case "NOOP":
			reply("250 2.0.0 Ok")
		case "QUIT":
			reply("221 2.0.0 Bye")
			return
		default:
			reply("502 5.5.2 Command not recognized")
		}
	}
}

func (s *sink) record(m sinkMsg) {
	s.mu.Lock()
	s.msgs = append(s.msgs, m)
	s.mu.Unlock()
}

// addrOf takes the address out of "MAIL FROM:<a> ..." or "RCPT TO:<a>".
func addrOf(line string) string {
	i := strings.IndexByte(line, '<')
	j := strings.IndexByte(line, '>')
	if i < 0 || j < i {
		return ""
	}
	return line[i+1 : j]
}

// queueEnv is a config relaying to a sink, with its queue in a
// temporary directory.
type queueEnv struct {
	sink   *sink
	dir    string
	qdir   string
	config string
	home   string // HOME of every run (dead.letter lands here with a private home)
}

// newQueueEnv writes the config: the queue in a temporary directory in
// mode fallback, retries after retryMin, one relay (the sink, plain
// text) with the timeout.
func newQueueEnv(t *testing.T, s *sink, retryMin, timeout string) *queueEnv {
	t.Helper()
	dir := t.TempDir()
	e := &queueEnv{sink: s, dir: dir, qdir: filepath.Join(dir, "queue"), home: filepath.Join(dir, "home")}
	if err := os.Mkdir(e.home, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`hostname = "client.example.test"
domain = "example.test"

[queue]
dir = %q
mode = "fallback"
retry_min = %q
retry_max = %q

[log]
syslog = false

[[relay]]
name = "sink"
url = "smtp://%s"
starttls = "none"
connect_timeout = %q
command_timeout = %q
data_timeout = %q
`, e.qdir, retryMin, retryMin, s.addr, timeout, timeout, timeout)
	e.config = filepath.Join(dir, "handoff.toml")
	if err := os.WriteFile(e.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

// qrun is one run of the binary, which may be killed.
type qrun struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	start          time.Time
	cancel         context.CancelFunc
	stdin          string
	writeDone      chan struct{}
}

// code is the outcome of a qrun: the exit status, or -1 when killed by
// a signal.
type qresult struct {
	code           int
	killed         bool
	stdout, stderr string
	took           time.Duration
}

// startBin starts binDir/name with argv and the env's config, HOME and
// a fixed PATH, through the private-home wrapper when there is one (it
// execs, so the pid is handoff's), feeding it stdin. It never calls t.
func (e *queueEnv) startBin(argv []string, stdin string, timeout time.Duration) (*qrun, error) {
	exe := filepath.Join(binDir, argv[0])
	env := []string{"PATH=" + fixedPath, "HOME=" + e.home, "HANDOFF_CONFIG=" + e.config}
	var cmd *exec.Cmd
	if privateHome {
		cmd = wrapperCommand(exe, argv, e.home, env)
	} else {
		cmd = &exec.Cmd{Path: exe, Args: argv, Env: env}
	}
	cmd.Dir = e.home
	q := &qrun{cmd: cmd, writeDone: make(chan struct{})}
	cmd.Stdout = &q.stdout
	cmd.Stderr = &q.stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	q.start = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	q.cancel = cancel
	context.AfterFunc(ctx, func() {
		if ctx.Err() == context.DeadlineExceeded {
			cmd.Process.Kill()
		}
	})
	go func() {
		defer close(q.writeDone)
		in.Write([]byte(stdin))
		in.Close()
	}()
	return q, nil
}

// kill sends SIGKILL.
func (q *qrun) kill() { q.cmd.Process.Signal(syscall.SIGKILL) }

// wait waits for the end of the run.
func (q *qrun) wait() qresult {
	q.cmd.Wait()
	<-q.writeDone
	q.cancel()
	st := q.cmd.ProcessState
	r := qresult{code: st.ExitCode(), stdout: q.stdout.String(), stderr: q.stderr.String(), took: time.Since(q.start)}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		r.killed = true
	}
	return r
}

// runBin runs argv to its end (at most timeout).
func (e *queueEnv) runBin(argv []string, stdin string, timeout time.Duration) (qresult, error) {
	q, err := e.startBin(argv, stdin, timeout)
	if err != nil {
		return qresult{}, err
	}
	return q.wait(), nil
}

// mustRun is runBin for the test's goroutine: it fails the test when the
// run cannot start or is killed (by its time limit).
func (e *queueEnv) mustRun(t *testing.T, argv []string, stdin string) qresult {
	t.Helper()
	r, err := e.runBin(argv, stdin, 60*time.Second)
	if err != nil {
		t.Fatalf("%q: %v", argv, err)
	}
	if r.killed {
		t.Fatalf("%q: killed after %v (time limit)\nstderr:\n%s", argv, r.took.Round(time.Millisecond), r.stderr)
	}
	return r
}

// testMessage is a message with the marker in its body.
func testMessage(marker string) string {
	return "From: Queue Test <root@example.test>\nTo: rcpt@example.net\nSubject: queue test " +
		marker + "\n\nThe marker: " + marker + "\n"
}

// qItem is an item of "handoff queue list --json".
type qItem struct {
	ID         string `json:"id"`
	Sender     string `json:"sender"`
	Attempts   int    `json:"attempts"`
	Problem    string `json:"problem"`
	Recipients []struct {
		Address           string `json:"address"`
		State             string `json:"state"`
		Attempts          int    `json:"attempts"`
		LastReply         string `json:"last_reply"`
		PossibleDuplicate bool   `json:"possible_duplicate"`
	} `json:"recipients"`
}

// list returns the queue as handoff queue list --json says.
func (e *queueEnv) list(t *testing.T) []qItem {
	t.Helper()
	r := e.mustRun(t, []string{"handoff", "queue", "list", "--json"}, "")
	if r.code != 0 {
		t.Fatalf("handoff queue list --json: exit %d\n%s", r.code, r.stderr)
	}
	var items []qItem
	if err := json.Unmarshal([]byte(r.stdout), &items); err != nil {
		t.Fatalf("handoff queue list --json: %v\n%s", err, r.stdout)
	}
	return items
}

// mailqEmpty checks that mailq says the queue is empty.
func (e *queueEnv) mailqEmpty(t *testing.T) {
	t.Helper()
	r := e.mustRun(t, []string{"mailq"}, "")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "Mail queue is empty" {
		t.Errorf("mailq: exit %d, want the queue empty; stdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
}

// queueFiles lists the files under the queue directory, relative to it,
// but runner.lock.
func (e *queueEnv) queueFiles(t *testing.T) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(e.qdir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() || d.Name() == "runner.lock" {
			return nil
		}
		rel, _ := filepath.Rel(e.qdir, p)
		out = append(out, rel)
		return nil
	})
	return out
}
