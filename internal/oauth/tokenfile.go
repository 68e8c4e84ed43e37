package oauth

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Token is the content of a token file.
type Token struct {
	// AccessToken is what XOAUTH2 and OAUTHBEARER send.
	AccessToken string `json:"access_token"`
	// TokenType is what the provider said, normally "Bearer".
	TokenType string `json:"token_type,omitempty"`
	// RefreshToken obtains new access tokens. Required.
	RefreshToken string `json:"refresh_token"`
	// Expiry is when AccessToken stops working; zero when unknown (the
	// token is then refreshed on every use).
	Expiry time.Time `json:"expiry"`
}

// Errors of the token file, wrapped with the path and what to do.
var (
	// ErrNoToken: the token file does not exist (nobody logged in).
	ErrNoToken = errors.New("no token")
	// ErrUnsafe: the file is not a regular file owned by the caller
	// with mode 0600 or stricter, or it is a symbolic link.
	ErrUnsafe = errors.New("unsafe file")
	// ErrBadToken: the file is not a token file DecodeToken accepts.
	ErrBadToken = errors.New("not a valid token file")
)

// maxTokenFile caps what is read of a token file.
const maxTokenFile = 64 << 10

// geteuid is the owner token files must have; a variable for tests.
var geteuid = os.Geteuid

// DecodeToken parses a token file. It accepts a JSON object with a
// non-empty refresh_token, an access_token (may be empty), an optional
// token_type and an optional RFC 3339 expiry; other members are ignored.
// Tokens must be printable ASCII without spaces (they go into SASL
// messages and HTTP forms). Errors wrap ErrBadToken and never quote a
// token.
func DecodeToken(data []byte) (*Token, error) {
	if len(data) > maxTokenFile {
		return nil, fmt.Errorf("%w: larger than %d KiB", ErrBadToken, maxTokenFile>>10)
	}
	var t Token
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&t); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return nil, fmt.Errorf("%w: JSON syntax error at byte %d", ErrBadToken, se.Offset)
		case errors.As(err, &te) && te.Field == "":
			return nil, fmt.Errorf("%w: not a JSON object", ErrBadToken)
		case errors.As(err, &te):
			return nil, fmt.Errorf("%w: %s must not be a JSON %s", ErrBadToken, te.Field, te.Value)
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return nil, fmt.Errorf("%w: empty or cut short", ErrBadToken)
		}
		// time.Time's own errors quote only the date string.
		return nil, fmt.Errorf("%w: %v", ErrBadToken, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the JSON object", ErrBadToken)
	}
	if err := t.check(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadToken, err)
	}
	return &t, nil
}

// check validates a token read or received.
func (t *Token) check() error {
	if t.RefreshToken == "" {
		return errors.New("no refresh_token")
	}
	for _, f := range []struct{ name, v string }{
		{"access_token", t.AccessToken},
		{"refresh_token", t.RefreshToken},
		{"token_type", t.TokenType},
	} {
		if len(f.v) > 16<<10 {
			return fmt.Errorf("%s is too long", f.name)
		}
		for i := 0; i < len(f.v); i++ {
			if c := f.v[i]; c <= ' ' || c > '~' {
				return fmt.Errorf("%s has a character that is not printable ASCII", f.name)
			}
		}
	}
	if y := t.Expiry.Year(); !t.Expiry.IsZero() && (y < 1970 || y > 9999) {
		return errors.New("expiry is out of range")
	}
	return nil
}

// encode returns the token file's content.
func (t *Token) encode() []byte {
	data, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		panic(err) // strings and a time in range: cannot fail
	}
	return append(data, '\n')
}

// ReadTokenFile reads and decodes the token file at path. It opens the
// file with O_NOFOLLOW and checks, before reading, that it is a regular
// file owned by the effective uid without group or other permissions.
//
// Errors: ErrNoToken, ErrUnsafe or ErrBadToken wrapped in a one-line
// message naming path; or the *fs.PathError of another failure.
func ReadTokenFile(path string) (*Token, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("oauth2: token file %s does not exist: %w", path, ErrNoToken)
	case errors.Is(err, syscall.ELOOP):
		return nil, fmt.Errorf("oauth2: token file %s is a symbolic link: %w", path, ErrUnsafe)
	case err != nil:
		return nil, fmt.Errorf("oauth2: token file: %w", err)
	}
	defer f.Close()
	if err := checkOwned(f, path); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxTokenFile+1))
	if err != nil {
		return nil, fmt.Errorf("oauth2: token file: %w", err)
	}
	t, err := DecodeToken(data)
	if err != nil {
		return nil, fmt.Errorf("oauth2: token file %s: %w", path, err)
	}
	return t, nil
}

// checkOwned refuses a file that is not regular, not the caller's, or
// open to group or others.
func checkOwned(f *os.File, path string) error {
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("oauth2: %w", err)
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	switch {
	case !st.Mode().IsRegular():
		return fmt.Errorf("oauth2: %s is not a regular file: %w", path, ErrUnsafe)
	case !ok:
		return fmt.Errorf("oauth2: %s: cannot check its owner: %w", path, ErrUnsafe)
	case int(sys.Uid) != geteuid():
		return fmt.Errorf("oauth2: %s is owned by uid %d, not by you (uid %d): %w", path, sys.Uid, geteuid(), ErrUnsafe)
	case st.Mode().Perm()&0o077 != 0:
		return fmt.Errorf("oauth2: %s has mode %04o, open to other users: %w; run: chmod 600 %s", path, st.Mode().Perm(), ErrUnsafe, path)
	}
	return nil
}

// WriteTokenFile replaces the token file at path with t, atomically,
// under the file's lock (so that it does not race a refresh), creating
// the directory with mode 0700 when it is missing. ctx bounds the wait
// for the lock.
func WriteTokenFile(ctx context.Context, path string, t *Token) error {
	if err := t.check(); err != nil {
		return fmt.Errorf("oauth2: not writing %s: %v", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("oauth2: token directory: %w", err)
	}
	unlock, err := lockFile(ctx, path+".lock")
	if err != nil {
		return err
	}
	defer unlock()
	return writeTokenFile(path, t)
}

// Hooks for the failure tests of writeTokenFile.
var (
	fsyncFile = func(f *os.File) error { return f.Sync() }
	rename    = os.Rename
)

// writeTokenFile writes t to path: a temporary file in the same
// directory (mode 0600, O_EXCL, O_NOFOLLOW), fsync, rename over path,
// fsync of the directory. On failure the old file is intact and the
// temporary file removed.
func writeTokenFile(path string, t *Token) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tmp := filepath.Join(dir, "."+base+".tmp-"+hex.EncodeToString(rnd[:]))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("oauth2: writing the token file: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err = f.Write(t.encode()); err != nil {
		return fmt.Errorf("oauth2: writing the token file: %w", err)
	}
	if err = fsyncFile(f); err != nil {
		return fmt.Errorf("oauth2: writing the token file: fsync %s: %w", tmp, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("oauth2: writing the token file: %w", err)
	}
	if err = rename(tmp, path); err != nil {
		return fmt.Errorf("oauth2: writing the token file: %w", err)
	}
	if d, derr := os.Open(dir); derr == nil {
		derr = d.Sync()
		d.Close()
		if derr != nil {
			return fmt.Errorf("oauth2: writing the token file: fsync of %s: %w", dir, derr)
		}
	}
	return nil
}

// lockFile takes an exclusive flock on path (created 0600 if missing;
// it must be the caller's) and returns its release. It gives up when ctx
// is done; a lock obtained after that is released at once.
func lockFile(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, fmt.Errorf("oauth2: lock file %s is a symbolic link: %w", path, ErrUnsafe)
		}
		return nil, fmt.Errorf("oauth2: lock file: %w", err)
	}
	if err := checkOwned(f, path); err != nil {
		f.Close()
		return nil, err
	}
	fd := int(f.Fd())
	done := make(chan error, 1)
	go func() {
		for {
			err := syscall.Flock(fd, syscall.LOCK_EX)
			if err != syscall.EINTR {
				done <- err
				return
			}
		}
	}()
	select {
	case err := <-done:
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("oauth2: locking %s: %w", path, err)
		}
		return func() { f.Close() }, nil
	case <-ctx.Done():
		go func() {
			<-done
			f.Close()
		}()
		return nil, fmt.Errorf("oauth2: waiting for the lock %s: %w", path, ctx.Err())
	}
}
