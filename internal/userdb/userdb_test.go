package userdb

import (
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
)

// fakeGetent installs a getent that knows one user (ldapuser, uid
// 4242) and one group (ldapgroup, gid 4343), as NSS would for users
// that are not in /etc/passwd, and logs its calls.
func fakeGetent(t *testing.T) (calls func() string) {
	t.Helper()
	dir := t.TempDir()
	log := filepath.Join(dir, "calls")
	script := `#!/bin/sh
echo "$1 $2" >> ` + log + `
case "$1 $2" in
"passwd ldapuser"|"passwd 4242") echo 'ldapuser:*:4242:4343:LDAP User,Room 1:/home/ldapuser:/bin/sh' ;;
"group ldapgroup") echo 'ldapgroup:*:4343:ldapuser' ;;
"passwd broken") echo 'not a passwd line' ;;
*) exit 2 ;;
esac
`
	path := filepath.Join(dir, "getent")
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	old := getent
	getent = path
	t.Cleanup(func() { getent = old })
	return func() string { b, _ := os.ReadFile(log); return string(b) }
}

func TestLookupFallsBackToGetent(t *testing.T) {
	calls := fakeGetent(t)
	u, err := Lookup("ldapuser")
	if err != nil || u.Uid != "4242" || u.Gid != "4343" || u.HomeDir != "/home/ldapuser" || u.Name != "LDAP User" || u.Username != "ldapuser" {
		t.Fatalf("Lookup(ldapuser) = %+v, %v", u, err)
	}
	if u, err := LookupId("4242"); err != nil || u.Username != "ldapuser" {
		t.Errorf("LookupId(4242) = %+v, %v", u, err)
	}
	if g, err := LookupGroup("ldapgroup"); err != nil || g.Gid != "4343" {
		t.Errorf("LookupGroup(ldapgroup) = %+v, %v", g, err)
	}
	// Users os/user knows never reach getent.
	before := calls()
	if u, err := Lookup("root"); err != nil || u.Uid != "0" {
		t.Errorf("Lookup(root) = %+v, %v", u, err)
	}
	if calls() != before {
		t.Errorf("getent was asked about root: %q", calls())
	}
}

func TestUnknownStaysUnknown(t *testing.T) {
	fakeGetent(t)
	var uu user.UnknownUserError
	if _, err := Lookup("nosuchuser-handoff"); !errors.As(err, &uu) {
		t.Errorf("Lookup(unknown) = %v, want user.UnknownUserError", err)
	}
	var ui user.UnknownUserIdError
	if _, err := LookupId("4099999"); !errors.As(err, &ui) {
		t.Errorf("LookupId(unknown) = %v, want user.UnknownUserIdError", err)
	}
	var ug user.UnknownGroupError
	if _, err := LookupGroup("nosuchgroup-handoff"); !errors.As(err, &ug) {
		t.Errorf("LookupGroup(unknown) = %v, want user.UnknownGroupError", err)
	}
	if _, err := Lookup("broken"); err == nil {
		t.Errorf("a line that is not a passwd entry was accepted")
	}
}

// Names that getent would misread are not passed to it.
func TestImplausibleNames(t *testing.T) {
	calls := fakeGetent(t)
	for _, n := range []string{"", "-s", "4242", "a:b", "a\nb"} {
		if u, err := Lookup(n); err == nil {
			t.Errorf("Lookup(%q) = %+v", n, u)
		}
	}
	if c := calls(); c != "" {
		t.Errorf("getent was run: %q", c)
	}
}

// Current is found by the real uid, whatever $USER and $HOME say.
func TestCurrentIgnoresEnvironment(t *testing.T) {
	t.Setenv("USER", "mallory")
	t.Setenv("HOME", "/tmp/mallory")
	u, err := Current()
	if err != nil {
		t.Fatal(err)
	}
	if u.Uid != strconv.Itoa(os.Getuid()) || u.Username == "mallory" || u.HomeDir == "/tmp/mallory" {
		t.Errorf("Current() = %+v", u)
	}
}

// Without getent, os/user's answer stands.
func TestNoGetent(t *testing.T) {
	old := getent
	getent = "/nonexistent/getent"
	t.Cleanup(func() { getent = old })
	var uu user.UnknownUserError
	if _, err := Lookup("ldapuser"); !errors.As(err, &uu) {
		t.Errorf("Lookup without getent = %v", err)
	}
}
