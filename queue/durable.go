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
	// create makes a new file dir/name: O_EXCL, O_NOFOLLOW, mode 0600.
	create func(dir, name string) (*os.File, error)
	// write writes to the file (every byte of the content goes through it).
	write func(f *os.File, p []byte) (int, error)
	// sync is fsync(2) of the file.
	sync func(f *os.File) error
	// close closes the file.
	close func(f *os.File) error
	// rename renames oldpath to newpath; with noReplace it fails with
	// EEXIST instead of replacing an existing newpath.
	rename func(oldpath, newpath string, noReplace bool) error
	// syncDir is fsync(2) of a directory.
	syncDir func(dir string) error
}

var defaultOps = fileOps{
	create: func(dir, name string) (*os.File, error) {
		return os.OpenFile(filepath.Join(dir, name), os.O_RDWR|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	},
	write: func(f *os.File, p []byte) (int, error) { return f.Write(p) },
	sync:  func(f *os.File) error { return f.Sync() },
	close: func(f *os.File) error { return f.Close() },
	rename: func(oldpath, newpath string, noReplace bool) error {
		if noReplace {
			return renameNoReplace(oldpath, newpath)
		}
		return os.Rename(oldpath, newpath)
	},
	syncDir: syncDir,
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
//  1. create dir/.tmp-NAME-RANDOM with O_CREAT|O_EXCL|O_NOFOLLOW, mode
//     0600 (fchmod'ed, so the umask does not matter);
//  2. write the content through write (buffered);
//  3. fsync the file; 4. close it;
//  5. rename it to dir/name (atomically replacing an existing file);
//  6. fsync dir, so that the rename itself is durable.
//
// On a failure in steps 1 to 5 the temporary file is removed and dir/name
// is untouched. If step 6 fails the new file is in place but may not
// survive a crash: the error is returned and the caller must treat the
// write as failed (Enqueue, whose files are new, removes them). Errors wrap the system's
// (errors.Is(err, syscall.ENOSPC) for a full disk) or write's own.
//
// write must not keep w after it returns (its buffer is reused). Every
// durable write of the queue (messages, envelopes) goes through this
// function.
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
	// owner, when not -1, is the uid the file is given (root writing into
	// a queue owned by another user).
	owner int
}

// writeDurable is WriteFileDurable with options, returning the open and
// locked file when o.lock is set (and nil otherwise).
func writeDurable(ops *fileOps, dir, name string, write func(w io.Writer) error, o writeOpts) (_ *os.File, err error) {
	var rnd [6]byte
	rand.Read(rnd[:])
	tmp := tmpPrefix + name + "-" + hex.EncodeToString(rnd[:])
	tmpPath := filepath.Join(dir, tmp)
	path := filepath.Join(dir, name)

	f, err := ops.create(dir, tmp)
	if err != nil {
		return nil, fmt.Errorf("creating a temporary file in %s: %w", dir, err)
	}
	closed, renamed := false, false
	defer func() {
		if err != nil {
			if !closed {
				f.Close()
			}
			os.Remove(tmpPath) // gone already if the rename happened
			if renamed && o.noReplace {
				// A new file of ours whose rename may not be durable:
				// take it back (best effort), so that nothing remains.
				os.Remove(path)
			}
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return nil, fmt.Errorf("chmod %s: %w", tmpPath, err)
	}
	if o.owner >= 0 {
		if err := f.Chown(o.owner, -1); err != nil {
			return nil, fmt.Errorf("chown %s: %w", tmpPath, err)
		}
	}
	if o.lock {
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			return nil, fmt.Errorf("locking %s: %w", tmpPath, err)
		}
	}
	bw := writerPool.Get().(*bufio.Writer)
	bw.Reset(opsWriter{ops, f})
	err = write(bw)
	if err == nil {
		err = bw.Flush()
	}
	bw.Reset(nil)
	writerPool.Put(bw)
	if err != nil {
		return nil, fmt.Errorf("writing %s: %w", tmpPath, err)
	}
	if err := ops.sync(f); err != nil {
		return nil, fmt.Errorf("fsync %s: %w", tmpPath, err)
	}
	if !o.lock {
		closed = true
		if err := ops.close(f); err != nil {
			return nil, fmt.Errorf("closing %s: %w", tmpPath, err)
		}
	}
	if err := ops.rename(tmpPath, path, o.noReplace); err != nil {
		return nil, fmt.Errorf("renaming %s to %s: %w", tmp, path, err)
	}
	renamed = true
	if err := ops.syncDir(dir); err != nil {
		return nil, fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	if o.lock {
		return f, nil
	}
	return nil, nil
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
