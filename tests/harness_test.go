package tests

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/handoff-mta/handoff/internal/realserver"
)

// fixedPath is the PATH every run gets.
const fixedPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// runTimeout bounds one run of the binary.
const runTimeout = 30 * time.Second

// call is one run of the binary as a caller makes it.
type call struct {
	// argv is the exact argument vector. argv[0] is what the caller puts
	// there: a bare name ("sendmail", as execl callers pass) or a path
	// under /usr/sbin, /usr/bin or /usr/lib (as popen and execv callers
	// pass), which is mapped to the same name in binDir. Its basename
	// picks the symlink that is executed.
	argv []string
	// config is the HANDOFF_CONFIG file.
	config string
	// stdin is the input; with openStdin the pipe is not closed before
	// the process ends: it must exit without waiting for the end of its
	// input.
	stdin     string
	openStdin bool
	// timeout bounds the run; 0 means runTimeout.
	timeout time.Duration
}

// result is what one run did.
type result struct {
	code           int
	stdout, stderr string
	home           string // the private home: HOME, and passwdHome when privateHome
	took           time.Duration
	// stdinErr is the error of writing stdin: an EPIPE means the
	// process exited without reading all its input.
	stdinErr error
}

// deadLetter returns the run's dead.letter, and whether it exists.
func (r result) deadLetter(t *testing.T) (string, os.FileInfo, bool) {
	t.Helper()
	p := filepath.Join(r.home, "dead.letter")
	b, err := os.ReadFile(p)
	if os.IsNotExist(err) {
		return "", nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), fi, true
}

// proc is a running binary.
type proc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
	stderr bytes.Buffer
	home   string
	start  time.Time
	cancel context.CancelFunc
	waited bool
}

// start starts the binary for c with pipes on its standard streams.
func start(t *testing.T, c call) *proc {
	t.Helper()
	if len(c.argv) == 0 {
		t.Fatal("empty argv")
	}
	name := filepath.Base(c.argv[0])
	exe := filepath.Join(binDir, name)
	if !fileExists(exe) {
		t.Fatalf("no %s in %s", name, binDir)
	}
	argv := append([]string(nil), c.argv...)
	for _, dir := range []string{"/usr/sbin/", "/usr/bin/", "/usr/lib/"} {
		if strings.HasPrefix(argv[0], dir) {
			argv[0] = exe
		}
	}
	home := t.TempDir()
	env := []string{"PATH=" + fixedPath, "HOME=" + home}
	if c.config != "" {
		env = append(env, "HANDOFF_CONFIG="+c.config)
	}
	var cmd *exec.Cmd
	if privateHome {
		cmd = wrapperCommand(exe, argv, home, env)
	} else {
		cmd = &exec.Cmd{Path: exe, Args: argv, Env: env}
	}
	timeout := c.timeout
	if timeout == 0 {
		timeout = runTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	p := &proc{cmd: cmd, home: home, cancel: cancel}
	cmd.Dir = home
	var err error
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.stdout = bufio.NewReader(out)
	cmd.Stderr = &p.stderr
	p.start = time.Now()
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting %v: %v", c.argv, err)
	}
	// Kill the child when the time is up, as exec.CommandContext does.
	go func() {
		<-ctx.Done()
		if ctx.Err() == context.DeadlineExceeded {
			cmd.Process.Kill()
		}
	}()
	t.Cleanup(func() {
		if !p.waited {
			cmd.Process.Kill()
			cmd.Wait()
		}
		cancel()
	})
	return p
}

// wait waits for the end of the process, stdout having been read.
func (p *proc) wait(t *testing.T, stdout string) result {
	t.Helper()
	err := p.cmd.Wait()
	p.waited = true
	took := time.Since(p.start)
	p.cancel()
	code := p.cmd.ProcessState.ExitCode()
	if err != nil && code < 0 {
		t.Fatalf("%v: %v (killed after %v?)\nstderr:\n%s", p.cmd.Args, err, took.Round(time.Millisecond), p.stderr.String())
	}
	if code == 120 && strings.Contains(p.stderr.String(), "e2e wrapper:") {
		t.Fatalf("the wrapper failed: %s", p.stderr.String())
	}
	return result{code: code, stdout: stdout, stderr: p.stderr.String(), home: p.home, took: took}
}

// run runs the binary for c to its end: it writes stdin (and closes it
// unless c.openStdin), and collects the output.
func run(t *testing.T, c call) result {
	t.Helper()
	p := start(t, c)
	written := make(chan error, 1)
	go func() {
		_, err := io.WriteString(p.stdin, c.stdin)
		if !c.openStdin {
			if cerr := p.stdin.Close(); err == nil {
				err = cerr
			}
		}
		written <- err
	}()
	out, err := io.ReadAll(p.stdout)
	if err != nil {
		t.Fatal(err)
	}
	r := p.wait(t, string(out)) // closes stdin, which ends a blocked write
	r.stdinErr = <-written
	t.Logf("%q: exit %d in %v", c.argv, r.code, r.took.Round(time.Millisecond))
	return r
}

// wantExit checks the exit status.
func (r result) wantExit(t *testing.T, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit status %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
}

// wantQuiet checks that nothing was written to stdout or stderr.
func (r result) wantQuiet(t *testing.T) {
	t.Helper()
	if r.stdout != "" || r.stderr != "" {
		t.Errorf("want no output\nstdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	}
}

// relayEnv is a private Postfix + Dovecot and the handoff config that
// sends to it.
type relayEnv struct {
	p      *realserver.Postfix
	dir    string
	config string // the config of PRODUCT.md §4 for this Postfix
}

// users are the Dovecot users: the defaults alice and bob, and two more
// so that To, Cc and Bcc can each have their own mailbox.
var users = []string{"alice", "bob", "carol", "dave"}

// startRelay starts Postfix and Dovecot for t and writes the config.
func startRelay(t *testing.T) *relayEnv {
	t.Helper()
	realserver.Require(t, "postfix", "dovecot")
	start := time.Now()
	dv := realserver.StartDovecot(t, realserver.DovecotOptions{Users: map[string]string{"carol": "carolpass", "dave": "davepass"}})
	p := realserver.StartPostfix(t, realserver.PostfixOptions{Dovecot: dv})
	t.Logf("Postfix %s and Dovecot %s started in %v", p.Version, dv.Version, time.Since(start).Round(time.Millisecond))
	e := &relayEnv{p: p, dir: t.TempDir()}
	e.config = e.writeConfig(t, "handoff.toml", "smtp://"+p.Addr, "alicepass")
	return e
}

// writeConfig writes a config for the relay at url with alice's
// password pass.
func (e *relayEnv) writeConfig(t *testing.T, name, url, pass string) string {
	t.Helper()
	return writeConfig(t, e.dir, name, url, pass, e.p.CA.CertFile)
}

// writeConfig writes the config of the tests into dir: the host
// client.example.test, the domain example.test, root aliased to bob, and
// one relay at url (STARTTLS required, certificates from caFile for the
// name mail.example.test, AUTH as alice with pass).
func writeConfig(t *testing.T, dir, name, url, pass, caFile string) string {
	t.Helper()
	return writeConfigWith(t, dir, name, url, pass, caFile, nil)
}

// writeConfigWith is writeConfig with some lines of the [[relay]] table
// replaced: edit maps a line ("starttls = ...") to its replacement ("" to
// drop it).
func writeConfigWith(t *testing.T, dir, name, url, pass, caFile string, edit map[string]string) string {
	t.Helper()
	cfg := fmt.Sprintf(`# handoff end-to-end tests
hostname = "client.example.test"
domain = "example.test"

[aliases]
root = "bob@example.test"

# The queue is not the subject here: temporary failures go back to the
# caller (exit 75), and nothing is written to /var/spool.
[queue]
dir = %q
mode = "never"

[[relay]]
name = "postfix"
url = %q
starttls = "required"
tls_ca_file = %q
tls_server_name = "mail.example.test"
username = "alice@example.test"
password = %q
connect_timeout = "10s"
`, filepath.Join(dir, "queue"), url, caFile, pass)
	for from, to := range edit {
		if !strings.Contains(cfg, from+"\n") {
			t.Fatalf("no line %q in the config", from)
		}
		cfg = strings.Replace(cfg, from+"\n", to+"\n", 1)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

var markerSeq atomic.Int64

// newMarker returns a string that identifies one test's message.
func newMarker(name string) string {
	return fmt.Sprintf("e2e-%s-%d-%d", name, time.Now().UnixNano(), markerSeq.Add(1))
}

// find waits for the message holding marker in user's INBOX and returns
// it; it fails if there is more than one.
func (e *relayEnv) find(t *testing.T, user, marker string) *stored {
	t.Helper()
	msgs := e.p.Dovecot.Messages(t, user)
	for {
		var found [][]byte
		for _, m := range msgs {
			if bytes.Contains(m, []byte(marker)) {
				found = append(found, m)
			}
		}
		switch len(found) {
		case 0:
			// Wait for one more message; WaitMessages fails the test
			// after 10 seconds without one.
			msgs = e.p.Dovecot.WaitMessages(t, user, len(msgs)+1)
			continue
		case 1:
			return parseStored(t, found[0])
		}
		t.Fatalf("%d copies of %s for %s", len(found), marker, user)
	}
}

// delivered waits for the message holding marker in the INBOX of each
// of want, then for Postfix to be done with it, and checks that no other
// user got it. It returns the stored copies by user.
func (e *relayEnv) delivered(t *testing.T, marker string, want ...string) map[string]*stored {
	t.Helper()
	got := map[string]*stored{}
	for _, u := range want {
		got[u] = e.find(t, u, marker)
	}
	// Postfix logs the Message-ID when it takes the message in, and
	// "removed" when every recipient is done: after that, nothing more
	// of this message will arrive anywhere.
	id := got[want[0]].get("Message-ID")
	if id == "" {
		t.Fatalf("no Message-ID in\n%s", got[want[0]].raw)
	}
	line := e.p.WaitLog(t, "message-id="+id)
	qid := queueID(line, ": message-id=")
	if qid == "" {
		t.Fatalf("no queue id in %q", line)
	}
	e.p.WaitLog(t, qid+": removed")
	for _, u := range users {
		n := 0
		for _, m := range e.p.Dovecot.Messages(t, u) {
			if bytes.Contains(m, []byte(marker)) {
				n++
			}
		}
		want := 0
		if got[u] != nil {
			want = 1
		}
		if n != want {
			t.Errorf("%s has %d copies of the message, want %d", u, n, want)
		}
	}
	return got
}

// waitSent waits until Postfix is done with the message whose
// Message-ID is id, and fails unless every recipient's status is "sent":
// a message that Postfix bounced or deferred after handoff exited 0 is
// reported at once, with Postfix's reason, rather than as a message that
// never reached a Maildir.
func (e *relayEnv) waitSent(t *testing.T, id string) {
	t.Helper()
	qid := queueID(e.p.WaitLog(t, "message-id="+id), ": message-id=")
	if qid == "" {
		t.Fatalf("no queue id for %s", id)
	}
	e.p.WaitLog(t, qid+": removed")
	var bad []string
	n := 0
	for line := range strings.Lines(e.p.Log()) {
		if strings.Contains(line, qid+": to=<") {
			n++
			if !strings.Contains(line, "status=sent") {
				bad = append(bad, strings.TrimSpace(line))
			}
		}
	}
	if n == 0 || len(bad) > 0 {
		t.Fatalf("Postfix did not deliver the message %s to every recipient (handoff exited 0):\n%s", id, strings.Join(bad, "\n"))
	}
}

// messageIDOf returns the Message-ID the caller put in its input, if any.
func messageIDOf(input string) string {
	head, _, _ := strings.Cut(strings.ReplaceAll(input, "\r\n", "\n"), "\n\n")
	for _, line := range strings.Split(head, "\n") {
		if name, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(name, "Message-ID") {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// queueID takes the Postfix queue id in front of sep in a log line.
func queueID(line, sep string) string {
	before, _, ok := strings.Cut(line, sep)
	if !ok {
		return ""
	}
	f := strings.Fields(before)
	if len(f) == 0 {
		return ""
	}
	return f[len(f)-1]
}

// stored is a message as Dovecot stored it: LF line ends, trace fields
// (Return-Path, Delivered-To, Received) first.
type stored struct {
	raw    string
	trace  []string // the trace fields, each with its continuation lines
	fields []string // the fields handoff sent, each with its continuation lines
	body   string
}

// parseStored splits a stored message.
func parseStored(t *testing.T, b []byte) *stored {
	t.Helper()
	s := &stored{raw: string(b)}
	if bytes.Contains(b, []byte("\r")) {
		t.Errorf("stored message has a CR:\n%q", b)
	}
	head, body, ok := strings.Cut(s.raw, "\n\n")
	if !ok {
		t.Fatalf("stored message has no end of header:\n%s", s.raw)
	}
	s.body = body
	var all []string
	for _, line := range strings.Split(head, "\n") {
		if (strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t")) && len(all) > 0 {
			all[len(all)-1] += "\n" + line
			continue
		}
		all = append(all, line)
	}
	i := 0
	for i < len(all) && (hasName(all[i], "Return-Path") || hasName(all[i], "Delivered-To") || hasName(all[i], "Received")) {
		i++
	}
	s.trace, s.fields = all[:i], all[i:]
	return s
}

func hasName(field, name string) bool {
	n, _, ok := strings.Cut(field, ":")
	return ok && strings.EqualFold(strings.TrimSpace(n), name)
}

// get returns the unfolded value of the first field called name, trace
// fields included.
func (s *stored) get(name string) string {
	for _, f := range append(s.trace[:len(s.trace):len(s.trace)], s.fields...) {
		if hasName(f, name) {
			_, v, _ := strings.Cut(f, ":")
			return strings.TrimSpace(strings.ReplaceAll(v, "\n", ""))
		}
	}
	return ""
}

// count returns how many fields called name the message has.
func (s *stored) count(name string) int {
	n := 0
	for _, f := range append(s.trace[:len(s.trace):len(s.trace)], s.fields...) {
		if hasName(f, name) {
			n++
		}
	}
	return n
}

// Placeholders in wanted header fields.
const (
	anyDate  = "{DATE}"  // a generated RFC 5322 date of now
	anyMsgID = "{MSGID}" // a generated <unique@client.example.test>
)

// genMsgID is a Message-ID handoff generates.
var genMsgID = regexp.MustCompile(`^<[!-;=?-~]+@client\.example\.test>$`)

// check compares the message with what the caller should see: the
// envelope as Dovecot recorded it, the header fields handoff sent (in
// order, exact but for the placeholders), and the body bytes.
func (s *stored) check(t *testing.T, user, returnPath, deliveredTo string, fields []string, body string) {
	t.Helper()
	if got := s.get("Return-Path"); got != "<"+returnPath+">" {
		t.Errorf("%s: Return-Path %q, want <%s>", user, got, returnPath)
	}
	if deliveredTo != "" {
		if got := s.get("Delivered-To"); got != deliveredTo {
			t.Errorf("%s: Delivered-To %q, want %s", user, got, deliveredTo)
		}
	}
	// Postfix's Received field shows the session: EHLO name, TLS and
	// AUTH (ESMTPSA).
	var postfixRcvd string
	for _, f := range s.trace {
		if hasName(f, "Received") && strings.Contains(f, "(Postfix)") {
			postfixRcvd = f
		}
	}
	for _, want := range []string{"from client.example.test (", "(using TLSv1.", "with ESMTPSA id"} {
		if !strings.Contains(postfixRcvd, want) {
			t.Errorf("%s: Postfix's Received field lacks %q:\n%s", user, want, postfixRcvd)
		}
	}
	if len(s.fields) != len(fields) {
		t.Errorf("%s: %d header fields, want %d\n--- got\n%s\n--- want\n%s", user, len(s.fields), len(fields),
			strings.Join(s.fields, "\n"), strings.Join(fields, "\n"))
	}
	for i := 0; i < len(s.fields) && i < len(fields); i++ {
		if err := matchField(s.fields[i], fields[i]); err != nil {
			t.Errorf("%s: header field %d: %v", user, i+1, err)
		}
	}
	if s.body != body {
		t.Errorf("%s: body differs\n--- got\n%q\n--- want\n%q", user, s.body, body)
	}
}

// checkNoBcc checks that no Bcc or Resent-Bcc field arrived and that
// none of the blind recipients shows in the header fields.
func (s *stored) checkNoBcc(t *testing.T, user string, bcc ...string) {
	t.Helper()
	if n := s.count("Bcc") + s.count("Resent-Bcc"); n != 0 {
		t.Errorf("%s: %d Bcc fields arrived:\n%s", user, n, s.raw)
	}
	for _, f := range s.fields {
		for _, b := range bcc {
			if strings.Contains(f, b) {
				t.Errorf("%s: blind recipient %s shows in %q", user, b, f)
			}
		}
	}
}

// matchField compares one stored field with a wanted one, which may hold
// a placeholder as its whole value.
func matchField(got, want string) error {
	name, val, _ := strings.Cut(want, ": ")
	switch val {
	case anyDate:
		gn, gv, _ := strings.Cut(got, ": ")
		if gn != name {
			return fmt.Errorf("got %q, want a %s field", got, name)
		}
		d, err := mail.ParseDate(gv)
		if err != nil {
			return fmt.Errorf("%q: %v", got, err)
		}
		if age := time.Since(d); age < -time.Minute || age > 5*time.Minute {
			return fmt.Errorf("%q is not the time of sending", got)
		}
		return nil
	case anyMsgID:
		gn, gv, _ := strings.Cut(got, ": ")
		if gn != name || !genMsgID.MatchString(gv) {
			return fmt.Errorf("got %q, want a generated %s: <unique@client.example.test>", got, name)
		}
		return nil
	}
	if got != want {
		return fmt.Errorf("got %q, want %q", got, want)
	}
	return nil
}

// stderrLines splits stderr into lines.
func stderrLines(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// closedAddr returns a loopback address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// needPrivateHome skips (or, with HANDOFF_REQUIRE_INTEGRATION=1, fails)
// a test that makes handoff write dead.letter when the runs cannot get
// a private home: it would write the real one.
func needPrivateHome(t *testing.T) {
	t.Helper()
	if privateHome {
		return
	}
	msg := fmt.Sprintf("this test makes handoff write %s/dead.letter, and runs cannot get a private home: %s", passwdHome, noPrivateHome)
	if os.Getenv(realserver.RequireEnv) == "1" {
		t.Fatalf("%s\n(%s=1 is set, so this is a failure)", msg, realserver.RequireEnv)
	}
	t.Skipf("\n*** SKIPPED ***\n%s", msg)
}
