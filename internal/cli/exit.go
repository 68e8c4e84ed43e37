package cli

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"net/url"
	"os"
	"syscall"

	"github.com/handoff-mta/handoff/internal/mbox"
	"github.com/handoff-mta/handoff/internal/oauth"
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
	exCantCreat   = 73 // cannot create an output file; the queue cannot be opened or written
	exIOErr       = 74 // I/O error
	exTempFail    = 75 // not delivered, may be retried: only when nothing was sent or queued; the queue's disk is full or failing
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

// queueExit is the exit status when the queue cannot take a message (or
// cannot be opened for a queue run, a listing or an admin command):
//
//   - 75 (EX_TEMPFAIL) when the file system is full or failing (ENOSPC,
//     EDQUOT, EIO): the condition goes away by itself, the caller may
//     retry;
//   - 73 (EX_CANTCREAT) for everything else: the directory or its parent
//     is missing, not a directory, of the wrong owner or mode (unsafe),
//     not writable (EACCES, EPERM, EROFS): an administrator must act, and
//     retrying changes nothing.
//
// In both cases nothing is queued and the message is kept in dead.letter.
func queueExit(err error) int {
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT), errors.Is(err, syscall.EIO):
		return exTempFail
	}
	return exCantCreat
}

// retryLater reports whether the queue runner keeps a recipient that
// failed with err for another attempt. At submission only what exits 75
// is queued (the rest is reported to the caller, who is there to fix
// it); once a message is queued nobody is watching, so only a refusal of
// the message or the recipient itself (5xx: unknown user, refused,
// unroutable, not supported) fails it, and problems of the relay or of
// this host (configuration, authentication, name resolution, I/O,
// protocol) are retried until max_age.
func retryLater(err error) bool {
	switch exitFor(err) {
	case exNoUser, exUnavailable, exDataErr:
		return false
	}
	return true
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

// oauth2Exit maps a login failure to an exit status, as documented on
// oauth2Cmd.
func oauth2Exit(err error) int {
	var oe *oauth.Error
	var le *listenError
	var ue *url.Error
	var pe *fs.PathError
	var linkErr *os.LinkError
	switch {
	case errors.As(err, &oe):
		switch {
		case oe.Code == "access_denied" || oe.Code == "authorization_declined":
			return exNoPerm
		case oe.Code == "expired_token" || oe.Temporary():
			return exTempFail
		}
		return exUnavailable
	case errors.Is(err, oauth.ErrClientSecret):
		return exConfig
	case errors.As(err, &le):
		return exOSErr
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), errors.As(err, &ue):
		return exTempFail
	case errors.Is(err, oauth.ErrUnsafe), errors.As(err, &pe), errors.As(err, &linkErr):
		return exCantCreat
	}
	return exUnavailable
}

// relayOptionsExit classifies a failure to get a relay's options and
// secret (config.RelayOptionsContext): temporary when a token endpoint
// is down or unreachable, or when the secret is not readable by this
// user (the system-mode daemon, which can, may be back); otherwise a
// configuration error.
func relayOptionsExit(err error) int {
	var (
		oe  *oauth.Error
		ue  *url.Error
		ope *net.OpError
	)
	switch {
	case errors.As(err, &oe) && oe.Temporary(), errors.As(err, &ue), errors.As(err, &ope), errors.Is(err, fs.ErrPermission):
		return exTempFail
	}
	return exConfig
}
