package queue

import (
	"errors"
	"fmt"
)

// Sentinels. Every error this package returns for one of these conditions
// wraps the sentinel, so callers test with errors.Is. Errors from the file
// system are wrapped with %w as well: errors.Is(err, syscall.ENOSPC) and
// errors.Is(err, syscall.EACCES) work on what Enqueue returns, and
// errors.Is(err, fs.ErrNotExist) on what Open returns for a missing parent.
var (
	// ErrBusy: someone else holds the lock: another process (or another
	// Item in this one) is delivering or editing the item, or another
	// runner is working on the queue. Skip it and come back later.
	ErrBusy = errors.New("locked by another process")

	// ErrNotFound: no committed item has this id (it was never queued,
	// has been delivered and removed, or is still being written).
	ErrNotFound = errors.New("no such queue item")

	// ErrCorrupt: an envelope (or its body) could not be parsed or does
	// not belong with its body. Lock moves the item to corrupt/ and
	// returns a *CorruptError wrapping ErrCorrupt.
	ErrCorrupt = errors.New("corrupt queue item")

	// ErrUnsafe: a queue file or directory is a symbolic link, not a
	// regular file (or directory), has the wrong owner, is accessible to
	// group or others, or has more than one link. Lock moves such an item
	// to corrupt/ and returns a *CorruptError wrapping ErrUnsafe and
	// ErrCorrupt; Open returns ErrUnsafe for a bad queue directory.
	ErrUnsafe = errors.New("unsafe file")

	// ErrInvalid: an envelope handed to Enqueue or Save breaks a rule of
	// Envelope.Validate (a CR, LF, NUL or other control character in a
	// value, no recipients, a duplicate recipient, ...). Nothing was
	// written.
	ErrInvalid = errors.New("invalid envelope")

	// ErrNullSender: BuildDSN was asked to write to the null sender <>.
	// A delivery status notification never goes to <> (RFC 3461 §6.2,
	// RFC 5321 §4.5.5): that is how bounce loops are avoided.
	ErrNullSender = errors.New("no delivery status notification to the null sender <>")

	// ErrUnlocked: an Item method that needs the lock was called after
	// Unlock or Remove.
	ErrUnlocked = errors.New("queue item is not locked")
)

// CorruptError reports an item that Lock moved aside to corrupt/.
// It wraps ErrCorrupt, ErrUnsafe when the files were unsafe rather than
// unparsable, and the cause.
type CorruptError struct {
	// ID is the item's id.
	ID string
	// Dir is where the item's files now are ("" when moving them failed;
	// MoveErr then says why).
	Dir string
	// Err is what was wrong.
	Err error
	// MoveErr is the error of moving the item aside, if any.
	MoveErr error
}

// Error says what was wrong and where the files went:
// "queue item 0J...: envelope line 3: unknown key "foo"; moved to /var/spool/handoff/corrupt".
func (e *CorruptError) Error() string {
	s := fmt.Sprintf("queue item %s: %v", e.ID, e.Err)
	if e.MoveErr != nil {
		return s + fmt.Sprintf("; could not move it aside: %v", e.MoveErr)
	}
	return s + "; moved to " + e.Dir
}

// Unwrap returns ErrCorrupt and the cause (which may wrap ErrUnsafe).
func (e *CorruptError) Unwrap() []error {
	errs := []error{ErrCorrupt, e.Err}
	if e.MoveErr != nil {
		errs = append(errs, e.MoveErr)
	}
	return errs
}

// ParseError is a syntax or validation error in an envelope file. It wraps
// ErrCorrupt.
type ParseError struct {
	// Line is the 1-based line number, 0 when the problem is not on one
	// line (a missing key, a rule across lines).
	Line int
	Msg  string
}

// Error formats the problem as "envelope line 3: unknown key "foo"".
func (e *ParseError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("envelope line %d: %s", e.Line, e.Msg)
	}
	return "envelope: " + e.Msg
}

// Unwrap returns ErrCorrupt.
func (e *ParseError) Unwrap() error { return ErrCorrupt }
