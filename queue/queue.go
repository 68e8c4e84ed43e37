package queue

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// The layout of a queue directory.
const (
	envDir         = "env"         // env/ID: envelopes, the commit markers
	msgDir         = "msg"         // msg/ID: messages
	corruptDir     = "corrupt"     // corrupt/ID.env, ID.msg: items moved aside
	runnerLockName = "runner.lock" // flock'ed by the one runner
)

// OrphanGrace is the grace period the runner gives ReapOrphans: a message
// file without an envelope, or a temporary file, is deleted once it is
// this old. Enqueue holds the lock of its message file until the envelope
// is written, so a file being enqueued is never reaped, whatever the
// grace; the grace only keeps the reaper away from anything recent.
const OrphanGrace = time.Hour

// Queue is a queue directory. Its methods are safe for concurrent use, by
// goroutines and by processes: each item is guarded by a flock on its
// message file.
type Queue struct {
	// Dir is the queue directory.
	Dir string

	uid   int // owner of Dir: every file must belong to it
	chown int // uid given to new files, -1 when that is us
	ops   *fileOps
	now   func() time.Time
}

// Open opens the queue in dir, creating dir (mode 0700) if it does not
// exist (its parent must), and its subdirectories env/, msg/ and
// corrupt/. dir must be a directory, not a symbolic link, owned by the
// effective uid, or by anyone when the effective uid is root (root may
// manage the queue of the handoff user; the files it writes are then given
// to the queue's owner), and not writable by group or others; so must the
// subdirectories. Errors wrap ErrUnsafe for a directory that breaks these
// rules, or the system's error (fs.ErrNotExist, syscall.EACCES).
func Open(dir string) (*Queue, error) {
	dir = filepath.Clean(dir)
	euid := os.Geteuid()
	created := false
	if err := os.Mkdir(dir, 0o700); err == nil {
		created = true
		if err := os.Chmod(dir, 0o700); err != nil {
			return nil, fmt.Errorf("queue: %w", err)
		}
	} else if !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("queue: creating the queue directory: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return nil, fmt.Errorf("queue: %w", &os.PathError{Op: "lstat", Path: dir, Err: err})
	}
	uid := int(st.Uid)
	if uid != euid && euid != 0 {
		return nil, fmt.Errorf("queue: %s is owned by uid %d, not by you (uid %d): %w", dir, uid, euid, ErrUnsafe)
	}
	if err := checkDir(dir, &st, uid); err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	q := &Queue{Dir: dir, uid: uid, chown: -1, ops: &defaultOps, now: time.Now}
	if uid != euid {
		q.chown = uid
	}
	made := false
	for _, sub := range []string{envDir, msgDir, corruptDir} {
		m, err := q.subdir(sub)
		if err != nil {
			return nil, err
		}
		made = made || m
	}
	if made {
		if err := syncDir(dir); err != nil {
			return nil, fmt.Errorf("queue: %w", err)
		}
	}
	if created {
		if err := syncDir(filepath.Dir(dir)); err != nil {
			return nil, fmt.Errorf("queue: %w", err)
		}
	}
	return q, nil
}

// subdir makes the queue's subdirectory sub when it is missing (mode
// 0700, the queue's owner) and checks it; made reports that it was
// created, and the queue directory then needs an fsync.
func (q *Queue) subdir(sub string) (made bool, err error) {
	p := filepath.Join(q.Dir, sub)
	if err := os.Mkdir(p, 0o700); err == nil {
		made = true
		if err := os.Chmod(p, 0o700); err != nil {
			return made, fmt.Errorf("queue: %w", err)
		}
		if q.chown >= 0 {
			if err := os.Lchown(p, q.chown, -1); err != nil {
				return made, fmt.Errorf("queue: %w", err)
			}
		}
	} else if !errors.Is(err, fs.ErrExist) {
		return false, fmt.Errorf("queue: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return made, fmt.Errorf("queue: %w", &os.PathError{Op: "lstat", Path: p, Err: err})
	}
	if err := checkDir(p, &st, q.uid); err != nil {
		return made, fmt.Errorf("queue: %w", err)
	}
	return made, nil
}

func checkDir(path string, st *unix.Stat_t, uid int) error {
	switch {
	case st.Mode&unix.S_IFMT == unix.S_IFLNK:
		return fmt.Errorf("%s is a symbolic link: %w", path, ErrUnsafe)
	case st.Mode&unix.S_IFMT != unix.S_IFDIR:
		return fmt.Errorf("%s is not a directory: %w", path, ErrUnsafe)
	case int(st.Uid) != uid:
		return fmt.Errorf("%s is owned by uid %d, not %d: %w", path, st.Uid, uid, ErrUnsafe)
	case st.Mode&0o022 != 0:
		return fmt.Errorf("%s is writable by group or others (mode %#o): %w", path, st.Mode&0o7777, ErrUnsafe)
	}
	return nil
}

// checkFile checks an open queue file: a regular file, owned by the
// queue's owner, mode 0600, one link.
func (q *Queue) checkFile(what string, st *unix.Stat_t) error {
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return fmt.Errorf("%s is not a regular file: %w", what, ErrUnsafe)
	case int(st.Uid) != q.uid:
		return fmt.Errorf("%s is owned by uid %d, not %d: %w", what, st.Uid, q.uid, ErrUnsafe)
	case st.Mode&0o7777 != 0o600:
		return fmt.Errorf("%s has mode %#o, not 0600: %w", what, st.Mode&0o7777, ErrUnsafe)
	case st.Nlink != 1:
		return fmt.Errorf("%s has %d links: %w", what, st.Nlink, ErrUnsafe)
	}
	return nil
}

func (q *Queue) envPath(id string) string { return filepath.Join(q.Dir, envDir, id) }
func (q *Queue) msgPath(id string) string { return filepath.Join(q.Dir, msgDir, id) }

// openNoFollow opens a queue file for reading without following a
// symbolic link (O_NOFOLLOW: a link is ErrUnsafe) and without blocking on
// a FIFO planted in its place; it returns the file and its status.
func openNoFollow(path, what string) (*os.File, *unix.Stat_t, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, nil, fmt.Errorf("%s is a symbolic link: %w", what, ErrUnsafe)
		}
		return nil, nil, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, nil, &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	return f, &st, nil
}

// readEnvelope reads and parses env/id, checking the file (O_NOFOLLOW,
// regular, owner, mode, links) and that it names id. A missing file is
// fs.ErrNotExist; a bad one ErrUnsafe or ErrCorrupt.
func (q *Queue) readEnvelope(id string) (*Envelope, error) {
	env, f, err := q.openEnvelope(id)
	if f != nil {
		f.Close()
	}
	return env, err
}

// openEnvelope is readEnvelope returning the file too, open (nil on an
// error).
func (q *Queue) openEnvelope(id string) (_ *Envelope, _ *os.File, err error) {
	f, st, err := openNoFollow(q.envPath(id), "envelope")
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	if err := q.checkFile("envelope", st); err != nil {
		return nil, nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxEnvelopeSize+1))
	if err != nil {
		return nil, nil, err
	}
	if len(data) > maxEnvelopeSize {
		return nil, nil, &ParseError{Msg: fmt.Sprintf("larger than %d bytes", maxEnvelopeSize)}
	}
	env, err := ParseEnvelope(data)
	if err != nil {
		return nil, nil, err
	}
	if env.ID != id {
		return nil, nil, &ParseError{Msg: fmt.Sprintf("id %s in the file named %s", env.ID, id)}
	}
	return env, f, nil
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// Enqueue stores a message durably and returns its id. The order is the
// package's durability order: the message (msg/ID) is written, fsynced,
// renamed into place and its directory fsynced; then the envelope
// (env/ID) the same way. Only when Enqueue returns nil is the message
// queued; on any error every file it wrote is removed, so nothing
// half-written is ever taken for a queued message.
//
// Enqueue sets env.Version, env.ID, env.Size (the bytes read from msg),
// env.Created when zero (now, whole seconds) and env.NextAttempt when
// zero (Created: due at once). The recipients' states are kept: a
// submitter that has already delivered to some recipients queues the
// rest with those marked Sent.
//
// Errors: ErrInvalid (from Validate, before anything is written); errors
// of the file system wrapped with %w, so that errors.Is(err,
// syscall.ENOSPC), errors.Is(err, syscall.EDQUOT) (disk full: the caller
// exits 75) and errors.Is(err, syscall.EACCES) or syscall.EROFS (an
// unwritable queue: 73) work; msg's own read error, wrapped.
func (q *Queue) Enqueue(env *Envelope, msg io.Reader) (id string, err error) {
	it, err := q.EnqueueLocked(env, msg)
	if err != nil {
		return "", err
	}
	it.Unlock()
	return it.id, nil
}

// EnqueueLocked is Enqueue returning the new item locked, for a submitter
// that queues first and then tries to deliver at once: no runner can take
// the item between the two. The Item's Env is env.
func (q *Queue) EnqueueLocked(env *Envelope, msg io.Reader) (_ *Item, err error) {
	now := q.now()
	saved := *env
	defer func() {
		if err != nil {
			*env = saved
		}
	}()
	env.Version = Version
	if env.Created.IsZero() {
		env.Created = stamp(now)
	}
	if env.NextAttempt.IsZero() {
		env.NextAttempt = env.Created
	}
	id := newID(now)
	env.ID = id
	if err := env.Validate(); err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	var n int64
	f, err := writeDurable(q.ops, filepath.Join(q.Dir, msgDir), id, func(w io.Writer) error {
		var err error
		n, err = io.Copy(w, msg)
		return err
	}, writeOpts{noReplace: true, lock: true, owner: q.chown})
	if err != nil {
		return nil, fmt.Errorf("queue: storing the message: %w", err)
	}
	env.Size = n
	envFile, err := q.writeEnvelope(env)
	if err != nil {
		q.discard(id)
		f.Close()
		return nil, fmt.Errorf("queue: storing the envelope: %w", err)
	}
	return &Item{Env: env, q: q, id: id, body: f, envFiles: []*os.File{envFile}, size: n}, nil
}

// writeEnvelope writes env/ID durably (the commit, or a later update) and
// returns the new file, open.
func (q *Queue) writeEnvelope(env *Envelope) (*os.File, error) {
	files, errs := q.writeEnvelopes([]*Envelope{env})
	return files[0], errs[0]
}

// writeEnvelopes writes several envelopes durably, as one batch of
// writeDurableBatch (their fsyncs shared); errs[i] is envs[i]'s outcome,
// and files[i] its new file, open, when errs[i] is nil.
func (q *Queue) writeEnvelopes(envs []*Envelope) (files []*os.File, errs []error) {
	files, errs = make([]*os.File, len(envs)), make([]error, len(envs))
	batch := make([]durableFile, 0, len(envs))
	which := make([]int, 0, len(envs)) // batch[k] is envs[which[k]]
	for i, env := range envs {
		data, err := env.Marshal()
		if err != nil {
			errs[i] = err
			continue
		}
		batch = append(batch, durableFile{name: env.ID, write: func(w io.Writer) error {
			_, err := w.Write(data)
			return err
		}})
		which = append(which, i)
	}
	writeDurableBatch(q.ops, filepath.Join(q.Dir, envDir), batch, writeOpts{keep: true, owner: q.chown})
	for k, df := range batch {
		files[which[k]], errs[which[k]] = df.f, df.err
	}
	return files, errs
}

// discard removes what a failed Enqueue may have left: the envelope (if
// its rename happened before a failed directory fsync), then the message.
// Errors are ignored: a message left without an envelope is an orphan,
// reaped later.
func (q *Queue) discard(id string) {
	if os.Remove(q.envPath(id)) == nil {
		q.ops.syncDir(filepath.Join(q.Dir, envDir))
	}
	if os.Remove(q.msgPath(id)) == nil {
		q.ops.syncDir(filepath.Join(q.Dir, msgDir))
	}
}

// Item is a locked queue item. Only the holder of the Item delivers,
// edits or removes it, until Unlock.
type Item struct {
	// Env is the envelope as read by Lock; change it, then Save.
	Env *Envelope

	q    *Queue
	id   string
	body *os.File // the message file, flock'ed; nil once unlocked
	size int64
	// envFiles are the versions of the envelope file the item has read
	// (Lock) and written (Save), kept open until Unlock. A file replaced
	// or deleted meanwhile is only freed when it is closed (its inode
	// and blocks released: file system work, a synchronous discard with
	// the discard mount option); for an item a runner removes, that is
	// done by the Remover in the background, off the paths of recording
	// attempts and delivering.
	envFiles []*os.File
}

// ID returns the item's id.
func (it *Item) ID() string { return it.id }

// Lock takes the item's lock and reads its envelope. The lock is an
// exclusive flock on the message file msg/ID (whose inode never changes,
// unlike the envelope's, which every Save replaces), taken without
// waiting: when another process, or another Item in this one, holds it,
// Lock returns ErrBusy at once. The lock is released by Unlock, Remove,
// or the death of the process.
//
// Both files are opened with O_NOFOLLOW and must be regular files owned
// by the queue's owner, mode 0600, with one link; the envelope must parse
// and its size must match the message file. An item that fails these
// checks is moved to corrupt/ and Lock returns a *CorruptError (wrapping
// ErrCorrupt, and ErrUnsafe for unsafe files), so it is reported once
// and never retried. An id that is not committed (never queued, removed,
// or still being written) is ErrNotFound.
func (q *Queue) Lock(id string) (*Item, error) {
	if !ValidID(id) {
		return nil, fmt.Errorf("queue id %q: %w", id, ErrNotFound)
	}
	f, st, err := openNoFollow(q.msgPath(id), "message file")
	if errors.Is(err, fs.ErrNotExist) {
		if !exists(q.envPath(id)) {
			return nil, fmt.Errorf("queue item %s: %w", id, ErrNotFound)
		}
		// An envelope without a message: corrupt, unless an Enqueue of
		// this very id completed between the two looks.
		f, st, err = openNoFollow(q.msgPath(id), "message file")
		if errors.Is(err, fs.ErrNotExist) {
			return nil, q.moveAside(id, errors.New("the envelope has no message file"))
		}
	}
	if errors.Is(err, ErrUnsafe) {
		return nil, q.moveAside(id, err)
	}
	if err != nil {
		return nil, fmt.Errorf("queue item %s: %w", id, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("queue item %s: %w", id, ErrBusy)
		}
		return nil, fmt.Errorf("queue item %s: flock: %w", id, err)
	}
	fail := func(err error) (*Item, error) {
		err = q.moveAside(id, err)
		f.Close()
		return nil, err
	}
	if st.Nlink == 0 {
		// Removed between our open and our lock.
		f.Close()
		return nil, fmt.Errorf("queue item %s: %w", id, ErrNotFound)
	}
	if err := q.checkFile("message file", st); err != nil {
		return fail(err)
	}
	env, envFile, err := q.openEnvelope(id)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// Not committed yet (or any more): an orphan for ReapOrphans.
		f.Close()
		return nil, fmt.Errorf("queue item %s: %w", id, ErrNotFound)
	case errors.Is(err, ErrUnsafe), errors.Is(err, ErrCorrupt):
		return fail(err)
	case err != nil:
		f.Close()
		return nil, fmt.Errorf("queue item %s: %w", id, err)
	}
	if env.Size != st.Size {
		envFile.Close()
		return fail(&ParseError{Msg: fmt.Sprintf("size %d, but the message file has %d bytes", env.Size, st.Size)})
	}
	return &Item{Env: env, q: q, id: id, body: f, envFiles: []*os.File{envFile}, size: st.Size}, nil
}

// moveAside moves an item's files to corrupt/ (the message first, so that
// a failure half-way never leaves a message without an envelope to be
// reaped) and returns the *CorruptError reporting it.
func (q *Queue) moveAside(id string, cause error) error {
	dst := filepath.Join(q.Dir, corruptDir)
	var moveErr error
	for _, m := range []struct{ dir, suffix string }{{msgDir, ".msg"}, {envDir, ".env"}} {
		err := os.Rename(filepath.Join(q.Dir, m.dir, id), filepath.Join(dst, id+m.suffix))
		if err != nil && !errors.Is(err, fs.ErrNotExist) && moveErr == nil {
			moveErr = err
		}
	}
	for _, d := range []string{corruptDir, msgDir, envDir} {
		if err := q.ops.syncDir(filepath.Join(q.Dir, d)); err != nil && moveErr == nil {
			moveErr = err
		}
	}
	ce := &CorruptError{ID: id, Dir: dst, Err: cause, MoveErr: moveErr}
	if moveErr != nil {
		ce.Dir = ""
	}
	return ce
}

// Body returns the message, from its start, read through the locked file
// descriptor (so it is the very file that was locked and checked). Close
// does nothing; the reader is valid until Unlock or Remove. Several
// readers may be used one after the other (for a retry on another relay).
func (it *Item) Body() (io.ReadSeekCloser, error) {
	if it.body == nil {
		return nil, ErrUnlocked
	}
	return nopCloser{io.NewSectionReader(it.body, 0, it.size)}, nil
}

type nopCloser struct{ *io.SectionReader }

func (nopCloser) Close() error { return nil }

// Save writes the envelope durably (WriteFileDurable's order: temporary
// file, fsync, rename over env/ID, fsync env/), replacing the old one
// atomically: a crash leaves the old or the new, whole. Env.ID must not
// change. Errors wrap ErrUnlocked, ErrInvalid, or the file system's.
func (it *Item) Save() error {
	return it.q.saveItems([]*Item{it})[0]
}

// saveItems saves the envelopes of locked items in one batch write.
func (q *Queue) saveItems(items []*Item) []error {
	errs := make([]error, len(items))
	envs := make([]*Envelope, 0, len(items))
	which := make([]int, 0, len(items))
	for i, it := range items {
		switch {
		case it.body == nil:
			errs[i] = ErrUnlocked
		case it.Env.ID != it.id:
			errs[i] = fmt.Errorf("queue item %s: %w: the id changed to %q", it.id, ErrInvalid, it.Env.ID)
		default:
			envs = append(envs, it.Env)
			which = append(which, i)
		}
	}
	files, werrs := q.writeEnvelopes(envs)
	for k, err := range werrs {
		it := items[which[k]]
		if err != nil {
			errs[which[k]] = fmt.Errorf("queue item %s: saving the envelope: %w", it.id, err)
			continue
		}
		it.envFiles = append(it.envFiles, files[k])
	}
	return errs
}

// Unlock releases the lock (closing the message file). The Item is dead
// afterwards; Unlock may be called again.
func (it *Item) Unlock() {
	if it.body != nil {
		it.body.Close()
		it.body = nil
	}
	for _, f := range it.envFiles {
		f.Close()
	}
	it.envFiles = nil
}

// RecordAttempt records, durably, that an attempt is about to start:
// Envelope.RecordAttempt then Save. Call it before connecting, and do not
// connect when it fails. It is RecordAttempts for one item.
func (it *Item) RecordAttempt(now time.Time, p Policy) error {
	return it.q.RecordAttempts([]*Item{it}, now, p)[0]
}

// RecordAttempts is RecordAttempt for several locked items at once, as a
// runner does for a batch: each envelope gets Envelope.RecordAttempt, and
// all are saved in one batch write (writeDurableBatch: the fsyncs of the
// files done together, one fsync of env/ for all the renames), so a
// batch costs about what one item did.
//
// errs[i] is items[i]'s outcome: nil when its attempt is recorded
// durably (connect), else the reason not to connect. An item whose
// record failed keeps the Env it had (the attempt is not counted in
// memory) and, on disk, its old envelope, or, when only the final fsync
// of env/ failed, perhaps the new one: an attempt counted that was not
// made, which only postpones the next one by a backoff. Either way the
// item stays queued, whole, and the caller must not deliver it now.
func (q *Queue) RecordAttempts(items []*Item, now time.Time, p Policy) []error {
	type before struct {
		attempts int
		next     time.Time
	}
	old := make([]before, len(items))
	for i, it := range items {
		old[i] = before{it.Env.Attempts, it.Env.NextAttempt}
		if it.body != nil {
			it.Env.RecordAttempt(now, p)
		}
	}
	errs := q.saveItems(items)
	for i, it := range items {
		if errs[i] != nil {
			it.Env.Attempts, it.Env.NextAttempt = old[i].attempts, old[i].next
		}
	}
	return errs
}

// Apply is Env.Apply: see Envelope.Apply. Save afterwards.
func (it *Item) Apply(results []Result, now time.Time, p Policy) { it.Env.Apply(results, now, p) }

// Done is Env.Done: nothing left to do, Remove the item.
func (it *Item) Done() bool { return it.Env.Done() }

// Expired is Env.Expired.
func (it *Item) Expired(now time.Time, p Policy) bool { return it.Env.Expired(now, p) }

// Remove deletes the item and unlocks it. The envelope goes first and its
// directory is fsynced (the item is no longer queued, durably: it will
// not be delivered again after a crash); then the message file, whose
// removal need not be durable (a message file left by a crash is an
// orphan, reaped). On an error the item may still be queued. A runner
// removing many items uses a Remover, which shares the fsyncs.
func (it *Item) Remove() error {
	if err := it.dropEnvelope(); err != nil {
		return err
	}
	return it.q.finishRemovals([]*Item{it})
}

// dropEnvelope is the first step of a removal: the envelope is deleted
// (from now on the item is not queued, until a crash before the next
// fsync of env/ brings it back). On an error the item is unlocked.
func (it *Item) dropEnvelope() error {
	if it.body == nil {
		return ErrUnlocked
	}
	if err := os.Remove(it.q.envPath(it.id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		it.Unlock()
		return fmt.Errorf("queue item %s: %w", it.id, err)
	}
	return nil
}

// finishRemovals is the rest of the removal of items whose envelopes
// dropEnvelope deleted: one fsync of env/ makes all those deletions
// durable; then the message files are deleted. Every item is unlocked.
// When the fsync fails the message files stay (orphans, reaped in time;
// the items may come back after a crash) and the error is returned.
//
// The message files are deleted and closed by up to removalWorkers
// goroutines at once: the last close of a deleted file frees its blocks,
// which on a file system mounted with discard waits for the device (a
// TRIM per file), and such waits overlap.
func (q *Queue) finishRemovals(items []*Item) error {
	err := q.ops.syncDir(filepath.Join(q.Dir, envDir))
	finish := func(it *Item) {
		if err == nil {
			os.Remove(q.msgPath(it.id))
		}
		it.Unlock()
	}
	if n := min(len(items), removalWorkers); n > 1 {
		var wg sync.WaitGroup
		next := make(chan *Item)
		for range n {
			wg.Go(func() {
				for it := range next {
					finish(it)
				}
			})
		}
		for _, it := range items {
			next <- it
		}
		close(next)
		wg.Wait()
	} else {
		for _, it := range items {
			finish(it)
		}
	}
	if err != nil {
		if len(items) == 1 {
			return fmt.Errorf("queue item %s: %w", items[0].id, err)
		}
		return fmt.Errorf("queue items %s and %d more: %w", items[0].id, len(items)-1, err)
	}
	return nil
}

// A Remover removes items for a queue runner that delivers many, in the
// order of Item.Remove (the envelope deleted, env/ fsynced, then the
// message file deleted) but with the fsyncs shared, group-commit
// fashion: Remove deletes the item's envelope at once and returns; a
// goroutine fsyncs env/ once for every envelope deleted since its
// previous fsync began, then deletes their message files and unlocks
// them (closing the files frees them: work too), while the runner goes
// on delivering. Its fsyncs start at most once every removalWindow (or
// sooner when removalBatch removals wait, or when Close is called): on
// a disk, back-to-back fsyncs of env/ would keep the device flushing and
// hold up every other fsync of the run.
//
// What this changes is only what a crash of the machine (power loss, a
// kernel panic) can do: an item removed less than removalWindow plus
// one fsync of env/ before it may come back and be delivered again (at
// least once, never lost). Killing the process changes nothing: a
// deleted envelope is gone for every process at once, and a message
// file left behind is an orphan, reaped.
//
// A Remover is safe for concurrent use by the workers of one run.
type Remover struct {
	q       *Queue
	mu      sync.Mutex
	pending []*Item // envelopes deleted, waiting for an fsync of env/
	running bool    // the goroutine is at work
	last    time.Time
	kick    chan struct{} // pending reached removalBatch, or Close
	closing bool
	done    sync.WaitGroup
	err     error // the first failure of the fsyncs
}

// removalWindow is the least time between the starts of two fsyncs of
// env/ by a Remover; removalBatch removals waiting start one at once.
const (
	removalWindow = 20 * time.Millisecond
	removalBatch  = 128
)

// removalWorkers is how many goroutines of finishRemovals delete message
// files at once.
const removalWorkers = 8

// NewRemover returns a Remover for q.
func (q *Queue) NewRemover() *Remover { return &Remover{q: q, kick: make(chan struct{}, 1)} }

// Remove removes the item, durably by the time Close returns. The Item
// belongs to the Remover afterwards (it unlocks it). An error is for
// the deletion of the envelope: the item is still queued, and unlocked.
func (r *Remover) Remove(it *Item) error {
	if err := it.dropEnvelope(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pending = append(r.pending, it)
	if !r.running {
		r.running = true
		r.done.Add(1)
		go r.run()
	}
	if len(r.pending) >= removalBatch {
		r.poke()
	}
	return nil
}

// poke wakes the goroutine from its wait; r.mu is held.
func (r *Remover) poke() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// run finishes the pending removals, a group at a time, until none is
// left.
func (r *Remover) run() {
	defer r.done.Done()
	for {
		r.mu.Lock()
		wait := removalWindow - time.Since(r.last)
		if r.closing || len(r.pending) >= removalBatch {
			wait = 0
		}
		r.mu.Unlock()
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-r.kick:
			}
			t.Stop()
		}
		r.mu.Lock()
		batch := r.pending
		r.pending = nil
		if len(batch) == 0 {
			r.running = false
			r.mu.Unlock()
			return
		}
		r.last = time.Now()
		r.mu.Unlock()
		// Every envelope of batch was deleted before this fsync begins.
		if err := r.q.finishRemovals(batch); err != nil {
			r.mu.Lock()
			if r.err == nil {
				r.err = err
			}
			r.mu.Unlock()
		}
	}
}

// Close waits until every removal handed to Remove is durable and
// returns the first error of the fsyncs of env/ (the items concerned may
// come back after a crash, and be delivered again). Remove must not be
// called during or after Close.
func (r *Remover) Close() error {
	r.mu.Lock()
	r.closing = true
	r.poke()
	r.mu.Unlock()
	r.done.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// Update locks the item, lets fn change its envelope, saves it and
// unlocks it. When fn returns an error nothing is saved. Errors: those of
// Lock (ErrBusy, ErrNotFound, *CorruptError), fn's, Save's.
func (q *Queue) Update(id string, fn func(*Envelope) error) error {
	it, err := q.Lock(id)
	if err != nil {
		return err
	}
	defer it.Unlock()
	if err := fn(it.Env); err != nil {
		return err
	}
	return it.Save()
}

// Hold puts the item on hold (held true: never delivered until released)
// or releases it. Errors: those of Update; ErrBusy while it is being
// delivered.
func (q *Queue) Hold(id string, held bool) error {
	return q.Update(id, func(e *Envelope) error {
		e.Held = held
		return nil
	})
}

// Delete removes the item without delivering it and without telling its
// sender. Errors: those of Lock and Remove.
func (q *Queue) Delete(id string) error {
	it, err := q.Lock(id)
	if err != nil {
		return err
	}
	return it.Remove()
}

// Filter selects items for List and Due. The zero Filter selects all.
type Filter struct {
	// MatchUID restricts to the items submitted by UID (a non-root
	// caller sees only its own).
	MatchUID bool
	UID      int
	// ID, Recipient and Sender, when not empty, select the items whose
	// id, one of whose recipients not yet Sent, or whose sender contains
	// the string, ignoring case (sendmail -qI, -qR, -qS). The null sender
	// is matched as "<>".
	ID, Recipient, Sender string
}

// Match reports whether the filter selects e.
func (f Filter) Match(e *Envelope) bool {
	if f.MatchUID && e.UID != f.UID {
		return false
	}
	if f.ID != "" && !containsFold(e.ID, f.ID) {
		return false
	}
	if f.Sender != "" {
		s := e.Sender
		if s == "" {
			s = "<>"
		}
		if !containsFold(s, f.Sender) {
			return false
		}
	}
	if f.Recipient != "" {
		found := false
		for _, rc := range e.Recipients {
			if rc.State != Sent && containsFold(rc.Addr, f.Recipient) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func (f Filter) all() bool { return f == Filter{} }

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}

// Summary is one item of List: a copy of its envelope, or the reason it
// could not be read.
type Summary struct {
	Envelope
	// Err is why the envelope could not be read (ErrCorrupt, ErrUnsafe,
	// a permission error); only ID and Created (from the id) are set
	// then. Problem is its text, for JSON.
	Err     error  `json:"-"`
	Problem string `json:"problem,omitempty"`
}

// List returns the committed items that f selects, oldest first, read
// without locking (an envelope is always replaced whole, so what is read
// is one consistent version). Message files without an envelope (being
// written, or orphans) and temporary files are not items and never
// listed. An unreadable envelope is listed with Err set, and only by the
// unrestricted Filter; List never moves or changes anything (Lock moves
// such items aside). The error is for the directory itself.
func (q *Queue) List(f Filter) ([]Summary, error) {
	names, err := readDirNames(filepath.Join(q.Dir, envDir))
	if err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	names = slices.DeleteFunc(names, func(id string) bool { return !ValidID(id) })
	// The envelopes are read by a few goroutines at once: a queue run
	// lists the queue before its first delivery, so this is time nothing
	// else happens in.
	type read struct {
		env *Envelope
		err error
	}
	reads := make([]read, len(names))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(listReaders, (len(names)+63)/64) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(names) {
					return
				}
				reads[i].env, reads[i].err = q.readEnvelope(names[i])
			}
		})
	}
	wg.Wait()
	var out []Summary
	for i, id := range names {
		env, err := reads[i].env, reads[i].err
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed meanwhile
		}
		if err != nil {
			if f.all() {
				out = append(out, Summary{Envelope: Envelope{ID: id, Created: idTime(id).UTC()}, Err: err, Problem: err.Error()})
			}
			continue
		}
		if f.Match(env) {
			out = append(out, Summary{Envelope: *env})
		}
	}
	slices.SortFunc(out, func(a, b Summary) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// listReaders is how many goroutines of List read envelopes at once.
const listReaders = 4

// Due returns the ids of the items f selects that have work to do at now,
// oldest first: not held, and NextAttempt not after now, or done (to be
// removed), or with failures to report. Unreadable items are included
// too (with the unrestricted Filter), so that the runner's Lock moves
// them aside and reports them. The runner still checks each item it
// locks: Due reads without locks.
func (q *Queue) Due(now time.Time, f Filter) ([]string, error) {
	items, err := q.List(f)
	if err != nil {
		return nil, err
	}
	var ids []string
	for i := range items {
		s := &items[i]
		if s.Err != nil || !s.Held && (!s.NextAttempt.After(now) || s.Done() || len(s.Bounces()) > 0) {
			ids = append(ids, s.ID)
		}
	}
	return ids, nil
}

func readDirNames(dir string) ([]string, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.Readdirnames(-1)
}

// ReapOrphans deletes what crashes leave behind, when it is at least
// grace old (by its modification time) at now: message files without an
// envelope (a crash between the two renames of Enqueue, or during Remove)
// and temporary files (a crash during a write). A file whose lock is held
// (an Enqueue in progress) is never deleted. It returns how many files it
// deleted; errors do not stop it, and the first is returned.
func (q *Queue) ReapOrphans(now time.Time, grace time.Duration) (int, error) {
	n := 0
	var firstErr error
	note := func(err error) {
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	// The envelopes' names, read once: a message file with an envelope is
	// not an orphan, and asking the file system for each would cost a
	// system call per item at the start of every run. (One created after
	// this listing is checked again below, before anything is removed.)
	envNames, err := readDirNames(filepath.Join(q.Dir, envDir))
	if err != nil {
		note(err)
	}
	hasEnv := make(map[string]bool, len(envNames))
	for _, name := range envNames {
		hasEnv[name] = true
	}
	for _, sub := range []string{msgDir, envDir} {
		dir := filepath.Join(q.Dir, sub)
		names := envNames
		if sub == msgDir {
			names, err = readDirNames(dir)
			if err != nil {
				note(err)
				continue
			}
		}
		reaped := 0
		for _, name := range names {
			tmp := strings.HasPrefix(name, tmpPrefix)
			if !tmp && (sub != msgDir || !ValidID(name) || hasEnv[name]) {
				continue
			}
			ok, err := q.reap(filepath.Join(dir, name), now, grace, func() bool {
				return tmp || !exists(q.envPath(name))
			})
			note(err)
			if ok {
				reaped++
			}
		}
		if reaped > 0 {
			note(q.ops.syncDir(dir))
		}
		n += reaped
	}
	return n, firstErr
}

// reap deletes path if it is grace old, not locked, and still an orphan.
func (q *Queue) reap(path string, now time.Time, grace time.Duration, orphan func() bool) (bool, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return false, nil // gone meanwhile
	}
	if now.Sub(fi.ModTime()) < grace {
		return false, nil
	}
	if fi.Mode().IsRegular() {
		f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
		if err != nil {
			return false, nil
		}
		defer f.Close()
		if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
			return false, nil // being written
		}
	}
	if !orphan() {
		return false, nil
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	return true, nil
}

// RunnerLock takes the queue's runner lock (an exclusive flock on
// DIR/runner.lock, created 0600 if needed) without waiting: ErrBusy when
// another runner holds it. Only the holder runs the queue; submitters
// delivering their own item and administrators do not need it. unlock
// releases it (so does the death of the process).
func (q *Queue) RunnerLock() (unlock func(), err error) {
	path := filepath.Join(q.Dir, runnerLockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, fmt.Errorf("queue: %s is a symbolic link: %w", path, ErrUnsafe)
		}
		return nil, fmt.Errorf("queue: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, fmt.Errorf("queue: fstat %s: %w", path, err)
	}
	if int(st.Uid) == os.Geteuid() && st.Mode&0o7777 != 0o600 && st.Mode&0o7777&^0o600 == 0 {
		// Ours, created under a strict umask.
		if err := f.Chmod(0o600); err != nil {
			f.Close()
			return nil, fmt.Errorf("queue: %w", err)
		}
		st.Mode = st.Mode&^0o7777 | 0o600
	}
	if q.chown >= 0 && int(st.Uid) == os.Geteuid() && int(st.Uid) != q.uid {
		// Root created it in the handoff user's queue.
		if err := f.Chown(q.chown, -1); err != nil {
			f.Close()
			return nil, fmt.Errorf("queue: %w", err)
		}
		st.Uid = uint32(q.chown)
	}
	if err := q.checkFile(path, &st); err != nil {
		f.Close()
		return nil, fmt.Errorf("queue: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("queue: another queue runner is running: %w", ErrBusy)
		}
		return nil, fmt.Errorf("queue: flock %s: %w", path, err)
	}
	var once sync.Once
	return func() { once.Do(func() { f.Close() }) }, nil
}
