package realserver

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	// startTimeout bounds the wait for a started server to greet.
	startTimeout = 20 * time.Second
	// startAttempts is how often a start is tried with fresh ports when the
	// server fails to come up (a picked port may be taken in between).
	startAttempts = 3
	// stopTimeout bounds the wait for a server's processes to exit.
	stopTimeout = 15 * time.Second
	// pollInterval is the pause between two readiness probes.
	pollInterval = 20 * time.Millisecond
	// logTailLines is how much of a server log is shown on failure.
	logTailLines = 80
)

// freePort picks a TCP port on 127.0.0.1 that is free right now.
func freePort() (int, error) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, err
	}
	return port, nil
}

// pickPorts picks the ports for a start attempt; tests replace it to
// provoke a bind failure.
var pickPorts = freePorts

// freePorts picks n distinct free ports.
func freePorts(n int) ([]int, error) {
	var ports []int
	seen := map[int]bool{}
	for len(ports) < n {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		if !seen[p] {
			seen[p] = true
			ports = append(ports, p)
		}
	}
	return ports, nil
}

// greeting connects to addr, optionally wraps the connection in TLS, and
// reads the first line, which must start with prefix. If quit is set,
// QUIT is sent before closing.
func greeting(network, addr string, tlsConf *tls.Config, prefix string, quit bool) error {
	conn, err := net.DialTimeout(network, addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(2 * time.Second)); err != nil {
		return err
	}
	if tlsConf != nil {
		tc := tls.Client(conn, tlsConf)
		if err := tc.Handshake(); err != nil {
			return fmt.Errorf("TLS handshake with %s: %w", addr, err)
		}
		conn = tc
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return fmt.Errorf("reading greeting of %s: %w", addr, err)
	}
	if !strings.HasPrefix(line, prefix) {
		return fmt.Errorf("greeting of %s is %q, want %q...", addr, line, prefix)
	}
	if quit {
		_, _ = conn.Write([]byte("QUIT\r\n"))
	}
	return nil
}

// tailFile returns the last n lines of a file, or a note why it can't.
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	b = bytes.TrimRight(b, "\n")
	lines := bytes.Split(b, []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// instanceDir makes a fresh temporary directory of t that the unprivileged
// users of Postfix and Dovecot can reach: the directory and the per-test
// directory above it (made 0700 by the testing package) get mode 0755, and
// every directory above those must already be searchable by all.
func instanceDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	parent := filepath.Dir(dir)
	for _, d := range []string{dir, parent} {
		if d == filepath.Clean(os.TempDir()) {
			break
		}
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatalf("realserver: %v", err)
		}
	}
	if err := checkSearchable(filepath.Dir(parent)); err != nil {
		t.Fatalf("realserver: %v", err)
	}
	return dir
}

// checkSearchable reports an error if dir or a directory above it is not
// searchable by other users.
func checkSearchable(dir string) error {
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("directory %s is not searchable by other users, but the servers' unprivileged processes must reach their files below it (set TMPDIR to a directory such as /tmp)", d)
		}
		if d == "/" || d == "." {
			return nil
		}
	}
}

// shortDir returns dir if a Unix socket path of extra more bytes below it
// fits in sockaddr_un; otherwise a new 0755 directory directly in the
// system's temporary directory, removed after the test.
func shortDir(t testing.TB, dir string, extra int) string {
	t.Helper()
	const maxSocketPath = 107 // sun_path is 108 bytes with the NUL
	if len(dir)+extra <= maxSocketPath {
		return dir
	}
	d, err := os.MkdirTemp("", "hrs")
	if err != nil {
		t.Fatalf("realserver: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(d) })
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatalf("realserver: %v", err)
	}
	if len(d)+extra > maxSocketPath {
		t.Fatalf("realserver: temporary directory %s is too long for Unix sockets", d)
	}
	return d
}

// procState is the state letter of a process ('Z' for a zombie) and its
// process group, read from /proc; ok is false if there is no such process.
func procState(pid int) (state byte, pgrp int, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	// pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 3 {
		return 0, 0, false
	}
	pgrp, err = strconv.Atoi(f[2])
	if err != nil {
		return 0, 0, false
	}
	return f[0][0], pgrp, true
}

// alive reports whether pid is a running (not zombie) process.
func alive(pid int) bool {
	state, _, ok := procState(pid)
	return ok && state != 'Z'
}

// groupMembers lists the running (not zombie) processes of process group
// pgid.
func groupMembers(pgid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if state, pgrp, ok := procState(pid); ok && pgrp == pgid && state != 'Z' {
			pids = append(pids, pid)
		}
	}
	return pids
}

// waitGone waits until pid (unless 0) and every process of the process
// group pgid have exited, up to timeout.
func waitGone(pid, pgid int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if (pid == 0 || !alive(pid)) && len(groupMembers(pgid)) == 0 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pollInterval)
	}
}

// killGroup sends SIGKILL to the process group pgid of a server that the
// harness started, if any of it is left.
func killGroup(pgid int) {
	if pgid > 1 && len(groupMembers(pgid)) > 0 {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
}

var errExited = errors.New("server exited")
