package sendopt

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// parseCase is one command line and the whole Invocation it must give.
// In want, an empty Name or Interface means "sendmail" and a zero
// ErrorMode means ErrorPrint, so the table states only what differs.
type parseCase struct {
	what string
	name string // argv[0]; "" means "sendmail"
	args []string
	want Invocation
}

func (c parseCase) run(t *testing.T) {
	t.Helper()
	name := c.name
	if name == "" {
		name = "sendmail"
	}
	want := c.want
	if want.Name == "" {
		want.Name = filepath.Base(name)
	}
	if want.Interface == "" {
		want.Interface = "sendmail"
	}
	if want.ErrorMode == 0 {
		want.ErrorMode = ErrorPrint
	}
	got, err := Parse(name, c.args)
	if err != nil {
		t.Errorf("%s: Parse(%q, %q): %v", c.what, name, c.args, err)
		return
	}
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("%s: Parse(%q, %q):\n got %+v\nwant %+v", c.what, name, c.args, *got, want)
	}
}

func args(s string) []string { return strings.Fields(s) }

// TestCallers: the argv of every real caller of research/sendmail-compat.md
// §5 and PRODUCT.md §2, exactly.
func TestCallers(t *testing.T) {
	for _, c := range []parseCase{
		{what: "PHP mail() default", args: args("-t -i"),
			want: Invocation{ExtractRecipients: true, IgnoreDots: true}},
		{what: "PHP mail() with a 5th argument -f", args: args("-t -i -fbounce@example.org"),
			want: Invocation{ExtractRecipients: true, IgnoreDots: true, Sender: "bounce@example.org", SenderSet: true}},
		{what: "PHP mail() with -f separate", args: args("-t -i -f www@example.com"),
			want: Invocation{ExtractRecipients: true, IgnoreDots: true, Sender: "www@example.com", SenderSet: true}},
		{what: "Debian cron", args: args("-FCronDaemon -i -B8BITMIME -oem root"),
			want: Invocation{FullName: "CronDaemon", IgnoreDots: true, Body: "8BITMIME", ErrorMode: ErrorMail, Recipients: []string{"root"}}},
		{what: "Debian cron, older order", args: args("-i -FCronDaemon -B8BITMIME -oem alice@example.org"),
			want: Invocation{FullName: "CronDaemon", IgnoreDots: true, Body: "8BITMIME", ErrorMode: ErrorMail, Recipients: []string{"alice@example.org"}}},
		{what: "cronie", args: args("-FCronDaemon -i -odi -oem -oi -t -f root"),
			want: Invocation{FullName: "CronDaemon", IgnoreDots: true, Delivery: DeliveryInteractive, ErrorMode: ErrorMail,
				ExtractRecipients: true, Sender: "root", SenderSet: true}},
		{what: "anacron", args: args("-FAnacron -odi root"),
			want: Invocation{FullName: "Anacron", Delivery: DeliveryInteractive, Recipients: []string{"root"}}},
		{what: "systemd-cron", args: args("-i -B 8BITMIME root"),
			want: Invocation{IgnoreDots: true, Body: "8BITMIME", Recipients: []string{"root"}}},
		{what: "at", args: args("-i alice"),
			want: Invocation{IgnoreDots: true, Recipients: []string{"alice"}}},
		{what: "old at", args: args("alice"),
			want: Invocation{Recipients: []string{"alice"}}},
		{what: "git send-email", args: args("-i a@example.org c@example.net"),
			want: Invocation{IgnoreDots: true, Recipients: []string{"a@example.org", "c@example.net"}}},
		{what: "git send-email with envelope sender", args: args("-f me@example.org -i a@example.org"),
			want: Invocation{IgnoreDots: true, Sender: "me@example.org", SenderSet: true, Recipients: []string{"a@example.org"}}},
		{what: "mutt default", args: args("-oem -oi -- a@b c@d"),
			want: Invocation{ErrorMode: ErrorMail, IgnoreDots: true, Recipients: []string{"a@b", "c@d"}}},
		{what: "mutt with everything", args: args("-oem -oi -B8BITMIME -f me@x.org -N success,failure -R hdrs -- a@b c@d e@f"),
			want: Invocation{ErrorMode: ErrorMail, IgnoreDots: true, Body: "8BITMIME", Sender: "me@x.org", SenderSet: true,
				Notify: []string{"success", "failure"}, Return: "HDRS", Recipients: []string{"a@b", "c@d", "e@f"}}},
		{what: "NeoMutt DSN", args: args("-oem -oi -N delay,failure,success -R full -- a@b"),
			want: Invocation{ErrorMode: ErrorMail, IgnoreDots: true, Notify: []string{"delay", "failure", "success"}, Return: "FULL",
				Recipients: []string{"a@b"}}},
		{what: "s-nail", args: args("-i -m -v -f me@x.org -- a@b"),
			want: Invocation{IgnoreDots: true, Verbose: 1, Sender: "me@x.org", SenderSet: true, Ignored: []string{"-m"},
				Recipients: []string{"a@b"}}},
		{what: "BSD mail as send-mail", name: "/usr/sbin/send-mail", args: args("-i -- alice@example.org"),
			want: Invocation{IgnoreDots: true, Recipients: []string{"alice@example.org"}}},
		{what: "GNU mailutils", args: args("-oi -f alice@host.example -t"),
			want: Invocation{IgnoreDots: true, Sender: "alice@host.example", SenderSet: true, ExtractRecipients: true}},
		{what: "logwatch, sudo", args: args("-t"),
			want: Invocation{ExtractRecipients: true}},
		{what: "mdadm", args: args("-t -froot@x"),
			want: Invocation{ExtractRecipients: true, Sender: "root@x", SenderSet: true}},
		{what: "mdadm bare login", args: args("-t -froot"),
			want: Invocation{ExtractRecipients: true, Sender: "root", SenderSet: true}},
		{what: "unattended-upgrades", args: args("-oi -t"),
			want: Invocation{IgnoreDots: true, ExtractRecipients: true}},
		{what: "django-sendmail-backend", args: args("a@example.org b@example.org"),
			want: Invocation{Recipients: []string{"a@example.org", "b@example.org"}}},
		{what: "Rails", args: args("-i -f from@example.org -- to@example.net other@example.net"),
			want: Invocation{IgnoreDots: true, Sender: "from@example.org", SenderSet: true, Recipients: []string{"to@example.net", "other@example.net"}}},
		{what: "Symfony", args: args("-bs"),
			want: Invocation{Mode: ModeSMTP}},
		{what: "Laravel", args: args("-bs -i"),
			want: Invocation{Mode: ModeSMTP, IgnoreDots: true}},
		{what: "Symfony -t mode", args: args("-t -i -fsender@example.org"),
			want: Invocation{ExtractRecipients: true, IgnoreDots: true, Sender: "sender@example.org", SenderSet: true}},
		{what: "Alpine", args: args("-bs -odb -oem"),
			want: Invocation{Mode: ModeSMTP, Delivery: DeliveryBackground, ErrorMode: ErrorMail}},
		{what: "Dovecot", args: []string{"-i", "-f", "<>", "--", "user@example.org"},
			want: Invocation{IgnoreDots: true, SenderSet: true, NullSender: true, Recipients: []string{"user@example.org"}}},
		{what: "Dovecot with a return path", args: args("-i -f bounce@example.org -- user@example.org"),
			want: Invocation{IgnoreDots: true, Sender: "bounce@example.org", SenderSet: true, Recipients: []string{"user@example.org"}}},
		{what: "cronie 1.7.0 null sender", args: []string{"-FCronDaemon", "-i", "-odi", "-oem", "-oi", "-t", "-f", "<>"},
			want: Invocation{FullName: "CronDaemon", IgnoreDots: true, Delivery: DeliveryInteractive, ErrorMode: ErrorMail,
				ExtractRecipients: true, SenderSet: true, NullSender: true}},
		{what: "rmail calling sendmail", args: args("-G -oee -odq -oi -puucp:gw.example -fbob@gw.example alice"),
			want: Invocation{ErrorMode: ErrorBerkNet, Delivery: DeliveryQueue, IgnoreDots: true, Sender: "bob@gw.example", SenderSet: true,
				Ignored: []string{"-G", "-puucp:gw.example"}, Recipients: []string{"alice"}}},
		{what: "vacation", args: []string{"-eq", "-oi", "-f", "<>", "--", "alice@example.org"},
			want: Invocation{ErrorMode: ErrorQuiet, IgnoreDots: true, SenderSet: true, NullSender: true, Recipients: []string{"alice@example.org"}}},
		{what: "handoff -t as sendmail", name: "handoff", args: args("-t"),
			want: Invocation{ExtractRecipients: true}},
	} {
		c.run(t)
	}
}

func TestGrammar(t *testing.T) {
	for _, c := range []parseCase{
		{what: "no arguments", args: nil, want: Invocation{}},
		{what: "cluster -ti", args: args("-ti"), want: Invocation{ExtractRecipients: true, IgnoreDots: true}},
		{what: "cluster -it", args: args("-it"), want: Invocation{ExtractRecipients: true, IgnoreDots: true}},
		{what: "cluster ending in a value letter, value separate", args: args("-tif addr@x"),
			want: Invocation{ExtractRecipients: true, IgnoreDots: true, Sender: "addr@x", SenderSet: true}},
		{what: "cluster ending in a value letter, value attached", args: args("-tifaddr@x rcpt"),
			want: Invocation{ExtractRecipients: true, IgnoreDots: true, Sender: "addr@x", SenderSet: true, Recipients: []string{"rcpt"}}},
		{what: "value letter takes the rest of the cluster", args: args("-fi"),
			want: Invocation{Sender: "i", SenderSet: true}},
		{what: "separate value starting with '-'", args: args("-f -t"),
			want: Invocation{Sender: "-t", SenderSet: true}},
		{what: "-F separate", args: []string{"-F", "Cron Daemon"}, want: Invocation{FullName: "Cron Daemon"}},
		{what: "-F empty", args: []string{"-F", ""}, want: Invocation{}},
		{what: "-B lower case", args: args("-B 7bit"), want: Invocation{Body: "7BIT"}},
		{what: "-B mixed case attached", args: args("-B8bitMime"), want: Invocation{Body: "8BITMIME"}},
		{what: "-o separate", args: args("-o em -o i"), want: Invocation{ErrorMode: ErrorMail, IgnoreDots: true}},
		{what: "-o cluster", args: args("-toem"), want: Invocation{ExtractRecipients: true, ErrorMode: ErrorMail}},
		{what: "-- ends options", args: args("-t -- -v -f x"),
			want: Invocation{ExtractRecipients: true, Recipients: []string{"-v", "-f", "x"}}},
		{what: "-- alone", args: args("--"), want: Invocation{}},
		{what: "-- after -- is a recipient", args: args("-- -- a"), want: Invocation{Recipients: []string{"--", "a"}}},
		{what: "stop at the first non-option", args: args("-i a@b -t c@d"),
			want: Invocation{IgnoreDots: true, Recipients: []string{"a@b", "-t", "c@d"},
				Warnings: []string{`argument "-t" is taken as a recipient, not an option: options go before the first recipient`}}},
		{what: "lone - is a recipient", args: args("-i - a@b"),
			want: Invocation{IgnoreDots: true, Recipients: []string{"-", "a@b"},
				Warnings: []string{`argument "-" is taken as a recipient, not an option: options go before the first recipient`}}},
		{what: "-- after a recipient is a recipient", args: args("a@b -- c@d"),
			want: Invocation{Recipients: []string{"a@b", "--", "c@d"},
				Warnings: []string{`argument "--" is taken as a recipient, not an option: options go before the first recipient`}}},
		{what: "empty argument is a recipient", args: []string{"-i", "", "a@b"},
			want: Invocation{IgnoreDots: true, Recipients: []string{"", "a@b"}}},
		{what: "recipient lists kept raw", args: []string{"a@b, Alice <c@d>"},
			want: Invocation{Recipients: []string{"a@b, Alice <c@d>"}}},
		{what: "verbose counted", args: args("-v -vv"), want: Invocation{Verbose: 3}},
		{what: "-U", args: args("-U a@b"), want: Invocation{SMTPUTF8: true, Recipients: []string{"a@b"}}},
		{what: "-C", args: args("-C /tmp/h.toml -t"), want: Invocation{ConfigFile: "/tmp/h.toml", ExtractRecipients: true}},
		{what: "-C attached", args: args("-C/etc/x.toml"), want: Invocation{ConfigFile: "/etc/x.toml"}},
		{what: "-oA", args: args("-bi -oA/etc/aliases"), want: Invocation{Mode: ModeAliases, AliasFile: "/etc/aliases"}},
		{what: "-oA with a blank", args: []string{"-bi", "-oA /etc/aliases"}, want: Invocation{Mode: ModeAliases, AliasFile: "/etc/aliases"}},
		{what: "-o A separate", args: args("-o A/etc/aliases -I"), want: Invocation{Mode: ModeAliases, AliasFile: "/etc/aliases"}},
	} {
		c.run(t)
	}
}

func TestIgnoreDots(t *testing.T) {
	for _, c := range []parseCase{
		{what: "-i", args: args("-i"), want: Invocation{IgnoreDots: true}},
		{what: "-oi", args: args("-oi"), want: Invocation{IgnoreDots: true}},
		{what: "-oitrue", args: args("-oitrue"), want: Invocation{IgnoreDots: true}},
		{what: "-oiT", args: args("-oiT"), want: Invocation{IgnoreDots: true}},
		{what: "-oiyes", args: args("-oiyes"), want: Invocation{IgnoreDots: true}},
		{what: "-oifalse", args: args("-oifalse"), want: Invocation{}},
		{what: "-i -oif", args: args("-i -oif"), want: Invocation{}},
		{what: "-oino", args: args("-oino"), want: Invocation{}},
		{what: "-oi false in one argument", args: []string{"-oi false"}, want: Invocation{}},
		{what: "-o 'i false'", args: []string{"-o", "i false"}, want: Invocation{}},
		{what: "-oi and a recipient false", args: args("-oi false"), want: Invocation{IgnoreDots: true, Recipients: []string{"false"}}},
		{what: "-O IgnoreDots", args: args("-O IgnoreDots"), want: Invocation{IgnoreDots: true}},
		{what: "-OIgnoreDots=true", args: args("-OIgnoreDots=true"), want: Invocation{IgnoreDots: true}},
		{what: "-O ignoredots=false", args: args("-i -O ignoredots=false"), want: Invocation{}},
		{what: "-O 'IgnoreDots = no'", args: []string{"-i", "-O", "IgnoreDots = no"}, want: Invocation{}},
		{what: "-O other long option", args: args("-O DeliveryMode=q"), want: Invocation{Ignored: []string{"-ODeliveryMode=q"}}},
		{what: "rmail sets it", name: "rmail", args: args("alice"),
			want: Invocation{Interface: "rmail", IgnoreDots: true, ErrorMode: ErrorBerkNet, Recipients: []string{"alice"}}},
		{what: "rmail -oifalse clears it", name: "rmail", args: args("-oifalse alice"),
			want: Invocation{Interface: "rmail", ErrorMode: ErrorBerkNet, Recipients: []string{"alice"}}},
	} {
		c.run(t)
	}
}

func TestModes(t *testing.T) {
	for _, c := range []parseCase{
		{what: "-bm", args: args("-bm a@b"), want: Invocation{Mode: ModeDeliver, Recipients: []string{"a@b"}}},
		{what: "-b m", args: args("-b m a@b"), want: Invocation{Mode: ModeDeliver, Recipients: []string{"a@b"}}},
		{what: "-bs", args: args("-bs"), want: Invocation{Mode: ModeSMTP}},
		{what: "-bp", args: args("-bp"), want: Invocation{Mode: ModeQueueList}},
		{what: "-bi", args: args("-bi"), want: Invocation{Mode: ModeAliases}},
		{what: "-I", args: args("-I"), want: Invocation{Mode: ModeAliases}},
		{what: "-bi -I", args: args("-bi -I"), want: Invocation{Mode: ModeAliases}},
		{what: "-bv", args: args("-bv a@b root"), want: Invocation{Mode: ModeVerify, Recipients: []string{"a@b", "root"}}},
		{what: "-bh", args: args("-bh"), want: Invocation{Mode: ModeNoop}},
		{what: "-bH", args: args("-bH"), want: Invocation{Mode: ModeNoop}},
		{what: "-bh with arguments", args: args("-bh host.example"), want: Invocation{Mode: ModeNoop, Recipients: []string{"host.example"}}},
		{what: "-bs twice", args: args("-bs -bs"), want: Invocation{Mode: ModeSMTP}},
		{what: "-bh -bH", args: args("-bh -bH"), want: Invocation{Mode: ModeNoop}},
		{what: "-q", args: args("-q"), want: Invocation{Mode: ModeQueueRun}},
		{what: "-v -t with -bv", args: args("-bv -t"), want: Invocation{Mode: ModeVerify, ExtractRecipients: true}},
	} {
		c.run(t)
	}
}

func TestQueue(t *testing.T) {
	q := ModeQueueRun
	for _, c := range []parseCase{
		{what: "bare", args: args("-q"), want: Invocation{Mode: q}},
		{what: "-qf", args: args("-qf"), want: Invocation{Mode: q}},
		{what: "-q0", args: args("-q0"), want: Invocation{Mode: q}},
		{what: "-q30m", args: args("-q30m"), want: Invocation{Mode: q, QueueInterval: 30 * time.Minute}},
		{what: "-q30 is minutes", args: args("-q30"), want: Invocation{Mode: q, QueueInterval: 30 * time.Minute}},
		{what: "-q1h", args: args("-q1h"), want: Invocation{Mode: q, QueueInterval: time.Hour}},
		{what: "-q2h30m", args: args("-q2h30m"), want: Invocation{Mode: q, QueueInterval: 2*time.Hour + 30*time.Minute}},
		{what: "-q1h30", args: args("-q1h30"), want: Invocation{Mode: q, QueueInterval: time.Hour + 30*time.Minute}},
		{what: "-q90s", args: args("-q90s"), want: Invocation{Mode: q, QueueInterval: 90 * time.Second}},
		{what: "-q1d", args: args("-q1d"), want: Invocation{Mode: q, QueueInterval: 24 * time.Hour}},
		{what: "-q1w2d", args: args("-q1w2d"), want: Invocation{Mode: q, QueueInterval: 9 * 24 * time.Hour}},
		{what: "-q52w", args: args("-q52w"), want: Invocation{Mode: q, QueueInterval: 52 * 7 * 24 * time.Hour}},
		{what: "interval, last wins", args: args("-q1h -q5m"), want: Invocation{Mode: q, QueueInterval: 5 * time.Minute}},
		{what: "-qI", args: args("-qI4Xk2f"), want: Invocation{Mode: q, QueueSelectors: []Selector{{'I', "4Xk2f"}}}},
		{what: "-qR", args: args("-qRexample.org"), want: Invocation{Mode: q, QueueSelectors: []Selector{{'R', "example.org"}}}},
		{what: "-qS", args: args("-qSalice"), want: Invocation{Mode: q, QueueSelectors: []Selector{{'S', "alice"}}}},
		{what: "selectors repeat, with an interval", args: args("-q15m -qRa -qRb -qSc -v"),
			want: Invocation{Mode: q, Verbose: 1, QueueInterval: 15 * time.Minute,
				QueueSelectors: []Selector{{'R', "a"}, {'R', "b"}, {'S', "c"}}}},
		{what: "-q in a cluster", args: args("-vq30m"), want: Invocation{Mode: q, Verbose: 1, QueueInterval: 30 * time.Minute}},
		{what: "runq", name: "runq", args: nil, want: Invocation{Interface: "runq", Mode: q}},
		{what: "runq -q1h", name: "/usr/sbin/runq", args: args("-q1h -v"),
			want: Invocation{Interface: "runq", Mode: q, QueueInterval: time.Hour, Verbose: 1}},
	} {
		c.run(t)
	}
}

func TestSender(t *testing.T) {
	for _, c := range []parseCase{
		{what: "plain", args: args("-f a@b"), want: Invocation{Sender: "a@b", SenderSet: true}},
		{what: "-r", args: args("-r a@b"), want: Invocation{Sender: "a@b", SenderSet: true}},
		{what: "-r attached", args: args("-ra@b"), want: Invocation{Sender: "a@b", SenderSet: true}},
		{what: "<>", args: []string{"-f", "<>"}, want: Invocation{SenderSet: true, NullSender: true}},
		{what: "<> attached", args: []string{"-f<>"}, want: Invocation{SenderSet: true, NullSender: true}},
		{what: "empty", args: []string{"-f", ""}, want: Invocation{SenderSet: true, NullSender: true}},
		{what: "blank", args: []string{"-f", "  "}, want: Invocation{SenderSet: true, NullSender: true}},
		{what: "<addr>", args: []string{"-f", "<a@b>"}, want: Invocation{Sender: "a@b", SenderSet: true}},
		{what: "Name <addr>", args: []string{"-f", "Alice Example <alice@example.org>"},
			want: Invocation{Sender: "alice@example.org", SenderSet: true}},
		{what: "quoted name with <", args: []string{"-f", `"a <b" <c@d>`}, want: Invocation{Sender: "c@d", SenderSet: true}},
		{what: "Name <>", args: []string{"-f", "Mailer <>"}, want: Invocation{SenderSet: true, NullSender: true}},
		{what: "trimmed", args: []string{"-f", " a@b "}, want: Invocation{Sender: "a@b", SenderSet: true}},
		{what: "comment form unparsed", args: []string{"-f", "root (Cron Daemon)"}, want: Invocation{Sender: "root (Cron Daemon)", SenderSet: true}},
		{what: "repeated, last wins", args: args("-f a@b -r c@d"),
			want: Invocation{Sender: "c@d", SenderSet: true,
				Warnings: []string{`-f or -r given more than once; using the last, -r "c@d"`}}},
		{what: "null then address", args: []string{"-f", "<>", "-f", "x@y"},
			want: Invocation{Sender: "x@y", SenderSet: true,
				Warnings: []string{`-f or -r given more than once; using the last, -f "x@y"`}}},
		{what: "address then null", args: []string{"-f", "x@y", "-f", ""},
			want: Invocation{SenderSet: true, NullSender: true,
				Warnings: []string{`-f or -r given more than once; using the last, -f ""`}}},
	} {
		c.run(t)
	}
}

func TestDSN(t *testing.T) {
	for _, c := range []parseCase{
		{what: "-N never", args: args("-N never"), want: Invocation{Notify: []string{"never"}}},
		{what: "-N NEVER", args: args("-NNEVER"), want: Invocation{Notify: []string{"never"}}},
		{what: "-N mixed case list", args: args("-N Success,DELAY"), want: Invocation{Notify: []string{"success", "delay"}}},
		{what: "-N blanks and duplicates", args: []string{"-N", "failure, failure ,delay"}, want: Invocation{Notify: []string{"failure", "delay"}}},
		{what: "-N last wins", args: args("-N never -N success"), want: Invocation{Notify: []string{"success"}}},
		{what: "-R full", args: args("-R full"), want: Invocation{Return: "FULL"}},
		{what: "-R HDRS", args: args("-RHDRS"), want: Invocation{Return: "HDRS"}},
		{what: "-R headers", args: args("-R headers"), want: Invocation{Return: "HDRS"}},
		{what: "-V", args: args("-V QQ314159"), want: Invocation{EnvelopeID: "QQ314159"}},
		{what: "-V one char", args: args("-Vx"), want: Invocation{EnvelopeID: "x"}},
		{what: "-V with a space", args: []string{"-V", "a b=c+d"}, want: Invocation{EnvelopeID: "a b=c+d"}},
		{what: "-V 100 chars", args: []string{"-V" + strings.Repeat("x", 100)}, want: Invocation{EnvelopeID: strings.Repeat("x", 100)}},
		{what: "-V empty", args: []string{"-V", ""}, want: Invocation{}},
		{what: "-V old VERP", args: []string{"-V", "+="},
			want: Invocation{Ignored: []string{"-V+="},
				Warnings: []string{`ignoring -V "+=": a two-character -V is Postfix's old VERP option, not an envelope ID`}}},
		{what: "-V old VERP keeps an earlier ENVID", args: []string{"-V", "abc", "-V+="},
			want: Invocation{EnvelopeID: "abc", Ignored: []string{"-V+="},
				Warnings: []string{`ignoring -V "+=": a two-character -V is Postfix's old VERP option, not an envelope ID`}}},
	} {
		c.run(t)
	}
}

func TestErrorAndDeliveryModes(t *testing.T) {
	for _, c := range []parseCase{
		{what: "-oem", args: args("-oem"), want: Invocation{ErrorMode: ErrorMail}},
		{what: "-oep", args: args("-oep"), want: Invocation{ErrorMode: ErrorPrint}},
		{what: "-oeq", args: args("-oeq"), want: Invocation{ErrorMode: ErrorQuiet}},
		{what: "-oew", args: args("-oew"), want: Invocation{ErrorMode: ErrorWrite}},
		{what: "-oee", args: args("-oee"), want: Invocation{ErrorMode: ErrorBerkNet}},
		{what: "-em", args: args("-em"), want: Invocation{ErrorMode: ErrorMail}},
		{what: "-e q", args: args("-e q"), want: Invocation{ErrorMode: ErrorQuiet}},
		{what: "-ew -ee last wins", args: args("-ew -ee"), want: Invocation{ErrorMode: ErrorBerkNet}},
		{what: "-oex warns", args: args("-oem -oex"),
			want: Invocation{ErrorMode: ErrorMail, Ignored: []string{"-oex"},
				Warnings: []string{"ignoring -oex: the error mode is one of m, p, q, w, e"}}},
		{what: "-e empty warns", args: []string{"-e", ""},
			want: Invocation{Ignored: []string{"-e"}, Warnings: []string{"ignoring -e: the error mode is one of m, p, q, w, e"}}},
		{what: "-emm warns", args: args("-emm"),
			want: Invocation{Ignored: []string{"-emm"}, Warnings: []string{"ignoring -emm: the error mode is one of m, p, q, w, e"}}},
		{what: "-odi", args: args("-odi"), want: Invocation{Delivery: DeliveryInteractive}},
		{what: "-odf", args: args("-odf"), want: Invocation{Delivery: DeliveryInteractive}},
		{what: "-odb", args: args("-odb"), want: Invocation{Delivery: DeliveryBackground}},
		{what: "-odq", args: args("-odq"), want: Invocation{Delivery: DeliveryQueue}},
		{what: "-odd", args: args("-odd"), want: Invocation{Delivery: DeliveryQueue}},
		{what: "-o d b", args: []string{"-o", "d b"}, want: Invocation{Delivery: DeliveryBackground}},
	} {
		c.run(t)
	}
}

// TestIgnored: every known-but-meaningless option is accepted, its value
// consumed, and listed in Ignored.
func TestIgnored(t *testing.T) {
	for _, c := range []parseCase{
		{what: "-Ac", args: args("-Ac a"), want: Invocation{Ignored: []string{"-Ac"}, Recipients: []string{"a"}}},
		{what: "-A m", args: args("-A m a"), want: Invocation{Ignored: []string{"-Am"}, Recipients: []string{"a"}}},
		{what: "-c", args: args("-c a"), want: Invocation{Ignored: []string{"-c"}, Recipients: []string{"a"}}},
		{what: "-D file", args: args("-D /tmp/debug a"), want: Invocation{Ignored: []string{"-D/tmp/debug"}, Recipients: []string{"a"}}},
		{what: "-d", args: args("-d a"), want: Invocation{Ignored: []string{"-d"}, Recipients: []string{"a"}}},
		{what: "-d0.1", args: args("-d0.1 a"), want: Invocation{Ignored: []string{"-d0.1"}, Recipients: []string{"a"}}},
		{what: "-d in a cluster", args: args("-td0-99.1 a"), want: Invocation{ExtractRecipients: true, Ignored: []string{"-d0-99.1"}, Recipients: []string{"a"}}},
		{what: "-G", args: args("-G a"), want: Invocation{Ignored: []string{"-G"}, Recipients: []string{"a"}}},
		{what: "-h 5", args: args("-h 5 a"), want: Invocation{Ignored: []string{"-h5"}, Recipients: []string{"a"}}},
		{what: "-L tag", args: args("-L mytag a"), want: Invocation{Ignored: []string{"-Lmytag"}, Recipients: []string{"a"}}},
		{what: "-M macro", args: args("-Mrhost a"), want: Invocation{Ignored: []string{"-Mrhost"}, Recipients: []string{"a"}}},
		{what: "-m", args: args("-m a"), want: Invocation{Ignored: []string{"-m"}, Recipients: []string{"a"}}},
		{what: "-n", args: args("-n a"), want: Invocation{Ignored: []string{"-n"}, Recipients: []string{"a"}}},
		{what: "-O option", args: args("-O Timeout.queuereturn=1d a"), want: Invocation{Ignored: []string{"-OTimeout.queuereturn=1d"}, Recipients: []string{"a"}}},
		{what: "-p proto", args: args("-p uucp:host a"), want: Invocation{Ignored: []string{"-puucp:host"}, Recipients: []string{"a"}}},
		{what: "-s", args: args("-s a"), want: Invocation{Ignored: []string{"-s"}, Recipients: []string{"a"}}},
		{what: "-T takes no value", args: args("-T x"), want: Invocation{Ignored: []string{"-T"}, Recipients: []string{"x"}}},
		{what: "-x", args: args("-x a"), want: Invocation{Ignored: []string{"-x"}, Recipients: []string{"a"}}},
		{what: "-X file never opened", args: args("-X /var/www/shell.php a"),
			want: Invocation{Ignored: []string{"-X/var/www/shell.php"}, Recipients: []string{"a"},
				Warnings: []string{`ignoring -X "/var/www/shell.php": handoff never writes a traffic log file`}}},
		{what: "-XV VERP", args: args("-XV a"),
			want: Invocation{Ignored: []string{"-XV"}, Recipients: []string{"a"},
				Warnings: []string{`ignoring -X "V": handoff never writes a traffic log file`}}},
		{what: "-o letters", args: []string{"-om", "-o7", "-o8", "-oL9", "-oQ/dir", "-oo", "-oB5", "-o", "", "-oE", "a"},
			want: Invocation{Ignored: []string{"-om", "-o7", "-o8", "-oL9", "-oQ/dir", "-oo", "-oB5", "-o", "-oE"}, Recipients: []string{"a"}}},
		{what: "all together, clustered", args: args("-cGmnsTx -t"),
			want: Invocation{ExtractRecipients: true, Ignored: []string{"-c", "-G", "-m", "-n", "-s", "-T", "-x"}}},
	} {
		c.run(t)
	}
}

func TestNames(t *testing.T) {
	for _, c := range []parseCase{
		{what: "mailq", name: "mailq", want: Invocation{Interface: "mailq", Mode: ModeQueueList}},
		{what: "mailq path", name: "/usr/bin/mailq", want: Invocation{Interface: "mailq", Mode: ModeQueueList}},
		{what: "mailq -v -C", name: "mailq", args: args("-v -C /etc/h.toml -bp -oi -Ooption -d -Ltag"),
			want: Invocation{Interface: "mailq", Mode: ModeQueueList, Verbose: 1, ConfigFile: "/etc/h.toml", IgnoreDots: true,
				Ignored: []string{"-Ooption", "-d", "-Ltag"}}},
		{what: "newaliases", name: "newaliases", want: Invocation{Interface: "newaliases", Mode: ModeAliases}},
		{what: "newaliases -oA", name: "newaliases", args: args("-oA/etc/mail/aliases -bi"),
			want: Invocation{Interface: "newaliases", Mode: ModeAliases, AliasFile: "/etc/mail/aliases"}},
		{what: "rmail", name: "/usr/bin/rmail", args: args("alice bob"),
			want: Invocation{Interface: "rmail", IgnoreDots: true, ErrorMode: ErrorBerkNet, Recipients: []string{"alice", "bob"}}},
		{what: "rmail -D domain -T", name: "rmail", args: args("-D uucp.example -T alice"),
			want: Invocation{Interface: "rmail", IgnoreDots: true, ErrorMode: ErrorBerkNet, Ignored: []string{"-Duucp.example", "-T"},
				Recipients: []string{"alice"}}},
		{what: "rmail -oep", name: "rmail", args: args("-oep alice"),
			want: Invocation{Interface: "rmail", IgnoreDots: true, ErrorMode: ErrorPrint, Recipients: []string{"alice"}}},
		{what: "runq", name: "runq", want: Invocation{Interface: "runq", Mode: ModeQueueRun}},
		{what: "hoststat", name: "hoststat", want: Invocation{Interface: "hoststat", Mode: ModeNoop}},
		{what: "purgestat", name: "purgestat", args: args("-v anything"),
			want: Invocation{Interface: "purgestat", Mode: ModeNoop, Verbose: 1, Recipients: []string{"anything"}}},
		{what: "send-mail", name: "send-mail", args: args("-i a"), want: Invocation{IgnoreDots: true, Recipients: []string{"a"}}},
		{what: "handoff", name: "/usr/bin/handoff", args: args("-t"), want: Invocation{ExtractRecipients: true}},
		{what: "unknown name", name: "/usr/lib/sm.bin/sendmail.handoff", args: args("-t"), want: Invocation{ExtractRecipients: true}},
		{what: "empty name", name: "", args: args("-t"), want: Invocation{ExtractRecipients: true}},
	} {
		c.run(t)
	}
	// An empty argv[0] keeps an empty Name.
	if inv, err := Parse("", nil); err != nil || inv.Name != "" || inv.Interface != "sendmail" {
		t.Errorf(`Parse("", nil) = %+v, %v`, inv, err)
	}
}

// errCase is a command line Parse must refuse.
type errCase struct {
	name string
	args []string
	data bool // *DataError, else *UsageError
	msg  string
}

func (c errCase) run(t *testing.T) {
	t.Helper()
	name := c.name
	if name == "" {
		name = "sendmail"
	}
	inv, err := Parse(name, c.args)
	if err == nil {
		t.Errorf("Parse(%q, %q) = %+v, want error %q", name, c.args, inv, c.msg)
		return
	}
	if inv != nil {
		t.Errorf("Parse(%q, %q) returned an Invocation with its error", name, c.args)
	}
	var ue *UsageError
	var de *DataError
	switch {
	case c.data && !errors.As(err, &de):
		t.Errorf("Parse(%q, %q): %T %v, want *DataError", name, c.args, err, err)
	case !c.data && !errors.As(err, &ue):
		t.Errorf("Parse(%q, %q): %T %v, want *UsageError", name, c.args, err, err)
	}
	if err.Error() != c.msg {
		t.Errorf("Parse(%q, %q): error\n %s\nwant\n %s", name, c.args, err, c.msg)
	}
	if strings.ContainsAny(err.Error(), "\r\n\x00") {
		t.Errorf("Parse(%q, %q): error is not one line: %q", name, c.args, err)
	}
	code := err.(interface{ ExitCode() int }).ExitCode()
	if want := map[bool]int{false: 64, true: 65}[c.data]; code != want {
		t.Errorf("Parse(%q, %q): exit code %d, want %d", name, c.args, code, want)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, c := range []errCase{
		// Unknown letters and long options.
		{args: args("-z"), msg: "unknown option -z"},
		{args: args("-tz a"), msg: "unknown option -z"},
		{args: args("-a account"), msg: "unknown option -a"},
		{args: args("-S"), msg: "unknown option -S"},
		{args: args("-P"), msg: "unknown option -P"},
		{args: args("-1"), msg: "unknown option -1"},
		{args: args("-?"), msg: "unknown option -?"},
		{args: []string{"-t\x01"}, msg: `unknown option "-\x01"`},
		{args: []string{"-é"}, msg: `unknown option "-é"`},
		{args: []string{"-\xff"}, msg: `unknown option "-\xff"`},
		{args: []string{"- x"}, msg: `unknown option "- "`},
		{args: args("--read-envelope-from"), msg: "unknown option --read-envelope-from (there are no long options)"},
		{args: args("--help"), msg: "unknown option --help (there are no long options)"},
		// Missing values.
		{args: args("-f"), msg: "option -f requires a value"},
		{args: args("-ti -f"), msg: "option -f requires a value"},
		{args: args("-tif"), msg: "option -f requires a value"},
		{args: args("-F"), msg: "option -F requires a value"},
		{args: args("-B"), msg: "option -B requires a value"},
		{args: args("-o"), msg: "option -o requires a value"},
		{args: args("-X"), msg: "option -X requires a value"},
		{args: args("-b"), msg: "option -b requires a value"},
		{args: []string{"-C", ""}, msg: "option -C requires a file name"},
		// Bad values.
		{args: args("-B 9BIT"), msg: `-B takes 7BIT or 8BITMIME, not "9BIT"`},
		{args: []string{"-B", ""}, msg: `-B takes 7BIT or 8BITMIME, not ""`},
		{args: args("-B BINARYMIME"), msg: `-B takes 7BIT or 8BITMIME, not "BINARYMIME"`},
		{args: args("-N sometimes"), msg: `-N takes never or a list of success, failure, delay, not "sometimes"`},
		{args: []string{"-N", ""}, msg: `-N takes never or a list of success, failure, delay, not ""`},
		{args: args("-N success,,delay"), msg: `-N takes never or a list of success, failure, delay, not "success,,delay"`},
		{args: args("-N never,success"), msg: `-N never cannot be combined with other values, got "never,success"`},
		{args: args("-R body"), msg: `-R takes full or hdrs, not "body"`},
		{args: []string{"-V", strings.Repeat("x", 101)}, msg: "-V takes at most 100 characters, got 101"},
		{args: []string{"-V", "abc\tdef"}, msg: `-V takes printable ASCII characters only, not "abc\tdef"`},
		{args: []string{"-V", "café"}, msg: `-V takes printable ASCII characters only, not "café"`},
		{args: args("-oimaybe"), msg: `-oi takes true or false, not "maybe"`},
		{args: args("-OIgnoreDots=maybe"), msg: `-O IgnoreDots takes true or false, not "maybe"`},
		{args: args("-odx"), msg: `-od takes i, f, b, q or d, not "x"`},
		{args: args("-od"), msg: `-od takes i, f, b, q or d, not ""`},
		{args: args("-odqs"), msg: `-od takes i, f, b, q or d, not "qs"`},
		{args: args("-oA"), msg: "-oA requires a file name, attached (-oA/etc/aliases)"},
		// Modes.
		{args: args("-bd"), msg: "unsupported mode -bd (handoff does not listen for SMTP connections)"},
		{args: args("-bD"), msg: "unsupported mode -bD (handoff does not listen for SMTP connections)"},
		{args: args("-bt"), msg: "unsupported mode -bt"},
		{args: args("-ba"), msg: "unsupported mode -ba"},
		{args: args("-bC"), msg: "unsupported mode -bC"},
		{args: args("-bP"), msg: "unsupported mode -bP"},
		{args: args("-bz"), msg: "unsupported mode -bz"},
		{args: args("-bl"), msg: "unsupported mode -bl"},
		{args: args("-bx"), msg: "unsupported mode -bx"},
		{args: args("-bpc"), msg: "unsupported mode -bpc"},
		{args: []string{"-b", ""}, msg: "option -b requires a mode letter"},
		{args: []string{"-b", "s p"}, msg: `unsupported mode "-bs p"`},
		{args: args("-bs -bp"), msg: "conflicting modes -bs and -bp"},
		{args: args("-bs -q"), msg: "conflicting modes -bs and -q"},
		{args: args("-q -bi"), msg: "conflicting modes -q and -bi"},
		{args: args("-bp -I"), msg: "conflicting modes -bp and -I"},
		{args: args("-bm -bv"), msg: "conflicting modes -bm and -bv"},
		{name: "newaliases", args: args("-bp"), msg: "conflicting modes newaliases and -bp"},
		{name: "runq", args: args("-bs"), msg: "conflicting modes runq and -bs"},
		{name: "hoststat", args: args("-q"), msg: "conflicting modes hoststat and -q"},
		// Recipients where none are taken.
		{args: args("-bs a@b"), msg: `-bs takes no recipients (got "a@b")`},
		{args: args("-bp a@b"), msg: `-bp takes no recipients (got "a@b")`},
		{args: args("-bi a@b"), msg: `-bi takes no recipients (got "a@b")`},
		{args: args("-I a@b"), msg: `-I takes no recipients (got "a@b")`},
		{args: args("-q a@b"), msg: `-q takes no recipients (got "a@b")`},
		{args: args("-q 30m"), msg: `-q takes no recipients (got "30m")`},
		{name: "newaliases", args: args("/etc/aliases"), msg: `newaliases takes no arguments (got "/etc/aliases")`},
		{name: "runq", args: args("x"), msg: `runq takes no arguments (got "x")`},
		// Queue forms.
		{args: args("-qp"), msg: "unsupported option -qp"},
		{args: args("-qp1h"), msg: "unsupported option -qp1h"},
		{args: args("-qGgroup"), msg: "unsupported option -qGgroup"},
		{args: args("-qQ"), msg: "unsupported option -qQ"},
		{args: args("-q!Rfoo"), msg: "unsupported option -q!Rfoo"},
		{args: args("-qL"), msg: "unsupported option -qL"},
		{args: args("-qff"), msg: "unsupported option -qff"},
		{args: args("-qv"), msg: "unsupported option -qv"},
		{args: args("-qR"), msg: "option -qR requires a value (a substring)"},
		{args: args("-qI"), msg: "option -qI requires a value (a substring)"},
		{args: args("-qS"), msg: "option -qS requires a value (a substring)"},
		{args: args("-q30x"), msg: `-q takes an interval like 30m or 1h30m, not "30x"`},
		{args: args("-q1hh"), msg: `-q takes an interval like 30m or 1h30m, not "1hh"`},
		{args: args("-q1H"), msg: `-q takes an interval like 30m or 1h30m, not "1H"`},
		{args: args("-q53w"), msg: `-q interval "53w" is longer than a year`},
		{args: args("-q99999999999999999999999m"), msg: `-q interval "99999999999999999999999m" is longer than a year`},
		{args: args("-q52w52w"), msg: `-q interval "52w52w" is longer than a year`},
		{args: args("-Q"), msg: "option -Q requires a value"},
		{args: args("-Qreason -qIabc"), msg: "unsupported option -Qreason (quarantining queued messages)"},
		// Names.
		{name: "smtpd", args: nil, msg: "smtpd: the SMTP daemon interface is not supported (handoff does not listen for SMTP connections)"},
		{name: "mailq", args: args("-t"), msg: `mailq takes no arguments (got "-t")`},
		{name: "mailq", args: args("-vt"), msg: `mailq takes no arguments (got "-vt")`},
		{name: "mailq", args: args("alice"), msg: `mailq takes no arguments (got "alice")`},
		{name: "mailq", args: args("-- alice"), msg: `mailq takes no arguments (got "alice")`},
		{name: "mailq", args: args("-bs"), msg: `mailq takes no arguments (got "-bs")`},
		{name: "mailq", args: args("-q"), msg: `mailq takes no arguments (got "-q")`},
		{name: "mailq", args: args("-z"), msg: `mailq takes no arguments (got "-z")`},
	} {
		c.run(t)
	}
}

func TestDataErrors(t *testing.T) {
	for _, c := range []errCase{
		{args: []string{"-f", "a@b\nRCPT TO:<x@y>"}, data: true, msg: `CR, LF or NUL in -f value "a@b\nRCPT TO:<x@y>"`},
		{args: []string{"-fa@b\r"}, data: true, msg: `CR, LF or NUL in -f value "a@b\r"`},
		{args: []string{"-r", "a\x00b"}, data: true, msg: `CR, LF or NUL in -r value "a\x00b"`},
		{args: []string{"-F", "Cron\nBcc: victim@x"}, data: true, msg: `CR, LF or NUL in -F value "Cron\nBcc: victim@x"`},
		{args: []string{"-V", "id\r\n"}, data: true, msg: `CR, LF or NUL in -V value "id\r\n"`},
		{args: []string{"-N", "success\n"}, data: true, msg: `CR, LF or NUL in -N value "success\n"`},
		{args: []string{"a@b\nBcc: x@y"}, data: true, msg: `CR, LF or NUL in recipient "a@b\nBcc: x@y"`},
		{args: []string{"-i", "--", "ok@x", "a\rb"}, data: true, msg: `CR, LF or NUL in recipient "a\rb"`},
		{args: []string{"a\x00"}, data: true, msg: `CR, LF or NUL in recipient "a\x00"`},
		{args: []string{"-f", strings.Repeat("a", 70) + "\n"}, data: true,
			msg: `CR, LF or NUL in -f value "` + strings.Repeat("a", 64) + `..."`},
		// The first problem in argument order decides.
		{args: []string{"-z", "-f", "a\nb"}, msg: "unknown option -z"},
		{args: []string{"-f", "a\nb", "-z"}, data: true, msg: `CR, LF or NUL in -f value "a\nb"`},
		{name: "mailq", args: []string{"a\nb"}, data: true, msg: `CR, LF or NUL in recipient "a\nb"`},
	} {
		c.run(t)
	}
}

func TestModeString(t *testing.T) {
	for m, want := range map[Mode]string{
		ModeDeliver: "deliver", ModeSMTP: "smtp", ModeQueueList: "queue-list", ModeAliases: "aliases",
		ModeVerify: "verify", ModeQueueRun: "queue-run", ModeNoop: "noop", Mode(7): "Mode(7)", Mode(-1): "Mode(-1)",
	} {
		if got := m.String(); got != want {
			t.Errorf("Mode(%d).String() = %q, want %q", int(m), got, want)
		}
	}
}

// letterSamples is a command line for every Letters entry, so that the
// table and the parser cannot drift apart: each must parse, or be
// refused, as its Status says.
var letterSamples = map[string][]string{
	"-A": args("-Ac"), "-B": args("-B8BITMIME"),
	"-bm": args("-bm"), "-bs": args("-bs"), "-bp": args("-bp"), "-bi": args("-bi"), "-bv": args("-bv a"),
	"-bh": args("-bh"), "-bH": args("-bH"), "-bd": args("-bd"), "-bD": args("-bD"), "-bt": args("-bt"),
	"-ba": args("-ba"), "-bC": args("-bC"), "-bP": args("-bP"), "-bz": args("-bz"), "-bl": args("-bl"),
	"-b<other>": args("-bX"), "-C": args("-C x"), "-c": args("-c"), "-D": args("-D x"), "-d": args("-d9"),
	"-e": args("-eq"), "-F": args("-F x"), "-f": args("-f x"), "-G": args("-G"), "-h": args("-h 3"),
	"-I": args("-I"), "-i": args("-i"), "-L": args("-L x"), "-M": args("-Mx"), "-m": args("-m"),
	"-N": args("-N never"), "-n": args("-n"), "-O IgnoreDots": args("-O IgnoreDots"), "-O<option>": args("-O X=y"),
	"-oi": args("-oi"), "-oe": args("-oem"), "-od": args("-odq"), "-oA": args("-oAx"), "-o<option>": args("-o7"),
	"-p": args("-p x"), "-Q": args("-Q x"), "-q": args("-q"), "-q<interval>": args("-q1h"),
	"-qI": args("-qIx"), "-qR": args("-qRx"), "-qS": args("-qSx"), "-q<other>": args("-qp"),
	"-R": args("-R full"), "-r": args("-r x"), "-s": args("-s"), "-T": args("-T"), "-t": args("-t"),
	"-U": args("-U"), "-V": args("-V x"), "-v": args("-v"), "-X": args("-X x"), "-x": args("-x"),
	"--": args("-- a"), "-": args("- a"), "--<word>": args("--word"),
	"-a -E -g -H -J -j -K -k -l -P -S -u -W -w -Y -y -Z -z": args("-a"),
}

func TestLettersTable(t *testing.T) {
	seen := map[string]bool{}
	for _, l := range Letters {
		if seen[l.Option] {
			t.Errorf("Letters: %s twice", l.Option)
		}
		seen[l.Option] = true
		if l.Status != "accepted" && l.Status != "ignored" && l.Status != "refused" {
			t.Errorf("Letters: %s has status %q", l.Option, l.Status)
		}
		if l.Meaning == "" {
			t.Errorf("Letters: %s has no meaning", l.Option)
		}
		sample, ok := letterSamples[l.Option]
		if !ok {
			t.Errorf("Letters: %s has no sample in the test", l.Option)
			continue
		}
		inv, err := Parse("sendmail", sample)
		var ue *UsageError
		switch {
		case l.Status == "refused" && !errors.As(err, &ue):
			t.Errorf("Letters: %s is refused but %q gives %+v, %v", l.Option, sample, inv, err)
		case l.Status != "refused" && err != nil:
			t.Errorf("Letters: %s is %s but %q gives %v", l.Option, l.Status, sample, err)
		case l.Status == "ignored" && l.Option != "-bh" && l.Option != "-bH" && len(inv.Ignored) == 0:
			t.Errorf("Letters: %s is ignored but %q does not list it in Ignored", l.Option, sample)
		}
	}
	for opt := range letterSamples {
		if !seen[opt] {
			t.Errorf("letterSamples has %s, which Letters lacks", opt)
		}
	}

	// Letter by letter: a letter is documented if and only if Parse knows
	// it, and the refused entry lists exactly the unknown ASCII letters.
	documented := map[byte]bool{}
	for _, l := range Letters {
		if len(l.Option) >= 2 && l.Option[0] == '-' && l.Option[1] != '-' && !strings.Contains(l.Option, " ") {
			documented[l.Option[1]] = true
		}
	}
	var unknown []string
	for c := byte('!'); c <= '~'; c++ {
		if c == '-' {
			continue
		}
		_, err := Parse("sendmail", []string{"-" + string(c), "v"})
		isUnknown := err != nil && strings.HasPrefix(err.Error(), "unknown option")
		if isUnknown == documented[c] {
			t.Errorf("letter %c: documented %v, unknown to Parse %v (%v)", c, documented[c], isUnknown, err)
		}
		if isUnknown && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			unknown = append(unknown, "-"+string(c))
		}
	}
	last := Letters[len(Letters)-1]
	got := strings.Fields(last.Option)
	// The table sorts them case-insensitively, upper case first.
	slices.SortFunc(unknown, func(a, b string) int {
		if c := strings.Compare(strings.ToLower(a), strings.ToLower(b)); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	if !reflect.DeepEqual(got, unknown) || last.Status != "refused" {
		t.Errorf("last Letters entry %q %s, want the unknown letters %q", last.Option, last.Status, unknown)
	}
}

func TestNamesTable(t *testing.T) {
	for _, n := range Names {
		inv, err := Parse(n.Name, nil)
		if n.Name == "smtpd" {
			if err == nil {
				t.Errorf("Names: smtpd accepted")
			}
			continue
		}
		if err != nil || inv.Interface != n.Name {
			t.Errorf("Names: %s gives %+v, %v", n.Name, inv, err)
		}
	}
}

// TestParseDoesNotAliasArgs: Recipients is a copy.
func TestParseDoesNotAliasArgs(t *testing.T) {
	a := []string{"-i", "x@y"}
	inv, err := Parse("sendmail", a)
	if err != nil {
		t.Fatal(err)
	}
	a[1] = "changed"
	if inv.Recipients[0] != "x@y" {
		t.Errorf("Recipients aliases the argument slice")
	}
}

// splitCommandLine turns a fuzzed string into argv: on NUL when it holds
// one (arguments may then hold blanks, CR and LF), else on spaces.
func splitCommandLine(s string) (name string, args []string) {
	sep := " "
	if strings.Contains(s, "\x00") {
		sep = "\x00"
	}
	argv := strings.Split(s, sep)
	return argv[0], argv[1:]
}

// fuzzSeeds are the command lines of the real callers and a few hostile
// ones, argv[0] first.
var fuzzSeeds = []string{
	"sendmail -t -i",
	"sendmail -t -i -fbounce@example.org",
	"sendmail -FCronDaemon -i -B8BITMIME -oem root",
	"sendmail -FCronDaemon -i -odi -oem -oi -t -f root",
	"sendmail -FAnacron -odi root",
	"sendmail -i -B 8BITMIME root",
	"sendmail -oem -oi -- a@b c@d",
	"sendmail -oem -oi -B8BITMIME -f me@x.org -N success,failure -R hdrs -- a@b",
	"sendmail -i a@example.org c@example.net",
	"sendmail -i -f from@example.org -- to@example.net",
	"sendmail -bs",
	"sendmail -bs -odb -oem",
	"sendmail -i -f <> -- user@example.org",
	"sendmail -t -froot@x",
	"send-mail -i -m -v -- a@b",
	"sendmail\x00-f\x00Alice <alice@example.org>\x00-F\x00Cron Daemon\x00--\x00a@b",
	"sendmail\x00-f\x00a@b\nRCPT TO:<x@y>\x00c@d",
	"sendmail -X /var/www/shell.php -OQueueDirectory=/tmp a@b",
	"sendmail -q2h30m -qRexample.org -qSalice -qI4Xk",
	"sendmail -tif addr -V +=",
	"mailq -v",
	"newaliases -oA/etc/aliases",
	"rmail -D uucp.example alice",
	"runq -q1h",
	"hoststat",
	"smtpd",
}

// FuzzParse: Parse never panics, is deterministic, returns only its two
// error types with one-line messages, and on success every field is
// within its documented range.
func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		name, args := splitCommandLine(line)
		inv, err := Parse(name, args)
		again, err2 := Parse(name, args)
		if !reflect.DeepEqual(inv, again) || fmt.Sprint(err) != fmt.Sprint(err2) {
			t.Fatalf("Parse is not deterministic: %+v %v / %+v %v", inv, err, again, err2)
		}
		if err != nil {
			checkFuzzError(t, inv, err)
			return
		}
		checkFuzzInvocation(t, inv, args)
	})
}

func checkFuzzError(t *testing.T, inv *Invocation, err error) {
	if inv != nil {
		t.Fatalf("Invocation %+v with error %v", inv, err)
	}
	var ue *UsageError
	var de *DataError
	switch {
	case errors.As(err, &ue):
		if ue.ExitCode() != 64 {
			t.Fatalf("usage error exit code %d", ue.ExitCode())
		}
	case errors.As(err, &de):
		if de.ExitCode() != 65 || !hasBreak(de.Value) {
			t.Fatalf("data error %+v", de)
		}
	default:
		t.Fatalf("error of type %T: %v", err, err)
	}
	if msg := err.Error(); msg == "" || strings.ContainsAny(msg, "\r\n\x00") || !utf8.ValidString(msg) {
		t.Fatalf("error message not one valid line: %q", msg)
	}
}

func checkFuzzInvocation(t *testing.T, inv *Invocation, args []string) {
	if !inv.Mode.Valid() {
		t.Fatalf("invalid mode %d", inv.Mode)
	}
	if !slices.Contains([]string{"sendmail", "mailq", "newaliases", "rmail", "runq", "hoststat", "purgestat"}, inv.Interface) {
		t.Fatalf("interface %q", inv.Interface)
	}
	clean := []string{inv.Sender, inv.FullName, inv.EnvelopeID}
	clean = append(clean, inv.Recipients...)
	clean = append(clean, inv.Notify...)
	for _, s := range clean {
		if hasBreak(s) {
			t.Fatalf("CR, LF or NUL in %q: %+v", s, inv)
		}
	}
	for _, w := range inv.Warnings {
		if w == "" || strings.ContainsAny(w, "\r\n\x00") || !utf8.ValidString(w) {
			t.Fatalf("warning not one valid line: %q", w)
		}
	}
	n := len(inv.Recipients)
	if n > len(args) || !slices.Equal(inv.Recipients, args[len(args)-n:]) {
		t.Fatalf("recipients %q are not the tail of %q", inv.Recipients, args)
	}
	if n == 0 && inv.Recipients != nil {
		t.Fatalf("empty non-nil Recipients")
	}
	switch inv.Mode {
	case ModeSMTP, ModeQueueList, ModeAliases, ModeQueueRun:
		if n > 0 {
			t.Fatalf("mode %v with recipients %q", inv.Mode, inv.Recipients)
		}
	}
	if strings.IndexByte("pmqwe", byte(inv.ErrorMode)) < 0 || inv.ErrorMode == 0 {
		t.Fatalf("error mode %q", inv.ErrorMode)
	}
	if !slices.Contains([]DeliveryMode{DeliveryDefault, DeliveryInteractive, DeliveryBackground, DeliveryQueue}, inv.Delivery) {
		t.Fatalf("delivery mode %q", inv.Delivery)
	}
	if !slices.Contains([]string{"", "7BIT", "8BITMIME"}, inv.Body) || !slices.Contains([]string{"", "FULL", "HDRS"}, inv.Return) {
		t.Fatalf("body %q, return %q", inv.Body, inv.Return)
	}
	if inv.Notify != nil && !slices.Equal(inv.Notify, []string{"never"}) {
		for _, v := range inv.Notify {
			if !slices.Contains([]string{"success", "failure", "delay"}, v) {
				t.Fatalf("notify %q", inv.Notify)
			}
		}
	}
	if len(inv.EnvelopeID) > 100 || strings.IndexFunc(inv.EnvelopeID, func(r rune) bool { return r < ' ' || r > '~' }) >= 0 {
		t.Fatalf("envelope id %q", inv.EnvelopeID)
	}
	if inv.NullSender && (inv.Sender != "" || !inv.SenderSet) || !inv.SenderSet && inv.Sender != "" {
		t.Fatalf("sender %q set %v null %v", inv.Sender, inv.SenderSet, inv.NullSender)
	}
	if inv.QueueInterval < 0 || inv.QueueInterval > maxInterval {
		t.Fatalf("queue interval %v", inv.QueueInterval)
	}
	for _, s := range inv.QueueSelectors {
		if strings.IndexByte("IRS", s.Kind) < 0 || s.Value == "" {
			t.Fatalf("selector %+v", s)
		}
	}
	if inv.Interface == "mailq" && (inv.Mode != ModeQueueList || n > 0) {
		t.Fatalf("mailq gives %+v", inv)
	}
}
