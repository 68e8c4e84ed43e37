package sendopt

import (
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"
)

// Parse parses args (without argv[0]) for the interface named name (the
// basename of argv[0]; a path is reduced to its basename): "sendmail",
// "send-mail", "mailq", "newaliases", "rmail", "runq", "hoststat",
// "purgestat"; "smtpd" is refused; anything else, "handoff" included, is
// the sendmail interface. The grammar is in the package documentation.
//
// The error is a *UsageError (exit 64) or a *DataError (exit 65); both
// have an ExitCode method. Parsing stops at the first problem, in
// argument order. Parse never opens a file and never reads stdin.
func Parse(name string, args []string) (*Invocation, error) {
	base := filepath.Base(name)
	if name == "" {
		base = ""
	}
	inv := &Invocation{Name: base, Interface: "sendmail", ErrorMode: ErrorPrint}
	p := &parser{inv: inv, args: args}
	switch base {
	case "mailq":
		inv.Interface, inv.Mode, p.modeBy, p.restricted = base, ModeQueueList, base, true
	case "newaliases":
		inv.Interface, inv.Mode, p.modeBy = base, ModeAliases, base
	case "runq":
		inv.Interface, inv.Mode, p.modeBy = base, ModeQueueRun, base
	case "hoststat", "purgestat":
		inv.Interface, inv.Mode, p.modeBy = base, ModeNoop, base
	case "rmail":
		// rmail(8) runs "sendmail -G -oee -odq -oi"; -G and -odq
		// change nothing here.
		inv.Interface, inv.IgnoreDots, inv.ErrorMode = base, true, ErrorBerkNet
	case "smtpd":
		return nil, usagef("smtpd: the SMTP daemon interface is not supported (handoff does not listen for SMTP connections)")
	}

	stopped := false // by a non-option, not by "--" or the end
	for p.next < len(args) {
		a := args[p.next]
		if a == "--" {
			p.next++
			break
		}
		if len(a) < 2 || a[0] != '-' {
			stopped = true
			break
		}
		p.next++
		if err := p.cluster(a); err != nil {
			return nil, err
		}
	}

	rest := args[p.next:]
	for _, r := range rest {
		if hasBreak(r) {
			return nil, &DataError{Value: r}
		}
		if p.restricted {
			return nil, usagef("%s takes no arguments (got %s)", p.modeBy, quote(r))
		}
		switch inv.Mode {
		case ModeSMTP, ModeQueueList, ModeAliases, ModeQueueRun:
			if p.modeBy == inv.Interface {
				return nil, usagef("%s takes no arguments (got %s)", p.modeBy, quote(r))
			}
			return nil, usagef("%s takes no recipients (got %s)", p.modeBy, quote(r))
		}
		if stopped && strings.HasPrefix(r, "-") {
			p.warn("argument " + quote(r) + " is taken as a recipient, not an option: options go before the first recipient")
		}
	}
	if len(rest) > 0 {
		inv.Recipients = append([]string(nil), rest...)
	}
	return inv, nil
}

// parser holds the state of one Parse.
type parser struct {
	inv  *Invocation
	args []string
	next int // index in args of the next argument
	// modeBy is the option or interface name that set Mode, "" while
	// Mode is the default; a different mode set later is a conflict.
	modeBy string
	// senders counts -f and -r options.
	senders int
	// restricted: the mailq interface, which takes only -v, -C, -o,
	// -O, -d, -L and -bp.
	restricted bool
}

// Letters whose value is attached or the next argument.
const valueLetters = "ABbCDeFfhLMNOopQRrVX"

// Letters that take no value.
const flagLetters = "cGIimnsTtUvx"

// Letters mailq accepts.
const mailqLetters = "vCoOdLb"

// cluster parses one argument that starts with '-' and is not "-" or
// "--": a cluster of flag letters, possibly ended by a letter that takes
// a value.
func (p *parser) cluster(a string) error {
	if a[1] == '-' {
		return usagef("unknown option %s (there are no long options)", shown(a))
	}
	for j := 1; j < len(a); j++ {
		c := a[j]
		if p.restricted && strings.IndexByte(mailqLetters, c) < 0 {
			return usagef("mailq takes no arguments (got %s)", quote(a))
		}
		switch {
		case c == 'q' || c == 'd':
			// The value is taken only when attached.
			return p.option(c, a[j+1:])
		case strings.IndexByte(valueLetters, c) >= 0:
			v := a[j+1:]
			if v == "" {
				if p.next >= len(p.args) {
					return usagef("option -%c requires a value", c)
				}
				v = p.args[p.next]
				p.next++
			}
			return p.option(c, v)
		case strings.IndexByte(flagLetters, c) >= 0:
			if err := p.flag(c); err != nil {
				return err
			}
		default:
			r, _ := utf8.DecodeRuneInString(a[j:])
			if r == utf8.RuneError {
				return usagef("unknown option %s", quote("-"+a[j:j+1]))
			}
			return usagef("unknown option %s", shown("-"+string(r)))
		}
	}
	return nil
}

func (p *parser) ignore(opt string) {
	p.inv.Ignored = append(p.inv.Ignored, opt)
}

func (p *parser) warn(msg string) {
	p.inv.Warnings = append(p.inv.Warnings, msg)
}

// flag handles a letter that takes no value.
func (p *parser) flag(c byte) error {
	inv := p.inv
	switch c {
	case 'I':
		return p.setMode(ModeAliases, "-I")
	case 'i':
		inv.IgnoreDots = true
	case 't':
		inv.ExtractRecipients = true
	case 'U':
		inv.SMTPUTF8 = true
	case 'v':
		inv.Verbose++
	default: // c G m n s T x
		p.ignore("-" + string(c))
	}
	return nil
}

// option handles a letter with its value v.
func (p *parser) option(c byte, v string) error {
	inv := p.inv
	switch c {
	case 'A', 'D', 'd', 'h', 'L', 'M', 'p':
		p.ignore("-" + string(c) + v)
	case 'B':
		switch u := strings.ToUpper(v); u {
		case "7BIT", "8BITMIME":
			inv.Body = u
		default:
			return usagef("-B takes 7BIT or 8BITMIME, not %s", quote(v))
		}
	case 'b':
		return p.mode(v)
	case 'C':
		if v == "" {
			return usagef("option -C requires a file name")
		}
		inv.ConfigFile = v
	case 'e':
		p.errorMode("-e", v)
	case 'F':
		if hasBreak(v) {
			return &DataError{Option: "-F", Value: v}
		}
		inv.FullName = v
	case 'f', 'r':
		return p.sender("-"+string(c), v)
	case 'N':
		return p.notify(v)
	case 'O':
		return p.longOption(v)
	case 'o':
		return p.shortOption(v)
	case 'Q':
		return usagef("unsupported option %s (quarantining queued messages)", shown("-Q"+v))
	case 'q':
		return p.queue(v)
	case 'R':
		switch strings.ToLower(v) {
		case "full":
			inv.Return = "FULL"
		case "hdrs", "headers":
			inv.Return = "HDRS"
		default:
			return usagef("-R takes full or hdrs, not %s", quote(v))
		}
	case 'V':
		return p.envelopeID(v)
	case 'X':
		p.ignore("-X" + v)
		p.warn("ignoring -X " + quote(v) + ": handoff never writes a traffic log file")
	}
	return nil
}

// setMode sets the operation mode; by is the option that asks for it.
func (p *parser) setMode(m Mode, by string) error {
	if p.modeBy != "" && p.inv.Mode != m {
		return usagef("conflicting modes %s and %s", p.modeBy, by)
	}
	if p.modeBy == "" {
		p.modeBy = by
	}
	p.inv.Mode = m
	return nil
}

// mode handles -b and its value.
func (p *parser) mode(v string) error {
	opt := shown("-b" + v)
	if p.restricted && v != "p" {
		return usagef("mailq takes no arguments (got %s)", quote("-b"+v))
	}
	if v == "" {
		return usagef("option -b requires a mode letter")
	}
	if len(v) != 1 {
		return usagef("unsupported mode %s", opt)
	}
	var m Mode
	switch v[0] {
	case 'm':
		m = ModeDeliver
	case 's':
		m = ModeSMTP
	case 'p':
		m = ModeQueueList
	case 'i':
		m = ModeAliases
	case 'v':
		m = ModeVerify
	case 'h', 'H':
		m = ModeNoop
	case 'd', 'D':
		return usagef("unsupported mode %s (handoff does not listen for SMTP connections)", opt)
	default:
		return usagef("unsupported mode %s", opt)
	}
	return p.setMode(m, opt)
}

// errorMode handles the letter after -oe or -e; opt is "-oe" or "-e".
func (p *parser) errorMode(opt, v string) {
	if len(v) == 1 && strings.IndexByte("mpqwe", v[0]) >= 0 {
		p.inv.ErrorMode = ErrorMode(v[0])
		return
	}
	p.ignore(opt + v)
	p.warn("ignoring " + shown(opt+v) + ": the error mode is one of m, p, q, w, e")
}

// sender handles -f and -r.
func (p *parser) sender(opt, v string) error {
	if hasBreak(v) {
		return &DataError{Option: opt, Value: v}
	}
	inv := p.inv
	p.senders++
	if p.senders > 1 {
		p.warn("-f or -r given more than once; using the last, " + opt + " " + quote(v))
	}
	addr := senderAddress(v)
	inv.SenderSet = true
	inv.NullSender = addr == "" || addr == "<>"
	if inv.NullSender {
		addr = ""
	}
	inv.Sender = addr
	return nil
}

// senderAddress trims v and reduces "Name <addr>" (and "<addr>") to addr.
// A '<' inside double quotes or after a backslash does not count.
func senderAddress(v string) string {
	v = strings.TrimSpace(v)
	if !strings.HasSuffix(v, ">") {
		return v
	}
	quoted, escaped := false, false
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case escaped:
			escaped = false
		case c == '\\':
			escaped = true
		case c == '"':
			quoted = !quoted
		case c == '<' && !quoted:
			return strings.TrimSpace(v[i+1 : len(v)-1])
		}
	}
	return v
}

// notify handles -N.
func (p *parser) notify(v string) error {
	if hasBreak(v) {
		return &DataError{Option: "-N", Value: v}
	}
	var list []string
	for _, item := range strings.Split(strings.ToLower(v), ",") {
		item = strings.TrimSpace(item)
		switch item {
		case "never":
			if strings.Count(v, ",") > 0 {
				return usagef("-N never cannot be combined with other values, got %s", quote(v))
			}
		case "success", "failure", "delay":
		default:
			return usagef("-N takes never or a list of success, failure, delay, not %s", quote(v))
		}
		dup := false
		for _, have := range list {
			dup = dup || have == item
		}
		if !dup {
			list = append(list, item)
		}
	}
	p.inv.Notify = list
	return nil
}

// envelopeID handles -V.
func (p *parser) envelopeID(v string) error {
	if hasBreak(v) {
		return &DataError{Option: "-V", Value: v}
	}
	if len(v) == 2 {
		p.ignore("-V" + v)
		p.warn("ignoring -V " + quote(v) + ": a two-character -V is Postfix's old VERP option, not an envelope ID")
		return nil
	}
	if len(v) > 100 {
		return usagef("-V takes at most 100 characters, got %d", len(v))
	}
	for i := 0; i < len(v); i++ {
		if v[i] < ' ' || v[i] > '~' {
			return usagef("-V takes printable ASCII characters only, not %s", quote(v))
		}
	}
	p.inv.EnvelopeID = v
	return nil
}

// shortOption handles the value of -o: a letter and its own value.
func (p *parser) shortOption(v string) error {
	if v == "" {
		p.ignore("-o")
		return nil
	}
	inv := p.inv
	letter, val := v[0], strings.TrimLeft(v[1:], " \t")
	switch letter {
	case 'i':
		b, ok := parseBool(val)
		if !ok {
			return usagef("-oi takes true or false, not %s", quote(val))
		}
		inv.IgnoreDots = b
	case 'e':
		p.errorMode("-oe", val)
	case 'd':
		switch val {
		case "i", "f":
			inv.Delivery = DeliveryInteractive
		case "b":
			inv.Delivery = DeliveryBackground
		case "q", "d":
			inv.Delivery = DeliveryQueue
		default:
			return usagef("-od takes i, f, b, q or d, not %s", quote(val))
		}
	case 'A':
		if val == "" {
			return usagef("-oA requires a file name, attached (-oA/etc/aliases)")
		}
		inv.AliasFile = val
	default:
		p.ignore("-o" + v)
	}
	return nil
}

// longOption handles the value of -O: "Name", "Name=value" or
// "Name value". Only IgnoreDots (any case) means something here.
func (p *parser) longOption(v string) error {
	name, val := v, ""
	if i := strings.IndexAny(v, "= \t"); i >= 0 {
		name, val = v[:i], strings.TrimLeft(v[i:], " \t")
		val = strings.TrimLeft(strings.TrimPrefix(val, "="), " \t")
	}
	if !strings.EqualFold(name, "IgnoreDots") {
		p.ignore("-O" + v)
		return nil
	}
	b, ok := parseBool(val)
	if !ok {
		return usagef("-O IgnoreDots takes true or false, not %s", quote(val))
	}
	p.inv.IgnoreDots = b
	return nil
}

// parseBool reads a sendmail boolean option value; "" is true.
func parseBool(s string) (value, ok bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "true", "t", "yes", "y", "on", "1":
		return true, true
	case "false", "f", "no", "n", "off", "0":
		return false, true
	}
	return false, false
}

// queue handles -q and its attached value.
func (p *parser) queue(v string) error {
	opt := shown("-q" + v)
	if err := p.setMode(ModeQueueRun, opt); err != nil {
		return err
	}
	switch {
	case v == "", v == "f":
		// Run once in the foreground: the only way a queue run goes.
	case v[0] == 'I' || v[0] == 'R' || v[0] == 'S':
		if len(v) == 1 {
			return usagef("option -q%c requires a value (a substring)", v[0])
		}
		p.inv.QueueSelectors = append(p.inv.QueueSelectors, Selector{Kind: v[0], Value: v[1:]})
	case v[0] >= '0' && v[0] <= '9':
		d, err := parseInterval(v)
		if err != nil {
			return err
		}
		p.inv.QueueInterval = d
	default:
		return usagef("unsupported option %s", opt)
	}
	return nil
}

// maxInterval bounds -q<interval>.
const maxInterval = 366 * 24 * time.Hour

// parseInterval reads sendmail's time syntax (convtime in sendmail 8): one
// or more numbers, each followed by a unit s, m, h, d or w; the last
// number may have no unit and then counts minutes ("30" is 30m, "1h30"
// is 1h30m).
func parseInterval(s string) (time.Duration, error) {
	orig := s
	var total time.Duration
	for s != "" {
		n, k := int64(0), 0
		for k < len(s) && s[k] >= '0' && s[k] <= '9' {
			if n > int64(maxInterval/time.Second) {
				return 0, usagef("-q interval %s is longer than a year", quote(orig))
			}
			n = n*10 + int64(s[k]-'0')
			k++
		}
		if k == 0 {
			return 0, usagef("-q takes an interval like 30m or 1h30m, not %s", quote(orig))
		}
		unit := time.Minute
		if k < len(s) {
			switch s[k] {
			case 's':
				unit = time.Second
			case 'm':
				unit = time.Minute
			case 'h':
				unit = time.Hour
			case 'd':
				unit = 24 * time.Hour
			case 'w':
				unit = 7 * 24 * time.Hour
			default:
				return 0, usagef("-q takes an interval like 30m or 1h30m, not %s", quote(orig))
			}
			k++
		}
		if n > int64(maxInterval/unit) {
			return 0, usagef("-q interval %s is longer than a year", quote(orig))
		}
		total += time.Duration(n) * unit
		if total > maxInterval {
			return 0, usagef("-q interval %s is longer than a year", quote(orig))
		}
		s = s[k:]
	}
	return total, nil
}

// hasBreak reports whether s holds CR, LF or NUL.
func hasBreak(s string) bool {
	return strings.ContainsAny(s, "\r\n\x00")
}
