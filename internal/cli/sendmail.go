package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"github.com/handoff-mta/handoff/config"
	"github.com/handoff-mta/handoff/internal/mbox"
	"github.com/handoff-mta/handoff/internal/sendopt"
	"github.com/handoff-mta/handoff/message"
	"github.com/handoff-mta/handoff/queue"
	"github.com/handoff-mta/handoff/relay"
	"time"
)

// job is one sendmail invocation in the making.
type job struct {
	env  *Env
	inv  *sendopt.Invocation
	cfg  *config.Config
	addr addresser
	// sender is the envelope sender, "" for the null sender <>.
	sender string
	login  string // the real user's login name
	home   string
	// conns keeps relay connections open across the messages of a queue
	// run; nil (every message dials and quits) otherwise.
	conns *connCache
	// auth lists the relays a queue run no longer connects to after a
	// 535; nil outside queue runs.
	auth *authBlocks
	// log receives the delivery log (nil: none); logID is the queue id
	// of the item being delivered, "" at submission.
	log   io.Writer
	logID string
	// ahead is the message a queue run's worker sends after the current
	// one, whose envelope can go out ahead (see aheadOf); nil otherwise.
	ahead *nextMessage
}

// nextMessage is the next message a worker will send to a relay: its
// envelope goes out behind the current message's data
// (relay.SendOptions.Next), saving a round trip per message.
type nextMessage struct {
	relay string
	from  string
	rcpts []string
	so    *relay.SendOptions
}

// loadConfig reads the config named by -C, HANDOFF_CONFIG or the
// default path.
func loadConfig(env *Env, inv *sendopt.Invocation) (*config.Config, error) {
	path := inv.ConfigFile
	if path == "" {
		path = env.Getenv("HANDOFF_CONFIG")
	}
	return config.Load(path)
}

// newJob loads the config and decides the envelope sender.
func newJob(env *Env, inv *sendopt.Invocation) (*job, int) {
	cfg, err := loadConfig(env, inv)
	if err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(env.Stderr, "%s: %s\n", inv.Name, line)
		}
		return nil, exConfig
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintf(env.Stderr, "%s: warning: %s\n", inv.Name, w)
	}
	j := &job{env: env, inv: inv, cfg: cfg, addr: addresser{cfg}, log: logWriter(env, cfg, inv.Verbose > 0)}
	if u, err := env.User(); err == nil {
		j.login, j.home = u.Username, u.HomeDir
	}
	if j.login == "" {
		j.login = "nobody"
	}
	switch {
	case cfg.Sender != "":
		j.sender = j.addr.qualify(cfg.Sender)
	case inv.NullSender:
		j.sender = ""
	case inv.SenderSet:
		j.sender = j.addr.qualify(inv.Sender)
	default:
		j.sender = j.addr.qualify(j.login)
	}
	return j, exOK
}

// rewriteFrom is the address that replaces From: (config sender with
// rewrite_from), or "".
func (j *job) rewriteFrom() string {
	if j.cfg.Sender != "" && j.cfg.RewriteFrom {
		return j.sender
	}
	return ""
}

// fullName is -F, then $NAME, then the passwd full name.
func (j *job) fullName() string {
	if j.inv.FullName != "" {
		return j.inv.FullName
	}
	if n := j.env.Getenv("NAME"); n != "" {
		return n
	}
	if u, err := j.env.User(); err == nil {
		name, _, _ := strings.Cut(u.Name, ",")
		return name
	}
	return ""
}

// deliverMode is the sendmail -bm path: read, prepare, route, deliver.
func deliverMode(env *Env, inv *sendopt.Invocation) int {
	j, code := newJob(env, inv)
	if j == nil {
		salvage(env, inv)
		return code
	}
	// Recipients on the command line are checked before the message is
	// read, so a usage error costs the caller nothing.
	var argRcpts []string
	for _, a := range inv.Recipients {
		list, err := message.ParseAddressList(a)
		if err != nil {
			fmt.Fprintf(env.Stderr, "%s: bad recipient %q: %v\n", inv.Name, a, err)
			io.Copy(io.Discard, env.Stdin)
			return exDataErr
		}
		argRcpts = append(argRcpts, list...)
	}
	if len(argRcpts) == 0 && !inv.ExtractRecipients {
		fmt.Fprintf(env.Stderr, "%s: no recipients given (name them as arguments, or use -t to read them from the message)\n", inv.Name)
		io.Copy(io.Discard, env.Stdin)
		return exUsage
	}
	msg, err := message.Prepare(env.Stdin, message.Options{
		IgnoreDots:        inv.IgnoreDots,
		ExtractRecipients: inv.ExtractRecipients,
		Sender:            j.sender,
		FullName:          j.fullName(),
		Hostname:          j.cfg.Hostname,
		Qualify:           j.addr.headerAddress,
		RewriteFrom:       j.rewriteFrom(),
		Now:               env.Now,
		Rand:              env.Rand,
	})
	if err != nil {
		var me *message.Error
		if errors.As(err, &me) {
			fmt.Fprintf(env.Stderr, "%s: %v\n", inv.Name, err)
			return exDataErr
		}
		fmt.Fprintf(env.Stderr, "%s: reading the message: %v\n", inv.Name, err)
		return exIOErr
	}
	defer msg.Close()
	if msg.Drained > 0 {
		fmt.Fprintf(env.Stderr, "%s: warning: %d bytes after the lone \".\" line were discarded (use -i to keep them)\n", inv.Name, msg.Drained)
	}
	rcpts := append(argRcpts, msg.Recipients...)
	return j.deliver(msg, rcpts)
}

// deliver routes and delivers (or queues) a prepared message and reports
// the outcome; it is shared by -bm and -bs.
func (j *job) deliver(msg *message.Message, rcpts []string) int {
	expanded, code := j.expandAll(rcpts)
	if code != exOK {
		return code
	}
	if len(expanded) == 0 {
		fmt.Fprintf(j.env.Stderr, "%s: no recipients: none on the command line and none in To, Cc or Bcc\n", j.inv.Name)
		j.deadLetter(msg)
		return exUsage
	}
	return j.report(msg, j.submit(msg, expanded))
}

// expandAll maps the recipients through the aliases and de-duplicates
// them.
func (j *job) expandAll(rcpts []string) ([]string, int) {
	var expanded []string
	for _, r := range rcpts {
		list, err := j.addr.expand(r)
		if err != nil {
			fmt.Fprintf(j.env.Stderr, "%s: %v\n", j.inv.Name, err)
			return nil, exConfig
		}
		expanded = append(expanded, list...)
	}
	return dedupe(expanded), exOK
}

// outcome is what happened to each recipient.
type outcome struct {
	rcpt  string
	via   string // relay name or "local"
	reply *relay.Reply
	err   error
	// server and tls describe the connection, for the log.
	server, tls string
}

// delivery is one message to deliver and its envelope: the sender, the
// message (read from its start as often as failover needs), and the
// parameters the relay declares. A submission builds it from the
// prepared message and the command line (job.submission), the queue
// runner from a queue item (itemDeliveries); both go through job.send,
// so routing and failover are the same for both.
type delivery struct {
	sender string // "" for the null sender <>
	// arrival is when the message came in, for the log's delay.
	arrival time.Time
	open    func() (io.Reader, error)
	size    int64
	// has8Bit sends BODY=8BITMIME; body7Bit (-B given, ASCII content)
	// sends BODY=7BIT; smtpUTF8 asks for SMTPUTF8.
	has8Bit, body7Bit, smtpUTF8 bool
	// ret and envID are the DSN RET and ENVID; notify (upper case) and
	// orcpt (by recipient) the RCPT parameters.
	ret, envID string
	notify     []string
	orcpt      map[string]string
}

// submission is the delivery of a message being submitted.
func (j *job) submission(msg *message.Message) *delivery {
	return &delivery{
		arrival:  j.env.Now(),
		sender:   j.sender,
		open:     func() (io.Reader, error) { return msg.Reader() },
		size:     msg.Size,
		has8Bit:  msg.Has8Bit,
		body7Bit: j.inv.Body != "",
		smtpUTF8: msg.NeedsSMTPUTF8,
		ret:      j.inv.Return,
		envID:    j.inv.EnvelopeID,
		notify:   notifyList(j.inv.Notify),
	}
}

// notifyList is -N in the queue's form: upper case, SUCCESS, FAILURE,
// DELAY in that order, or NEVER alone; nil when not given.
func notifyList(n []string) []string {
	if len(n) == 0 {
		return nil
	}
	var out []string
	for _, want := range []string{queue.NotifyNever, queue.NotifySuccess, queue.NotifyFailure, queue.NotifyDelay} {
		for _, v := range n {
			if strings.EqualFold(v, want) {
				out = append(out, want)
				break
			}
		}
	}
	if len(out) > 1 && out[0] == queue.NotifyNever {
		out = out[:1]
	}
	return out
}

// route is a group of recipients with the same list of candidate relays.
type route struct {
	relays []*config.Relay // failover order; empty for local delivery without a config
	rcpts  []string
}

// routeAll decides where each recipient goes. Without any relay in the
// config, local names go to their mailbox and anything else is an error
// naming the file to create.
func (j *job) routeAll(sender string, rcpts []string) ([]*route, []outcome) {
	var routes []*route
	var failed []outcome
	byKey := map[string]*route{}
	for _, r := range rcpts {
		_, domain := split(r)
		var relays []*config.Relay
		if len(j.cfg.Relays) > 0 {
			relays = j.cfg.Routes(sender, strings.ToLower(domain))
			if len(relays) == 0 {
				failed = append(failed, outcome{rcpt: r, err: errorf(exUnavailable,
					fmt.Sprintf("no [[relay]] in %s matches recipient domain %q and sender %q", j.cfg.Path, domain, sender))})
				continue
			}
		} else if !j.addr.isLocalDomain(domain) {
			failed = append(failed, outcome{rcpt: r, err: errorf(exConfig,
				fmt.Sprintf("no relay configured for %s: create %s with a [[relay]] (see handoff.toml(5))", domain, config.DefaultPath))})
			continue
		}
		key := ""
		for _, rl := range relays {
			key += rl.Name + "\x00"
		}
		rt := byKey[key]
		if rt == nil {
			rt = &route{relays: relays}
			byKey[key] = rt
			routes = append(routes, rt)
		}
		rt.rcpts = append(rt.rcpts, r)
	}
	return routes, failed
}

// send delivers d to every route, trying each route's relays in order for
// the recipients that failed temporarily. It returns one outcome per
// recipient.
func (j *job) send(ctx context.Context, d *delivery, rcpts []string) []outcome {
	routes, out := j.routeAll(d.sender, rcpts)
	if len(routes) != 1 || len(out) > 0 {
		j.ahead = nil // not one SMTP transaction (see attemptItem)
	}
	for _, rt := range routes {
		if len(rt.relays) == 0 {
			out = append(out, j.sendLocal(d, rt.rcpts, "local", j.env.MailSpool)...)
			continue
		}
		pending := rt.rcpts
		var last []outcome
		for _, rl := range rt.relays {
			var res []outcome
			if rl.IsMbox() {
				res = j.sendLocal(d, pending, rl.Name, j.mboxDir(rl))
			} else {
				res = j.sendRelay(ctx, d, pending, rl)
			}
			pending = pending[:0:0]
			last = last[:0]
			for _, o := range res {
				// The next relay gets every recipient this one did not
				// refuse for good (a 535 or a dead relay included); an
				// unknown user stays failed.
				if o.err != nil && retryLater(o.err) {
					pending = append(pending, o.rcpt)
					last = append(last, o)
				} else {
					out = append(out, o)
				}
			}
			if len(pending) == 0 {
				break
			}
		}
		out = append(out, last...)
	}
	j.logOutcomes(d, out)
	return out
}

// sendRelay delivers to one relay over SMTP/SMTPS/LMTP.
func (j *job) sendRelay(ctx context.Context, d *delivery, rcpts []string, rl *config.Relay) []outcome {
	var server, tls string
	fail := func(err error) []outcome {
		out := make([]outcome, len(rcpts))
		for i, r := range rcpts {
			out[i] = outcome{rcpt: r, via: rl.Name, err: err, reply: relay.ReplyOf(err), server: server, tls: tls}
		}
		return out
	}
	opts, cred, err := j.cfg.RelayOptionsContext(ctx, rl)
	if err != nil {
		msg := err.Error()
		if errors.Is(err, fs.ErrPermission) {
			// A user of a system-mode host, without the daemon: the
			// secrets are the daemon's.
			msg = fmt.Sprintf("%v: user %s may not read the relay's secret; on this host the handoff daemon sends mail: start handoff.socket (systemctl start handoff.socket)", err, j.login)
		}
		return fail(errorf(relayOptionsExit(err), msg))
	}
	opts.Auth = cred
	server = opts.Address
	if j.inv.Verbose > 0 {
		opts.Debug = j.env.Stderr
	}
	if err := j.auth.blocked(rl.Name); err != nil {
		return fail(err)
	}
	var unprobed bool
	c, err := j.auth.connect(ctx, j, rl.Name, func() (c *relay.Client, err error) {
		c, unprobed, err = j.conns.get(ctx, rl.Name, opts)
		return c, err
	})
	if err != nil {
		return fail(err)
	}
	server, tls = c.Server(), c.TLS()
	var sendErr error
	defer func() { j.conns.put(ctx, rl.Name, c, sendErr) }()
	so := sendOptions(d)
	so.NoPipelining = !rl.Pipelining
	if n := j.ahead; n != nil && n.relay == rl.Name && !j.conns.lastUse(rl.Name) {
		so.Next = &relay.NextMessage{From: n.from, To: n.rcpts, Options: n.so}
	}
	res, err := j.sendOnce(ctx, c, d, rcpts, so)
	if unprobed && goneBeforeSending(err) {
		// The cached connection had been closed by the server: the
		// message goes over a new one.
		j.verbosef("%s: the connection was closed (%v); connecting again", rl.Name, err)
		var nc *relay.Client
		nc, err = j.auth.connect(ctx, j, rl.Name, func() (*relay.Client, error) { return j.conns.redial(ctx, rl.Name, c, opts) })
		if err != nil {
			// c is the old connection, closed: put drops it.
			sendErr = err
			return fail(err)
		}
		c = nc
		server, tls = c.Server(), c.TLS()
		res, err = j.sendOnce(ctx, c, d, rcpts, so)
	}
	sendErr = err
	if res == nil {
		return fail(err)
	}
	out := make([]outcome, len(res.Recipients))
	for i, rr := range res.Recipients {
		out[i] = outcome{rcpt: rr.Address, via: rl.Name, reply: rr.Reply, err: rr.Err, server: server, tls: tls}
		if rr.Err != nil && rr.Reply == nil {
			out[i].reply = relay.ReplyOf(rr.Err)
		}
	}
	return out
}

// sendOptions are the MAIL and RCPT parameters of d.
func sendOptions(d *delivery) *relay.SendOptions {
	so := &relay.SendOptions{Mail: relay.MailOptions{Size: d.size, UTF8: d.smtpUTF8}}
	// BODY follows the content, not -B: cron always says -B8BITMIME, and
	// an ASCII message must not fail at a relay without 8BITMIME.
	switch {
	case d.has8Bit:
		so.Mail.Body = relay.Body8BitMIME
	case d.body7Bit:
		so.Mail.Body = relay.Body7Bit
	}
	so.Mail.Return = relay.DSNReturn(d.ret)
	so.Mail.EnvelopeID = d.envID
	for _, n := range d.notify {
		so.Rcpt.Notify = append(so.Rcpt.Notify, relay.DSNNotify(n))
	}
	so.OriginalRecipients = d.orcpt
	return so
}

// aheadOf returns the next message of a worker's batch whose envelope
// can go out ahead of it: the first item of rest to be delivered, when
// its remaining recipients make one delivery to one route whose first
// relay speaks SMTP (nil otherwise).
func (j *job) aheadOf(rest []batchItem) *nextMessage {
	for _, bi := range rest {
		if !bi.deliver {
			continue
		}
		dels := itemDeliveries(bi.Item)
		if len(dels) != 1 {
			return nil
		}
		d := dels[0]
		routes, failed := j.routeAll(d.sender, d.rcpts)
		if len(failed) > 0 || len(routes) != 1 || len(routes[0].relays) == 0 || routes[0].relays[0].IsMbox() {
			return nil
		}
		rl := routes[0].relays[0]
		if !rl.Pipelining {
			return nil
		}
		return &nextMessage{relay: rl.Name, from: d.sender, rcpts: routes[0].rcpts, so: sendOptions(d.delivery)}
	}
	return nil
}

// sendOnce sends the message of d over c.
func (j *job) sendOnce(ctx context.Context, c *relay.Client, d *delivery, rcpts []string, so *relay.SendOptions) (*relay.Result, error) {
	r, err := d.open()
	if err != nil {
		return nil, errorf(exIOErr, err.Error())
	}
	defer closeReader(r)
	return c.SendMail(ctx, d.sender, rcpts, r, so)
}

// mboxDir is the mailbox directory of an mbox: relay: its own, or the
// spool (/var/mail, or the test's) when it names the default.
func (j *job) mboxDir(rl *config.Relay) string {
	if d := rl.MboxDir(); d != "" && d != config.DefaultMailDir {
		return d
	}
	return j.env.MailSpool
}

// sendLocal appends the message to each local recipient's mailbox in
// dir.
func (j *job) sendLocal(d *delivery, rcpts []string, via, dir string) []outcome {
	var out []outcome
	for _, rc := range rcpts {
		local, _ := split(rc)
		o := outcome{rcpt: rc, via: via}
		mb, err := mbox.ForUser(dir, local)
		switch {
		case errors.Is(err, mbox.ErrNoSuchUser):
			o.err = errorf(exNoUser, fmt.Sprintf("no such local user %q", local))
		case err != nil:
			o.err = errorf(exUnavailable, err.Error())
		default:
			if err := mbox.CanWrite(mb); err != nil {
				o.err = errorf(exNoPerm, err.Error())
				break
			}
			r, err := d.open()
			if err != nil {
				o.err = errorf(exIOErr, err.Error())
				break
			}
			err = mbox.Deliver(mb, d.sender, r, j.env.Now())
			closeReader(r)
			if err != nil {
				code := exCantCreat
				if errors.Is(err, mbox.ErrLocked) {
					code = exTempFail // someone holds the mailbox: try later
				}
				o.err = errorf(code, err.Error())
			}
		}
		out = append(out, o)
	}
	return out
}

// report prints one line per failed recipient (and, with -v, per queued
// one), keeps a message that was neither delivered nor queued in
// dead.letter, mails errors back with -oem, and returns the exit status:
// 0 when every recipient got the message or is queued.
func (j *job) report(msg *message.Message, s *submitted) int {
	var failed []outcome
	delivered := 0
	for _, o := range s.out {
		if o.err == nil {
			delivered++
			continue
		}
		failed = append(failed, o)
	}
	if j.inv.Verbose > 0 && s.id != "" {
		j.reportQueued(s)
	}
	if len(failed) == 0 && s.qerr == nil {
		return exOK
	}
	code := 0
	for _, o := range failed {
		if j.inv.ErrorMode != 'q' {
			fmt.Fprintf(j.env.Stderr, "%s: %s: %v\n", j.inv.Name, o.rcpt, o.err)
		}
		c := exitFor(o.err)
		code = worse(code, c)
	}
	if s.qerr != nil {
		// Neither delivered nor queued: the caller must know, whatever
		// the other recipients did.
		// A temporary delivery failure that could not be queued stays
		// 75 (the caller may retry); with nothing tried it is the
		// queue's own code.
		j.queueError(s.qerr)
		code = worse(code, queueExit(s.qerr))
	}
	if delivered+len(s.queued) == 0 || s.qerr != nil {
		j.deadLetter(msg)
	}
	if len(failed) > 0 && (j.inv.ErrorMode == 'm' || j.inv.ErrorMode == 'w' || j.inv.ErrorMode == 'e') {
		if j.mailErrors(msg, failed) && j.inv.ErrorMode == 'e' {
			return exOK
		}
	}
	return code
}

// worse picks the exit status to report when recipients failed in
// different ways: a temporary failure wins (the caller may retry), then
// the more specific permanent codes.
func worse(a, b int) int {
	rank := func(c int) int {
		switch c {
		case 0:
			return 0
		case exTempFail:
			return 100
		case exConfig:
			return 90
		case exNoPerm:
			return 80
		case exUnavailable:
			return 50
		case exNoUser:
			return 40
		}
		return 60
	}
	if rank(b) > rank(a) {
		return b
	}
	return a
}

// deadLetter appends an undelivered message to ~/dead.letter, as
// sendmail does, unless the input came from a terminal.
func (j *job) deadLetter(msg *message.Message) {
	if j.home == "" || j.env.StdinIsTerminal() {
		return
	}
	r, err := msg.Reader()
	if err != nil {
		return
	}
	path, err := mbox.DeadLetter(j.home, j.sender, r, j.env.Now())
	if err != nil {
		fmt.Fprintf(j.env.Stderr, "%s: could not save the message to dead.letter: %v\n", j.inv.Name, err)
		return
	}
	fmt.Fprintf(j.env.Stderr, "%s: message saved in %s\n", j.inv.Name, path)
}

// mailErrors sends the sender a report of the failed recipients (-oem).
// It reports whether the report was sent.
func (j *job) mailErrors(orig *message.Message, failed []outcome) bool {
	if j.sender == "" {
		return false
	}
	var b strings.Builder
	fmt.Fprintf(&b, "From: Mail Delivery System <MAILER-DAEMON@%s>\n", j.cfg.Hostname)
	fmt.Fprintf(&b, "To: %s\n", j.sender)
	fmt.Fprintf(&b, "Subject: Undelivered Mail Returned to Sender\n")
	fmt.Fprintf(&b, "Auto-Submitted: auto-replied\n\n")
	fmt.Fprintf(&b, "Your message could not be delivered to these recipients:\n\n")
	for _, o := range failed {
		fmt.Fprintf(&b, "  %s: %v\n", o.rcpt, o.err)
	}
	b.WriteString("\nThe headers of your message follow.\n\n")
	b.Write(orig.Header)
	bounce, err := message.Prepare(strings.NewReader(b.String()), message.Options{
		IgnoreDots: true,
		Sender:     "",
		Hostname:   j.cfg.Hostname,
		Qualify:    j.addr.headerAddress,
		Now:        j.env.Now,
		Rand:       j.env.Rand,
	})
	if err != nil {
		return false
	}
	defer bounce.Close()
	list, err := j.addr.expand(j.sender)
	if err != nil {
		return false
	}
	// The report travels with the submission's parameters (-B, -R, -V,
	// -N), as it always has, but from the null sender <>, so that it
	// never loops.
	d := j.submission(bounce)
	d.sender = ""
	for _, o := range j.send(context.Background(), d, list) {
		if o.err != nil {
			fmt.Fprintf(j.env.Stderr, "%s: could not mail the error report to %s: %v\n", j.inv.Name, j.sender, o.err)
			return false
		}
	}
	return true
}

// salvage keeps a message that cannot be sent because the configuration
// is broken: it is read and appended to ~/dead.letter, prepared with
// built-in settings, so a typo in the config does not lose cron's output.
func salvage(env *Env, inv *sendopt.Invocation) {
	u, err := env.User()
	if err != nil || u.HomeDir == "" || env.StdinIsTerminal() {
		io.Copy(io.Discard, env.Stdin)
		return
	}
	// Without a config there is no trustworthy host name; the copy is for
	// the user to send again, so "localhost" will do.
	msg, err := message.Prepare(env.Stdin, message.Options{IgnoreDots: inv.IgnoreDots, Sender: u.Username, Hostname: "localhost", Now: env.Now, Rand: env.Rand})
	if err != nil {
		io.Copy(io.Discard, env.Stdin)
		return
	}
	defer msg.Close()
	j := &job{env: env, inv: inv, home: u.HomeDir, sender: u.Username}
	j.deadLetter(msg)
}

// closeReader closes a message reader that holds a file (a queue item's
// body); in-memory readers need nothing.
func closeReader(r io.Reader) {
	if c, ok := r.(io.Closer); ok {
		c.Close()
	}
}
