package realserver

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// RequireEnv is the environment variable that turns a missing server into a
// test failure instead of a skip. CI sets it to 1.
const RequireEnv = "HANDOFF_REQUIRE_INTEGRATION"

// The programs that Available looks for, and the Debian packages that
// install them.
var (
	postfixBin  = "/usr/sbin/postfix"
	postconfBin = "/usr/sbin/postconf"
	dovecotBin  = "/usr/sbin/dovecot"
	doveadmBin  = "/usr/bin/doveadm"
	// Dovecot runs its services from its libexec directory; Debian's is
	// /usr/lib/dovecot, a source build's /usr/(local/)libexec/dovecot.
	dovecotLibexecDirs = []string{"/usr/lib/dovecot", "/usr/libexec/dovecot", "/usr/local/libexec/dovecot"}
)

type check struct {
	once sync.Once
	err  error
}

var (
	postfixCheck check
	dovecotCheck check
)

// Available reports whether the named servers can be started here: nil if
// they can, otherwise an error naming what is missing and the Debian package
// that brings it. The names are "postfix" and "dovecot"; none means both.
// Postfix also needs Dovecot (for SASL and delivery) and root.
func Available(what ...string) error {
	if len(what) == 0 {
		what = []string{"postfix", "dovecot"}
	}
	var errs []error
	seen := map[string]bool{}
	add := func(err error) {
		if err != nil && !seen[err.Error()] {
			seen[err.Error()] = true
			errs = append(errs, err)
		}
	}
	for _, w := range what {
		switch w {
		case "postfix":
			postfixCheck.once.Do(func() { postfixCheck.err = checkPostfix() })
			add(postfixCheck.err)
			fallthrough
		case "dovecot":
			dovecotCheck.once.Do(func() { dovecotCheck.err = checkDovecot() })
			add(dovecotCheck.err)
		default:
			add(fmt.Errorf("realserver: unknown server %q (want \"postfix\" or \"dovecot\")", w))
		}
	}
	return errors.Join(errs...)
}

// Require skips the test, loudly, when Available(what...) reports something
// missing, or fails it when HANDOFF_REQUIRE_INTEGRATION=1 is set.
func Require(t testing.TB, what ...string) {
	t.Helper()
	err := Available(what...)
	if err == nil {
		return
	}
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("%v\n(%s=1 is set, so a missing server is a failure)", err, RequireEnv)
	}
	t.Skipf("\n*** SKIPPED: integration test against real servers ***\n%v\n"+
		"Install as root: apt-get install postfix dovecot-core dovecot-lmtpd\n"+
		"Set %s=1 to make this a failure instead of a skip.", err, RequireEnv)
}

func checkRoot() error {
	if os.Geteuid() != 0 {
		return errors.New("realserver: the tests must run as root to start Postfix and Dovecot")
	}
	return nil
}

func checkExecutable(path, pkg string) error {
	fi, err := os.Stat(path)
	if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("realserver: %s is missing (Debian package %s)", path, pkg)
	}
	return nil
}

func checkUser(name, pkg string) error {
	if _, err := user.Lookup(name); err != nil {
		return fmt.Errorf("realserver: system user %q is missing (created by Debian package %s)", name, pkg)
	}
	return nil
}

func checkGroup(name, pkg string) error {
	if _, err := user.LookupGroup(name); err != nil {
		return fmt.Errorf("realserver: system group %q is missing (created by Debian package %s)", name, pkg)
	}
	return nil
}

func checkPostfix() error {
	errs := []error{
		checkRoot(),
		checkExecutable(postfixBin, "postfix"),
		checkExecutable(postconfBin, "postfix"),
		checkUser("postfix", "postfix"),
		checkGroup("postdrop", "postfix"),
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	v, err := postfixVersion()
	if err != nil {
		return err
	}
	// maillog_file (the log in the instance directory) came with 3.4.
	if v.less(3, 4) {
		return fmt.Errorf("realserver: Postfix %s is too old (need 3.4 or later)", v)
	}
	if err := checkExecutable(postfixDaemonDir()+"/master", "postfix"); err != nil {
		return err
	}
	return nil
}

func checkDovecot() error {
	errs := []error{
		checkRoot(),
		checkExecutable(dovecotBin, "dovecot-core"),
		checkExecutable(doveadmBin, "dovecot-core"),
		checkUser("dovecot", "dovecot-core"),
		checkUser("dovenull", "dovecot-core"),
		mailUserErr(),
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	lmtp := false
	for _, dir := range dovecotLibexecDirs {
		if checkExecutable(dir+"/lmtp", "dovecot-lmtpd") == nil {
			lmtp = true
			break
		}
	}
	if !lmtp {
		return fmt.Errorf("realserver: Dovecot's lmtp service (%s/lmtp) is missing (Debian package dovecot-lmtpd)", dovecotLibexecDirs[0])
	}
	v, err := dovecotVersion()
	if err != nil {
		return err
	}
	// The configuration written by StartDovecot is 2.3's; 2.4 changed
	// its syntax throughout.
	if v.major != 2 || v.minor != 3 {
		return fmt.Errorf("realserver: Dovecot %s is installed, but this harness writes Dovecot 2.3 configuration", v)
	}
	return nil
}

type version struct {
	major, minor int
	text         string
}

func (v version) String() string { return v.text }

func (v version) less(major, minor int) bool {
	return v.major < major || v.major == major && v.minor < minor
}

var versionRE = regexp.MustCompile(`^(\d+)\.(\d+)`)

func parseVersion(s string) (version, error) {
	s = strings.TrimSpace(s)
	m := versionRE.FindStringSubmatch(s)
	if m == nil {
		return version{}, fmt.Errorf("cannot parse version %q", s)
	}
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	return version{major: major, minor: minor, text: strings.Fields(s)[0]}, nil
}

func postfixVersion() (version, error) {
	out, err := exec.Command(postconfBin, "-dh", "mail_version").Output()
	if err != nil {
		return version{}, fmt.Errorf("realserver: postconf -dh mail_version: %v", err)
	}
	v, err := parseVersion(string(out))
	if err != nil {
		return version{}, fmt.Errorf("realserver: Postfix: %v", err)
	}
	return v, nil
}

func dovecotVersion() (version, error) {
	out, err := exec.Command(dovecotBin, "--version").Output()
	if err != nil {
		return version{}, fmt.Errorf("realserver: dovecot --version: %v", err)
	}
	v, err := parseVersion(string(out))
	if err != nil {
		return version{}, fmt.Errorf("realserver: Dovecot: %v", err)
	}
	return v, nil
}

func postfixDaemonDir() string {
	out, err := exec.Command(postconfBin, "-dh", "daemon_directory").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" {
		return "/usr/lib/postfix/sbin"
	}
	return strings.TrimSpace(string(out))
}
