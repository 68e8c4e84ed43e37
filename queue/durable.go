package queue

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"
)

// tmpPrefix starts the name of every temporary file. Queue ids never start
// with '.', so a temporary file is never mistaken for an item, and
// ReapOrphans knows what it may delete.
const tmpPrefix = ".tmp-"

// fileOps are the system calls of a durable write, one field per step, so
// that tests can fail each step in turn. defaultOps is the real thing.
type fileOps struct {
	// create makes a new temporary file in dir, mode 0600: anonymous
	// (O_TMPFILE, anon true) where the system allows, so that a crash
	// before link leaves nothing behind; else dir/name, with O_EXCL and
	// O_NOFOLLOW.
	create func(dir, name string) (f *os.File, anon bool, err error)
	// write writes to the file (every byte of the content goes through it).
	write func(f *os.File, p []byte) (int, error)
	// sync is fsync(2) of the file.
	sync func(f *os.File) error
	// link gives an anonymous file the name path (never replacing a file).
	link func(f *os.File, path string) error
	// close closes the file.
	close func(f *os.File) error
	// rename renames oldpath to newpath; with noReplace it fails with
	// EEXIST instead of replacing an existing newpath.
	rename func(oldpath, newpath string, noReplace bool) error
	// syncDir is fsync(2) of a directory.
	syncDir func(dir string) error
}

var defaultOps = fileOps{
	create: createTemp,
	write:  func(f *os.File, p []byte) (int, error) { return f.Write(p) },
	sync:   func(f *os.File) error { return f.Sync() },
	link:   linkAnon,
	close:  func(f *os.File) error { return f.Close() },
	rename: func(oldpath, newpath string, noReplace bool) error {
		if noReplace {
			return renameNoReplace(oldpath, newpath)
		}
		return os.Rename(oldpath, newpath)
	},
	syncDir: syncDir,
}

// createTemp is fileOps.create: an anonymous file where createAnon can
// make one, else createNamed's.
func createTemp(dir, name string) (*os.File, bool, error) {
	f, err := createAnon(dir, filepath.Join(dir, name))
	switch {
	case err != nil:
		return nil, false, err
	case f != nil:
		return f, true, nil
	}
	return createNamed(dir, name)
}

// createNamed makes the new file dir/name: O_EXCL, O_NOFOLLOW, mode 0600.
func createNamed(dir, name string) (*os.File, bool, error) {
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_RDWR|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	return f, false, err
}

// syncDir makes the entries of dir (creations, renames, removals) durable.
func syncDir(dir string) error {
	d, err := os.OpenFile(dir, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		d.Close()
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return d.Close()
}

// WriteFileDurable writes dir/name so that after it returns nil the new
// content survives a crash, and a crash at any moment leaves either the
// old file or the new one, never a mix:
//
//  1. create a temporary file in dir, mode 0600 (fchmod'ed, so the umask
//     does not matter): anonymous (open(2) with O_TMPFILE) on Linux
//     where the file system allows, so that a crash before step 4 leaves
//     nothing behind; else dir/.tmp-NAME-RANDOM with
//     O_CREAT|O_EXCL|O_NOFOLLOW;
//  2. write the content through write (buffered);
//  3. fsync the file;
//  4. link an anonymous file to dir/.tmp-NAME-RANDOM (through
//     /proc/self/fd, never replacing a file); close it;
//  5. rename it to dir/name (atomically replacing an existing file);
//  6. fsync dir, so that the link and the rename are durable.
//
// On a failure in steps 1 to 5 the temporary file is removed and dir/name
// is untouched. If step 6 fails the new file is in place but may not
// survive a crash: the error is returned and the caller must treat the
// write as failed (Enqueue, whose files are new, removes them). Errors
// wrap the system's (errors.Is(err, syscall.ENOSPC) for a full disk) or
// write's own.
//
// write must not keep w after it returns (its buffer is reused). Every
// durable write of the queue (messages, envelopes) goes through this
// function or its batch form, writeDurableBatch.
func WriteFileDurable(dir, name string, write func(w io.Writer) error) error {
	_, err := writeDurable(&defaultOps, dir, name, write, writeOpts{owner: -1})
	return err
}

// writeOpts are the variants of a durable write the queue needs.
type writeOpts struct {
	// noReplace fails with EEXIST when dir/name exists (a new item must
	// never overwrite another).
	noReplace bool
	// lock takes an exclusive flock on the new file before writing and
	// returns it open: the lock follows the file through the rename, so
	// the caller holds the item's lock from the first byte.
	lock bool
	// keep returns the new file open (read-only use: see Item.envFiles).
	keep bool
	// owner, when not -1, is the uid the file is given (root writing into
	// a queue owned by another user).
	owner int
}

// writeDurable is WriteFileDurable with options, returning the new file
// open (and locked) when o.keep (o.lock) is set, and nil otherwise: a
// batch of one.
func writeDurable(ops *fileOps, dir, name string, write func(w io.Writer) error, o writeOpts) (*os.File, error) {
	files := []durableFile{{name: name, write: write}}
	writeDurableBatch(ops, dir, files, o)
	return files[0].f, files[0].err
}

// durableFile is one file of writeDurableBatch: its name in the
// directory and what writes its content, then the outcome.
type durableFile struct {
	name  string
	write func(w io.Writer) error

	// err is nil when the file is durably in place; f is then, with
	// writeOpts.keep or lock, the new file, open (and locked).
	err error
	f   *os.File

	tmpPath, path string
	anon          bool // f has no name yet (see fileOps.create)
	named         bool // tmpPath is f's (made by create or link)
	closed        bool // f is closed (or was never opened)
	renamed       bool // the temporary file became path
}

// writeDurableBatch writes several files of one directory, each as
// WriteFileDurable does, sharing the waits: every temporary file is
// created and written, then all are fsynced (their writeback started
// together first, see syncAll), then each is renamed into place, then
// the directory is fsynced once for all the renames. A batch of n files
// costs far less than n single writes: one fsync of the directory
// instead of n, and the files' data written together (on a journaling
// file system their fsyncs share one commit).
//
// Each file succeeds or fails on its own (files[i].err): one that fails
// before its rename leaves its old version, if any, untouched and no
// temporary file; the others go on. If the final directory fsync fails,
// every renamed file gets that error: it is in place, whole, but may not
// survive a crash (with noReplace, the new file is removed again, best
// effort, as WriteFileDurable's callers expect). A crash at any moment
// leaves each file old or new, never a mix; a crash before the
// directory fsync may leave some of the batch new and others old, and
// temporary files (reaped by ReapOrphans).
func writeDurableBatch(ops *fileOps, dir string, files []durableFile, o writeOpts) {
	// 1. Create and write each temporary file.
	for i := range files {
		df := &files[i]
		var rnd [6]byte
		rand.Read(rnd[:])
		tmp := tmpPrefix + df.name + "-" + hex.EncodeToString(rnd[:])
		df.tmpPath, df.path = filepath.Join(dir, tmp), filepath.Join(dir, df.name)
		df.err, df.f, df.named, df.closed, df.renamed = nil, nil, false, true, false
		f, anon, err := ops.create(dir, tmp)
		if err != nil {
			df.err = fmt.Errorf("creating a temporary file in %s: %w", dir, err)
			continue
		}
		df.f, df.anon, df.named, df.closed = f, anon, !anon, false
		if err := fill(ops, f, df.tmpPath, df.write, o); err != nil {
			df.fail(err, o)
		}
	}
	// 2. fsync them, together.
	syncAll(ops, files, o)
	// 3. Name (an anonymous file), close and rename each.
	renamed := 0
	for i := range files {
		df := &files[i]
		if df.err != nil {
			continue
		}
		if df.anon {
			if err := ops.link(df.f, df.tmpPath); err != nil {
				df.fail(fmt.Errorf("linking %s: %w", df.tmpPath, err), o)
				continue
			}
			df.anon, df.named = false, true
		}
		if !o.keepOpen() {
			df.closed = true
			if err := ops.close(df.f); err != nil {
				df.fail(fmt.Errorf("closing %s: %w", df.tmpPath, err), o)
				continue
			}
		}
		if err := ops.rename(df.tmpPath, df.path, o.noReplace); err != nil {
			df.fail(fmt.Errorf("renaming %s to %s: %w", filepath.Base(df.tmpPath), df.path, err), o)
			continue
		}
		df.renamed = true
		renamed++
	}
	// 4. One fsync of the directory makes every rename durable.
	if renamed == 0 {
		return
	}
	if err := ops.syncDir(dir); err != nil {
		err = fmt.Errorf("fsync directory %s: %w", dir, err)
		for i := range files {
			if df := &files[i]; df.err == nil {
				df.fail(err, o)
			}
		}
	}
	for i := range files {
		if df := &files[i]; df.err == nil && !o.keepOpen() {
			df.f = nil
		}
	}
}

// keepOpen says the files written are returned open.
func (o writeOpts) keepOpen() bool { return o.keep || o.lock }

// fill gives a new temporary file its mode, owner and lock, and writes
// its content.
func fill(ops *fileOps, f *os.File, tmpPath string, write func(io.Writer) error, o writeOpts) error {
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("chmod %s: %w", tmpPath, err)
	}
	if o.owner >= 0 {
		if err := f.Chown(o.owner, -1); err != nil {
			return fmt.Errorf("chown %s: %w", tmpPath, err)
		}
	}
	if o.lock {
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			return fmt.Errorf("locking %s: %w", tmpPath, err)
		}
	}
	bw := writerPool.Get().(*bufio.Writer)
	bw.Reset(opsWriter{ops, f})
	err := write(bw)
	if err == nil {
		err = bw.Flush()
	}
	bw.Reset(nil)
	writerPool.Put(bw)
	if err != nil {
		return fmt.Errorf("writing %s: %w", tmpPath, err)
	}
	return nil
}

// syncAll fsyncs the files not failed yet. With several, the writeback
// of every one is started first (startWriteback), so that their data
// goes to the disk together and each fsync has little left to wait for.
func syncAll(ops *fileOps, files []durableFile, o writeOpts) {
	pending := 0
	for i := range files {
		if files[i].err == nil {
			pending++
		}
	}
	if pending > 1 {
		for i := range files {
			if df := &files[i]; df.err == nil {
				startWriteback(df.f)
			}
		}
	}
	for i := range files {
		if df := &files[i]; df.err == nil {
			if err := ops.sync(df.f); err != nil {
				df.fail(fmt.Errorf("fsync %s: %w", df.tmpPath, err), o)
			}
		}
	}
}

// fail records err as the file's outcome and undoes what can be undone:
// the temporary file is closed and its name, if it has one, removed; a
// new file renamed into place under noReplace is removed again (its
// rename may not be durable, and nothing of a failed write must remain).
func (df *durableFile) fail(err error, o writeOpts) {
	df.err = err
	if !df.closed {
		df.f.Close()
		df.closed = true
	}
	df.f = nil
	if df.named && !df.renamed {
		os.Remove(df.tmpPath)
	}
	if df.renamed && o.noReplace {
		os.Remove(df.path)
	}
}

// writerPool holds the write buffers (32 KiB).
var writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 32<<10) }}

// opsWriter sends writes through ops.write, so tests can fail them.
type opsWriter struct {
	ops *fileOps
	f   *os.File
}

func (w opsWriter) Write(p []byte) (int, error) {
	n, err := w.ops.write(w.f, p)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	return n, err
}
