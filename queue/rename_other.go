//go:build unix && !linux

package queue

// renameNoReplace renames oldpath to newpath unless newpath exists
// (EEXIST), with link(2) then unlink(2).
func renameNoReplace(oldpath, newpath string) error {
	return linkRename(oldpath, newpath)
}
