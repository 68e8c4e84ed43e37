package queue

import (
	"errors"
	"os"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// startWriteback starts writing the file's dirty pages to the disk
// without waiting (sync_file_range(2) with SYNC_FILE_RANGE_WRITE), so
// that the fsyncs of a batch that follow find their data written or on
// its way. It only saves time: errors are left to the fsync.
func startWriteback(f *os.File) {
	unix.SyncFileRange(int(f.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
}

// createAnon makes an anonymous file in dir (open(2) with O_TMPFILE),
// named name in errors. It returns nil, nil where that cannot be done or
// linked later (no /proc/self/fd, or a file system without O_TMPFILE):
// the caller then makes a named temporary file.
func createAnon(dir, name string) (*os.File, error) {
	if !procFD() {
		return nil, nil
	}
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	switch {
	case err == nil:
		return os.NewFile(uintptr(fd), name), nil
	case errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.EISDIR), errors.Is(err, unix.EINVAL):
		return nil, nil
	}
	return nil, &os.PathError{Op: "open", Path: dir, Err: err}
}

// linkAnon gives the anonymous file f the name path, through
// /proc/self/fd (linkat with AT_EMPTY_PATH would need a capability).
func linkAnon(f *os.File, path string) error {
	err := unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(int(f.Fd())), unix.AT_FDCWD, path, unix.AT_SYMLINK_FOLLOW)
	if err != nil {
		return &os.LinkError{Op: "link", Old: f.Name(), New: path, Err: err}
	}
	return nil
}

// procFD reports whether /proc/self/fd can be used to link anonymous
// files (it is missing where /proc is not mounted).
var procFD = sync.OnceValue(func() bool {
	return unix.Access("/proc/self/fd", unix.X_OK) == nil
})
