package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/handoff-mta/handoff/internal/sendopt"
	"github.com/handoff-mta/handoff/internal/smtpin"
	"github.com/handoff-mta/handoff/message"
)

// smtpMode is -bs: an SMTP dialogue on stdin/stdout (Symfony, Laravel,
// Alpine), each message going through the same preparation, routing and
// delivery as the command line. The exit status is 0 when the session
// ended with QUIT, whatever happened to the messages: each got its own
// reply.
func smtpMode(env *Env, inv *sendopt.Invocation) int {
	j, code := newJob(env, inv)
	if j == nil {
		fmt.Fprintf(env.Stdout, "421 4.3.0 %s: configuration error, see stderr\r\n", "handoff")
		return code
	}
	srv := &smtpin.Server{
		Hostname: j.cfg.Hostname,
		Handler:  &smtpHandler{j: j},
	}
	if err := srv.Serve(env.Stdin, env.Stdout); err != nil {
		fmt.Fprintf(env.Stderr, "%s: SMTP session: %v\n", inv.Name, err)
		return exProtocol
	}
	return exOK
}

// smtpHandler feeds -bs messages into the job.
type smtpHandler struct{ j *job }

func (h *smtpHandler) CheckSender(from string) *smtpin.Reply {
	if from == "" {
		return nil
	}
	if _, err := message.ParseAddressList(from); err != nil {
		return &smtpin.Reply{Code: 553, Text: "5.1.7 bad sender address: " + oneLine(err.Error())}
	}
	return nil
}

func (h *smtpHandler) CheckRecipient(to string) *smtpin.Reply {
	list, err := message.ParseAddressList(to)
	if err != nil || len(list) != 1 {
		return &smtpin.Reply{Code: 553, Text: "5.1.3 bad recipient address"}
	}
	return nil
}

func (h *smtpHandler) Deliver(envl smtpin.Envelope, data io.Reader) smtpin.Reply {
	j := *h.j // a copy per message: the sender differs
	j.sender = ""
	if !envl.NullSender {
		j.sender = j.addr.qualify(envl.From)
	}
	if j.cfg.Sender != "" {
		j.sender = j.cfg.Sender
	}
	msg, err := message.Prepare(data, message.Options{
		IgnoreDots:  true,
		Sender:      j.sender,
		FullName:    j.fullName(),
		Hostname:    j.cfg.Hostname,
		Qualify:     j.addr.headerAddress,
		RewriteFrom: j.rewriteFrom(),
		Now:         j.env.Now,
		Rand:        j.env.Rand,
	})
	if err != nil {
		io.Copy(io.Discard, data)
		return smtpin.Reply{Code: 554, Text: "5.6.0 " + oneLine(err.Error())}
	}
	defer msg.Close()
	var rcpts []string
	for _, r := range envl.To {
		list, err := j.addr.expand(r)
		if err != nil {
			return smtpin.Reply{Code: 451, Text: "4.3.5 " + oneLine(err.Error())}
		}
		rcpts = append(rcpts, list...)
	}
	s := j.submit(msg, dedupe(rcpts))
	if j.inv.Verbose > 0 && s.id != "" {
		j.reportQueued(s)
	}
	var temp, perm []string
	var permOut []outcome
	delivered := 0
	for _, o := range s.out {
		if o.err == nil {
			delivered++
			continue
		}
		line := o.rcpt + ": " + oneLine(o.err.Error())
		if c := exitFor(o.err); c == exTempFail || c == exConfig {
			temp = append(temp, line)
		} else {
			perm = append(perm, line)
			permOut = append(permOut, o)
		}
		fmt.Fprintf(j.env.Stderr, "%s: %s\n", j.inv.Name, line)
	}
	queued := len(s.queued)
	if s.qerr != nil {
		j.queueError(s.qerr)
		if len(temp) == 0 {
			// Nothing was tried: the message was to be queued first.
			temp = append(temp, "cannot queue: "+oneLine(strings.TrimPrefix(s.qerr.Error(), "queue: ")))
		}
	}
	accepted := ""
	switch {
	case queued > 0 && delivered > 0:
		accepted = fmt.Sprintf("2.0.0 Ok: delivered to %d, queued for %d as %s", delivered, queued, s.id)
	case queued > 0:
		accepted = "2.0.0 Ok: queued as " + s.id
	case delivered > 0:
		accepted = "2.0.0 Ok: delivered"
	}
	switch {
	case len(temp) == 0 && len(perm) == 0:
		return smtpin.Reply{Code: 250, Text: accepted}
	case len(temp) > 0:
		// Neither delivered nor queued (queue.mode = "never", or the
		// queue failed): the client must retry, and the delivered
		// recipients may get a second copy. Say so.
		return smtpin.Reply{Code: 451, Text: "4.4.0 not delivered to " + strings.Join(append(temp, perm...), "; ")}
	case accepted != "":
		// Some recipients have the message (or will: it is queued) and
		// the rest failed for good: accept it, as an MTA does, and tell
		// the sender about the rest.
		j.mailErrors(msg, permOut)
		if queued > 0 {
			accepted += ","
		} else {
			accepted += " to " + fmt.Sprint(delivered) + ","
		}
		return smtpin.Reply{Code: 250, Text: fmt.Sprintf("%s %d failed (reported to the sender)", accepted, len(perm))}
	default:
		return smtpin.Reply{Code: 554, Text: "5.0.0 not delivered to " + strings.Join(perm, "; ")}
	}
}

// oneLine keeps a reply text on one line.
func oneLine(s string) string {
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
}
