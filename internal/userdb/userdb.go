// Package userdb looks up users and groups the way handoff needs: with
// os/user first and, for a name or id that it does not know, with
// getent(1), which asks NSS (LDAP, sssd, systemd-homed...).
//
// It exists so that handoff can be built without cgo, which makes every
// sendmail call about a millisecond faster (no dynamic loader, no cgo
// start-up), without losing the users that only NSS knows: a build
// without cgo reads /etc/passwd and /etc/group alone. With cgo, os/user
// asks NSS itself and getent is never needed. The rare user not in
// /etc/passwd costs one getent run.
package userdb

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"time"
)

// getent is the program that asks NSS; a variable for tests.
var getent = "/usr/bin/getent"

// timeout bounds a getent run (an LDAP server may be slow).
const timeout = 10 * time.Second

// Lookup finds a user by login name.
func Lookup(name string) (*user.User, error) {
	u, err := user.Lookup(name)
	var unknown user.UnknownUserError
	if err == nil || !errors.As(err, &unknown) || !plausible(name) {
		return u, err
	}
	f, ok, gerr := query("passwd", name)
	switch {
	case gerr != nil:
		return nil, gerr
	case !ok:
		return nil, err
	}
	return passwdUser(f)
}

// LookupId finds a user by uid.
func LookupId(uid string) (*user.User, error) {
	u, err := user.LookupId(uid)
	var unknown user.UnknownUserIdError
	if err == nil || !errors.As(err, &unknown) {
		return u, err
	}
	if _, perr := strconv.ParseUint(uid, 10, 32); perr != nil {
		return nil, err
	}
	f, ok, gerr := query("passwd", uid)
	switch {
	case gerr != nil:
		return nil, gerr
	case !ok || f[2] != uid:
		return nil, err
	}
	return passwdUser(f)
}

// LookupGroup finds a group by name.
func LookupGroup(name string) (*user.Group, error) {
	g, err := user.LookupGroup(name)
	var unknown user.UnknownGroupError
	if err == nil || !errors.As(err, &unknown) || !plausible(name) {
		return g, err
	}
	f, ok, gerr := query("group", name)
	switch {
	case gerr != nil:
		return nil, gerr
	case !ok || len(f) < 3:
		return nil, err
	}
	return &user.Group{Name: f[0], Gid: f[2]}, nil
}

// Current is the user of the real uid, found by uid. Unlike
// user.Current without cgo, it never takes the name or the home from
// the environment ($USER, $HOME), which the caller controls.
func Current() (*user.User, error) {
	return LookupId(strconv.Itoa(os.Getuid()))
}

// plausible keeps getent from seeing what is not a name: an empty
// string, an option, a number (which getent would take as an id).
func plausible(name string) bool {
	if name == "" || name[0] == '-' || strings.ContainsAny(name, ":\n\x00") {
		return false
	}
	_, err := strconv.ParseUint(name, 10, 64)
	return err != nil
}

// query runs "getent db key" and returns the fields of its first line;
// ok is false when getent says the key is unknown (exit 2) or is not
// there to ask (then os/user's answer stands).
func query(db, key string) (fields []string, ok bool, err error) {
	if _, serr := os.Stat(getent); serr != nil {
		return nil, false, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, getent, db, key)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C"}
	out, err := cmd.Output()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee) && ee.ExitCode() == 2:
		return nil, false, nil
	case err != nil:
		return nil, false, errors.New("userdb: getent " + db + " " + key + ": " + err.Error())
	}
	line, _, _ := bytes.Cut(out, []byte("\n"))
	f := strings.Split(string(line), ":")
	if db == "passwd" && len(f) < 7 || db == "group" && len(f) < 3 {
		return nil, false, errors.New("userdb: getent " + db + " " + key + " printed a line that is not a " + db + " entry")
	}
	return f, true, nil
}

// passwdUser turns the fields of a passwd line into a user.User.
func passwdUser(f []string) (*user.User, error) {
	name, _, _ := strings.Cut(f[4], ",")
	return &user.User{Username: f[0], Uid: f[2], Gid: f[3], Name: name, HomeDir: f[5]}, nil
}
