package tests

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The wrapper's instructions, passed in its environment and removed
// before handoff runs.
const (
	wrapExecEnv = "HANDOFF_E2E_EXEC"     // the program to exec, with the wrapper's own argv
	wrapSrcEnv  = "HANDOFF_E2E_BIND_SRC" // bind-mount this directory ...
	wrapDstEnv  = "HANDOFF_E2E_BIND_DST" // ... over this one first
)

// Set up by TestMain.
var (
	binDir     string // holds handoff and its symlinks
	handoffBin string // binDir/handoff
	// passwdHome is the real user's home from the passwd database,
	// where handoff writes dead.letter.
	passwdHome string
	// privateHome says whether runs get a private passwdHome (see the
	// package documentation); noPrivateHome says why not.
	privateHome   bool
	noPrivateHome string
	buildTime     time.Duration
)

// interfaceNames are the names an installation links to the binary.
var interfaceNames = []string{"sendmail", "mailq", "newaliases", "rmail"}

func TestMain(m *testing.M) {
	if exe := os.Getenv(wrapExecEnv); exe != "" {
		wrapExec(exe) // does not return
	}
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "handoff-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "tests:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	if err := buildBinary(tmp); err != nil {
		fmt.Fprintln(os.Stderr, "tests:", err)
		return 1
	}
	probePrivateHome(tmp)
	return m.Run()
}

// moduleRoot finds the directory of go.mod above the working directory
// (go test runs the tests in tests/).
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// goTool is the go command that runs these tests.
func goTool() string {
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); fileExists(p) {
		return p
	}
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "go"
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// buildBinary builds cmd/handoff into dir, as the package does, and
// links the sendmail names to it.
func buildBinary(dir string) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	binDir = dir
	handoffBin = filepath.Join(dir, "handoff")
	start := time.Now()
	cmd := exec.Command(goTool(), "build", "-o", handoffBin, "./cmd/handoff")
	cmd.Dir = root
	// As packaging/build.sh builds it: static, without cgo (users come
	// from /etc/passwd, then getent).
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/handoff: %v\n%s", err, out)
	}
	buildTime = time.Since(start)
	for _, name := range interfaceNames {
		if err := os.Symlink("handoff", filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	return nil
}

// probePrivateHome decides whether runs can get a private home: it needs
// the passwd home of the user and a mount namespace.
func probePrivateHome(tmp string) {
	u, err := user.Current()
	if err != nil || u.HomeDir == "" || u.HomeDir == "/" {
		noPrivateHome = fmt.Sprintf("no home directory in the passwd entry of the user running the tests (%v)", err)
		return
	}
	passwdHome = u.HomeDir
	if inside(tmp, passwdHome) {
		noPrivateHome = fmt.Sprintf("the temporary directory %s is inside the home directory %s", tmp, passwdHome)
		return
	}
	probe := filepath.Join(tmp, "probe-home")
	if err := os.Mkdir(probe, 0o700); err != nil {
		noPrivateHome = err.Error()
		return
	}
	// The wrapper's child execs "handoff version" with the home hidden
	// behind probe.
	cmd := wrapperCommand(handoffBin, []string{"handoff", "version"}, probe, nil)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		noPrivateHome = fmt.Sprintf("a private mount namespace is not available here: %v %s", err, strings.TrimSpace(stderr.String()))
		return
	}
	privateHome = true
}

// inside reports whether path is dir or below it.
func inside(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// wrapperCommand runs exe with argv (argv[0] included) and env, in a
// private mount namespace whose passwdHome is home.
func wrapperCommand(exe string, argv []string, home string, env []string) *exec.Cmd {
	self, err := os.Executable()
	if err != nil {
		self = "/proc/self/exe"
	}
	cmd := &exec.Cmd{
		Path: self,
		Args: argv,
		Env: append(env[:len(env):len(env)],
			wrapExecEnv+"="+exe,
			wrapSrcEnv+"="+home,
			wrapDstEnv+"="+passwdHome),
		SysProcAttr: &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS},
	}
	return cmd
}

// wrapExec is the wrapper: the test binary started by wrapperCommand in
// its own mount namespace (Go has made the mounts private). It bind-mounts
// the private home and execs exe with the same argv and the environment
// minus its own variables.
func wrapExec(exe string) {
	fail := func(err error) {
		fmt.Fprintf(os.Stderr, "e2e wrapper: %v\n", err)
		os.Exit(120)
	}
	if src, dst := os.Getenv(wrapSrcEnv), os.Getenv(wrapDstEnv); src != "" && dst != "" {
		if err := syscall.Mount(src, dst, "", syscall.MS_BIND, ""); err != nil {
			fail(fmt.Errorf("bind-mounting %s over %s: %w", src, dst, err))
		}
	}
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if name != wrapExecEnv && name != wrapSrcEnv && name != wrapDstEnv {
			env = append(env, kv)
		}
	}
	fail(syscall.Exec(exe, os.Args, env))
}
