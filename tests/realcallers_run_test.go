package tests

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/handoff-mta/handoff/internal/realserver"
)

// Helpers for realcallers_test.go: running a real caller program (php,
// git send-email, mutt, s-nail, bsd-mailx, at/atd) in a private mount
// namespace, and reading handoff's delivery log from its standard error.

// extraBindsEnv asks the re-executed test binary to bind-mount more
// files or directories before the private-home wrapper of main_test.go
// runs: one "SOURCE\tTARGET" per line. A caller that only runs
// /usr/sbin/sendmail (atd, and the default sendmail_path of PHP) sees
// the handoff binary there; nothing outside the namespace changes.
const extraBindsEnv = "HANDOFF_E2E_EXTRA_BINDS"

// init runs before TestMain, so in the wrapper (already in its own mount
// namespace, with the mounts made private by Go) the extra mounts are in
// place when wrapExec bind-mounts the home and execs the caller.
func init() {
	spec, ok := os.LookupEnv(extraBindsEnv)
	if !ok {
		return
	}
	os.Unsetenv(extraBindsEnv)
	if os.Getenv(wrapExecEnv) == "" {
		fmt.Fprintf(os.Stderr, "e2e wrapper: %s set without %s\n", extraBindsEnv, wrapExecEnv)
		os.Exit(120)
	}
	for _, line := range strings.Split(spec, "\n") {
		src, dst, ok := strings.Cut(line, "\t")
		if !ok {
			fmt.Fprintf(os.Stderr, "e2e wrapper: bad bind %q\n", line)
			os.Exit(120)
		}
		if err := syscall.Mount(src, dst, "", syscall.MS_BIND, ""); err != nil {
			fmt.Fprintf(os.Stderr, "e2e wrapper: bind-mounting %s over %s: %v\n", src, dst, err)
			os.Exit(120)
		}
	}
}

// requireProgram skips the test, loudly, when one of the files that make
// up a real caller program is missing, and fails it when
// HANDOFF_REQUIRE_INTEGRATION=1 is set (as CI does): each file comes
// with the Debian package that installs it.
func requireProgram(t *testing.T, what string, files ...[2]string) {
	t.Helper()
	var missing, pkgs []string
	for _, f := range files {
		fi, err := os.Stat(f[0])
		// A program must be executable; a Perl module need not.
		notExec := err == nil && fi.Mode()&0o111 == 0 && !strings.HasSuffix(f[0], ".pm")
		if err != nil || fi.IsDir() || notExec {
			missing = append(missing, fmt.Sprintf("%s (Debian package %s)", f[0], f[1]))
			pkgs = append(pkgs, f[1])
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := fmt.Sprintf("the real caller %s is not installed: missing %s\nInstall as root: apt-get install --no-install-recommends %s",
		what, strings.Join(missing, ", "), strings.Join(pkgs, " "))
	if os.Getenv(realserver.RequireEnv) == "1" {
		t.Fatalf("%s\n(%s=1 is set, so a missing caller program is a failure)", msg, realserver.RequireEnv)
	}
	t.Skipf("\n*** SKIPPED: end-to-end test of a real caller program ***\n%s\nSet %s=1 to make this a failure instead of a skip.",
		msg, realserver.RequireEnv)
}

// needNamespace skips (or, with HANDOFF_REQUIRE_INTEGRATION=1, fails) a
// test that runs a real caller when there is no private mount namespace:
// the callers and handoff would write the real ~/dead.letter, and the
// tests that put handoff at /usr/sbin/sendmail could not do it.
func needNamespace(t *testing.T) {
	t.Helper()
	if privateHome {
		return
	}
	msg := "the real callers run in a private mount namespace (their own home, handoff bind-mounted at /usr/sbin/sendmail), and there is none here: " + noPrivateHome
	if os.Getenv(realserver.RequireEnv) == "1" {
		t.Fatalf("%s\n(%s=1 is set, so this is a failure)", msg, realserver.RequireEnv)
	}
	t.Skipf("\n*** SKIPPED ***\n%s", msg)
}

// callerRun is one run of a real caller program.
type callerRun struct {
	// argv is the command line; argv[0] is the program's absolute path.
	argv []string
	// env is added to PATH, HOME (the private home) and HANDOFF_CONFIG.
	env []string
	// stdin is the program's input.
	stdin string
	// dir is the working directory; "" means the private home.
	dir string
	// binds are extra bind mounts (source, target) in the namespace.
	binds [][2]string
}

// callerResult is what the caller did.
type callerResult struct {
	code           int
	stdout, stderr string
	home           string // the private home: HOME and the passwd home
	took           time.Duration
}

// callerTimeout bounds one run of a caller program.
const callerTimeout = 60 * time.Second

// runCaller runs the caller with the config cfg in a private mount
// namespace whose passwd home is a fresh directory.
func runCaller(t *testing.T, cfg string, c callerRun) callerResult {
	t.Helper()
	home := t.TempDir()
	env := append([]string{"PATH=" + fixedPath, "HOME=" + home, "HANDOFF_CONFIG=" + cfg}, c.env...)
	cmd := wrapperCommand(c.argv[0], c.argv, home, env)
	if len(c.binds) > 0 {
		var lines []string
		for _, b := range c.binds {
			lines = append(lines, b[0]+"\t"+b[1])
		}
		cmd.Env = append(cmd.Env, extraBindsEnv+"="+strings.Join(lines, "\n"))
	}
	cmd.Dir = home
	if c.dir != "" {
		cmd.Dir = c.dir
	}
	cmd.Stdin = strings.NewReader(c.stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// A grandchild that keeps the pipes open must not hang the test.
	cmd.WaitDelay = 10 * time.Second
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %q: %v", c.argv, err)
	}
	timer := time.AfterFunc(callerTimeout, func() { cmd.Process.Kill() })
	err := cmd.Wait()
	timer.Stop()
	r := callerResult{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String(), home: home, took: time.Since(start)}
	if r.code < 0 {
		t.Fatalf("%q: %v (killed after %v?)\nstdout:\n%s\nstderr:\n%s", c.argv, err, r.took.Round(time.Millisecond), r.stdout, r.stderr)
	}
	if r.code == 120 && strings.Contains(r.stderr, "e2e wrapper:") {
		t.Fatalf("the wrapper failed: %s", r.stderr)
	}
	t.Logf("%q: exit %d in %v\nstdout:\n%s\nstderr:\n%s", c.argv, r.code, r.took.Round(time.Millisecond), r.stdout, r.stderr)
	return r
}

// deadLetter returns the dead.letter in the run's private home, and
// whether there is one.
func (r callerResult) deadLetter(t *testing.T) (string, bool) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(r.home, "dead.letter"))
	if os.IsNotExist(err) {
		return "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b), true
}

// callerLogConfig writes the relay's config with the delivery log on standard
// error ([log] syslog = false), where a caller that passes its child's
// standard error through (php, git, mutt, s-nail, bsd-mailx) shows it.
func callerLogConfig(t *testing.T, e *relayEnv, name string) string {
	t.Helper()
	path := e.writeConfig(t, name, "smtp://"+e.p.Addr, "alicepass")
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("\n[log]\nsyslog = false\n"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// deliveryLogLine is one line of the delivery log (internal/cli/deliverylog.go).
type deliveryLogLine struct {
	id, from, to, relay, server, tls, status, reply string
}

var deliveryLogRE = regexp.MustCompile(`^(\S+): from=<([^>]*)>, to=<([^>]*)>, relay=([^\[,\s]+)(?:\[([^\]]*)\])?(?:, tls=([^,]+))?, delay=[0-9]+\.[0-9]{2}, status=(sent|deferred|bounced) \((.*)\)$`)

// splitDeliveryLog separates the delivery log lines in a caller's standard error
// from the other lines.
func splitDeliveryLog(stderr string) (logs []deliveryLogLine, other []string) {
	for _, l := range stderrLines(stderr) {
		m := deliveryLogRE.FindStringSubmatch(l)
		if m == nil {
			other = append(other, l)
			continue
		}
		logs = append(logs, deliveryLogLine{id: m[1], from: m[2], to: m[3], relay: m[4], server: m[5], tls: m[6], status: m[7], reply: m[8]})
	}
	return logs, other
}

// postfixQueueID waits for Postfix to take in the message whose
// Message-ID is id and returns its queue id.
func postfixQueueID(t *testing.T, e *relayEnv, id string) string {
	t.Helper()
	qid := queueID(e.p.WaitLog(t, "message-id="+id), ": message-id=")
	if qid == "" {
		t.Fatalf("no Postfix queue id for %s", id)
	}
	return qid
}

// checkSentLog checks that logs has exactly one line per recipient in
// rcpts, each saying the message from sender went to the relay "postfix"
// at e's address over TLS and was queued by Postfix as qid.
func checkSentLog(t *testing.T, e *relayEnv, logs []deliveryLogLine, sender, qid string, rcpts ...string) {
	t.Helper()
	if len(logs) != len(rcpts) {
		t.Errorf("%d delivery log lines, want %d (one per recipient %q): %+v", len(logs), len(rcpts), rcpts, logs)
	}
	for _, rcpt := range rcpts {
		n := 0
		for _, l := range logs {
			if l.to != rcpt {
				continue
			}
			n++
			if l.id != "-" {
				t.Errorf("log line for %s: queue id %q, want \"-\" (delivered at submission, never queued)", rcpt, l.id)
			}
			if l.from != sender {
				t.Errorf("log line for %s: from=<%s>, want <%s>", rcpt, l.from, sender)
			}
			if l.relay != "postfix" || l.server != e.p.Addr {
				t.Errorf("log line for %s: relay=%s[%s], want postfix[%s]", rcpt, l.relay, l.server, e.p.Addr)
			}
			if !strings.HasPrefix(l.tls, "TLSv1.") {
				t.Errorf("log line for %s: tls=%q, want a TLS version", rcpt, l.tls)
			}
			if want := "250 2.0.0 Ok: queued as " + qid; l.status != "sent" || l.reply != want {
				t.Errorf("log line for %s: status=%s (%s), want status=sent (%s)", rcpt, l.status, l.reply, want)
			}
		}
		if n != 1 {
			t.Errorf("%d delivery log lines for %s, want 1", n, rcpt)
		}
	}
}

// callerPath finds a program in the fixed PATH of the runs.
func callerPath(name string) string {
	for _, dir := range filepath.SplitList(fixedPath) {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return "/usr/bin/" + name
}

// writeCallerScript writes a script of the tests.
func writeCallerScript(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o755); err != nil {
		t.Fatal(err)
	}
}

// runGit runs git outside the namespace (to make the repository and the
// patches) and returns its standard output.
func runGit(t *testing.T, dir string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(callerPath("git"), args...)
	cmd.Dir = dir
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git %q: %v\n%s", args, err, stderr.String())
	}
	return string(out)
}
