package sendopt

import (
	"fmt"
	"strconv"
	"time"
)

// Mode is the operation mode.
type Mode int

// The operation modes. Mode 0 is the default.
const (
	ModeDeliver   Mode = iota // -bm, default: read a message on stdin and deliver
	ModeSMTP                  // -bs: speak SMTP on stdin and stdout
	ModeQueueList             // -bp, mailq
	ModeAliases               // -bi, -I, newaliases
	ModeVerify                // -bv: print how each recipient would be routed
	ModeQueueRun              // -q, -q<interval>, runq
	ModeNoop                  // -bh, -bH, hoststat, purgestat: exit 0
)

var modeNames = [...]string{
	ModeDeliver:   "deliver",
	ModeSMTP:      "smtp",
	ModeQueueList: "queue-list",
	ModeAliases:   "aliases",
	ModeVerify:    "verify",
	ModeQueueRun:  "queue-run",
	ModeNoop:      "noop",
}

// String names the mode for messages: "deliver", "smtp", "queue-list",
// "aliases", "verify", "queue-run" or "noop".
func (m Mode) String() string {
	if m.Valid() {
		return modeNames[m]
	}
	return "Mode(" + strconv.Itoa(int(m)) + ")"
}

// Valid reports whether m is one of the Mode constants.
func (m Mode) Valid() bool { return m >= ModeDeliver && m <= ModeNoop }

// ErrorMode is sendmail's error-reporting mode, set by -oe? or -e?
// (research/sendmail-compat.md §3.2, §7 point 18). Its value is the
// option letter.
type ErrorMode byte

// The error modes.
const (
	ErrorPrint   ErrorMode = 'p' // print errors on stderr (the default)
	ErrorMail    ErrorMode = 'm' // mail errors back to the sender (cron, mutt)
	ErrorQuiet   ErrorMode = 'q' // exit status only
	ErrorWrite   ErrorMode = 'w' // write to the sender's terminal, else mail
	ErrorBerkNet ErrorMode = 'e' // mail errors back and exit 0 (rmail)
)

// DeliveryMode is the delivery mode set by -od?. Its value is a letter;
// 0 means the configuration decides.
type DeliveryMode byte

// The delivery modes.
const (
	DeliveryDefault     DeliveryMode = 0   // no -od option: the configuration decides
	DeliveryInteractive DeliveryMode = 'i' // -odi, -odf: deliver before exiting
	DeliveryBackground  DeliveryMode = 'b' // -odb: deliver in the background
	DeliveryQueue       DeliveryMode = 'q' // -odq, -odd: queue only
)

// Selector limits a queue run to some entries (-qI, -qR, -qS).
type Selector struct {
	// Kind is 'I' (the queue id contains Value), 'R' (a recipient
	// contains Value) or 'S' (the sender contains Value).
	Kind byte
	// Value is the substring, as given; never empty.
	Value string
}

// Invocation is a parsed sendmail command line. Parse fills it; the zero
// value of a field means the option was not given, except ErrorMode,
// which is ErrorPrint by default.
type Invocation struct {
	// Name is the basename of argv[0], as used to choose the interface
	// ("sendmail", "send-mail", "mailq", "handoff", ...).
	Name string
	// Interface is the interface chosen from Name: "sendmail",
	// "mailq", "newaliases", "rmail", "runq", "hoststat" or "purgestat".
	// Every name not in that list, "send-mail" and "handoff" included,
	// chooses "sendmail".
	Interface string
	// Mode is the operation mode: -b?, -I, -q, or the interface's.
	Mode Mode
	// ExtractRecipients is -t: take recipients from the message header
	// too.
	ExtractRecipients bool
	// IgnoreDots is -i, -oi, -oitrue or -O IgnoreDots[=true], and is
	// true for rmail: a line with only a dot does not end the message.
	// A later -oifalse or -O IgnoreDots=false clears it.
	IgnoreDots bool
	// Sender is the envelope sender of -f or -r (the last one wins),
	// trimmed of surrounding blanks, with "Name <addr>" reduced to
	// addr; any other form is returned unparsed. It is "" when no -f was
	// given (SenderSet false) or when the null sender was (NullSender).
	Sender string
	// SenderSet is true when -f or -r was given.
	SenderSet bool
	// NullSender is true when the last -f or -r was "", "<>" or
	// "Name <>": the envelope sender is the null reverse-path.
	NullSender bool
	// FullName is -F, as given: the full name for a generated From:.
	FullName string
	// Notify is -N: ["never"] or a non-empty list of "success",
	// "failure", "delay", lower-cased, without duplicates, in the
	// order given. Nil when -N was not given.
	Notify []string
	// Return is -R: "FULL" or "HDRS" ("headers" is accepted for HDRS),
	// or "" when not given.
	Return string
	// EnvelopeID is -V: the DSN ENVID, at most 100 printable ASCII
	// characters. A two-character value is Postfix's old VERP syntax:
	// it is ignored with a warning and leaves EnvelopeID unchanged.
	EnvelopeID string
	// Body is -B: "7BIT" or "8BITMIME", or "" when not given.
	Body string
	// SMTPUTF8 is -U (sendmail 8.18's meaning: use SMTPUTF8).
	SMTPUTF8 bool
	// Verbose counts the -v options.
	Verbose int
	// ConfigFile is -C: the configuration file name, as given. It is
	// never opened here.
	ConfigFile string
	// ErrorMode is -oe? or -e?; ErrorPrint by default, ErrorBerkNet
	// for rmail.
	ErrorMode ErrorMode
	// Delivery is -od?; DeliveryDefault when not given.
	Delivery DeliveryMode
	// QueueInterval is the interval of -q<interval> (the last one
	// given); 0 for a bare -q, -q0, or no interval at all.
	QueueInterval time.Duration
	// QueueSelectors are the -qI, -qR and -qS selectors, in order.
	QueueSelectors []Selector
	// AliasFile is -oA: the alias file for -bi, as given.
	AliasFile string
	// Recipients are the arguments after the options, as given: each
	// may hold an address list; they are not parsed here. None holds
	// CR, LF or NUL. Nil when there are none.
	Recipients []string
	// Warnings are one-line messages for standard error, without the
	// program name: a repeated -f, an argument that looks like an
	// option after the first recipient, an ignored -X, a bad -oe letter,
	// an old -V VERP value. Nil when there are none.
	Warnings []string
	// Ignored lists the options that were accepted and had no effect,
	// each with its value attached ("-G", "-oL9", "-h5", "-Xfile"), for
	// logging at debug level. Nil when there are none.
	Ignored []string
}

// UsageError is a command line that cannot be obeyed: an unknown
// option, a missing or bad value, an unsupported mode. The program
// should print it and exit 64 (EX_USAGE) without reading a message.
type UsageError struct {
	// Msg is the problem in one line, without the program name, e.g.
	// `unknown option -z` or `-B takes 7BIT or 8BITMIME, not "9BIT"`.
	// Values from the command line in it are quoted, so it never holds
	// a line break.
	Msg string
}

func (e *UsageError) Error() string { return e.Msg }

// ExitCode is 64, EX_USAGE.
func (e *UsageError) ExitCode() int { return 64 }

// DataError is a CR, LF or NUL in the value of -f, -r, -F, -V or -N, or
// in a recipient argument: a value that would inject lines into the
// SMTP dialogue or the header. The program should print it and exit 65
// (EX_DATAERR, which research/sendmail-compat.md §7 point 17 gives for a
// bad -f or recipient) without reading a message.
type DataError struct {
	// Option is the option whose value is bad ("-f", "-r", "-F", "-V",
	// "-N"), or "" for a recipient argument.
	Option string
	// Value is the bad value or argument, as given.
	Value string
}

func (e *DataError) Error() string {
	if e.Option == "" {
		return "CR, LF or NUL in recipient " + quote(e.Value)
	}
	return "CR, LF or NUL in " + e.Option + " value " + quote(e.Value)
}

// ExitCode is 65, EX_DATAERR.
func (e *DataError) ExitCode() int { return 65 }

func usagef(format string, args ...any) *UsageError {
	return &UsageError{Msg: fmt.Sprintf(format, args...)}
}

// maxShown caps how much of a command-line value goes into a message.
const maxShown = 64

// quote returns s as a Go string literal, cut to maxShown bytes, so that
// a message holding it stays one readable line.
func quote(s string) string {
	if len(s) > maxShown {
		s = s[:maxShown] + "..."
	}
	return strconv.Quote(s)
}

// shown returns an option as given for a message: as is when it is
// printable ASCII without blanks, else quoted.
func shown(s string) string {
	if s == "" || len(s) > maxShown {
		return quote(s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return quote(s)
		}
	}
	return s
}
