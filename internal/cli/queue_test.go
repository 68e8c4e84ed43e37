package cli

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"net/textproto"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/handoff-mta/handoff/config"
	"github.com/handoff-mta/handoff/internal/sendopt"
	"github.com/handoff-mta/handoff/queue"
)

// queueSite is one host for several in-process runs: a config with a
// queue in a temporary directory, a home, a spool and a scripted sink.
type queueSite struct {
	t                        *testing.T
	dir, cfgPath, home, qdir string
	sink                     *sink
	now                      time.Time
	uid                      int
	context                  func() (context.Context, context.CancelFunc)
	sleep                    func(context.Context, time.Duration) error
	lastStdout, lastStderr   string
	lastExit                 int
}

func newQueueSite(t *testing.T, script, extra string) *queueSite {
	t.Helper()
	s := &queueSite{t: t, dir: t.TempDir(), sink: startSink(t, script), now: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC), uid: 1000}
	s.cfgPath = filepath.Join(s.dir, "handoff.toml")
	s.home = filepath.Join(s.dir, "home")
	s.qdir = filepath.Join(s.dir, "queue")
	os.Mkdir(s.home, 0o755)
	os.Mkdir(filepath.Join(s.dir, "spool"), 0o1777)
	cfg := fmt.Sprintf("hostname = \"host.example.org\"\ndomain = \"example.org\"\n\n[[relay]]\nname = \"sink\"\nurl = \"smtp://%s\"\nstarttls = \"none\"\n\n[queue]\ndir = %q\n%s", s.sink.addr, s.qdir, extra)
	if err := os.WriteFile(s.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return s
}

// env is the process environment of a command run on the site.
func (s *queueSite) env(stdin string, stdout, stderr io.Writer) *Env {
	u := &user.User{Uid: fmt.Sprint(s.uid), Username: "alice", Name: "Alice", HomeDir: s.home}
	return &Env{
		Stdin: strings.NewReader(stdin), Stdout: stdout, Stderr: stderr,
		Getenv: func(k string) string {
			if k == "HANDOFF_CONFIG" {
				return s.cfgPath
			}
			return ""
		},
		User:            func() (*user.User, error) { return u, nil },
		Now:             func() time.Time { return s.now },
		StdinIsTerminal: func() bool { return false },
		MailSpool:       filepath.Join(s.dir, "spool"),
		Log:             io.Discard,
		Context:         s.context,
		Sleep:           s.sleep,
	}
}

// run runs argv with stdin and returns the exit status.
func (s *queueSite) run(stdin string, argv ...string) int {
	var stdout, stderr bytes.Buffer
	code := RunEnv(argv, s.env(stdin, &stdout, &stderr))
	s.lastStdout, s.lastStderr, s.lastExit = stdout.String(), stderr.String(), code
	return code
}

// items lists the queue.
func (s *queueSite) items() []queue.Summary {
	s.t.Helper()
	q, err := queue.Open(s.qdir)
	if err != nil {
		s.t.Fatal(err)
	}
	list, err := q.List(queue.Filter{})
	if err != nil {
		s.t.Fatal(err)
	}
	return list
}

// dataOf returns the message data of the n-th DATA on the wire (from 0),
// dot-stuffing undone, and the MAIL FROM line before it.
func dataOf(t *testing.T, wire string, n int) (mailFrom, data string) {
	t.Helper()
	rest := wire
	for i := 0; ; i++ {
		m := strings.Index(rest, "MAIL FROM:")
		d := strings.Index(rest, "\r\nDATA\r\n")
		if m < 0 || d < 0 {
			t.Fatalf("no DATA number %d on the wire:\n%s", n, wire)
		}
		mailFrom = rest[m : m+strings.Index(rest[m:], "\r\n")]
		// From the CRLF before the data, which may be empty.
		body := rest[d+len("\r\nDATA"):]
		end := strings.Index(body, "\r\n.\r\n")
		if end < 0 {
			t.Fatalf("unterminated DATA on the wire:\n%s", wire)
		}
		if i == n {
			lines := strings.Split(body[2:end+2], "\r\n")
			for j, l := range lines {
				lines[j] = strings.TrimPrefix(l, ".")
			}
			return mailFrom, strings.Join(lines, "\r\n")
		}
		rest = body[end+5:]
	}
}

// A recipient refused with a 5xx during a queue run gets its sender a
// DSN, queued, and delivered by the next run: an RFC 3464 report,
// parsed back here.
func TestQueueBounceDSN(t *testing.T) {
	s := newQueueSite(t, "", "")
	msg := "Subject: the original\nX-Marker: 42\n\nbody text\n"
	if code := s.run(msg, "sendmail", "-odq", "-i", "bad@example.net"); code != 0 {
		t.Fatalf("-odq: exit %d: %s", code, s.lastStderr)
	}
	s.sink.setRules("RCPT TO:<bad@example.net> => 550 5.1.1 <bad@example.net>: no such user")
	s.now = s.now.Add(time.Minute)
	if code := s.run("", "sendmail", "-q"); code != 0 || s.lastStderr != "" {
		t.Fatalf("-q: exit %d: %s", code, s.lastStderr)
	}
	items := s.items()
	if len(items) != 1 || items[0].Sender != "" || len(items[0].Recipients) != 1 || items[0].Recipients[0].Addr != "alice@example.org" {
		t.Fatalf("after the failed run the queue should hold one DSN from <> to alice: %+v", items)
	}
	s.sink.setRules("")
	if code := s.run("", "sendmail", "-q"); code != 0 {
		t.Fatalf("second -q: exit %d: %s", code, s.lastStderr)
	}
	if items := s.items(); len(items) != 0 {
		t.Fatalf("queue not empty after the DSN went out: %+v", items)
	}
	s.sink.close()
	from, data := dataOf(t, s.sink.received(), 1)
	if from != "MAIL FROM:<>" && !strings.HasPrefix(from, "MAIL FROM:<> ") {
		t.Errorf("the DSN goes from the null sender: %q", from)
	}
	m, err := mail.ReadMessage(strings.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Header.Get("To"); got != "alice@example.org" {
		t.Errorf("To: %q", got)
	}
	if got := m.Header.Get("Auto-Submitted"); got != "auto-replied" {
		t.Errorf("Auto-Submitted: %q", got)
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/report" || params["report-type"] != "delivery-status" {
		t.Fatalf("Content-Type %q (%v)", m.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	var types []string
	var status, headers string
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(p)
		ct := p.Header.Get("Content-Type")
		types = append(types, strings.SplitN(ct, ";", 2)[0])
		switch {
		case strings.HasPrefix(ct, "message/delivery-status"):
			status = string(body)
		case strings.HasPrefix(ct, "text/rfc822-headers"):
			headers = string(body)
		}
	}
	if strings.Join(types, " ") != "text/plain message/delivery-status text/rfc822-headers" {
		t.Errorf("parts: %v", types)
	}
	// The per-recipient block is the second group of fields.
	groups := strings.Split(strings.ReplaceAll(status, "\r\n", "\n"), "\n\n")
	if len(groups) < 2 {
		t.Fatalf("delivery-status: %q", status)
	}
	rf, err := textproto.NewReader(bufio.NewReader(strings.NewReader(groups[1] + "\n\n"))).ReadMIMEHeader()
	if err != nil {
		t.Fatalf("per-recipient fields: %v in %q", err, groups[1])
	}
	for k, want := range map[string]string{
		"Final-Recipient": "rfc822; bad@example.net",
		"Action":          "failed",
		"Status":          "5.1.1",
		"Diagnostic-Code": "smtp; 550 5.1.1 <bad@example.net>: no such user",
	} {
		if got := rf.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if !strings.Contains(headers, "Subject: the original") || !strings.Contains(headers, "X-Marker: 42") || strings.Contains(headers, "body text") {
		t.Errorf("original headers part: %q", headers)
	}
}

// No DSN is ever queued for the null sender.
func TestQueueNoDSNToNullSender(t *testing.T) {
	s := newQueueSite(t, "RCPT TO:<bad@example.net> => 550 5.1.1 no such user", "")
	if code := s.run("Subject: x\n\ny\n", "sendmail", "-odq", "-f", "<>", "bad@example.net"); code != 0 {
		t.Fatalf("exit %d: %s", code, s.lastStderr)
	}
	s.run("", "sendmail", "-q")
	if items := s.items(); len(items) != 0 {
		t.Fatalf("queue after the failure of a message from <>: %+v", items)
	}
	s.run("", "sendmail", "-q")
	s.sink.close()
	if n := strings.Count(s.sink.received(), "MAIL FROM"); n != 1 {
		t.Errorf("%d transactions, want only the failed one:\n%s", n, s.sink.received())
	}
}

// A second runner finds the runner lock held: one line, exit 0 for -q,
// nothing delivered; handoff queue flush says the same and exits 75.
func TestQueueRunnerBusy(t *testing.T) {
	s := newQueueSite(t, "", "")
	if code := s.run("Subject: x\n\ny\n", "sendmail", "-odq", "bob@example.net"); code != 0 {
		t.Fatalf("exit %d: %s", code, s.lastStderr)
	}
	q, err := queue.Open(s.qdir)
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := q.RunnerLock()
	if err != nil {
		t.Fatal(err)
	}
	if code := s.run("", "sendmail", "-q"); code != 0 || s.lastStderr != "sendmail: another queue run is in progress\n" {
		t.Errorf("-q: exit %d, stderr %q", code, s.lastStderr)
	}
	if code := s.run("", "handoff", "queue", "flush"); code != exTempFail || s.lastStderr != "handoff: another queue run is in progress\n" {
		t.Errorf("flush: exit %d, stderr %q", code, s.lastStderr)
	}
	if len(s.items()) != 1 {
		t.Error("the item was touched while another runner held the queue")
	}
	unlock()
	if code := s.run("", "sendmail", "-q"); code != 0 || len(s.items()) != 0 {
		t.Errorf("after the lock was released: exit %d, %d items, stderr %q", code, len(s.items()), s.lastStderr)
	}
}

// An item locked by someone else (its submitter's own attempt) is
// skipped by the runner, not delivered twice.
func TestQueueRunnerSkipsLockedItem(t *testing.T) {
	s := newQueueSite(t, "", "")
	s.run("Subject: x\n\ny\n", "sendmail", "-odq", "bob@example.net")
	q, _ := queue.Open(s.qdir)
	items := s.items()
	it, err := q.Lock(items[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if code := s.run("", "sendmail", "-q"); code != 0 {
		t.Fatalf("exit %d: %s", code, s.lastStderr)
	}
	it.Unlock()
	s.sink.close()
	if got := s.sink.received(); got != "" {
		t.Errorf("a locked item was delivered:\n%s", got)
	}
	if len(s.items()) != 1 {
		t.Error("the locked item is gone")
	}
}

// The first attempt is recorded before connecting, and a failed attempt
// schedules the next one by the policy: a second -q at once sends
// nothing; one after the backoff does.
func TestQueueRetrySchedule(t *testing.T) {
	s := newQueueSite(t, "RCPT TO: => 451 4.3.0 later", "retry_min = \"10m\"\nretry_max = \"1h\"\n")
	if code := s.run("Subject: x\n\ny\n", "sendmail", "bob@example.net", "carol@example.net"); code != 0 {
		t.Fatalf("fallback: exit %d: %s", code, s.lastStderr)
	}
	items := s.items()
	if len(items) != 1 {
		t.Fatalf("want one item, got %+v", items)
	}
	e := items[0]
	if e.Attempts != 1 || len(e.Recipients) != 2 || e.Recipients[0].State != queue.Deferred || e.Recipients[0].LastReply != "451 4.3.0 later" {
		t.Errorf("queued item: %+v", e)
	}
	if d := e.NextAttempt.Sub(s.now); d < 8*time.Minute || d > 12*time.Minute {
		t.Errorf("next attempt in %v, want 10m ± 20%%", d)
	}
	before := s.sink.received()
	s.now = s.now.Add(time.Minute)
	s.run("", "sendmail", "-q")
	if s.sink.received() != before {
		t.Errorf("an item not due was tried:\n%s", strings.TrimPrefix(s.sink.received(), before))
	}
	// flush ignores the schedule.
	if code := s.run("", "handoff", "queue", "flush"); code != 0 {
		t.Fatalf("flush: exit %d: %s", code, s.lastStderr)
	}
	items = s.items()
	if len(items) != 1 || items[0].Attempts != 2 || items[0].Recipients[1].Attempts != 2 {
		t.Fatalf("after flush: %+v", items)
	}
	if d := items[0].NextAttempt.Sub(s.now); d < 16*time.Minute || d > 24*time.Minute {
		t.Errorf("next attempt in %v after the second attempt, want 20m ± 20%%", d)
	}
}

// After max_age the runner gives up: the recipients fail and the sender
// gets a DSN, without another attempt.
func TestQueueExpiry(t *testing.T) {
	s := newQueueSite(t, "", "max_age = \"1h\"\n")
	s.run("Subject: x\n\ny\n", "sendmail", "-odq", "bob@example.net")
	s.now = s.now.Add(2 * time.Hour)
	s.run("", "sendmail", "-q")
	if got := s.sink.received(); got != "" {
		t.Errorf("an expired item was tried:\n%s", got)
	}
	items := s.items()
	if len(items) != 1 || items[0].Sender != "" || items[0].Recipients[0].Addr != "alice@example.org" {
		t.Fatalf("want only the DSN queued: %+v", items)
	}
}

// -q<interval> runs, sleeps, runs again, until its context is done;
// with the real timer, cancelling the context (SIGTERM) ends the sleep at
// once and the exit status is 0.
func TestQueueLoop(t *testing.T) {
	s := newQueueSite(t, "", "")
	var sleeps atomic.Int32
	s.sleep = func(ctx context.Context, d time.Duration) error {
		if d != 30*time.Minute {
			t.Errorf("sleep %v", d)
		}
		if sleeps.Add(1) == 3 {
			return context.Canceled
		}
		// A message arrives between two runs.
		if sleeps.Load() == 1 {
			s.run("Subject: x\n\ny\n", "sendmail", "-odq", "bob@example.net")
		}
		return nil
	}
	if code := s.run("", "sendmail", "-q30m"); code != 0 {
		t.Fatalf("exit %d: %s", code, s.lastStderr)
	}
	if sleeps.Load() != 3 {
		t.Errorf("%d sleeps", sleeps.Load())
	}
	if len(s.items()) != 0 {
		t.Error("the message queued between runs was not delivered by the next run")
	}

	ctx, cancel := context.WithCancel(context.Background())
	s.sleep = nil
	s.context = func() (context.Context, context.CancelFunc) { return ctx, cancel }
	done := make(chan int)
	go func() { done <- s.run("", "sendmail", "-q1h") }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d after the signal", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("-q1h did not end when its context was cancelled")
	}
}

// Items of other users are invisible to mailq and to the admin
// commands of a user who is not root; root sees and manages all.
func TestQueueOwnItemsOnly(t *testing.T) {
	s := newQueueSite(t, "", "")
	s.uid = 0
	s.run("Subject: root's\n\nx\n", "sendmail", "-odq", "bob@example.net")
	rootID := s.items()[0].ID
	s.uid = 1000
	s.run("Subject: alice's\n\nx\n", "sendmail", "-odq", "carol@example.net")
	if s.run("", "mailq"); strings.Contains(s.lastStdout, rootID) || !strings.Contains(s.lastStdout, "carol@example.net") {
		t.Errorf("alice's mailq:\n%s", s.lastStdout)
	}
	for _, cmd := range []string{"show", "hold", "release", "delete", "flush"} {
		if code := s.run("", "handoff", "queue", cmd, rootID); code != exUnavailable || s.lastStderr != "handoff: "+rootID+": no such queue item\n" {
			t.Errorf("alice: queue %s of root's item: exit %d, stderr %q", cmd, code, s.lastStderr)
		}
	}
	if len(s.items()) != 2 {
		t.Fatal("alice changed root's item")
	}
	s.uid = 0
	if s.run("", "mailq"); !strings.Contains(s.lastStdout, rootID) || !strings.Contains(s.lastStdout, "carol@example.net") {
		t.Errorf("root's mailq:\n%s", s.lastStdout)
	}
	if code := s.run("", "handoff", "queue", "delete", rootID); code != 0 || len(s.items()) != 1 {
		t.Errorf("root: delete: exit %d, stderr %q", code, s.lastStderr)
	}
}

// Usage errors of handoff queue exit 64; an unknown id 69.
func TestQueueCmdUsage(t *testing.T) {
	s := newQueueSite(t, "", "")
	for _, argv := range [][]string{
		{"handoff", "queue"},
		{"handoff", "queue", "nope"},
		{"handoff", "queue", "show"},
		{"handoff", "queue", "show", "A", "B"},
		{"handoff", "queue", "list", "extra"},
		{"handoff", "queue", "hold"},
		{"handoff", "queue", "delete"},
		{"handoff", "queue", "release"},
		{"handoff", "queue", "show", "--json", "0000000000000000"},
		{"handoff", "queue", "-x", "list"},
	} {
		if code := s.run("", argv...); code != exUsage {
			t.Errorf("%q: exit %d, stderr %q", argv, code, s.lastStderr)
		}
	}
	if code := s.run("", "handoff", "queue", "show", "../../etc/passwd"); code != exUnavailable {
		t.Errorf("bad id: exit %d, stderr %q", code, s.lastStderr)
	}
	if code := s.run("", "handoff", "queue", "list", "--json"); code != 0 || s.lastStdout != "[]\n" {
		t.Errorf("empty JSON list: exit %d, %q", code, s.lastStdout)
	}
}

// A queue that cannot be written: exit 73 for a directory problem, 75
// for a full or failing disk; never 0.
func TestQueueExit(t *testing.T) {
	for err, want := range map[error]int{
		fmt.Errorf("queue: storing the message: %w", &os.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}): exTempFail,
		fmt.Errorf("queue: %w", syscall.EDQUOT):                               exTempFail,
		fmt.Errorf("queue: %w", syscall.EIO):                                  exTempFail,
		fmt.Errorf("queue: %w", syscall.EACCES):                               exCantCreat,
		fmt.Errorf("queue: %w", syscall.EROFS):                                exCantCreat,
		fmt.Errorf("queue: x is not a directory: %w", queue.ErrUnsafe):        exCantCreat,
		fmt.Errorf("queue: creating the queue directory: %w", os.ErrNotExist): exCantCreat,
	} {
		if got := queueExit(err); got != want {
			t.Errorf("%v: %d, want %d", err, got, want)
		}
	}
}

// The queue's parent directory is missing: -odq exits 73, keeps the
// message in dead.letter, says so in one line with the directory.
func TestQueueMissingParent(t *testing.T) {
	s := newQueueSite(t, "", "")
	cfg, _ := os.ReadFile(s.cfgPath)
	missing := filepath.Join(s.dir, "no", "such", "queue")
	os.WriteFile(s.cfgPath, bytes.Replace(cfg, []byte(s.qdir), []byte(missing), 1), 0o600)
	code := s.run("Subject: x\n\ny\n", "sendmail", "-odq", "bob@example.net")
	if code != exCantCreat {
		t.Errorf("exit %d", code)
	}
	lines := strings.Split(strings.TrimSpace(s.lastStderr), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "cannot use the queue in "+missing+": ") || !strings.Contains(lines[1], "dead.letter") {
		t.Errorf("stderr:\n%s", s.lastStderr)
	}
	if _, err := os.Stat(filepath.Join(s.home, "dead.letter")); err != nil {
		t.Error(err)
	}
}

// The runner reports a corrupt item once (Lock moves it aside) and goes
// on with the others.
func TestQueueCorruptItemReported(t *testing.T) {
	s := newQueueSite(t, "", "")
	s.run("Subject: x\n\ny\n", "sendmail", "-odq", "bob@example.net")
	s.run("Subject: x\n\ny\n", "sendmail", "-odq", "carol@example.net")
	items := s.items()
	bad := filepath.Join(s.qdir, "env", items[0].ID)
	if err := os.WriteFile(bad, []byte("handoff-envelope 1\ngarbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.uid = 0 // the runner: root, or the queue's owner
	s.run("", "sendmail", "-q")
	if n := strings.Count(s.lastStderr, "\n"); n != 1 || !strings.Contains(s.lastStderr, items[0].ID) || !strings.Contains(s.lastStderr, "corrupt") {
		t.Errorf("stderr: %q", s.lastStderr)
	}
	if len(s.items()) != 0 {
		t.Errorf("left in the queue: %+v", s.items())
	}
	s.run("", "sendmail", "-q")
	if s.lastStderr != "" {
		t.Errorf("reported twice: %q", s.lastStderr)
	}
	s.sink.close()
	if !strings.Contains(s.sink.received(), "RCPT TO:<carol@example.net>") {
		t.Error("the good item was not delivered")
	}
}

// A message deferred for longer than delay_warning gets one delay
// warning (a DSN with Action: delayed) to its sender, and only one.
func TestQueueDelayWarning(t *testing.T) {
	s := newQueueSite(t, "RCPT TO:<slow@example.net> => 451 4.3.0 try later", "delay_warning = \"1h\"\n")
	if code := s.run("Subject: waiting\n\nbody\n", "sendmail", "-i", "slow@example.net"); code != 0 {
		t.Fatalf("submit: exit %d: %s", code, s.lastStderr)
	}
	// Two hours later, still deferred: the warning is queued.
	s.now = s.now.Add(2 * time.Hour)
	if code := s.run("", "sendmail", "-q"); code != 0 {
		t.Fatalf("-q: exit %d: %s", code, s.lastStderr)
	}
	items := s.items()
	if len(items) != 2 {
		t.Fatalf("want the deferred item and a warning: %+v", items)
	}
	var warning, orig int
	for _, it := range items {
		switch {
		case it.Sender == "" && len(it.Recipients) == 1 && it.Recipients[0].Addr == "alice@example.org":
			warning++
		case it.Sender == "alice@example.org" && it.DelayWarned:
			orig++
		}
	}
	if warning != 1 || orig != 1 {
		t.Fatalf("queue: %+v", items)
	}
	// Another run later: the warning goes out, no second one is made.
	s.now = s.now.Add(2 * time.Hour)
	if code := s.run("", "sendmail", "-q"); code != 0 {
		t.Fatalf("second -q: exit %d: %s", code, s.lastStderr)
	}
	if items := s.items(); len(items) != 1 || items[0].Sender != "alice@example.org" {
		t.Fatalf("after the warning went out the original should remain alone: %+v", items)
	}
	s.sink.close()
	wire := s.sink.received()
	if n := strings.Count(wire, "Action: delayed"); n != 1 {
		t.Errorf("want one delay warning on the wire, saw %d", n)
	}
	if !strings.Contains(wire, "MAIL FROM:<>") || !strings.Contains(wire, "Status: 4.3.0") {
		t.Errorf("warning not from <> or without the status:\n%s", wire)
	}
}

// A queue run carries every item for a relay over one connection, with
// RSET between messages, and closes it after messages_per_connection.
func TestQueueRunSharesConnection(t *testing.T) {
	s := newQueueSite(t, "", "messages_per_connection = 3\nconnections_per_relay = 1\n")
	s.queueAndFlush(5)
	s.sink.close()
	wire := s.sink.received()
	if n := strings.Count(wire, "MAIL FROM:"); n != 5 {
		t.Errorf("%d messages sent, want 5", n)
	}
	// 5 messages at 3 per connection: two connections, and no RSET
	// between messages: a connection used a moment ago needs no probe.
	if n := strings.Count(wire, "EHLO "); n != 2 {
		t.Errorf("%d connections, want 2:\n%s", n, wire)
	}
	if n := strings.Count(wire, "RSET\r\n"); n != 0 {
		t.Errorf("%d RSETs, want 0", n)
	}
	if n := strings.Count(wire, "QUIT\r\n"); n != 2 {
		t.Errorf("%d QUITs, want 2", n)
	}
}

// A queue run over a relay that offers PIPELINING sends the next
// message's MAIL, RCPT and DATA right behind the previous message's
// final dot (one round trip a message), except behind the last message
// of a connection; every message arrives once.
func TestQueueRunSendsNextEnvelopeAhead(t *testing.T) {
	s := newQueueSite(t, "", "messages_per_connection = 3\nconnections_per_relay = 1\n")
	s.queueAndFlush(4, "-v")
	// The transcript: after the data of messages 1 and 2 of the first
	// connection comes the next MAIL, before the reply to the data; not
	// after message 3 (the connection's last) nor 4 (the run's last).
	ahead := regexp.MustCompile(`data: [0-9]+ octets\nsend: MAIL FROM:`)
	if n := len(ahead.FindAllString(s.lastStderr, -1)); n != 2 {
		t.Errorf("%d envelopes sent ahead, want 2:\n%s", n, s.lastStderr)
	}
	s.sink.close()
	wire := s.sink.received()
	checkEachOnce(t, wire, 4)
	if n := strings.Count(wire, "MAIL FROM:"); n != 4 {
		t.Errorf("%d MAIL commands, want 4", n)
	}
}

// pipelining = false on the relay: one command at a time, each reply
// awaited, and nothing sent ahead, though the sink offers PIPELINING.
func TestQueueRunPipeliningOff(t *testing.T) {
	s := newQueueSite(t, "", "connections_per_relay = 1\n")
	data, err := os.ReadFile(s.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(data), "starttls = \"none\"\n", "starttls = \"none\"\npipelining = false\n", 1)
	if err := os.WriteFile(s.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	s.queueAndFlush(3, "-v")
	lockStep := regexp.MustCompile(`send: MAIL FROM:[^\n]*\nreply: 250[^\n]*\nsend: RCPT TO:[^\n]*\nreply: 250[^\n]*\nsend: DATA\nreply: 354`)
	if n := len(lockStep.FindAllString(s.lastStderr, -1)); n != 3 {
		t.Errorf("%d lock-step transactions, want 3:\n%s", n, s.lastStderr)
	}
	if strings.Contains(s.lastStderr, "octets\nsend: MAIL") {
		t.Errorf("an envelope went ahead:\n%s", s.lastStderr)
	}
	s.sink.close()
	checkEachOnce(t, s.sink.received(), 3)
}

// A server that closes the connection after each message: the run
// finds the cached connection gone when it sends the next MAIL, and
// sends that message over a new connection at once; nothing is left
// queued, nothing is sent twice.
func TestQueueRunServerClosesAfterEachMessage(t *testing.T) {
	s := newQueueSite(t, `<end of data> => 250 2.0.0 Ok\n<close>`, "messages_per_connection = 100\nconnections_per_relay = 1\n")
	s.queueAndFlush(4, "-v")
	s.sink.close()
	wire := s.sink.received()
	checkEachOnce(t, wire, 4)
	if n := strings.Count(wire, "EHLO "); n != 4 {
		t.Errorf("%d connections, want 4:\n%s", n, wire)
	}
	if n := strings.Count(s.lastStderr, "connecting again"); n != 3 {
		t.Errorf("%d redials reported, want 3:\n%s", n, s.lastStderr)
	}
}

// queueAndFlush queues n messages to bob@example.net, "Subject: 0" to
// "Subject: n-1", then runs the queue with the extra arguments and
// checks that it ends empty.
func (s *queueSite) queueAndFlush(n int, args ...string) {
	s.t.Helper()
	for i := 0; i < n; i++ {
		if code := s.run(fmt.Sprintf("Subject: %d\n\nbody\n", i), "sendmail", "-odq", "-i", "bob@example.net"); code != 0 {
			s.t.Fatalf("-odq: exit %d: %s", code, s.lastStderr)
		}
	}
	if code := s.run("", append([]string{"sendmail", "-q"}, args...)...); code != 0 {
		s.t.Fatalf("-q: exit %d: %s", code, s.lastStderr)
	}
	if items := s.items(); len(items) != 0 {
		s.t.Fatalf("queue not empty: %+v", items)
	}
}

// checkEachOnce checks that the messages queueAndFlush queued each
// reached the sink once.
func checkEachOnce(t *testing.T, wire string, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if c := strings.Count(wire, fmt.Sprintf("Subject: %d\r\n", i)); c != 1 {
			t.Errorf("message %d sent %d times", i, c)
		}
	}
}

// After a 535 a queue run stops connecting to that relay, says so once,
// and keeps the items queued; later runs leave it alone until the config
// changes or an admin flushes.
func TestQueueAuthRefusedBackOff(t *testing.T) {
	script := "EHLO => 250-sink.test\\n250-AUTH PLAIN\\n250 PIPELINING\nAUTH PLAIN => 535 5.7.8 Authentication credentials invalid"
	s := newQueueSite(t, script, "")
	cfg, _ := os.ReadFile(s.cfgPath)
	cfg = []byte(strings.Replace(string(cfg), "starttls = \"none\"\n", "starttls = \"none\"\nusername = \"alice\"\npassword = \"wrong\"\n", 1))
	os.WriteFile(s.cfgPath, cfg, 0o600)
	for i := 0; i < 2; i++ {
		if code := s.run("Subject: x\n\nbody\n", "sendmail", "-odq", "-i", "bob@example.net"); code != 0 {
			t.Fatalf("-odq: exit %d: %s", code, s.lastStderr)
		}
	}
	auths := func() int { return strings.Count(s.sink.received(), "AUTH PLAIN") }
	if code := s.run("", "sendmail", "-q"); code != 0 {
		t.Fatalf("-q: exit %d: %s", code, s.lastStderr)
	}
	if n := auths(); n != 1 {
		t.Errorf("first run: %d AUTH attempts, want 1 (the second item must not retry)", n)
	}
	if strings.Count(s.lastStderr, "refused the configured credentials") != 1 {
		t.Errorf("want the refusal said once, stderr:\n%s", s.lastStderr)
	}
	items := s.items()
	if len(items) != 2 {
		t.Fatalf("both items stay queued: %+v", items)
	}
	for _, it := range items {
		if r := it.Recipients[0]; !strings.Contains(r.LastReply, "535") {
			t.Errorf("last reply %q does not name the 535", r.LastReply)
		}
	}
	// A later run, same config: no connection at all.
	s.now = s.now.Add(3 * time.Hour)
	s.run("", "sendmail", "-q")
	if n := auths(); n != 1 {
		t.Errorf("a run under the same config tried AUTH again (%d attempts)", n)
	}
	// The admin fixes the password: the next run tries again.
	os.WriteFile(s.cfgPath, append(cfg, []byte("# password fixed\n")...), 0o600)
	s.now = s.now.Add(3 * time.Hour)
	s.run("", "sendmail", "-q")
	if n := auths(); n != 2 {
		t.Errorf("after a config change: %d AUTH attempts, want 2", n)
	}
	// flush lifts the block too.
	s.run("", "handoff", "queue", "flush")
	if n := auths(); n != 3 {
		t.Errorf("after flush: %d AUTH attempts, want 3", n)
	}
}

func TestSplitBatches(t *testing.T) {
	ids := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprint(i)
		}
		return out
	}
	for _, tc := range []struct {
		n, workers int
		sizes      []int
	}{
		{0, 1, nil},
		{1, 2, []int{1}},
		{30, 3, []int{10, 10, 10}}, // a small run: every worker gets some
		{10, 4, []int{3, 3, 3, 1}}, // rounded up
		{40, 1, []int{16, 16, 8}},  // maxBatch
		{100, 4, []int{16, 16, 16, 16, 16, 16, 4}},
	} {
		got := splitBatches(ids(tc.n), tc.workers)
		var sizes []int
		var all []string
		for _, b := range got {
			sizes = append(sizes, len(b))
			all = append(all, b...)
		}
		if fmt.Sprint(sizes) != fmt.Sprint(tc.sizes) {
			t.Errorf("%d ids, %d workers: batches of %v, want %v", tc.n, tc.workers, sizes, tc.sizes)
		}
		if fmt.Sprint(all) != fmt.Sprint(ids(tc.n)) {
			t.Errorf("%d ids, %d workers: %v, want every id once, in order", tc.n, tc.workers, all)
		}
	}
}

// A run of more items than a batch holds, on one connection: every item
// delivered once, in the order of arrival across the batches (the next
// batch is planned while the previous one is delivered), and removed.
func TestQueueRunBatches(t *testing.T) {
	s := newQueueSite(t, "", "connections_per_relay = 1\nmessages_per_connection = 1000\n")
	const n = 2*maxBatch + 5
	for i := range n {
		if code := s.run(fmt.Sprintf("Subject: m%02d\n\nbody\n", i), "sendmail", "-odq", "-i", "bob@example.net"); code != 0 {
			t.Fatalf("-odq: exit %d: %s", code, s.lastStderr)
		}
		s.now = s.now.Add(time.Second) // ids sort by arrival
	}
	if code := s.run("", "sendmail", "-q"); code != 0 {
		t.Fatalf("-q: exit %d: %s", code, s.lastStderr)
	}
	if items := s.items(); len(items) != 0 {
		t.Fatalf("%d items left", len(items))
	}
	if got, _ := filepath.Glob(filepath.Join(s.qdir, "*", "*")); len(got) != 0 {
		t.Errorf("files left in the queue: %q", got)
	}
	s.sink.close()
	wire := s.sink.received()
	if c := strings.Count(wire, "EHLO "); c != 1 {
		t.Errorf("%d connections, want 1", c)
	}
	for i := range n {
		_, data := dataOf(t, wire, i)
		if want := fmt.Sprintf("Subject: m%02d\r\n", i); !strings.Contains(data, want) {
			t.Fatalf("message %d on the wire is not %q:\n%.200s", i, want, data)
		}
	}
}

// queueJob is a job for the site's config, as a queue run makes it, with
// its standard error.
func (s *queueSite) queueJob() (*job, *bytes.Buffer) {
	s.t.Helper()
	var stderr bytes.Buffer
	env := s.env("", io.Discard, &stderr)
	j, code := newJob(env, &sendopt.Invocation{Name: "sendmail"})
	if j == nil {
		s.t.Fatalf("newJob: exit %d: %s", code, stderr.String())
	}
	return j, &stderr
}

// An item of a batch whose attempt cannot be recorded is left out of the
// batch, unlocked and not delivered, with its envelope as it was; the
// others are recorded and delivered.
func TestQueueBatchRecordFailure(t *testing.T) {
	s := newQueueSite(t, "", "connections_per_relay = 1\n")
	for i := range 3 {
		if code := s.run(fmt.Sprintf("Subject: m%d\n\nbody\n", i), "sendmail", "-odq", "-i", "bob@example.net"); code != 0 {
			t.Fatalf("-odq: exit %d: %s", code, s.lastStderr)
		}
		s.now = s.now.Add(time.Second)
	}
	q, err := queue.Open(s.qdir)
	if err != nil {
		t.Fatal(err)
	}
	listed := s.items()
	var items []*queue.Item
	for _, sum := range listed {
		it, err := q.Lock(sum.ID)
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, it)
	}
	// The middle one cannot be saved (a changed id is refused, as a disk
	// error would be).
	bad := items[1]
	bad.Env.ID = listed[0].ID
	j, stderr := s.queueJob()
	b := j.planBatch(q, items, false, false) // the envelopes, not a journal
	bad.Env.ID = listed[1].ID
	if len(b.items) != 2 || b.items[0].Item != items[0] || b.items[1].Item != items[2] || !b.items[0].deliver || !b.items[1].deliver {
		t.Fatalf("planned %+v, want the first and the last, to deliver", b.items)
	}
	if want := "queue item " + listed[1].ID + ": recording the attempt:"; !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr %q, want %q", stderr.String(), want)
	}
	if bad.Env.Attempts != 0 {
		t.Errorf("the failed item counts %d attempts in memory", bad.Env.Attempts)
	}
	// It was unlocked, and is queued as it was.
	again, err := q.Lock(listed[1].ID)
	if err != nil {
		t.Fatalf("the failed item is not free: %v", err)
	}
	if again.Env.Attempts != 0 {
		t.Errorf("the failed item's envelope says %d attempts", again.Env.Attempts)
	}
	again.Unlock()

	rm := q.NewRemover()
	j.deliverBatch(context.Background(), q, b, rm)
	if err := rm.Close(); err != nil {
		t.Fatal(err)
	}
	left := s.items()
	if len(left) != 1 || left[0].ID != listed[1].ID || left[0].Attempts != 0 {
		t.Fatalf("left in the queue: %+v, want only %s, not attempted", left, listed[1].ID)
	}
	s.sink.close()
	if n := strings.Count(s.sink.received(), "MAIL FROM:"); n != 2 {
		t.Errorf("%d messages sent, want 2", n)
	}
}

// When the run is cancelled, the items of a planned batch not reached
// yet are unlocked without being delivered, and stay queued, whole.
// With their attempts recorded in their envelopes, those count; with a
// run's journal, the journal is ended and they do not (the attempt was
// not made), and no journal is left.
func TestQueueBatchCancelled(t *testing.T) {
	for _, journal := range []bool{false, true} {
		t.Run(fmt.Sprintf("journal=%v", journal), func(t *testing.T) {
			s := newQueueSite(t, "", "")
			for i := range 2 {
				s.run(fmt.Sprintf("Subject: m%d\n\nbody\n", i), "sendmail", "-odq", "-i", "bob@example.net")
				s.now = s.now.Add(time.Second)
			}
			q, _ := queue.Open(s.qdir)
			var items []*queue.Item
			for _, sum := range s.items() {
				it, err := q.Lock(sum.ID)
				if err != nil {
					t.Fatal(err)
				}
				items = append(items, it)
			}
			j, _ := s.queueJob()
			b := j.planBatch(q, items, false, journal)
			if journal != (b.journal != nil) {
				t.Fatalf("journal %v, want one: %v", b.journal, journal)
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			j.deliverBatch(ctx, q, b, nil)
			s.sink.close()
			if got := s.sink.received(); got != "" {
				t.Errorf("a cancelled run delivered:\n%s", got)
			}
			left := s.items()
			if len(left) != 2 {
				t.Fatalf("%d items left, want 2", len(left))
			}
			want := 1
			if journal {
				want = 0
			}
			for _, it := range left {
				if it.Attempts != want {
					t.Errorf("%s: %d attempts recorded, want %d", it.ID, it.Attempts, want)
				}
				again, err := q.Lock(it.ID)
				if err != nil {
					t.Errorf("%s is still locked: %v", it.ID, err)
					continue
				}
				again.Unlock()
			}
			if js, _ := os.ReadDir(filepath.Join(s.qdir, "journal")); len(js) != 0 {
				t.Errorf("journals left: %v", js)
			}
		})
	}
}

// A run that died (its journal left behind) is accounted for by the
// next: the attempt it was making counts, so the item is not due at once.
func TestQueueJournalReplayed(t *testing.T) {
	s := newQueueSite(t, "", "")
	s.run("Subject: m\n\nbody\n", "sendmail", "-odq", "-i", "bob@example.net")
	q, _ := queue.Open(s.qdir)
	sum := s.items()[0]
	it, err := q.Lock(sum.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.JournalAttempts([]*queue.Item{it}, s.now, queue.PolicyFromConfig(config.Default().Queue)); err != nil {
		t.Fatal(err)
	}
	it.Unlock() // the run "dies": no Save, no Done
	if code := s.run("", "sendmail", "-q"); code != 0 {
		t.Fatalf("-q: exit %d\n%s", code, s.lastStderr)
	}
	left := s.items()
	if len(left) != 1 || left[0].Attempts != 1 || !left[0].NextAttempt.After(s.now) {
		t.Fatalf("after the replay: %+v, want the item with 1 attempt, not due", left)
	}
	s.sink.close()
	if got := s.sink.received(); got != "" {
		t.Errorf("the replayed item was delivered at once:\n%s", got)
	}
	if js, _ := os.ReadDir(filepath.Join(s.qdir, "journal")); len(js) != 0 {
		t.Errorf("journals left: %v", js)
	}
}
