package queue

import "os"

// linkRename moves oldpath to newpath without ever replacing newpath: the
// link fails with EEXIST when newpath exists.
func linkRename(oldpath, newpath string) error {
	if err := os.Link(oldpath, newpath); err != nil {
		return err
	}
	return os.Remove(oldpath)
}
