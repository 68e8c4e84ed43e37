package tests

// System mode end to end: "handoff daemon" runs as the user handoff and
// holds the relay password; an unprivileged user submits
// through the sendmail front end, which can read neither the password
// nor the queue.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/handoff-mta/handoff/internal/realserver"
)

// sysUser is a system user the test runs programs as.
type sysUser struct {
	name     string
	uid, gid uint32
}

// needUser returns the user name, creating it (a system user without a
// home) when it does not exist. It needs root.
func needUser(t *testing.T, name string) sysUser {
	t.Helper()
	u, err := user.Lookup(name)
	if err != nil {
		out, err := exec.Command("useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name).CombinedOutput()
		if err != nil {
			t.Fatalf("useradd %s: %v\n%s", name, err, out)
		}
		if u, err = user.Lookup(name); err != nil {
			t.Fatal(err)
		}
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return sysUser{name: name, uid: uint32(uid), gid: uint32(gid)}
}

// systemSite is a system-mode installation in a temporary directory.
type systemSite struct {
	relay   *relayEnv
	dir     string
	bin     string // directory with handoff, sendmail, mailq
	config  string
	secret  string
	qdir    string
	socket  string
	daemonU sysUser
	userU   sysUser // the unprivileged submitter
	home    string  // the submitter's HOME
	daemon  *exec.Cmd
	dlog    *syncBuffer
	// relayBefore is TOML put before the Postfix relay; mailGroup makes
	// the daemon run as its unit does: group mail and CAP_CHOWN.
	relayBefore string
	mailGroup   bool
}

// syncBuffer is a bytes.Buffer that a child process's output and the
// test may use at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newSystemSite lays out the files as the package does: the config
// readable by all, the password file and the queue the daemon user's
// alone.
func newSystemSite(t *testing.T, extra string) *systemSite {
	t.Helper()
	return newSystemSiteWith(t, extra, nil)
}

// newSystemSiteWith is newSystemSite with a hook that may set the
// fields used to write the config (relayBefore) before it is written.
func newSystemSiteWith(t *testing.T, extra string, before func(*systemSite)) *systemSite {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("HANDOFF_REQUIRE_INTEGRATION") == "1" {
			t.Fatal("the system-mode tests need root (to create users and switch to them)")
		}
		t.Skip("SKIP: the system-mode tests need root")
	}
	e := startRelay(t)
	// The submitter is a user of its own (not nobody) because dead.letter
	// goes to the passwd home, which the test sets.
	s := &systemSite{relay: e, daemonU: needUser(t, "handoff"), userU: needUser(t, "handoff-e2e")}
	dir, err := os.MkdirTemp("", "handoff-system-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s.dir = dir
	mustChmod(t, dir, 0o755)
	s.bin = filepath.Join(dir, "bin")
	mustMkdir(t, s.bin, 0o755)
	data, err := os.ReadFile(filepath.Join(binDir, "handoff"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.bin, "handoff"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"sendmail", "mailq"} {
		if err := os.Symlink("handoff", filepath.Join(s.bin, n)); err != nil {
			t.Fatal(err)
		}
	}
	ca, err := os.ReadFile(e.p.CA.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, ca, 0o644); err != nil {
		t.Fatal(err)
	}
	s.secret = filepath.Join(dir, "secret")
	if err := os.WriteFile(s.secret, []byte("alicepass\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mustChown(t, s.secret, s.daemonU)
	s.qdir = filepath.Join(dir, "queue")
	mustMkdir(t, s.qdir, 0o700)
	mustChown(t, s.qdir, s.daemonU)
	run := filepath.Join(dir, "run")
	mustMkdir(t, run, 0o755)
	mustChown(t, run, s.daemonU)
	s.socket = filepath.Join(run, "submit.sock")
	s.home = filepath.Join(dir, "home")
	mustMkdir(t, s.home, 0o700)
	mustChown(t, s.home, s.userU)
	if out, err := exec.Command("usermod", "--home", s.home, s.userU.name).CombinedOutput(); err != nil {
		t.Fatalf("usermod --home: %v\n%s", err, out)
	}
	if before != nil {
		before(s)
	}
	s.config = filepath.Join(dir, "handoff.toml")
	cfg := fmt.Sprintf(`hostname = "client.example.test"
domain = "example.test"

[queue]
dir = %q
retry_min = "1s"
retry_max = "2s"

[log]
syslog = false

[daemon]
socket = %q
%s

%s
[[relay]]
name = "postfix"
url = "smtp://%s"
domains = ["example.test"]
starttls = "required"
tls_ca_file = %q
tls_server_name = "mail.example.test"
username = "alice@example.test"
password_file = %q
connect_timeout = "10s"
`, s.qdir, s.socket, extra, s.relayBefore, e.p.Addr, caFile, s.secret)
	if err := os.WriteFile(s.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

func mustMkdir(t *testing.T, p string, mode os.FileMode) {
	t.Helper()
	if err := os.Mkdir(p, mode); err != nil {
		t.Fatal(err)
	}
	mustChmod(t, p, mode)
}

func mustChmod(t *testing.T, p string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func mustChown(t *testing.T, p string, u sysUser) {
	t.Helper()
	if err := os.Chown(p, int(u.uid), int(u.gid)); err != nil {
		t.Fatal(err)
	}
}

// as runs argv (argv[0] a program in s.bin, or an absolute path) as u,
// with the config in the environment and stdin.
func (s *systemSite) as(u sysUser, stdin string, argv ...string) result {
	exe := argv[0]
	if !filepath.IsAbs(exe) {
		exe = filepath.Join(s.bin, exe)
	}
	cmd := &exec.Cmd{Path: exe, Args: argv, Dir: "/",
		Env:         []string{"PATH=" + fixedPath, "HOME=" + s.home, "HANDOFF_CONFIG=" + s.config, "LOGNAME=" + u.name, "USER=" + u.name},
		Stdin:       strings.NewReader(stdin),
		SysProcAttr: &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: u.uid, Gid: u.gid}}}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	r := result{code: cmd.ProcessState.ExitCode(), stdout: out.String(), stderr: errb.String(), home: s.home, took: time.Since(start)}
	if err != nil && r.code < 0 {
		r.code = -1
	}
	return r
}

// startDaemon starts "handoff daemon" as the daemon user and waits for
// its socket.
func (s *systemSite) startDaemon(t *testing.T) {
	t.Helper()
	cmd := exec.Command(filepath.Join(s.bin, "handoff"), "daemon", "-C", s.config)
	cmd.Env = []string{"PATH=" + fixedPath}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: s.daemonU.uid, Gid: s.daemonU.gid}}
	if s.mailGroup {
		// As handoff.service: SupplementaryGroups=mail,
		// AmbientCapabilities=CAP_CHOWN.
		g, err := user.LookupGroup("mail")
		if err != nil {
			t.Fatal(err)
		}
		gid, _ := strconv.Atoi(g.Gid)
		cmd.SysProcAttr.Credential.Groups = []uint32{uint32(gid)}
		cmd.SysProcAttr.AmbientCaps = []uintptr{unix.CAP_CHOWN}
	}
	s.dlog = &syncBuffer{}
	cmd.Stdout, cmd.Stderr = s.dlog, s.dlog
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.daemon = cmd
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("daemon output:\n%s", s.dlog)
		}
	})
	waitSocket(t, s.socket)
}

func waitSocket(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no daemon listening on %s after 10s", path)
}

func systemMessage(marker string) string {
	return "Subject: " + marker + "\n\nsent through the daemon: " + marker + "\n"
}

// TestSystemMode: an unprivileged user submits through the daemon and
// the message arrives with that user's address as the envelope sender;
// -odi reports a refused recipient; the user cannot read the password or
// the queue, and standalone says so; a forged -f is refused, root's is
// kept; the daemon logs the caller's uid and never the password.
func TestSystemMode(t *testing.T) {
	s := newSystemSite(t, "")
	s.startDaemon(t)

	marker := newMarker("system")
	r := s.as(s.userU, systemMessage(marker), "sendmail", "-i", "bob@example.test")
	if r.code != 0 {
		t.Fatalf("sendmail as handoff-e2e: exit %d\n%s", r.code, r.stderr)
	}
	got := s.relay.find(t, "bob", marker)
	if rp := got.get("Return-Path"); rp != "<handoff-e2e@example.test>" {
		t.Errorf("Return-Path %q, want <handoff-e2e@example.test>", rp)
	}

	// -odi waits for the relay and reports a refused recipient.
	marker = newMarker("system-odi")
	r = s.as(s.userU, systemMessage(marker), "sendmail", "-odi", "-i", "nosuchuser@example.test", "bob@example.test")
	if r.code == 0 || !strings.Contains(r.stderr, "nosuchuser@example.test") {
		t.Errorf("-odi with an unknown recipient: exit %d, stderr %q; want a failure naming it", r.code, r.stderr)
	}
	s.relay.find(t, "bob", marker)

	// What the submitter must not read.
	for _, p := range []string{s.secret, s.qdir} {
		if r := s.as(s.userU, "", "/bin/ls", "-l", p); r.code == 0 && p == s.qdir {
			t.Errorf("the submitter can list the queue %s:\n%s", p, r.stdout)
		}
		if r := s.as(s.userU, "", "/bin/cat", p); r.code == 0 {
			t.Errorf("the submitter can read %s:\n%s", p, r.stdout)
		}
	}
	// Standalone, the submitter cannot use the password: the front end says
	// which file and what to do, and keeps the message.
	r = s.asStandalone(t, systemMessage(newMarker("standalone")), "sendmail", "-i", "bob@example.test")
	if r.code != 75 || !strings.Contains(r.stderr, s.secret) || !strings.Contains(r.stderr, "handoff.socket") || strings.Contains(r.stderr, "alicepass") {
		t.Errorf("standalone as the submitter: exit %d, stderr:\n%s\nwant 75, naming %s and handoff.socket, without the password", r.code, r.stderr, s.secret)
	}
	if _, err := os.Stat(filepath.Join(s.home, "dead.letter")); err != nil {
		t.Errorf("standalone failure did not save dead.letter: %v", err)
	}

	// A forged envelope sender is refused (sender_policy = "refuse").
	r = s.as(s.userU, systemMessage(newMarker("forged")), "sendmail", "-f", "ceo@example.test", "-i", "bob@example.test")
	if r.code == 0 || !strings.Contains(r.stderr, "may not send as") {
		t.Errorf("forged -f: exit %d, stderr %q; want a refusal", r.code, r.stderr)
	}
	// root may.
	marker = newMarker("root-f")
	r = s.as(sysUser{name: "root"}, systemMessage(marker), "sendmail", "-f", "ceo@example.test", "-i", "bob@example.test")
	if r.code != 0 {
		t.Fatalf("root with -f: exit %d\n%s", r.code, r.stderr)
	}
	if rp := s.relay.find(t, "bob", marker).get("Return-Path"); rp != "<ceo@example.test>" {
		t.Errorf("root's -f: Return-Path %q", rp)
	}
	if !strings.Contains(s.dlog.String(), "uid="+strconv.Itoa(int(s.userU.uid))) {
		t.Errorf("the daemon's log does not record the caller's uid:\n%s", s.dlog)
	}
	if strings.Contains(s.dlog.String(), "alicepass") {
		t.Errorf("the daemon's log shows the password")
	}

	// A config of the user's own (-C) changes nothing the daemon
	// decides: its relay is not used, and its forced sender is refused.
	own := filepath.Join(s.home, "mine.toml")
	ownCfg := fmt.Sprintf("domain = \"example.test\"\n[daemon]\nsocket = %q\n[[relay]]\nname = \"elsewhere\"\nurl = \"smtp://%s\"\nstarttls = \"none\"\n", s.socket, closedAddr(t))
	if err := os.WriteFile(own, []byte(ownCfg), 0o644); err != nil {
		t.Fatal(err)
	}
	marker = newMarker("own-config")
	if r := s.as(s.userU, systemMessage(marker), "sendmail", "-C", own, "-i", "bob@example.test"); r.code != 0 {
		t.Fatalf("sendmail -C own config: exit %d\n%s", r.code, r.stderr)
	}
	s.relay.find(t, "bob", marker)
	if err := os.WriteFile(own, []byte("sender = \"ceo@example.test\"\n"+ownCfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := s.as(s.userU, systemMessage(newMarker("own-sender")), "sendmail", "-C", own, "-i", "bob@example.test"); r.code == 0 || !strings.Contains(r.stderr, "may not send as") {
		t.Errorf("a forced sender in the user's own config: exit %d, stderr %q; want the daemon's refusal", r.code, r.stderr)
	}

	// mailq: the user sees their own deferred item only, root sees all.
	tempfail := realserver.TempfailRecipient
	mine := s.as(s.userU, systemMessage(newMarker("deferred-user")), "sendmail", "-odi", "-i", tempfail)
	theirs := s.as(sysUser{name: "root"}, systemMessage(newMarker("deferred-root")), "sendmail", "-odi", "-i", tempfail)
	if mine.code != 0 || theirs.code != 0 {
		t.Fatalf("deferred submissions: exit %d and %d\n%s%s", mine.code, theirs.code, mine.stderr, theirs.stderr)
	}
	ul := s.as(s.userU, "", "mailq")
	rl := s.as(sysUser{name: "root"}, "", "mailq")
	if ul.code != 0 || rl.code != 0 {
		t.Fatalf("mailq: exit %d (user) and %d (root)\n%s%s", ul.code, rl.code, ul.stderr, rl.stderr)
	}
	rcptLine := regexp.MustCompile(`(?m)^\s+` + regexp.QuoteMeta(tempfail) + `$`)
	if n := len(rcptLine.FindAllString(ul.stdout, -1)); n != 1 || !strings.Contains(ul.stdout, s.userU.name+"@example.test") || strings.Contains(ul.stdout, "root@example.test") {
		t.Errorf("mailq as %s lists %d items for %s; want only their own:\n%s", s.userU.name, n, tempfail, ul.stdout)
	}
	if n := len(rcptLine.FindAllString(rl.stdout, -1)); n != 2 || !strings.Contains(rl.stdout, "root@example.test") {
		t.Errorf("mailq as root lists %d items for %s, want 2:\n%s", n, tempfail, rl.stdout)
	}

	// The queue item records who submitted it, as the kernel said.
	r = s.as(s.userU, systemMessage(newMarker("recorded")), "sendmail", "-odq", "-i", realserver.TempfailRecipient)
	if r.code != 0 {
		t.Fatalf("-odq: exit %d\n%s", r.code, r.stderr)
	}
	id := queueID(r.stderr+s.dlog.String(), " queued as ")
	found := false
	entries, _ := os.ReadDir(filepath.Join(s.qdir, "env"))
	for _, en := range entries {
		data, err := os.ReadFile(filepath.Join(s.qdir, "env", en.Name()))
		if err != nil || !strings.Contains(string(data), "\nuser: "+s.userU.name+"\n") {
			continue
		}
		found = true
		for _, want := range []string{fmt.Sprintf("\nuid: %d\n", s.userU.uid), fmt.Sprintf("\ngid: %d\n", s.userU.gid), "\npid: "} {
			if !strings.Contains(string(data), want) {
				t.Errorf("queue item %s lacks %q:\n%s", en.Name(), strings.TrimSpace(want), data)
			}
		}
	}
	if !found {
		t.Errorf("no queue item for the -odq submission (%s) in %s", id, s.qdir)
	}

	// The user manages their own items through the daemon, and cannot
	// touch root's.
	ids := func(u sysUser) []string {
		t.Helper()
		r := s.as(u, "", "handoff", "queue", "list", "--json")
		var items []struct {
			ID   string `json:"id"`
			User string `json:"user"`
			Held bool   `json:"held"`
		}
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &items) != nil {
			t.Fatalf("handoff queue list --json as %s: exit %d\n%s%s", u.name, r.code, r.stdout, r.stderr)
		}
		var out []string
		for _, it := range items {
			out = append(out, it.ID)
		}
		return out
	}
	mineIDs, allIDs := ids(s.userU), ids(sysUser{name: "root"})
	var rootID string
	for _, id := range allIDs {
		if !slices.Contains(mineIDs, id) {
			rootID = id
		}
	}
	if len(mineIDs) == 0 || rootID == "" {
		t.Fatalf("items: the user's %v, all %v", mineIDs, allIDs)
	}
	myID := mineIDs[0]
	if r := s.as(s.userU, "", "handoff", "queue", "show", myID); r.code != 0 || !strings.HasPrefix(r.stdout, "handoff-envelope 1\n") || !strings.Contains(r.stdout, "\nSubject: ") {
		t.Errorf("queue show of the user's own item: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, cmd := range []string{"show", "delete", "hold"} {
		if r := s.as(s.userU, "", "handoff", "queue", cmd, rootID); r.code != 69 || !strings.Contains(r.stderr, "no such queue item") {
			t.Errorf("queue %s of root's item as the user: exit %d, stderr %q; want 69, no such queue item", cmd, r.code, r.stderr)
		}
	}
	if r := s.as(s.userU, "", "handoff", "queue", "hold", myID); r.code != 0 || r.stdout != myID+": held\n" {
		t.Errorf("queue hold: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	if r := s.as(s.userU, "", "handoff", "queue", "flush", myID); r.code != 75 || !strings.Contains(r.stderr, "on hold") {
		t.Errorf("queue flush of a held item: exit %d, stderr %q; want 75, on hold", r.code, r.stderr)
	}
	if r := s.as(s.userU, "", "handoff", "queue", "release", myID); r.code != 0 || r.stdout != myID+": released\n" {
		t.Errorf("queue release: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	if r := s.as(s.userU, "", "handoff", "queue", "flush"); r.code != 0 {
		t.Errorf("queue flush of the user's items: exit %d\n%s", r.code, r.stderr)
	}
	for _, id := range mineIDs {
		if r := s.as(s.userU, "", "handoff", "queue", "delete", id); r.code != 0 || r.stdout != id+": deleted\n" {
			t.Errorf("queue delete %s: exit %d, %q %q", id, r.code, r.stdout, r.stderr)
		}
	}
	if left := ids(s.userU); len(left) != 0 {
		t.Errorf("the user's items after delete: %v", left)
	}
	if !slices.Contains(ids(sysUser{name: "root"}), rootID) {
		t.Errorf("root's item %s went away", rootID)
	}
}

// asStandalone runs argv as the submitter without the daemon.
func (s *systemSite) asStandalone(t *testing.T, stdin string, argv ...string) result {
	t.Helper()
	cfg := filepath.Join(s.dir, "standalone.toml")
	data, err := os.ReadFile(s.config)
	if err != nil {
		t.Fatal(err)
	}
	data = bytes.Replace(data, []byte(s.socket), []byte(filepath.Join(s.dir, "no-such.sock")), 1)
	if err := os.WriteFile(cfg, data, 0o644); err != nil {
		t.Fatal(err)
	}
	saved := s.config
	s.config = cfg
	defer func() { s.config = saved }()
	return s.as(s.userU, stdin, argv...)
}

// TestSystemModeDaemonKilled: the daemon dies while a front end is
// sending; the front end reports a temporary failure and keeps the
// message in dead.letter. Items queued before are delivered once a new
// daemon starts.
func TestSystemModeDaemonKilled(t *testing.T) {
	s := newSystemSite(t, "")
	s.startDaemon(t)
	queued := newMarker("queued-before")
	if r := s.as(s.userU, systemMessage(queued), "sendmail", "-odq", "-i", "bob@example.test"); r.code != 0 {
		t.Fatalf("-odq: exit %d\n%s", r.code, r.stderr)
	}
	// A front end whose input is still open when the daemon dies.
	cmd := &exec.Cmd{Path: filepath.Join(s.bin, "sendmail"), Args: []string{"sendmail", "-i", "bob@example.test"}, Dir: "/",
		Env:         []string{"PATH=" + fixedPath, "HOME=" + s.home, "HANDOFF_CONFIG=" + s.config},
		SysProcAttr: &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: s.userU.uid, Gid: s.userU.gid}}}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	io.WriteString(in, "Subject: killed\n\n")
	// The front end reads all of its input before it connects: kill the
	// daemon first, then let the input end.
	s.daemon.Process.Kill()
	s.daemon.Wait()
	io.WriteString(in, "the daemon died meanwhile\n")
	in.Close()
	cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 75 {
		t.Errorf("front end after the daemon died: exit %d, want 75\n%s", code, errb.String())
	}
	if b, err := os.ReadFile(filepath.Join(s.home, "dead.letter")); err != nil || !bytes.Contains(b, []byte("the daemon died meanwhile")) {
		t.Errorf("the message is not in dead.letter (%v)", err)
	}
	// A new daemon delivers what was queued.
	os.Remove(s.socket)
	s.startDaemon(t)
	s.relay.find(t, "bob", queued)
}

// TestSystemModeSocketActivation passes a listening socket to the
// daemon as systemd does (fd 3, LISTEN_FDS=1, LISTEN_PID its pid); the
// daemon serves on it and, with idle_exit, exits on its own once the
// queue is empty.
func TestSystemModeSocketActivation(t *testing.T) {
	s := newSystemSite(t, `idle_exit = "1s"`)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: s.socket, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	mustChmod(t, s.socket, 0o666)
	f, err := ln.File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// The shell learns its own pid, as systemd sets LISTEN_PID to the
	// child's, then execs the daemon, which keeps the pid.
	cmd := exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=submit exec "$0" daemon -C "$1"`, filepath.Join(s.bin, "handoff"), s.config)
	cmd.Env = []string{"PATH=" + fixedPath}
	cmd.ExtraFiles = []*os.File{f}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: s.daemonU.uid, Gid: s.daemonU.gid}}
	var dlog syncBuffer
	cmd.Stdout, cmd.Stderr = &dlog, &dlog
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })

	marker := newMarker("activated")
	if r := s.as(s.userU, systemMessage(marker), "sendmail", "-i", "bob@example.test"); r.code != 0 {
		t.Fatalf("sendmail through the passed socket: exit %d\n%s\ndaemon:\n%s", r.code, r.stderr, dlog.String())
	}
	s.relay.find(t, "bob", marker)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("the activated daemon exited with %v\n%s", err, dlog.String())
		}
	case <-ctx.Done():
		t.Errorf("the activated daemon did not exit within 15s of idling with an empty queue\n%s", dlog.String())
	}
}

// TestSystemModeMailbox: the daemon, as user handoff with group mail and
// CAP_CHOWN only, delivers to a local mailbox: it creates it for its
// user (0660, group mail) and appends to it through the group the next
// time.
func TestSystemModeMailbox(t *testing.T) {
	var spool string
	s := newSystemSiteWith(t, "", func(s *systemSite) {
		spool = filepath.Join(s.dir, "mail")
		mustMkdir(t, spool, 0o775)
		g, err := user.LookupGroup("mail")
		if err != nil {
			t.Fatal(err)
		}
		gid, _ := strconv.Atoi(g.Gid)
		if err := os.Chown(spool, 0, gid); err != nil {
			t.Fatal(err)
		}
		mustChmod(t, spool, 0o775|os.ModeSetgid)
		s.relayBefore = fmt.Sprintf("[[relay]]\nname = \"local\"\nurl = \"mbox:%s\"\ndomains = [\"local.test\"]\n", spool)
		s.mailGroup = true
	})
	s.startDaemon(t)
	mbox := filepath.Join(spool, s.userU.name)
	var markers []string
	for i := range 2 {
		m := newMarker(fmt.Sprintf("mbox-%d", i))
		markers = append(markers, m)
		if r := s.as(s.userU, systemMessage(m), "sendmail", "-odi", "-i", s.userU.name+"@local.test"); r.code != 0 {
			t.Fatalf("delivery %d to the local mailbox: exit %d\n%s", i, r.code, r.stderr)
		}
	}
	data, err := os.ReadFile(mbox)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range markers {
		if !bytes.Contains(data, []byte(m)) {
			t.Errorf("%s is not in %s", m, mbox)
		}
	}
	var st syscall.Stat_t
	if err := syscall.Stat(mbox, &st); err != nil {
		t.Fatal(err)
	}
	g, _ := user.LookupGroup("mail")
	if strconv.Itoa(int(st.Uid)) != strconv.Itoa(int(s.userU.uid)) || strconv.Itoa(int(st.Gid)) != g.Gid || st.Mode&0o777 != 0o660 {
		t.Errorf("%s: uid %d gid %d mode %o; want %d, group mail (%s), 0660", mbox, st.Uid, st.Gid, st.Mode&0o777, s.userU.uid, g.Gid)
	}
}

// TestDaemonReusesConnections: submissions from separate processes go
// over one relay connection kept open by the daemon, until it has been
// idle for relay_idle; front ends past max_connections wait.
func TestDaemonReusesConnections(t *testing.T) {
	s := startSink(t)
	e := newQueueEnv(t, s, "1m", "10s")
	sock := filepath.Join(e.dir, "submit.sock")
	cfg, err := os.ReadFile(e.config)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(cfg), "[queue]\n", "[daemon]\nsocket = \""+sock+"\"\nrelay_idle = \"1s\"\nmax_connections = 2\n\n[queue]\nconnections_per_relay = 1\n", 1)
	if err := os.WriteFile(e.config, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	d := exec.Command(filepath.Join(binDir, "handoff"), "daemon", "-C", e.config)
	var dlog syncBuffer
	d.Stdout, d.Stderr = &dlog, &dlog
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.Process.Kill()
		d.Wait()
		if t.Failed() {
			t.Logf("daemon output:\n%s", dlog.String())
		}
	})
	waitSocket(t, sock)
	send := func(marker string) {
		t.Helper()
		r, err := e.runBin([]string{"sendmail", "-i", "rcpt@example.net"}, testMessage(marker), 30*time.Second)
		if err != nil || r.code != 0 {
			t.Fatalf("sendmail: exit %d, %v\n%s", r.code, err, r.stderr)
		}
	}
	waitDelivered := func(n int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for len(s.delivered()) < n && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if got := len(s.delivered()); got != n {
			t.Fatalf("%d messages delivered, want %d", got, n)
		}
	}
	for i := range 3 {
		send(fmt.Sprintf("QMARK-reuse-%d-%d", i, time.Now().UnixNano()))
		waitDelivered(i + 1)
	}
	if c := s.connections(); c != 1 {
		t.Errorf("3 submissions used %d relay connections, want 1", c)
	}
	time.Sleep(2500 * time.Millisecond) // past relay_idle, and a tick of the daemon
	send(fmt.Sprintf("QMARK-reuse-late-%d", time.Now().UnixNano()))
	waitDelivered(4)
	if c := s.connections(); c != 2 {
		t.Errorf("after relay_idle the daemon used %d connections in all, want 2 (a new one)", c)
	}
	// max_connections = 2: a third front end waits for its greeting
	// until one of the first two goes.
	greet := func(c net.Conn, wait time.Duration) error {
		c.SetReadDeadline(time.Now().Add(wait))
		buf := make([]byte, 256)
		n, err := c.Read(buf)
		if err == nil && !strings.HasPrefix(string(buf[:n]), "220 ") {
			err = fmt.Errorf("greeting %q", buf[:n])
		}
		return err
	}
	var conns []net.Conn
	for i := range 3 {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
		if i < 2 {
			if err := greet(c, 5*time.Second); err != nil {
				t.Fatalf("front end %d: %v", i+1, err)
			}
		}
	}
	if err := greet(conns[2], 300*time.Millisecond); err == nil {
		t.Errorf("a third connection was served with max_connections = 2")
	}
	conns[0].Close()
	if err := greet(conns[2], 5*time.Second); err != nil {
		t.Errorf("the third connection got no greeting after the first closed: %v", err)
	}
}

// TestSystemModeLimits: the daemon refuses a message over
// max_message_size (the front end sees SIZE and does not send it; exit
// 69) and a submission past submissions_per_minute (452, exit 75), each
// with its reason on standard error and the message kept; recipients
// past max_recipients get 452 and the front end sends them in a second
// transaction, as RFC 5321 §4.5.3.1.10 expects of a client.
func TestSystemModeLimits(t *testing.T) {
	s := newSystemSite(t, "max_message_size = 2048\nmax_recipients = 2\nsubmissions_per_minute = 3")
	s.startDaemon(t)

	big := systemMessage(newMarker("big")) + strings.Repeat("x", 3000) + "\n"
	r := s.as(s.userU, big, "sendmail", "-i", "bob@example.test")
	if r.code != 69 || !strings.Contains(r.stderr, "exceeds size limit 2048") || !strings.Contains(r.stderr, "dead.letter") {
		t.Errorf("message over max_message_size: exit %d, stderr %q; want 69, the limit and dead.letter", r.code, r.stderr)
	}

	// Two transactions: two submissions of the three allowed.
	marker := newMarker("three-rcpts")
	r = s.as(s.userU, systemMessage(marker), "sendmail", "-i", "bob@example.test", "alice@example.test", "carol@example.test")
	if r.code != 0 {
		t.Errorf("three recipients with max_recipients = 2: exit %d, stderr %q", r.code, r.stderr)
	}
	for _, u := range []string{"bob", "alice", "carol"} {
		s.relay.find(t, u, marker)
	}
	if n := strings.Count(s.dlog.String(), "nrcpt=2,") + strings.Count(s.dlog.String(), "nrcpt=1,"); n != 2 || strings.Contains(s.dlog.String(), "nrcpt=3,") {
		t.Errorf("the daemon did not take the three recipients as 2 + 1:\n%s", s.dlog.String())
	}

	if r := s.as(s.userU, systemMessage(newMarker("third")), "sendmail", "-i", "bob@example.test"); r.code != 0 {
		t.Fatalf("third submission: exit %d\n%s", r.code, r.stderr)
	}
	r = s.as(s.userU, systemMessage(newMarker("fourth")), "sendmail", "-i", "bob@example.test")
	if r.code != 75 || !strings.Contains(r.stderr, "submissions_per_minute") {
		t.Errorf("fourth submission in a minute: exit %d, stderr %q; want 75 and the reason", r.code, r.stderr)
	}
	// root is not limited.
	if r := s.as(sysUser{name: "root"}, systemMessage(newMarker("root")), "sendmail", "-i", "bob@example.test"); r.code != 0 {
		t.Errorf("root after the user's limit: exit %d\n%s", r.code, r.stderr)
	}
}

// TestDaemonStops: SIGTERM stops the daemon within its grace period
// even while a front end sits connected and idle; the socket file goes.
func TestDaemonStops(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "submit.sock")
	cfg := filepath.Join(dir, "handoff.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("[queue]\ndir = %q\n[daemon]\nsocket = %q\n[log]\nsyslog = false\n", filepath.Join(dir, "q"), sock)), 0o600); err != nil {
		t.Fatal(err)
	}
	d := exec.Command(filepath.Join(binDir, "handoff"), "daemon", "-C", cfg)
	var dlog syncBuffer
	d.Stdout, d.Stderr = &dlog, &dlog
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Process.Kill() })
	waitSocket(t, sock)
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	done := make(chan error, 1)
	go func() { done <- d.Wait() }()
	start := time.Now()
	d.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("the daemon exited with %v after SIGTERM\n%s", err, dlog.String())
		}
		t.Logf("stopped in %v with a front end connected", time.Since(start).Round(time.Millisecond))
	case <-time.After(15 * time.Second):
		t.Fatalf("the daemon did not stop within 15s of SIGTERM with an idle front end connected\n%s", dlog.String())
	}
	if _, err := os.Stat(sock); err == nil {
		t.Errorf("the socket %s is still there after the daemon stopped", sock)
	}
}
