// Package sendopt parses the sendmail command line: the options of
// /usr/sbin/sendmail and of its other names (mailq, newaliases, rmail,
// runq, hoststat, purgestat). It only parses: it opens no file, reads no
// input and resolves no address. The contract is PRODUCT.md §2 and
// research/sendmail-compat.md §7 points 1–5, 10, 12, 13, 17, 18 and 20.
//
// # Grammar
//
// A getopt(3) over the union of the letters of sendmail 8, Postfix and
// Exim, not Go's flag package:
//
//   - An argument that starts with '-' and is not "-" or "--" is a cluster
//     of option letters: "-ti" is "-t -i".
//   - The letters A B b C D e F f h L M N O o p Q R r V X take a value: the
//     rest of the argument when something follows the letter ("-froot",
//     "-FCronDaemon", "-B8BITMIME", "-oem", "-tfroot"), else the whole next
//     argument, whatever it is, even empty or starting with '-' ("-f root",
//     "-B 8BITMIME", "-tif addr"). A missing value is a usage error.
//   - The letters q and d take a value only when it is attached: "-q" is
//     a queue run, "-q30m" one every 30 minutes, "-qRexample.org" a
//     selector; "-q 30m" is a queue run and a recipient "30m" (refused,
//     -q takes no recipients).
//   - The other known letters (c G I i m n s T t U v x) take no value.
//   - "--" ends the options; every later argument is a recipient, even
//     one starting with '-'.
//   - The first argument that does not start with '-', or is "-" alone,
//     ends the options too (as Postfix, Exim and nullmailer do, unlike
//     glibc's permuting getopt). It and every later argument are
//     recipients; a later argument starting with '-' gets a warning,
//     since it was probably meant as an option.
//   - Any other letter or character is a usage error, and so are long
//     options ("--foo").
//
// -o takes a value too, whose first character names a short option and
// whose rest is that option's value, leading blanks dropped: "-oem" and
// "-o em" are error mode m, "-oi", "-oitrue" and "-o 'i true'" set
// IgnoreDots, "-oifalse" clears it. Note that "-oi false" as two
// arguments is "-oi" and a recipient "false", as in getopt. -O takes a
// long option "Name", "Name=value" or "Name value"; only IgnoreDots (any
// case) is honoured.
//
// Letters is the full table of options, the man page's source: what each
// takes, whether it is accepted (it has an effect), ignored (accepted, its
// value consumed, no effect; listed in Invocation.Ignored) or refused (a
// usage error).
//
// # Names
//
// The basename of argv[0] chooses the interface (Names):
//
//	sendmail, send-mail, handoff, any other name   the sendmail interface
//	mailq      -bp; only -v, -C, -o, -O, -d, -L and -bp are allowed, no arguments
//	newaliases -bi; options allowed, no arguments
//	rmail      -i -oee; recipients from the arguments
//	runq       -q; options allowed (an interval, selectors), no arguments
//	hoststat, purgestat   nothing to do (exit 0); everything accepted
//	smtpd      refused: usage error
//
// # Modes
//
// -bm (the default) and -bv take recipients; -bs, -bp, -bi (-I) and -q
// take none (a usage error). -bh and -bH accept anything and mean "exit
// 0". Asking for two different modes ("-bs -q", "mailq -bs") is a usage
// error; repeating one is not.
//
// # Exit codes
//
// Parse returns a *UsageError for everything that must exit 64
// (EX_USAGE), and a *DataError, exit 65 (EX_DATAERR), for a CR, LF or NUL
// in the value of -f, -r, -F, -V or -N or in a recipient argument. Both
// have ExitCode methods; Error is one line with every command-line value
// quoted. Parse stops at the first problem, in argument order.
//
// # Decisions where the contract is silent
//
//   - -T takes no value (sendmail 8.18's getopt string "…sTtUV:vX:"); in
//     "-T x", x is a recipient.
//   - -Q (sendmail 8 quarantine) is refused rather than ignored: it turns
//     sendmail 8 into a queue operation, and ignoring it would run the
//     queue or deliver a message instead. -M is ignored with its value.
//   - -b takes exactly one letter: "-bpc" (Exim) is an unsupported mode.
//   - Two different modes ("-bs -q", "-bp -bi") are a usage error, where
//     sendmail 8 lets the last -b win and refuses only -q after -bs or
//     -bi: a command line that asks for two things does neither.
//   - A bad -oe/-e letter is a warning (compatibility); a bad -od letter,
//     a bad -oi or -O IgnoreDots boolean, an empty -C or -oA, an empty
//     -qI/-qR/-qS, and -qp, -qG, -qQ, -q! are usage errors.
//   - -V longer than 100 characters or with a character outside printable
//     ASCII (space included) is a usage error (sendmail 8 refuses what is
//     not xtext; Postfix warns); exactly two characters is the old VERP
//     syntax, ignored with a warning; "" sets no ENVID.
//   - -N: "never" alone or success/failure/delay, blanks around items
//     allowed, duplicates dropped; an empty item is a usage error.
//   - -f/-r "Name <addr>" gives addr; a value that does not end in '>' is
//     only trimmed ("root (Cron Daemon)" stays as is, for the address
//     parser); "", "<>", blanks and "Name <>" are the null sender.
//   - -q<interval> longer than a year is a usage error; -q0 is a bare -q.
//   - -X and -D file names are never opened; -X also prints a warning.
//   - Options that are accepted and ignored print nothing; they are listed
//     in Invocation.Ignored for debug logging.
package sendopt

// LetterDoc documents one option form for the man page.
type LetterDoc struct {
	// Option is the form as written: "-t", "-bs", "-oi", "-q<interval>".
	Option string
	// Takes says what follows: "" for nothing, "value" for a value
	// attached or in the next argument, "attached value" for a value
	// that counts only when attached, or a description of the form of
	// the value inside -o and -q ("letter", "file", "substring").
	Takes string
	// Status is "accepted" (it has an effect), "ignored" (accepted, its
	// value consumed, no effect) or "refused" (exit 64).
	Status string
	// Meaning says what the option does here, and its sendmail origin
	// when it is ignored or refused.
	Meaning string
}

// Letters documents every option form Parse knows, in man page order,
// and ends with the letters it refuses. The tests check it against the
// parser, letter by letter.
var Letters = []LetterDoc{
	{"-A", "value", "ignored", "sendmail 8: use submit.cf (-Ac) or sendmail.cf (-Am)."},
	{"-B", "value", "accepted", "Body type, 7BIT or 8BITMIME in any case; BODY=8BITMIME is sent when the relay offers it. Any other value: exit 64."},
	{"-bm", "", "accepted", "Deliver: read a message on standard input and send it. The default."},
	{"-bs", "", "accepted", "Speak SMTP on standard input and output (Symfony, Laravel, Alpine). No recipient arguments."},
	{"-bp", "", "accepted", "List the queue, as mailq does. No recipient arguments."},
	{"-bi", "", "accepted", "Check the alias map, as newaliases does. No recipient arguments."},
	{"-bv", "", "accepted", "Print how each recipient would be routed; nothing is sent."},
	{"-bh", "", "ignored", "sendmail 8: print the host status database. Does nothing, exit 0."},
	{"-bH", "", "ignored", "sendmail 8: purge the host status database. Does nothing, exit 0."},
	{"-bd", "", "refused", "sendmail 8: run as a daemon. Exit 64: handoff does not listen for SMTP connections."},
	{"-bD", "", "refused", "sendmail 8: run as a daemon in the foreground. Exit 64: handoff does not listen for SMTP connections."},
	{"-bt", "", "refused", "sendmail 8: address test mode. Exit 64."},
	{"-ba", "", "refused", "sendmail 8: ARPANET mode. Exit 64."},
	{"-bC", "", "refused", "sendmail 8: check the configuration. Exit 64; use handoff config check."},
	{"-bP", "", "refused", "sendmail 8: print queue counts (Exim: print options). Exit 64."},
	{"-bz", "", "refused", "sendmail 8: freeze the configuration. Exit 64."},
	{"-bl", "", "refused", "Postfix: start the mail system. Exit 64."},
	{"-b<other>", "", "refused", "Any other mode letter, or more than one letter (Exim's -bpc): exit 64."},
	{"-C", "value", "accepted", "Read this configuration file instead of the default one; a file given by a user never grants what that user could not read. Empty: exit 64."},
	{"-c", "", "ignored", "sendmail 8: hold expensive connections."},
	{"-D", "value", "ignored", "sendmail 8: debugging output file. The file is never opened."},
	{"-d", "attached value", "ignored", "Debugging (-d, -d0.1); the value counts only when attached."},
	{"-e", "value", "accepted", "Error mode letter, as -oe (vacation passes -eq). An unknown letter is ignored with a warning."},
	{"-F", "value", "accepted", "Full name for a generated From: header. CR, LF or NUL in it: exit 65."},
	{"-f", "value", "accepted", "Envelope sender. '' or <> is the null sender, Name <addr> gives addr, the last -f or -r wins (with a warning). CR, LF or NUL in it: exit 65."},
	{"-G", "", "ignored", "Relay (gateway) submission; rmail passes it."},
	{"-h", "value", "ignored", "Hop count."},
	{"-I", "", "accepted", "Same as -bi."},
	{"-i", "", "accepted", "A line with only a dot does not end the message; read to the end of input."},
	{"-L", "value", "ignored", "Syslog tag."},
	{"-M", "value", "ignored", "sendmail 8: define a macro (-Mxvalue). Exim's -M queue commands are not run."},
	{"-m", "", "ignored", "Me too: keep the sender in alias expansions."},
	{"-N", "value", "accepted", "DSN NOTIFY: never, or a comma list of success, failure, delay, in any case. Anything else: exit 64. CR, LF or NUL in it: exit 65."},
	{"-n", "", "ignored", "Do not expand aliases."},
	{"-O IgnoreDots", "value", "accepted", "-O IgnoreDots, -O IgnoreDots=true or =false (t/f, yes/no, y/n, on/off, 1/0; the name in any case): as -i, or clear it. A bad boolean: exit 64."},
	{"-O<option>", "value", "ignored", "Any other sendmail 8 long option (-O Name=value)."},
	{"-oi", "optional boolean", "accepted", "As -i; -oitrue, -oifalse (t/f, yes/no, y/n, on/off, 1/0). A bad boolean: exit 64."},
	{"-oe", "letter", "accepted", "Error mode: -oem mail errors to the sender, -oep print them (default), -oeq exit status only, -oew write to the terminal or mail, -oee mail and exit 0. An unknown letter is ignored with a warning."},
	{"-od", "letter", "accepted", "Delivery mode: -odi or -odf deliver before exiting, -odb in the background, -odq or -odd queue only. Any other letter: exit 64."},
	{"-oA", "file", "accepted", "Alias file for -bi, attached (-oA/etc/aliases). Empty: exit 64."},
	{"-o<option>", "value", "ignored", "Any other sendmail 8 short option: -om, -o7, -o8, -oL9, -oQ/dir, -oo, -oB5, and so on."},
	{"-p", "value", "ignored", "Received protocol and host (rmail passes -puucp:host)."},
	{"-Q", "value", "refused", "sendmail 8: quarantine queued messages. Exit 64: ignoring it would run the queue instead."},
	{"-q", "attached value", "accepted", "Run the queue once, in the foreground. Also -qf and -q0. No recipient arguments."},
	{"-q<interval>", "attached value", "accepted", "Run the queue every interval, in the foreground: numbers with units s, m, h, d, w (-q30m, -q1h30m; a number without a unit is minutes). A bad interval or one over a year: exit 64."},
	{"-qI", "substring", "accepted", "Queue run of the entries whose queue id contains the substring (-qI<substring>)."},
	{"-qR", "substring", "accepted", "Queue run of the entries with a recipient containing the substring (-qR<substring>)."},
	{"-qS", "substring", "accepted", "Queue run of the entries whose sender contains the substring (-qS<substring>)."},
	{"-q<other>", "attached value", "refused", "-qp (persistent), -qG (queue group), -qQ (quarantined), -q! (negation) and any other form: exit 64."},
	{"-R", "value", "accepted", "DSN RET: full, or hdrs (also headers), in any case. Anything else: exit 64."},
	{"-r", "value", "accepted", "Same as -f (obsolete)."},
	{"-s", "", "ignored", "sendmail 8: save From lines (obsolete)."},
	{"-T", "", "ignored", "Obsolete; takes no value, as in sendmail 8.18."},
	{"-t", "", "accepted", "Recipients are the arguments and the To:, Cc: and Bcc: headers (or the Resent- ones)."},
	{"-U", "", "accepted", "sendmail 8.18: the message may need SMTPUTF8. Recorded; SMTPUTF8 is used whenever an address needs it anyway."},
	{"-V", "value", "accepted", "DSN ENVID: at most 100 printable ASCII characters, else exit 64; CR, LF or NUL: exit 65. Exactly two characters is Postfix's old VERP option: ignored with a warning."},
	{"-v", "", "accepted", "Verbose; repeatable. Prints the SMTP dialogue on standard error, AUTH payloads redacted."},
	{"-X", "value", "ignored", "sendmail 8: log SMTP traffic to a file. The value is discarded, the file never opened, and a warning printed."},
	{"-x", "", "ignored", "AIX/OSF mailx flag."},
	{"--", "", "accepted", "End of options: every later argument is a recipient."},
	{"-", "", "accepted", "A lone - is not an option: it ends the options and is a recipient (with a warning)."},
	{"--<word>", "", "refused", "Long options (msmtp's --read-envelope-from and the like): exit 64."},
	{"-a -E -g -H -J -j -K -k -l -P -S -u -W -w -Y -y -Z -z", "", "refused", "Unknown letters: exit 64. So are digits and any other character after '-'."},
}

// NameDoc documents one name the program may be called by.
type NameDoc struct {
	// Name is the basename of argv[0].
	Name string
	// Meaning says which interface it chooses.
	Meaning string
}

// Names documents the names Parse recognises, for the man page.
var Names = []NameDoc{
	{"sendmail", "The sendmail interface. So are send-mail (BSD mail), handoff and any name not listed here."},
	{"mailq", "List the queue (-bp). Takes only -v, -C, -o, -O, -d, -L and -bp; any other argument: exit 64."},
	{"newaliases", "Check the alias map (-bi). Options are accepted; arguments: exit 64."},
	{"rmail", "Deliver with -i -oee: recipients from the arguments, a lone dot does not end the message, errors are mailed back."},
	{"runq", "Run the queue (-q). Options are accepted; arguments: exit 64."},
	{"hoststat", "Does nothing, exit 0 (sendmail 8: print host status)."},
	{"purgestat", "Does nothing, exit 0 (sendmail 8: purge host status)."},
	{"smtpd", "Refused, exit 64: the daemon is handoff daemon."},
}
