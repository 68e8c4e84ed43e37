package relay

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinels, one for each of smtplib's exception classes plus the ones it
// lacks. Every error this package returns wraps at least one of them, so
// callers test with errors.Is; the details are in *Error, *ConnError and
// *RecipientsError, found with errors.As.
var (
	// ErrServerDisconnected: the connection is gone (EOF, reset, timeout,
	// cancelled context, or closed by the client after a fatal reply).
	// The Client cannot be used again. smtplib: SMTPServerDisconnected.
	ErrServerDisconnected = errors.New("server disconnected")
	// ErrConnect: the server could not be reached, or its greeting was not
	// 220. smtplib: SMTPConnectError.
	ErrConnect = errors.New("could not connect")
	// ErrHelo: both EHLO and HELO (or LHLO) were refused.
	// smtplib: SMTPHeloError.
	ErrHelo = errors.New("greeting refused")
	// ErrAuthentication: AUTH failed. smtplib: SMTPAuthenticationError.
	ErrAuthentication = errors.New("authentication failed")
	// ErrSenderRefused: MAIL FROM was refused. smtplib: SMTPSenderRefused.
	ErrSenderRefused = errors.New("sender refused")
	// ErrRecipientsRefused: no recipient was accepted. The error is a
	// *RecipientsError with every recipient's reply.
	// smtplib: SMTPRecipientsRefused.
	ErrRecipientsRefused = errors.New("recipients refused")
	// ErrData: DATA, BDAT or the end of data was refused.
	// smtplib: SMTPDataError.
	ErrData = errors.New("message data refused")
	// ErrNotSupported: the server lacks an extension the request needs
	// (STARTTLS, AUTH, SMTPUTF8, 8BITMIME, REQUIRETLS, a SIZE large
	// enough). It is permanent for this server. smtplib:
	// SMTPNotSupportedError.
	ErrNotSupported = errors.New("not supported by server")
	// ErrOutcomeUnknown: the connection was lost or timed out after the
	// final dot (or the last BDAT) was sent and before the server's reply.
	// The server may have taken the message: retrying may send it twice
	// (RFC 5321 §4.5.3.2.6, §6.1). It is temporary.
	ErrOutcomeUnknown = errors.New("outcome unknown: connection lost after the end of data, message may be delivered twice if retried")
	// ErrProtocol: the server broke the protocol (a malformed or oversized
	// reply, data pipelined after the STARTTLS 220, too many AUTH
	// challenges). The connection is closed.
	ErrProtocol = errors.New("protocol error")
	// ErrTLS: the TLS handshake failed or the certificate was refused.
	ErrTLS = errors.New("TLS failed")
	// ErrInvalidArgument: an argument cannot be sent (CR, LF or NUL in it,
	// a non-ASCII address without SMTPUTF8, a bad option value). Nothing
	// was sent. Permanent.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrResponse: any other unexpected reply to a command.
	// smtplib: SMTPResponseException.
	ErrResponse = errors.New("unexpected reply")
)

// Error is a server's negative (or unexpected) reply to a command. It
// wraps the sentinel that names the stage (ErrSenderRefused for MAIL,
// ErrData for DATA, ...), so errors.Is works on it.
type Error struct {
	// Reply is the server's reply: Code, Enhanced and the text lines.
	Reply
	// Command is the command that was answered, as sent, with AUTH
	// payloads replaced by "<redacted>". Empty for the greeting.
	Command string
	// Server is the address the client dialled, for messages.
	Server string
	kind   error
}

// Error formats the reply for a log line:
// "MAIL FROM:<a@b>: 550 5.7.1 sender blocked (sender refused)".
func (e *Error) Error() string {
	var b strings.Builder
	if e.Server != "" {
		b.WriteString(e.Server)
		b.WriteString(": ")
	}
	if e.Command != "" {
		b.WriteString(e.Command)
		b.WriteString(": ")
	} else {
		b.WriteString("greeting: ")
	}
	b.WriteString(e.Reply.String())
	return b.String()
}

// Unwrap returns the stage sentinel.
func (e *Error) Unwrap() error { return e.kind }

// Temporary reports a 4xx reply: the same request may succeed later.
func (e *Error) Temporary() bool { return e.Code/100 == 4 }

// Permanent reports a 5xx reply (or any code that is not 4xx).
func (e *Error) Permanent() bool { return !e.Temporary() }

// ConnError is a failure of the connection itself: dial, TLS, read or
// write errors, timeouts, a cancelled context, or a malformed reply. It
// wraps ErrServerDisconnected (or ErrConnect when dialling failed), the
// underlying error, and ErrOutcomeUnknown when it happened after the end
// of data had been sent.
type ConnError struct {
	// Stage says what the client was doing: "dial", "greeting", "EHLO",
	// "MAIL", "sending message data", "waiting for end-of-data reply" ...
	Stage  string
	Server string
	Err    error
	kinds  []error
}

// Error formats the failure as "server: stage: cause".
func (e *ConnError) Error() string {
	msg := e.Err.Error()
	if e.Server != "" {
		return fmt.Sprintf("%s: %s: %s", e.Server, e.Stage, msg)
	}
	return fmt.Sprintf("%s: %s", e.Stage, msg)
}

// Unwrap returns the sentinels and the cause.
func (e *ConnError) Unwrap() []error { return append(append([]error{}, e.kinds...), e.Err) }

// RecipientResult is the outcome for one recipient of a transaction.
type RecipientResult struct {
	// Address is the recipient as given to SendMail.
	Address string
	// Reply is the last reply about this recipient: the RCPT reply, or
	// for LMTP (and for an accepted SMTP recipient) the end-of-data reply.
	// Nil when no reply was received (the connection was lost).
	Reply *Reply
	// Err is nil when the server accepted responsibility for the
	// recipient; otherwise an *Error (refused) or another error.
	Err error
}

// RecipientsError reports recipients that were not delivered. It wraps
// ErrRecipientsRefused, and ErrData when the refusals came at the end of
// data (LMTP).
type RecipientsError struct {
	Recipients []RecipientResult
	kinds      []error
}

// Error lists each recipient with its reply.
func (e *RecipientsError) Error() string {
	var b strings.Builder
	b.WriteString("recipients refused: ")
	for i, r := range e.Recipients {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(r.Address)
		b.WriteString(": ")
		var se *Error
		switch {
		case errors.As(r.Err, &se):
			b.WriteString(se.Reply.String())
		case r.Err != nil:
			b.WriteString(r.Err.Error())
		default:
			b.WriteString("accepted")
		}
	}
	return b.String()
}

// Unwrap returns the sentinels.
func (e *RecipientsError) Unwrap() []error {
	if len(e.kinds) == 0 {
		return []error{ErrRecipientsRefused}
	}
	return e.kinds
}

// Refused returns smtplib's recipients dictionary: address to the error
// (an *Error for a server reply) for each refused recipient.
func (e *RecipientsError) Refused() map[string]error {
	m := make(map[string]error, len(e.Recipients))
	for _, r := range e.Recipients {
		if r.Err != nil {
			m[r.Address] = r.Err
		}
	}
	return m
}

// localError is an error the client decides on its own, with the reply a
// server would have given (for SIZE: 552 5.3.4).
type localError struct {
	code  int
	enh   EnhancedCode
	msg   string
	kinds []error
}

func (e *localError) Error() string   { return e.msg }
func (e *localError) Unwrap() []error { return e.kinds }

// IsTemporary is the one classification of errors from this package:
// true when the same delivery may succeed later, false when it will not.
//
//   - *Error: 4xx is temporary, everything else permanent.
//   - *RecipientsError: temporary when any recipient's error is.
//   - ErrNotSupported, ErrInvalidArgument, a SIZE over the server's limit:
//     permanent.
//   - Everything else, including connection failures, timeouts, TLS
//     failures, protocol errors, ErrOutcomeUnknown and errors this
//     package does not know: temporary. Unknown means temporary, so a
//     message is deferred rather than bounced.
//
// IsTemporary(nil) is false.
func IsTemporary(err error) bool {
	if err == nil {
		return false
	}
	var re *RecipientsError
	if errors.As(err, &re) {
		for _, r := range re.Recipients {
			if r.Err != nil && IsTemporary(r.Err) {
				return true
			}
		}
		return false
	}
	var se *Error
	if errors.As(err, &se) {
		return se.Temporary()
	}
	var le *localError
	if errors.As(err, &le) {
		return le.code/100 == 4
	}
	if errors.Is(err, ErrNotSupported) || errors.Is(err, ErrInvalidArgument) {
		return false
	}
	return true
}

// IsPermanent is !IsTemporary for a non-nil error.
func IsPermanent(err error) bool { return err != nil && !IsTemporary(err) }

// ReplyOf returns the server reply carried by err (an *Error), or for a
// local decision the reply a server would have given, or nil.
func ReplyOf(err error) *Reply {
	var se *Error
	if errors.As(err, &se) {
		r := se.Reply
		return &r
	}
	var le *localError
	if errors.As(err, &le) {
		return &Reply{Code: le.code, Enhanced: le.enh, Lines: []string{le.msg}}
	}
	return nil
}

func invalidArg(format string, a ...any) error {
	return &localError{code: 501, enh: EnhancedCode{5, 5, 4}, msg: fmt.Sprintf(format, a...), kinds: []error{ErrInvalidArgument}}
}

func notSupported(enh EnhancedCode, format string, a ...any) error {
	return &localError{code: 554, enh: enh, msg: fmt.Sprintf(format, a...), kinds: []error{ErrNotSupported}}
}
