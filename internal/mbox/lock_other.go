//go:build unix && !linux

package mbox

import "golang.org/x/sys/unix"

// setlkCmd is the non-blocking fcntl lock command: a classic POSIX lock,
// the only kind outside Linux (deliveries within this process are kept
// apart by lockInProcess).
func setlkCmd() int {
	return unix.F_SETLK
}
