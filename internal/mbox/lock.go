package mbox

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// lockTimeout bounds the wait for all the locks of one delivery together.
// Tests shorten it.
var lockTimeout = 30 * time.Second

const (
	// staleAfter is the age (by mtime) after which a dotlock is taken to
	// be left over by a crashed program and removed; the common MDA
	// convention (procmail, liblockfile) is five minutes.
	staleAfter = 5 * time.Minute

	// refreshEvery is how often a held dotlock's mtime is renewed while a
	// slow message is written, well within staleAfter.
	refreshEvery = time.Minute

	// Backoff between lock attempts: doubled from minBackoff up to
	// maxBackoff, with jitter so that waiters do not retry in step.
	minBackoff = 5 * time.Millisecond
	maxBackoff = 250 * time.Millisecond
)

// testHookBusy, when set, is called each time a lock is found held by
// someone else ("process", "dotlock" or "fcntl"). Tests use it to know
// that Deliver is waiting without sleeping.
var testHookBusy func(what string)

func busy(what string) {
	if h := testHookBusy; h != nil {
		h(what)
	}
}

// backoff paces lock attempts until a deadline.
type backoff struct {
	deadline time.Time
	d        time.Duration
}

// wait sleeps before the next attempt. It returns false, without
// sleeping, once the deadline has passed.
func (b *backoff) wait() bool {
	left := time.Until(b.deadline)
	if left <= 0 {
		return false
	}
	if b.d == 0 {
		b.d = minBackoff
	}
	d := b.d/2 + rand.N(b.d/2+1)
	b.d = min(2*b.d, maxBackoff)
	time.Sleep(min(d, left))
	return true
}

// inproc serialises deliveries to one path within this process. fcntl
// locks alone cannot when they are classic POSIX locks (the process
// already owns them), and dotlocks may be unavailable.
var inproc = struct {
	sync.Mutex
	m map[string]*procLock
}{m: make(map[string]*procLock)}

// procLock is a mutex with a timeout: a channel holding one token while
// locked. refs counts holders and waiters, so that the map entry lives
// exactly as long as someone uses it.
type procLock struct {
	ch   chan struct{}
	refs int
}

// lockInProcess locks path against other goroutines of this process,
// waiting until deadline at most, and returns the unlock function.
func lockInProcess(path string, deadline time.Time) (unlock func(), err error) {
	inproc.Lock()
	l := inproc.m[path]
	if l == nil {
		l = &procLock{ch: make(chan struct{}, 1)}
		inproc.m[path] = l
	}
	l.refs++
	inproc.Unlock()
	release := func() {
		inproc.Lock()
		if l.refs--; l.refs == 0 {
			delete(inproc.m, path)
		}
		inproc.Unlock()
	}

	select {
	case l.ch <- struct{}{}:
	default:
		busy("process")
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		select {
		case l.ch <- struct{}{}:
		case <-t.C:
			release()
			return nil, fmt.Errorf("mbox: %s: another delivery in this process holds it: %w", path, ErrLocked)
		}
	}
	return func() {
		<-l.ch
		release()
	}, nil
}

// dotlock is a held PATH.lock file.
type dotlock struct {
	path    string
	f       *os.File
	fi      fs.FileInfo // what we created, to remove only that
	touched time.Time
}

// acquireDotlock creates path with O_EXCL, removing a stale one, and
// retrying until deadline while someone else holds it. It returns a nil
// lock and no error when the directory is not writable by this process:
// the delivery then relies on the fcntl lock alone.
func acquireDotlock(path string, deadline time.Time) (*dotlock, error) {
	b := backoff{deadline: deadline}
	for {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
		switch {
		case err == nil:
			fi, err := f.Stat()
			if err != nil {
				f.Close()
				os.Remove(path)
				return nil, err
			}
			return &dotlock{path: path, f: f, fi: fi, touched: time.Now()}, nil
		case errors.Is(err, fs.ErrPermission):
			return nil, nil // not setgid mail: no dotlock (see the package doc)
		case errors.Is(err, fs.ErrExist):
			removed, err := removeIfStale(path)
			if errors.Is(err, fs.ErrPermission) {
				// A stale lock in a directory we cannot write: we could
				// not have taken a dotlock anyway.
				return nil, nil
			}
			if err != nil {
				return nil, err
			}
			if removed {
				continue
			}
			busy("dotlock")
			if !b.wait() {
				return nil, fmt.Errorf("mbox: %s is held by another program: %w", path, ErrLocked)
			}
		case errors.Is(err, syscall.EINTR):
		default:
			return nil, fmt.Errorf("mbox: creating dotlock: %w", err)
		}
	}
}

// removeIfStale removes the dotlock at path if it is older than
// staleAfter. It reports true when path no longer exists, so that the
// caller retries at once.
func removeIfStale(path string) (gone bool, err error) {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	if time.Since(fi.ModTime()) <= staleAfter {
		return false, nil
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("mbox: removing stale dotlock: %w", err)
	}
	return true, nil
}

// refresh renews the lock's mtime once refreshEvery has passed, so that a
// long delivery is not taken for a crashed one. Best effort.
func (d *dotlock) refresh() {
	now := time.Now()
	if now.Sub(d.touched) < refreshEvery {
		return
	}
	d.touched = now
	tv := unix.NsecToTimeval(now.UnixNano())
	_ = unix.Futimes(int(d.f.Fd()), []unix.Timeval{tv, tv})
}

// release removes the lock file if it is still ours (not removed as
// stale and re-created by someone else).
func (d *dotlock) release() {
	if cur, err := os.Lstat(d.path); err == nil && os.SameFile(cur, d.fi) {
		os.Remove(d.path)
	}
	d.f.Close()
}

// noOFD is set once the kernel has refused an OFD lock (EINVAL).
var noOFD atomic.Bool

// lockFile takes an exclusive fcntl lock on the whole of f, retrying the
// non-blocking command until deadline.
func lockFile(f *os.File, deadline time.Time) error {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart}
	cmd := setlkCmd()
	b := backoff{deadline: deadline}
	for {
		err := unix.FcntlFlock(f.Fd(), cmd, &lk)
		switch {
		case err == nil:
			return nil
		case cmd != unix.F_SETLK && errors.Is(err, unix.EINVAL):
			// A kernel without OFD locks (Linux < 3.15).
			noOFD.Store(true)
			cmd = unix.F_SETLK
		case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EACCES):
			busy("fcntl")
			if !b.wait() {
				return fmt.Errorf("mbox: %s is locked (fcntl) by another program: %w", f.Name(), ErrLocked)
			}
		case errors.Is(err, unix.EINTR):
		default:
			return fmt.Errorf("mbox: locking %s: %w", f.Name(), err)
		}
	}
}

// unlockFile drops the lock lockFile took. Errors are ignored: closing
// the file drops it too.
func unlockFile(f *os.File) {
	lk := unix.Flock_t{Type: unix.F_UNLCK, Whence: io.SeekStart}
	_ = unix.FcntlFlock(f.Fd(), setlkCmd(), &lk)
}
