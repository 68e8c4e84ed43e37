package cli

import (
	"errors"
	"net"

	"github.com/handoff-mta/handoff/internal/mbox"
	"github.com/handoff-mta/handoff/relay"
)

// sysexits(3). The sendmail interface maps every failure to one of these
// here and nowhere else (research/sendmail-compat.md §7 point 17).
const (
	exOK          = 0  // delivered (or, with the queue, safely queued)
	exUsage       = 64 // bad command line, no recipients
	exDataErr     = 65 // malformed input: bad -f, unparseable address, bad header
	exNoInput     = 66 // stdin unreadable
	exNoUser      = 67 // every failed recipient is unknown (5.1.1 and friends)
	exNoHost      = 68 // the relay's host name does not resolve
	exUnavailable = 69 // other permanent refusal
	exSoftware    = 70 // internal error
	exOSErr       = 71 // cannot run a program (password_command)
	exCantCreat   = 73 // cannot create an output file
	exIOErr       = 74 // I/O error
	exTempFail    = 75 // not delivered, may be retried: only when nothing was sent or queued
	exProtocol    = 76 // the relay broke the protocol
	exNoPerm      = 77 // authentication refused, or no permission for a mailbox
	exConfig      = 78 // configuration error
)

// exitFor classifies a delivery error.
func exitFor(err error) int {
	if err == nil {
		return exOK
	}
	var ce *exitError
	if errors.As(err, &ce) {
		return ce.code
	}
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return exNoHost
	case errors.Is(err, relay.ErrAuthentication):
		return exNoPerm
	case errors.Is(err, mbox.ErrLocked):
		return exTempFail
	case relay.IsTemporary(err):
		return exTempFail
	case errors.Is(err, relay.ErrProtocol):
		return exProtocol
	}
	if r := relay.ReplyOf(err); r != nil && isNoUser(r) {
		return exNoUser
	}
	return exUnavailable
}

// isNoUser reports a "no such mailbox" refusal: 550/551/553 with X.1.x
// or without an enhanced code.
func isNoUser(r *relay.Reply) bool {
	switch r.Code {
	case 550, 551, 553:
		return r.Enhanced == (relay.EnhancedCode{}) || r.Enhanced[1] == 1
	}
	return false
}

// exitError carries an exit status chosen where the error is made.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func errorf(code int, msg string) error { return &exitError{code: code, msg: msg} }
