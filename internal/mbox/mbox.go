// Package mbox delivers mail to local mailboxes in mboxrd format and
// writes dead.letter files.
//
// handoff uses it when no relay is configured (mail for local users goes
// to /var/mail/USER, PRODUCT.md §4), for "mbox:" relays, and for the copy
// of a message that could be neither sent nor queued (~/dead.letter,
// PRODUCT.md §5 and research/sendmail-compat.md §7 point 19).
//
// # Format
//
// Each message is appended as
//
//	From SENDER DATE
//	MESSAGE
//	(an empty line)
//
// SENDER is the envelope sender's addr-spec ("MAILER-DAEMON" for the null
// sender) and DATE is the delivery time in ctime(3) format, "Mon Jan  2
// 15:04:05 2006", in the location of the time passed in (callers pass
// time.Now(), local time, as ctime does). A CRLF at the end of a line
// becomes LF; a bare CR is kept. Every line that matches ^>*From  (any
// number of '>' and then "From ") gets one more '>' (mboxrd quoting), so a
// reader restores the message exactly by removing one '>' from each line
// matching ^>+From . A message that does not end with a newline gets one.
// If the file does not already end with an empty line (another program
// wrote it so), newlines are added first, so that the "From " line always
// starts a line and follows an empty one.
//
// The message is streamed through one read and one write buffer: memory
// use does not depend on the size of the message or of its lines. Only
// the start of a line decides its quoting, so a line longer than the
// buffer is quoted correctly.
//
// # Locking
//
// A delivery takes, in this order and within one overall budget of 30
// seconds (after which it fails with ErrLocked, a temporary failure):
//
//  1. a lock inside this process on the path, so goroutines of one
//     process never write the same mailbox at once;
//  2. a dotlock, Path+".lock", created with O_EXCL. A dotlock whose mtime
//     is older than five minutes is stale and removed; while the message
//     is written, ours is touched every minute so it never looks stale. If
//     the spool directory is not writable by this process (creating the
//     lock fails with EACCES or EPERM: handoff is not setgid mail) the
//     delivery goes on with the fcntl lock alone, as procmail, maildrop
//     and Dovecot do in that situation. Lock holders that only dotlock are
//     then not excluded; programs that also take fcntl locks (mutt, Dovecot,
//     procmail, Postfix local) are;
//  3. an fcntl write lock on the whole file. On Linux it is an open file
//     description lock (F_OFD_SETLK), which conflicts with the classic
//     POSIX locks other programs take and, unlike them, also with locks of
//     other descriptors in this process, and is not dropped when some
//     other descriptor of the file is closed. Elsewhere, or on kernels
//     older than 3.15, a classic F_SETLK lock is used. Waiting is done by
//     retrying the non-blocking command with exponential backoff, so that
//     the wait has a deadline.
//
// Locks are released in the reverse order, after the data was synced or
// the file truncated back.
//
// # Safety
//
// The mailbox is opened with O_NOFOLLOW and O_NONBLOCK (a symbolic link is
// refused, a FIFO cannot block the open) and, after the fcntl lock is
// held, must be a regular file with one link, owned by Mailbox.UID, and
// still be the file at Path (a mail reader may have removed an empty
// mailbox while we waited: then the open is retried). Violations wrap
// ErrUnsafe. The file is opened O_RDWR|O_APPEND rather than write-only:
// reading its last two bytes is how a missing final empty line is
// detected.
//
// A new mailbox is created with O_EXCL and given Mailbox.Mode exactly
// (fchmod, so the umask does not matter) and, when running as root,
// Mailbox.UID and GID (fchown) before anything is written.
//
// # Durability
//
// The message is written, then the file is fsynced, and for a new
// mailbox its directory too, before Deliver returns nil. On any failure
// (reading the message, writing, syncing) the file is truncated back to
// the size it had when the lock was taken, so a partial message never
// remains, and the error is returned.
//
// # Limitations
//
// No Return-Path or Delivered-To header is added; callers that want them
// put them in the message. There is no mailbox size limit. Dotlocks are
// created with O_EXCL, which is atomic on local file systems and on NFS
// version 3 and later, but not on NFS version 2 (no link(2) trick). Two
// processes that both find the same stale dotlock may, in a narrow window,
// remove each other's fresh one; the fcntl lock still keeps their writes
// apart. The package needs a Unix system.
package mbox

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/handoff-mta/handoff/internal/userdb"
)

// Errors that Deliver, DeadLetter, ForUser and CanWrite wrap; test them
// with errors.Is. Of the other errors, an envelope sender with a control
// character is permanent; the rest (I/O, a failing reader) are temporary
// from this package's point of view.
var (
	// ErrNoSuchUser: the name is not a local user, or cannot be one (it
	// contains '/' or starts with '.'). Permanent.
	ErrNoSuchUser = errors.New("no such local user")

	// ErrPermission: this process may not write the mailbox. Fixed by
	// running as root or the mailbox owner, or by configuring a relay.
	// It is fs.ErrPermission, so that the EACCES and EPERM errors of the
	// system calls match it too.
	ErrPermission = fs.ErrPermission

	// ErrLocked: another program held the mailbox lock for the whole
	// lock timeout (30 s). Temporary.
	ErrLocked = errors.New("mailbox is locked")

	// ErrUnsafe: the file at the mailbox path is a symbolic link, not a
	// regular file, has more than one hard link, or has the wrong owner.
	// Nothing was written; an administrator has to look at it.
	ErrUnsafe = errors.New("unsafe mailbox file")
)

// DefaultMode is the permission of new mailboxes and dead.letter files.
//
// Debian policy (§11.6) allows mailboxes 0600 user or 0660 user:mail;
// Postfix's local(8) creates 0600, Debian's Exim 0660 user:mail. handoff
// creates 0600 with group mail: nothing needs the group bits (handoff is
// never setgid, and mail readers run as the owner; setgid-mail programs
// need write access to the spool directory, for dotlocks, not to the
// mailbox), and an administrator who wants the Debian layout can chmod
// g+rw: the mode of an existing mailbox is never changed.
const DefaultMode os.FileMode = 0o600

// configHint ends the message of a CanWrite error.
const configHint = "run as root or configure a relay in /etc/handoff/handoff.toml"

// Mailbox is a local mbox file and the owner it must have.
type Mailbox struct {
	// Path is the mailbox file, such as /var/mail/alice.
	Path string

	// UID is the owner: an existing mailbox owned by anyone else is
	// refused (ErrUnsafe), and a new one is given to UID when running
	// as root. -1 accepts any owner and leaves a new file to the
	// creating process.
	UID int

	// GID is the group a new mailbox is given when running as root:
	// ForUser chooses "mail" when that group exists, else the user's
	// own group. -1 leaves it to the file system. The group of an
	// existing mailbox is neither checked nor changed.
	GID int

	// Mode is the permission of a new mailbox, set exactly (the umask
	// does not apply); zero means DefaultMode (0600). Bits other than
	// the permission bits are ignored. The mode of an existing mailbox
	// is not changed.
	Mode os.FileMode
}

// Deliver appends one message to mb in mboxrd format, under a dotlock and
// an fcntl lock, and syncs it to disk; see the package documentation for
// the format, the locking and the checks. sender is the envelope sender
// ("" or "<>" for the null sender; angle brackets around an address are
// removed); it must not contain control characters. msg is read to its
// end, with CRLF or LF line endings; now is the time written in the
// separator line.
//
// On failure nothing of the message remains in the mailbox. The error
// wraps ErrLocked, ErrUnsafe or ErrPermission for those cases, or is the
// I/O or read error; an invalid sender is reported before anything is
// touched.
func Deliver(mb Mailbox, sender string, msg io.Reader, now time.Time) error {
	sep, err := separator(sender, now)
	if err != nil {
		return err
	}
	if mb.Path == "" {
		return errors.New("mbox: empty mailbox path")
	}
	return deliver(mb, true, sep, msg)
}

// DeadLetter appends msg, in the same format as Deliver, to the file
// dead.letter in home, the home directory of the real user from the
// passwd entry (the caller looks it up). It returns the file's path.
//
// The file is created with mode 0600; an existing file is only ever
// appended to, never truncated (except back to its own earlier size when
// this append fails). A symbolic link, a file with other hard links and a
// file not owned by the effective uid are refused (ErrUnsafe). Appends are
// serialised with an fcntl lock; no dotlock is taken in home.
func DeadLetter(home, sender string, msg io.Reader, now time.Time) (path string, err error) {
	if home == "" {
		return "", errors.New("mbox: no home directory for dead.letter")
	}
	path = filepath.Join(home, "dead.letter")
	sep, err := separator(sender, now)
	if err != nil {
		return path, err
	}
	mb := Mailbox{Path: path, UID: os.Geteuid(), GID: -1, Mode: DefaultMode}
	return path, deliver(mb, false, sep, msg)
}

// ForUser returns the Mailbox of the local user name in spoolDir (such as
// "/var/mail"): Path spoolDir/name, the user's uid, gid of group "mail" if
// it exists (else the user's primary group), and DefaultMode.
//
// The name is used as given (user names are case-sensitive; callers fold
// case if they want to). A name that is empty, contains '/' or NUL, or
// starts with '.' is refused with an error wrapping ErrNoSuchUser, as is a
// name that the user database does not know. Other lookup failures are
// returned as they are (temporary). Without cgo, Go reads only
// /etc/passwd and /etc/group (no NSS, such as LDAP users).
func ForUser(spoolDir, name string) (Mailbox, error) {
	if name == "" || strings.HasPrefix(name, ".") || strings.ContainsAny(name, "/\x00") {
		return Mailbox{}, fmt.Errorf("mbox: %q cannot be a local user name: %w", name, ErrNoSuchUser)
	}
	u, err := userdb.Lookup(name)
	if err != nil {
		var unknown user.UnknownUserError
		if errors.As(err, &unknown) {
			return Mailbox{}, fmt.Errorf("mbox: %q: %w", name, ErrNoSuchUser)
		}
		return Mailbox{}, fmt.Errorf("mbox: looking up user %q: %w", name, err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return Mailbox{}, fmt.Errorf("mbox: user %q has a non-numeric uid %q", name, u.Uid)
	}
	gidStr := u.Gid
	if g, err := userdb.LookupGroup("mail"); err == nil {
		gidStr = g.Gid
	}
	gid, err := strconv.Atoi(gidStr)
	if err != nil {
		return Mailbox{}, fmt.Errorf("mbox: non-numeric gid %q for user %q", gidStr, name)
	}
	return Mailbox{Path: filepath.Join(spoolDir, name), UID: uid, GID: gid, Mode: DefaultMode}, nil
}

// CanWrite reports whether this process may deliver to mb: it runs as
// root, or its effective uid is mb.UID (or mb.UID is -1, no owner
// required). Otherwise the error, wrapping ErrPermission, says in one line
// who may, such as "permission denied: writing /var/mail/alice needs root
// or user alice; run as root or configure a relay in
// /etc/handoff/handoff.toml".
//
// CanWrite only looks at identities, not at file permissions: a member of
// group mail writing a 0660 mailbox is told no, and Deliver remains the
// judge of what actually works.
func CanWrite(mb Mailbox) error {
	euid := os.Geteuid()
	return canWrite(mb, euid, euid != 0 && delegated())
}

// canWrite is CanWrite for a process with euid that delivers for others
// (delegated) or not.
func canWrite(mb Mailbox, euid int, delegated bool) error {
	if euid == 0 || mb.UID < 0 || euid == mb.UID || delegated {
		return nil
	}
	who := "uid " + strconv.Itoa(mb.UID)
	if u, err := userdb.LookupId(strconv.Itoa(mb.UID)); err == nil {
		who = u.Username
	}
	return fmt.Errorf("%w: writing %s needs root or user %s; %s", ErrPermission, mb.Path, who, configHint)
}

// separator returns the "From " line for sender at now.
func separator(sender string, now time.Time) (string, error) {
	s := sender
	if len(s) >= 2 && s[0] == '<' && s[len(s)-1] == '>' {
		s = s[1 : len(s)-1]
	}
	if s == "" {
		s = "MAILER-DAEMON"
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c == 0x7f {
			return "", fmt.Errorf("mbox: envelope sender %q contains a control character", sender)
		}
	}
	return "From " + s + " " + now.Format(time.ANSIC) + "\n", nil
}

// deliver appends the message to mb.Path under the locks; it is Deliver
// without the argument checks, and DeadLetter when dotlock is false.
func deliver(mb Mailbox, dotlock bool, sep string, msg io.Reader) (err error) {
	deadline := time.Now().Add(lockTimeout)

	unlock, err := lockInProcess(mb.Path, deadline)
	if err != nil {
		return err
	}
	defer unlock()

	var tick func()
	if dotlock {
		dl, err := acquireDotlock(mb.Path+".lock", deadline)
		if err != nil {
			return err
		}
		if dl != nil { // nil: the spool directory is not writable
			defer dl.release()
			tick = dl.refresh
		}
	}
	return appendTo(mb, deadline, sep, msg, tick)
}

// appendTo opens and locks mb.Path, appends the message, syncs, and on
// failure truncates the file back. tick, when not nil, is called often
// while the message is copied (it refreshes the dotlock).
func appendTo(mb Mailbox, deadline time.Time, sep string, msg io.Reader, tick func()) (err error) {
	f, created, err := openLocked(mb, deadline)
	if err != nil {
		return err
	}
	defer func() {
		// Closing drops the fcntl lock; unlock explicitly all the same,
		// so that an OFD lock never outlives us through a leaked dup.
		unlockFile(f)
		if cerr := f.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()

	fi, err := f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	prefix, err := missingNewlines(f, size)
	if err != nil {
		return err
	}

	c := getCopier(f, msg)
	defer putCopier(c)
	werr := func() error {
		if _, err := c.w.WriteString(prefix); err != nil {
			return err
		}
		if _, err := c.w.WriteString(sep); err != nil {
			return err
		}
		if err := c.copyBody(tick); err != nil {
			return err
		}
		if err := c.w.Flush(); err != nil {
			return err
		}
		return f.Sync()
	}()
	if werr == nil && created {
		werr = syncDir(filepath.Dir(mb.Path))
	}
	if werr != nil {
		if terr := f.Truncate(size); terr != nil {
			return fmt.Errorf("mbox: delivering to %s: %w; truncating it back to %d bytes failed too, so it may end with a partial message: %w",
				mb.Path, werr, size, terr)
		}
		_ = f.Sync()
		return fmt.Errorf("mbox: delivering to %s: %w", mb.Path, werr)
	}
	return nil
}

// missingNewlines returns what must be written before the "From " line
// so that it follows an empty line: "" for an empty file or one ending in
// "\n\n", "\n" or "\n\n" otherwise.
func missingNewlines(f *os.File, size int64) (string, error) {
	if size == 0 {
		return "", nil
	}
	var tail [2]byte
	n := int64(len(tail))
	if size < n {
		n = size
	}
	if _, err := f.ReadAt(tail[2-n:], size-n); err != nil {
		return "", fmt.Errorf("mbox: reading the end of %s: %w", f.Name(), err)
	}
	switch {
	case tail[1] != '\n':
		return "\n\n", nil
	case n == 2 && tail[0] != '\n':
		return "\n", nil
	}
	return "", nil
}

// openLocked opens mb.Path for appending (creating it if needed), takes
// the fcntl lock, and checks that the locked file is a safe mailbox still
// at mb.Path. created reports whether this call created the file.
func openLocked(mb Mailbox, deadline time.Time) (f *os.File, created bool, err error) {
	const flags = os.O_RDWR | os.O_APPEND | unix.O_NOFOLLOW | unix.O_NONBLOCK
	mode := mb.Mode.Perm()
	if mode == 0 {
		mode = DefaultMode
	}
	for attempt := 0; ; attempt++ {
		if attempt == 10 {
			return nil, false, fmt.Errorf("mbox: %s keeps being replaced while we open it: %w", mb.Path, ErrLocked)
		}
		created = false
		f, err = os.OpenFile(mb.Path, flags, 0)
		if errors.Is(err, fs.ErrNotExist) {
			f, err = os.OpenFile(mb.Path, flags|os.O_CREATE|os.O_EXCL, mode)
			if errors.Is(err, fs.ErrExist) {
				continue // someone else created it meanwhile
			}
			created = err == nil
		}
		if err != nil {
			return nil, false, openError(mb.Path, err)
		}
		fd := int(f.Fd())
		if err := unix.SetNonblock(fd, false); err != nil {
			f.Close()
			return nil, false, err
		}
		if created {
			if err := initNew(f, mb, mode); err != nil {
				os.Remove(mb.Path)
				f.Close()
				return nil, false, err
			}
		}
		// Fail fast before waiting for a lock on a file we will refuse.
		if err := checkFile(f, mb); err != nil {
			if created {
				os.Remove(mb.Path)
			}
			f.Close()
			return nil, false, err
		}
		if err := lockFile(f, deadline); err != nil {
			f.Close()
			return nil, false, err
		}
		// While we waited, a mail reader may have removed or replaced the
		// mailbox; appending to the old file would lose the message.
		fi, err := f.Stat()
		if err != nil {
			unlockFile(f)
			f.Close()
			return nil, false, err
		}
		if cur, err := os.Lstat(mb.Path); err != nil || !os.SameFile(fi, cur) {
			unlockFile(f)
			f.Close()
			continue
		}
		if err := checkFile(f, mb); err != nil {
			unlockFile(f)
			f.Close()
			return nil, false, err
		}
		return f, created, nil
	}
}

// openError turns an open(2) failure into this package's errors.
func openError(path string, err error) error {
	switch {
	case errors.Is(err, syscall.ELOOP), errors.Is(err, syscall.EMLINK):
		// O_NOFOLLOW reports a symbolic link as ELOOP (EMLINK on FreeBSD).
		return fmt.Errorf("mbox: %s is a symbolic link: %w", path, ErrUnsafe)
	case errors.Is(err, syscall.ENXIO):
		// O_NONBLOCK|O_WRONLY on a FIFO without a reader, or a device.
		return fmt.Errorf("mbox: %s is not a regular file: %w", path, ErrUnsafe)
	}
	return fmt.Errorf("mbox: %w", err)
}

// initNew gives a mailbox this process just created its mode and, when
// running as root, its owner, before anything is written to it.
func initNew(f *os.File, mb Mailbox, mode os.FileMode) error {
	fd := int(f.Fd())
	euid := os.Geteuid()
	give := euid == 0
	if euid != 0 && mb.UID >= 0 && euid != mb.UID && delegated() {
		// The system-mode daemon: the new mailbox is the user's, and
		// the group's (mail) to write the next time.
		give, mode = true, mode|0o060
	}
	if err := unix.Fchmod(fd, uint32(mode)); err != nil {
		return &os.PathError{Op: "fchmod", Path: mb.Path, Err: err}
	}
	if give && (mb.UID >= 0 || mb.GID >= 0) {
		if err := unix.Fchown(fd, mb.UID, mb.GID); err != nil {
			return &os.PathError{Op: "fchown", Path: mb.Path, Err: err}
		}
	}
	if mb.UID >= 0 && !give && euid != mb.UID {
		return fmt.Errorf("mbox: creating %s as uid %d cannot give it to uid %d: %w", mb.Path, euid, mb.UID, ErrPermission)
	}
	return nil
}

// delegated reports whether this process delivers for other users
// without being root: it holds CAP_CHOWN in its effective set, as the
// system-mode daemon does (user handoff, group mail, CAP_CHOWN from its
// unit). It may then create a mailbox and give it to its user, mode 0660
// with group mail; it writes existing mailboxes through the group, so a
// 0600 mailbox made by another MTA needs chmod g+rw first (0660
// user:mail is Debian's other allowed layout).
func delegated() bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false
	}
	return data[0].Effective&(1<<unix.CAP_CHOWN) != 0
}

// checkFile refuses anything but a regular file with one link owned by
// mb.UID (any owner when mb.UID is -1).
func checkFile(f *os.File, mb Mailbox) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if t := fi.Mode().Type(); t != 0 {
		what := "a special file"
		switch {
		case t&fs.ModeNamedPipe != 0:
			what = "a named pipe"
		case t&fs.ModeDevice != 0:
			what = "a device"
		case t&fs.ModeSocket != 0:
			what = "a socket"
		}
		return fmt.Errorf("mbox: %s is %s, not a regular file: %w", mb.Path, what, ErrUnsafe)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("mbox: cannot read the owner of %s", mb.Path)
	}
	if n := uint64(st.Nlink); n != 1 {
		return fmt.Errorf("mbox: %s has %d hard links: %w", mb.Path, n, ErrUnsafe)
	}
	if mb.UID >= 0 && int64(st.Uid) != int64(mb.UID) {
		return fmt.Errorf("mbox: %s is owned by uid %d, not %d: %w", mb.Path, st.Uid, mb.UID, ErrUnsafe)
	}
	return nil
}

// syncDir fsyncs a directory, making a new entry in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
