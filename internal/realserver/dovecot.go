package realserver

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Domain is the mail domain that Dovecot serves and Postfix delivers to it.
const Domain = "example.test"

// waitMessagesTimeout bounds Dovecot.WaitMessages.
const waitMessagesTimeout = 10 * time.Second

// mailUserName and mailGroupName own every Maildir: Dovecot refuses to
// deliver as root, and one unprivileged account for all users keeps the
// setup simple. The test (root) reads the files regardless.
const (
	mailUserName  = "nobody"
	mailGroupName = "nogroup"
)

// DefaultUsers returns the users every Dovecot knows, with their passwords:
// alice/alicepass and bob/bobpass.
func DefaultUsers() map[string]string {
	return map[string]string{"alice": "alicepass", "bob": "bobpass"}
}

// DovecotOptions configures StartDovecot. The zero value is fine.
type DovecotOptions struct {
	// Users are added to DefaultUsers (replacing the password of a
	// default user of the same name). Names are local parts (no domain) of
	// lowercase letters, digits, '.', '_' and '-'; passwords hold no ':'
	// and no control characters.
	Users map[string]string
}

// Dovecot is a running private Dovecot that accepts LMTP for Domain, stores
// each user's mail in a Maildir, and authenticates users for Postfix. Its
// logins take either "alice" or "alice@example.test".
type Dovecot struct {
	LMTPSocket string            // Unix socket path for LMTP
	LMTPAddr   string            // 127.0.0.1:port for LMTP over TCP
	AuthSocket string            // auth client socket for Postfix SASL (smtpd_sasl_type = dovecot)
	Users      map[string]string // user (local part) -> password, as in its passwd-file
	Version    string            // the installed Dovecot's version

	Dir        string // the instance directory (configuration, passwd-file, log, mail)
	ConfigFile string // dovecot.conf
	LogFile    string // Dovecot's log

	homeDir string
	proc    *daemon
}

// daemon is a server process started in the foreground in its own process
// group.
type daemon struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd.Wait returned
	err  error         // cmd.Wait's result, set before done is closed
}

func startDaemon(cmd *exec.Cmd) (*daemon, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	d := &daemon{cmd: cmd, done: make(chan struct{})}
	go func() {
		d.err = cmd.Wait()
		close(d.done)
	}()
	return d, nil
}

func (d *daemon) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, waits for the process and its group to go, and kills
// the group if they don't. It reports whether everything is gone.
func (d *daemon) stop() bool {
	pid := d.cmd.Process.Pid // also the process group
	if !d.exited() {
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-d.done:
	case <-time.After(stopTimeout):
		killGroup(pid)
		<-d.done
	}
	if waitGone(0, pid, stopTimeout) {
		return true
	}
	killGroup(pid)
	return waitGone(0, pid, 5*time.Second)
}

var userNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

// StartDovecot starts a private Dovecot for the test and stops it in
// t.Cleanup. It skips or fails the test as Require does when Dovecot is not
// installed. On test failure the tail of Dovecot's log is logged.
func StartDovecot(t testing.TB, opts DovecotOptions) *Dovecot {
	t.Helper()
	Require(t, "dovecot")
	begin := time.Now()

	users := DefaultUsers()
	maps.Copy(users, opts.Users)
	for name, pass := range users {
		if !userNameRE.MatchString(name) {
			t.Fatalf("realserver: bad Dovecot user name %q", name)
		}
		if pass == "" || strings.ContainsFunc(pass, func(r rune) bool { return r == ':' || r < ' ' || r == 0x7f }) {
			t.Fatalf("realserver: bad password for Dovecot user %q", name)
		}
	}
	v, err := dovecotVersion()
	if err != nil {
		t.Fatalf("%v", err)
	}

	dir := instanceDir(t)
	d := &Dovecot{
		Users:      users,
		Version:    v.text,
		Dir:        dir,
		ConfigFile: filepath.Join(dir, "dovecot.conf"),
		LogFile:    filepath.Join(dir, "dovecot.log"),
		homeDir:    filepath.Join(dir, "home"),
	}
	// Dovecot's sockets live in base_dir; the longest of its own names is
	// "replication-notify-fifo", so leave room for 40 bytes.
	baseDir := shortDir(t, filepath.Join(dir, "run"), 40)
	d.LMTPSocket = filepath.Join(baseDir, "lmtp-handoff")
	d.AuthSocket = filepath.Join(baseDir, "auth-postfix")
	stateDir := filepath.Join(dir, "state")

	uid, gid, err := mailOwner()
	if err != nil {
		t.Fatalf("realserver: %v", err)
	}
	for _, p := range []string{baseDir, stateDir, d.homeDir} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatalf("realserver: %v", err)
		}
	}
	if err := os.Chown(d.homeDir, uid, gid); err != nil {
		t.Fatalf("realserver: %v", err)
	}
	if err := os.Chmod(d.homeDir, 0o700); err != nil {
		t.Fatalf("realserver: %v", err)
	}
	passwdFile := filepath.Join(dir, "passwd")
	var pw strings.Builder
	for _, name := range slices.Sorted(maps.Keys(users)) {
		// user:password:uid:gid:(gecos):home:(shell):extra_fields; the
		// empty fields take mail_uid, mail_gid and mail_home.
		fmt.Fprintf(&pw, "%s:{PLAIN}%s::::::\n", name, users[name])
	}
	if err := os.WriteFile(passwdFile, []byte(pw.String()), 0o644); err != nil {
		t.Fatalf("realserver: %v", err)
	}

	stderrFile := filepath.Join(dir, "dovecot.stderr")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("realserver: Dovecot log %s, last lines:\n%s", d.LogFile, tailFile(d.LogFile, logTailLines))
			if fi, err := os.Stat(stderrFile); err == nil && fi.Size() > 0 {
				t.Logf("realserver: Dovecot stderr:\n%s", tailFile(stderrFile, logTailLines))
			}
		}
		if d.proc != nil && !d.proc.stop() {
			t.Errorf("realserver: Dovecot (pid %d) did not stop", d.proc.cmd.Process.Pid)
		}
	})

	var failures []string
	for attempt := 1; attempt <= startAttempts; attempt++ {
		ports, err := pickPorts(1)
		if err != nil {
			t.Fatalf("realserver: picking a port: %v", err)
		}
		d.LMTPAddr = "127.0.0.1:" + strconv.Itoa(ports[0])
		conf := dovecotConf(dovecotConfParams{
			instance: "handoff-" + randomHex(4),
			baseDir:  baseDir,
			stateDir: stateDir,
			logFile:  d.LogFile,
			passwd:   passwdFile,
			homeDir:  d.homeDir,
			uid:      uid,
			gid:      gid,
			lmtpSock: filepath.Base(d.LMTPSocket),
			authSock: filepath.Base(d.AuthSocket),
			lmtpPort: ports[0],
		})
		if err := os.WriteFile(d.ConfigFile, []byte(conf), 0o644); err != nil {
			t.Fatalf("realserver: %v", err)
		}
		stderr, err := os.OpenFile(stderrFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			t.Fatalf("realserver: %v", err)
		}
		cmd := exec.Command(dovecotBin, "-F", "-c", d.ConfigFile)
		cmd.Stdout, cmd.Stderr = stderr, stderr
		proc, err := startDaemon(cmd)
		stderr.Close()
		if err != nil {
			t.Fatalf("realserver: starting dovecot: %v", err)
		}
		d.proc = proc
		err = d.waitReady()
		if err == nil {
			t.Logf("realserver: Dovecot %s ready in %v (LMTP %s and %s, auth %s)",
				d.Version, time.Since(begin).Round(time.Millisecond), d.LMTPSocket, d.LMTPAddr, d.AuthSocket)
			return d
		}
		failures = append(failures, fmt.Sprintf("attempt %d: %v", attempt, err))
		t.Logf("realserver: Dovecot start attempt %d failed after %v: %v", attempt, time.Since(begin).Round(time.Millisecond), err)
		proc.stop()
		d.proc = nil
		if !errors.Is(err, errExited) {
			break // it runs but does not answer: fresh ports will not help
		}
	}
	t.Fatalf("realserver: Dovecot did not start:\n%s\nstderr:\n%s\nlog:\n%s",
		strings.Join(failures, "\n"), tailFile(stderrFile, logTailLines), tailFile(d.LogFile, logTailLines))
	return nil
}

// waitReady polls until both LMTP listeners greet and the auth socket
// answers, or the process exits, or startTimeout passes.
func (d *Dovecot) waitReady() error {
	deadline := time.Now().Add(startTimeout)
	for {
		if d.proc.exited() {
			return fmt.Errorf("%w: %v", errExited, d.proc.err)
		}
		err := greeting("unix", d.LMTPSocket, nil, "220 ", true)
		if err == nil {
			err = greeting("tcp", d.LMTPAddr, nil, "220 ", true)
		}
		if err == nil {
			err = greeting("unix", d.AuthSocket, nil, "VERSION\t", false)
		}
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v: %v", startTimeout, err)
		}
		time.Sleep(pollInterval)
	}
}

type dovecotConfParams struct {
	instance, baseDir, stateDir, logFile, passwd, homeDir string
	uid, gid                                              int
	lmtpSock, authSock                                    string
	lmtpPort                                              int
}

// dovecotConf writes a Dovecot 2.3 configuration.
func dovecotConf(p dovecotConfParams) string {
	return fmt.Sprintf(`# Written by handoff's internal/realserver for Dovecot 2.3.
instance_name = %[1]s
base_dir = %[2]s
state_dir = %[3]s
log_path = %[4]s
info_log_path = %[4]s
hostname = lmtp.%[12]s
postmaster_address = postmaster@%[12]s
protocols = lmtp
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login cram-md5 scram-sha-1 scram-sha-256
auth_username_format = %%Ln
auth_verbose = yes
# Answer failed logins at once, and keep no per-IP penalty: every test
# client comes from 127.0.0.1, and a wrong password in one test must not
# slow down the logins that follow it.
auth_failure_delay = 0
first_valid_uid = %[7]d
last_valid_uid = %[7]d
first_valid_gid = %[8]d
last_valid_gid = %[8]d
mail_uid = %[7]d
mail_gid = %[8]d
mail_home = %[6]s/%%n
mail_location = maildir:~/Maildir
passdb {
  driver = passwd-file
  args = scheme=PLAIN %[5]s
}
userdb {
  driver = passwd-file
  args = %[5]s
}
service lmtp {
  unix_listener %[9]s {
    mode = 0666
  }
  inet_listener lmtp {
    address = 127.0.0.1
    port = %[11]d
  }
}
service auth {
  unix_listener %[10]s {
    mode = 0666
  }
}
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
`, p.instance, p.baseDir, p.stateDir, p.logFile, p.passwd, p.homeDir, p.uid, p.gid,
		p.lmtpSock, p.authSock, p.lmtpPort, Domain)
}

func mailOwner() (uid, gid int, err error) {
	u, err := user.Lookup(mailUserName)
	if err != nil {
		return 0, 0, err
	}
	uid, err = strconv.Atoi(u.Uid)
	if err != nil {
		return 0, 0, err
	}
	gid, err = strconv.Atoi(u.Gid)
	if err != nil {
		return 0, 0, err
	}
	if g, err := user.LookupGroup(mailGroupName); err == nil {
		if n, err := strconv.Atoi(g.Gid); err == nil {
			gid = n
		}
	}
	if uid == 0 || gid == 0 {
		return 0, 0, fmt.Errorf("the mail owner %s must not be root", mailUserName)
	}
	return uid, gid, nil
}

func mailUserErr() error {
	if _, _, err := mailOwner(); err != nil {
		return fmt.Errorf("realserver: mail owner %s:%s: %v", mailUserName, mailGroupName, err)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Log returns Dovecot's log so far.
func (d *Dovecot) Log() string {
	b, _ := os.ReadFile(d.LogFile)
	return string(b)
}

// Maildir returns the Maildir of user ("alice" or "alice@example.test").
func (d *Dovecot) Maildir(user string) string {
	local, _, _ := strings.Cut(user, "@")
	return filepath.Join(d.homeDir, strings.ToLower(local), "Maildir")
}

// Messages returns the messages delivered to user's INBOX, from the Maildir's
// new/ and cur/, sorted by file name (which begins with the delivery time),
// with the bytes exactly as stored. Dovecot stores lines ending in LF, not
// CRLF, and prepends Return-Path, Delivered-To and Received headers. A user
// with no mail yet has none.
func (d *Dovecot) Messages(t testing.TB, user string) [][]byte {
	t.Helper()
	msgs, err := d.messages(user)
	if err != nil {
		t.Fatalf("realserver: reading Maildir of %s: %v", user, err)
	}
	return msgs
}

func (d *Dovecot) messages(user string) ([][]byte, error) {
	md := d.Maildir(user)
	var err error
	// A file may move from new/ to cur/ between listing and reading; then
	// list again.
	for range 5 {
		var names []string
		paths := map[string]string{}
		for _, sub := range []string{"new", "cur"} {
			entries, rerr := os.ReadDir(filepath.Join(md, sub))
			if errors.Is(rerr, os.ErrNotExist) {
				continue
			}
			if rerr != nil {
				return nil, rerr
			}
			for _, e := range entries {
				if e.Type().IsRegular() {
					names = append(names, e.Name())
					paths[e.Name()] = filepath.Join(md, sub, e.Name())
				}
			}
		}
		slices.Sort(names)
		msgs := make([][]byte, 0, len(names))
		err = nil
		for _, name := range names {
			b, rerr := os.ReadFile(paths[name])
			if rerr != nil {
				err = rerr
				break
			}
			msgs = append(msgs, b)
		}
		if err == nil {
			return msgs, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	return nil, err
}

// WaitMessages polls user's INBOX until it holds at least n messages and
// returns them all (as Messages does); it fails the test if that takes
// longer than 10 seconds.
func (d *Dovecot) WaitMessages(t testing.TB, user string, n int) [][]byte {
	t.Helper()
	deadline := time.Now().Add(waitMessagesTimeout)
	for {
		msgs, err := d.messages(user)
		if err != nil {
			t.Fatalf("realserver: reading Maildir of %s: %v", user, err)
		}
		if len(msgs) >= n {
			return msgs
		}
		if time.Now().After(deadline) {
			t.Fatalf("realserver: %s has %d messages after %v, want %d; Dovecot log:\n%s",
				user, len(msgs), waitMessagesTimeout, n, tailFile(d.LogFile, logTailLines))
		}
		time.Sleep(pollInterval)
	}
}
