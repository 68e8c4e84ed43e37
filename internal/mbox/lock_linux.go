package mbox

import "golang.org/x/sys/unix"

// setlkCmd is the non-blocking fcntl lock command: an open file
// description lock (Linux 3.15 and later), unless the kernel refused one.
func setlkCmd() int {
	if noOFD.Load() {
		return unix.F_SETLK
	}
	return unix.F_OFD_SETLK
}
