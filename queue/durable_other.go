//go:build unix && !linux

package queue

import (
	"errors"
	"os"
)

// startWriteback does nothing where sync_file_range(2) does not exist:
// each fsync of a batch then writes its own file.
func startWriteback(*os.File) {}

// createAnon returns nil, nil: anonymous files (O_TMPFILE) are Linux's.
func createAnon(dir, name string) (*os.File, error) { return nil, nil }

// linkAnon is never called where createAnon makes no anonymous file.
func linkAnon(f *os.File, path string) error {
	return errors.New("anonymous files are not supported here")
}
