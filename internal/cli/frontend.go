package cli

// The front end of system mode: when "handoff daemon" listens on
// [daemon] socket, a submission is handed to it over LMTP instead of
// being delivered or queued by this process, which then needs neither
// the relay secrets nor write access to the queue.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/handoff-mta/handoff/internal/sendopt"
	"github.com/handoff-mta/handoff/message"
	"github.com/handoff-mta/handoff/queue"
	"github.com/handoff-mta/handoff/relay"
)

// modeParam is the MAIL FROM parameter by which the front end says how
// the submission uses the queue: "i" (-odi: deliver now and answer with
// the outcome), "q" (-odq: queue only) or "b" (the default: queue,
// answer, then deliver).
const modeParam = "XHANDOFF-MODE"

// daemonTimeout bounds each step of the dialogue with the daemon; an
// -odi submission waits for the relay, so the data step gets the relay's
// own data timeout on top.
const daemonTimeout = 30 * time.Second

// useDaemon reports whether a daemon answers on the socket: it must
// exist and be a socket. The check is a stat, so standalone hosts pay
// nothing for it.
func (j *job) useDaemon() bool {
	if j.env.Getenv("HANDOFF_STANDALONE") == "1" {
		return false
	}
	st, err := os.Stat(j.cfg.Daemon.Socket)
	return err == nil && st.Mode()&os.ModeSocket != 0
}

// daemonMode is the modeParam value for this submission.
func (j *job) daemonMode() string {
	switch j.inv.Delivery {
	case sendopt.DeliveryQueue:
		return "q"
	case sendopt.DeliveryInteractive:
		return "i"
	}
	return "b"
}

// submitDaemon hands the message to the daemon. It returns nil when no
// daemon is listening (the caller then works standalone). Otherwise
// every recipient is accounted for: queued (the daemon's queue id in
// s.id), sent (-odi), or failed with the daemon's reply; when the
// daemon went away before it answered, every recipient failed
// temporarily and nothing is queued, so the message is saved and the
// caller hears 75.
func (j *job) submitDaemon(msg *message.Message, rcpts []string) *submitted {
	if !j.useDaemon() {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*daemonTimeout)
	defer cancel()
	c, err := j.dialDaemon(ctx, relay.Timeouts{
		Connect: daemonTimeout, Greeting: daemonTimeout, Hello: daemonTimeout,
		Mail: daemonTimeout, Rcpt: daemonTimeout, DataInit: daemonTimeout,
		DataBlock: daemonTimeout, DataDone: 10 * daemonTimeout, Quit: daemonTimeout,
	})
	if err != nil {
		if isAbsent(err) {
			// A socket file with nobody behind it: standalone.
			return nil
		}
		return j.daemonFailed(rcpts, fmt.Errorf("the handoff daemon at %s: %v", j.cfg.Daemon.Socket, err))
	}
	defer c.Hangup(ctx)
	r, err := msg.Reader()
	if err != nil {
		return &submitted{qerr: err}
	}
	d := j.submission(msg)
	so := &relay.SendOptions{Mail: relay.MailOptions{Size: d.size, UTF8: d.smtpUTF8, Return: relay.DSNReturn(d.ret), EnvelopeID: d.envID,
		Extra: []string{modeParam + "=" + j.daemonMode()}}}
	if d.has8Bit {
		so.Mail.Body = relay.Body8BitMIME
	}
	for _, n := range d.notify {
		so.Rcpt.Notify = append(so.Rcpt.Notify, relay.DSNNotify(n))
	}
	res, err := c.SendMail(ctx, j.sender, rcpts, r, so)
	s := &submitted{}
	if res == nil && err != nil && relay.ReplyOf(err) != nil && !relay.IsTemporary(err) {
		// A refusal for good before the data (a message over the
		// daemon's max_message_size, a sender it refuses): every
		// recipient failed with it.
		for _, rc := range rcpts {
			s.out = append(s.out, outcome{rcpt: rc, via: "daemon", reply: relay.ReplyOf(err), err: err})
		}
		return s
	}
	if res == nil || errors.Is(err, relay.ErrOutcomeUnknown) || errors.Is(err, relay.ErrServerDisconnected) {
		if err == nil {
			err = errors.New("no reply")
		}
		what := "did not take the message"
		if errors.Is(err, relay.ErrOutcomeUnknown) {
			what = "went away before it confirmed the message (it may be queued there)"
		}
		return j.daemonFailed(rcpts, fmt.Errorf("the handoff daemon at %s %s: %v", j.cfg.Daemon.Socket, what, err))
	}
	for _, rr := range res.Recipients {
		if rr.Err != nil {
			s.out = append(s.out, outcome{rcpt: rr.Address, via: "daemon", reply: rr.Reply, err: rr.Err})
			continue
		}
		text := ""
		if rr.Reply != nil {
			text = rr.Reply.Text()
		}
		if _, after, ok := strings.Cut(text, "queued as "); ok {
			id, reason, _ := strings.Cut(after, ": ")
			s.id = id
			var qerr error
			if reason != "" {
				qerr = errors.New(reason)
			}
			s.queued = append(s.queued, outcome{rcpt: rr.Address, err: qerr})
			continue
		}
		s.out = append(s.out, outcome{rcpt: rr.Address, via: "daemon", reply: rr.Reply})
	}
	if s.id != "" {
		j.verbosef("queued as %s by the handoff daemon", s.id)
	}
	return s
}

// daemonFailed accounts every recipient as failed temporarily.
func (j *job) daemonFailed(rcpts []string, err error) *submitted {
	s := &submitted{}
	for _, r := range rcpts {
		s.out = append(s.out, outcome{rcpt: r, via: "daemon", err: errorf(exTempFail, err.Error())})
	}
	return s
}

// isAbsent reports whether a dial failed because nothing listens.
func isAbsent(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, fs.ErrNotExist)
}

// dialDaemon connects to the daemon's socket (LMTP), with -v showing
// the dialogue.
func (j *job) dialDaemon(ctx context.Context, t relay.Timeouts) (*relay.Client, error) {
	opts := relay.Options{Address: j.cfg.Daemon.Socket, Network: "unix", LMTP: true, LocalName: "localhost", Timeouts: t}
	if j.inv.Verbose > 0 {
		opts.Debug = j.env.Stderr
	}
	return relay.Dial(ctx, opts)
}

// replyData decodes what the daemon sends in base64 lines between the
// first line of a reply and its last (see base64Lines).
func replyData(r *relay.Reply) ([]byte, error) {
	if len(r.Lines) < 2 {
		return nil, errors.New("no data in the reply")
	}
	var enc strings.Builder
	for _, l := range r.Lines[1 : len(r.Lines)-1] {
		enc.WriteString(strings.TrimPrefix(l, "2.0.0 "))
	}
	return base64.StdEncoding.DecodeString(enc.String())
}

// listViaDaemon asks the daemon for the caller's queue items (XQUEUE
// LIST, see submission.Command), for users who may not read the queue.
func (j *job) listViaDaemon() ([]queue.Summary, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*daemonTimeout)
	defer cancel()
	c, err := j.dialDaemon(ctx, relay.Timeouts{})
	if err != nil {
		return nil, fmt.Errorf("the handoff daemon at %s: %v", j.cfg.Daemon.Socket, err)
	}
	defer c.Hangup(ctx)
	items := []queue.Summary{}
	after := ""
	for {
		r, err := c.Docmd(ctx, strings.TrimSpace("XQUEUE LIST "+after))
		if err != nil {
			return nil, fmt.Errorf("the handoff daemon at %s: %v", j.cfg.Daemon.Socket, err)
		}
		if r.Code != 250 {
			return nil, fmt.Errorf("the handoff daemon at %s refused the listing: %s", j.cfg.Daemon.Socket, r)
		}
		data, err := replyData(r)
		var page []queue.Summary
		if err == nil {
			err = json.Unmarshal(data, &page)
		}
		if err != nil {
			return nil, fmt.Errorf("the handoff daemon at %s sent a listing that does not decode: %v", j.cfg.Daemon.Socket, err)
		}
		for i := range page {
			if page[i].Problem != "" {
				page[i].Err = errors.New(page[i].Problem)
			}
		}
		items = append(items, page...)
		last := strings.TrimPrefix(r.Lines[len(r.Lines)-1], "2.0.0 ")
		id, more := strings.CutPrefix(last, "MORE ")
		if !more || !queue.ValidID(id) {
			return items, nil
		}
		after = id
	}
}

// queueViaDaemon runs "handoff queue show|delete|hold|release|flush" for
// a user in system mode, through the daemon (XQUEUE; see
// submission.itemCommand), on the user's own items; flush without ids
// flushes every one of them. It prints what the commands of root print
// and returns the exit status.
func (j *job) queueViaDaemon(cmd string, ids []string) int {
	if cmd == "flush" && len(ids) == 0 {
		items, err := j.listViaDaemon()
		if err != nil {
			j.warnf("%v", err)
			return exTempFail
		}
		for _, it := range items {
			if !it.Held {
				ids = append(ids, it.ID)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	c, err := j.dialDaemon(ctx, relay.Timeouts{Command: 20 * time.Minute})
	if err != nil {
		j.warnf("the handoff daemon at %s: %v", j.cfg.Daemon.Socket, err)
		return exTempFail
	}
	defer c.Hangup(ctx)
	code := exOK
	for _, id := range ids {
		if !queue.ValidID(id) {
			j.warnf("%s: no such queue item", id)
			code = worse(code, exUnavailable)
			continue
		}
		r, err := c.Docmd(ctx, "XQUEUE "+strings.ToUpper(cmd)+" "+id)
		if err != nil {
			j.warnf("the handoff daemon at %s: %v", j.cfg.Daemon.Socket, err)
			return worse(code, exTempFail)
		}
		text := strings.Join(r.Lines, "\n")
		switch {
		case r.Code == 250 && cmd == "show":
			data, err := replyData(r)
			if err != nil {
				j.warnf("%s: the daemon's answer does not decode: %v", id, err)
				code = worse(code, exProtocol)
				continue
			}
			j.env.Stdout.Write(data)
		case r.Code == 250:
			if cmd != "flush" {
				fmt.Fprintf(j.env.Stdout, "%s\n", strings.TrimPrefix(text, r.Enhanced.String()+" "))
			}
		case r.Code/100 == 5:
			j.warnf("%s", strings.TrimPrefix(text, r.Enhanced.String()+" "))
			code = worse(code, exUnavailable)
		default:
			j.warnf("%s", strings.TrimPrefix(text, r.Enhanced.String()+" "))
			code = worse(code, exTempFail)
		}
	}
	return code
}
