package queue

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/handoff-mta/handoff/config"
	"github.com/handoff-mta/handoff/relay"
)

// Defaults of Policy, those of [queue] in handoff.toml.
const (
	// DefaultRetryMin is the first retry delay: 5 minutes, Postfix's
	// minimal_backoff_time (300 s).
	DefaultRetryMin = 5 * time.Minute
	// DefaultRetryMax caps the delay between attempts: 1 hour, about
	// Postfix's maximal_backoff_time (4000 s).
	DefaultRetryMax = time.Hour
	// DefaultMaxAge is how long a message may wait before it is bounced:
	// 5 days, Postfix's maximal_queue_lifetime.
	DefaultMaxAge = 5 * 24 * time.Hour
	// DefaultDelayWarning is when the sender is told that a message is
	// delayed: 4 hours, Postfix's delay_warning_time when enabled.
	DefaultDelayWarning = 4 * time.Hour
)

// Policy is the retry schedule.
type Policy struct {
	// RetryMin is the delay after the first attempt; 0 means
	// DefaultRetryMin.
	RetryMin time.Duration
	// RetryMax caps every delay; 0 means DefaultRetryMax. A value below
	// RetryMin counts as RetryMin.
	RetryMax time.Duration
	// MaxAge is how long after its arrival a message is still retried;
	// later, its undelivered recipients fail. 0 means DefaultMaxAge.
	MaxAge time.Duration
	// DelayWarning is how long a message waits before its sender is told
	// once that it is delayed. 0 turns the warning off (as delay_warning
	// = "0" does); a value not below MaxAge never fires.
	DelayWarning time.Duration
	// Rand returns a number in [0, 1) for the jitter; nil means
	// math/rand/v2's Float64. Tests fix it.
	Rand func() float64
}

// DefaultPolicy returns the defaults: 5m, 1h, 5d, delay warning at 4h.
func DefaultPolicy() Policy {
	return Policy{RetryMin: DefaultRetryMin, RetryMax: DefaultRetryMax, MaxAge: DefaultMaxAge, DelayWarning: DefaultDelayWarning}
}

// PolicyFromConfig returns the policy of a [queue] table.
func PolicyFromConfig(c config.Queue) Policy {
	return Policy{
		RetryMin:     c.RetryMin.Duration,
		RetryMax:     c.RetryMax.Duration,
		MaxAge:       c.MaxAge.Duration,
		DelayWarning: c.DelayWarning.Duration,
	}
}

// norm fills in defaults.
func (p Policy) norm() Policy {
	if p.RetryMin <= 0 {
		p.RetryMin = DefaultRetryMin
	}
	if p.RetryMax <= 0 {
		p.RetryMax = DefaultRetryMax
	}
	if p.RetryMax < p.RetryMin {
		p.RetryMax = p.RetryMin
	}
	if p.MaxAge <= 0 {
		p.MaxAge = DefaultMaxAge
	}
	if p.DelayWarning < 0 {
		p.DelayWarning = 0
	}
	return p
}

// Backoff returns the delay after attempt number attempts (1 for the
// first attempt) before the next one:
//
//	base  = min(RetryMin × 2^(attempts−1), RetryMax)   (attempts ≤ 1: RetryMin)
//	delay = base × (0.8 + 0.4 × Rand())                ±20% jitter
//	delay = clamp(delay, RetryMin, RetryMax)
//
// With the defaults the bases are 5m, 10m, 20m, 40m, then 1h for every
// later attempt; the jitter spreads items queued together (after an
// outage) so that they are not all retried in the same second, and the
// clamp keeps every delay between retry_min and retry_max.
func (p Policy) Backoff(attempts int) time.Duration {
	p = p.norm()
	d := p.RetryMin
	for i := 1; i < attempts && d < p.RetryMax && d <= math.MaxInt64/2; i++ {
		d *= 2
	}
	d = min(d, p.RetryMax)
	rnd := p.Rand
	if rnd == nil {
		rnd = rand.Float64
	}
	r := rnd()
	r = min(max(r, 0), 1)
	d = time.Duration(float64(d) * (0.8 + 0.4*r))
	return min(max(d, p.RetryMin), p.RetryMax)
}

// stamp is how the queue records a time: UTC, whole seconds, no
// monotonic clock reading.
func stamp(t time.Time) time.Time { return t.UTC().Truncate(time.Second) }

// Expired reports whether the message has been queued for MaxAge or more.
func (e *Envelope) Expired(now time.Time, p Policy) bool {
	return now.Sub(e.Created) >= p.norm().MaxAge
}

// nextRetry is when to try again after e.Attempts attempts: now plus the
// backoff, but not after the message expires (so the last attempt comes
// at max_age and not up to retry_max later).
func (e *Envelope) nextRetry(now time.Time, p Policy) time.Time {
	p = p.norm()
	t := now.Add(p.Backoff(e.Attempts))
	if deadline := e.Created.Add(p.MaxAge); deadline.After(now) && t.After(deadline) {
		t = deadline
	}
	return stamp(t)
}

// RecordAttempt counts an attempt that is about to start and schedules
// the next one: Attempts+1, NextAttempt = now + Backoff(Attempts) (not
// after the expiry). Recorded before connecting, a crash or a hung relay
// during the attempt cannot make the runner retry at once, again and
// again. Item.RecordAttempt also saves it.
func (e *Envelope) RecordAttempt(now time.Time, p Policy) {
	e.Attempts++
	e.NextAttempt = e.nextRetry(now, p)
}

// Result is the outcome of one attempt for one recipient.
type Result struct {
	// Addr is the recipient, as in Recipient.Addr.
	Addr string
	// Reply is the server's reply, one line ("250 2.0.0 Ok: queued as
	// X", "452 4.2.2 Mailbox full"), "" when there was none.
	Reply string
	// Temporary: the failure may go away (4xx, connection problems,
	// anything unknown). Ignored when Err is nil.
	Temporary bool
	// Err is nil when the server took responsibility for the recipient.
	Err error
	// OutcomeUnknown: the connection was lost after the final dot; the
	// server may or may not have the message.
	OutcomeUnknown bool
	// Relay is the name of the relay tried.
	Relay string
}

var errNoResult = errors.New("the relay reported no result for this recipient")

// RelayResults turns what relay.Client.SendMail returned for the
// recipients to into one Result each, in the order of to: a recipient
// with a nil error was accepted; otherwise the reply is relay.ReplyOf its
// error (or the reply the relay recorded), Temporary is relay.IsTemporary
// (unknown errors are temporary), and OutcomeUnknown is set when the error
// wraps relay.ErrOutcomeUnknown. Recipients SendMail said nothing about
// (res nil, a failure before RCPT) share err.
func RelayResults(relayName string, to []string, res *relay.Result, err error) []Result {
	var byAddr map[string]*relay.RecipientResult
	if res != nil {
		byAddr = make(map[string]*relay.RecipientResult, len(res.Recipients))
		for i := range res.Recipients {
			byAddr[res.Recipients[i].Address] = &res.Recipients[i]
		}
	}
	out := make([]Result, len(to))
	for i, addr := range to {
		r := Result{Addr: addr, Relay: relayName}
		var rerr error
		var reply *relay.Reply
		if rr := byAddr[addr]; rr != nil {
			rerr, reply = rr.Err, rr.Reply
			if rerr == nil && reply == nil {
				reply = res.Reply
			}
		} else if err != nil {
			rerr = err
		} else {
			rerr = errNoResult
		}
		if rerr != nil {
			if rp := relay.ReplyOf(rerr); rp != nil {
				reply = rp
			}
			r.Err = rerr
			r.Temporary = relay.IsTemporary(rerr)
			r.OutcomeUnknown = errors.Is(rerr, relay.ErrOutcomeUnknown)
		}
		if reply != nil {
			r.Reply = reply.String()
		}
		out[i] = r
	}
	return out
}

// maxReplyLen caps LastReply.
const maxReplyLen = 512

// replyText is what LastReply records for r: the reply, else the error's
// text, one line, at most maxReplyLen bytes.
func replyText(r Result) string {
	s := r.Reply
	// A failure with only a positive reply (the RCPT was accepted, then
	// the connection died after the data) is described by its error.
	if r.Err != nil && (s == "" || s[0] == '2') {
		s = r.Err.Error()
	}
	if s == "" {
		s = "accepted"
	}
	s = strings.Map(func(c rune) rune {
		if c < 0x20 || c == 0x7f {
			return ' '
		}
		return c
	}, s)
	if len(s) > maxReplyLen {
		s = s[:maxReplyLen]
		for len(s) > 0 && !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		s += "..."
	}
	return s
}

// Apply records the outcome of an attempt, one Result per recipient
// tried:
//
//   - accepted (Err nil): Sent, and never sent again;
//   - OutcomeUnknown: Deferred with PossibleDuplicate (retried, and the
//     retry may deliver a second copy; the runner logs it);
//   - Temporary (4xx, an LMTP 452 for this recipient only, a lost
//     connection): Deferred;
//   - otherwise (5xx): Failed, Notified unless its sender is to get a DSN.
//
// Each recipient tried gets Attempts+1, LastAttempt, LastReply and Relay.
// Results for addresses that are not Pending or Deferred (already Sent or
// Failed, or unknown) are ignored: an accepted recipient cannot be
// undone. Then, when the message has expired, every recipient still
// Pending or Deferred fails (GiveUp); when some remain and NextAttempt is
// not in the future, it is scheduled as RecordAttempt would.
func (e *Envelope) Apply(results []Result, now time.Time, p Policy) {
	at := stamp(now)
	for _, r := range results {
		rc := e.find(r.Addr)
		if rc == nil {
			continue
		}
		rc.Attempts++
		rc.LastAttempt = at
		rc.LastReply = replyText(r)
		if r.Relay != "" {
			rc.Relay = r.Relay
		}
		switch {
		case r.OutcomeUnknown:
			rc.State = Deferred
			rc.PossibleDuplicate = true
		case r.Err == nil:
			rc.State = Sent
		case r.Temporary:
			rc.State = Deferred
		default:
			e.fail(rc)
		}
	}
	if e.Expired(now, p) {
		e.GiveUp()
	}
	if len(e.Remaining()) > 0 && !e.NextAttempt.After(now) {
		e.NextAttempt = e.nextRetry(now, p)
	}
}

// find returns the recipient addr when it is still to be delivered.
func (e *Envelope) find(addr string) *Recipient {
	for i := range e.Recipients {
		rc := &e.Recipients[i]
		if rc.Addr == addr && (rc.State == Pending || rc.State == Deferred) {
			return rc
		}
	}
	return nil
}

func (e *Envelope) fail(rc *Recipient) {
	rc.State = Failed
	rc.Notified = !e.wants(rc, NotifyFailure)
}

// wants reports whether the sender is to get a DSN of the kind (FAILURE
// or DELAY) for rc: never for the null sender; by default (no NOTIFY)
// yes, as RFC 3461 §4.1 allows and Postfix does.
func (e *Envelope) wants(rc *Recipient, kind string) bool {
	if e.Sender == "" {
		return false
	}
	if rc.Notify == nil {
		return true
	}
	for _, n := range rc.Notify {
		if n == kind {
			return true
		}
	}
	return false
}

// GiveUp fails every recipient still Pending or Deferred (after max_age,
// or when an administrator bounces the message). Their LastReply stays,
// for the DSN.
func (e *Envelope) GiveUp() {
	for i := range e.Recipients {
		if rc := &e.Recipients[i]; rc.State == Pending || rc.State == Deferred {
			e.fail(rc)
		}
	}
}

// Remaining returns the recipients still to be delivered (Pending and
// Deferred), in order.
func (e *Envelope) Remaining() []Recipient {
	var out []Recipient
	for _, rc := range e.Recipients {
		if rc.State == Pending || rc.State == Deferred {
			out = append(out, rc)
		}
	}
	return out
}

// Bounces returns the Failed recipients whose sender is still to be told,
// for a DSN with BuildDSN. Once that DSN is queued, MarkNotified.
func (e *Envelope) Bounces() []Recipient {
	var out []Recipient
	for _, rc := range e.Recipients {
		if rc.State == Failed && !rc.Notified {
			out = append(out, rc)
		}
	}
	return out
}

// MarkNotified records that the failure DSN for every Failed recipient
// has been queued.
func (e *Envelope) MarkNotified() {
	for i := range e.Recipients {
		if e.Recipients[i].State == Failed {
			e.Recipients[i].Notified = true
		}
	}
}

// DelayWarningDue returns the Deferred recipients to list in a delay
// warning (a DSN with Action: delayed), or nil when none is due: when the
// message has waited DelayWarning, the warning is on and below MaxAge, it
// has not been sent yet, the sender is not <>, and the recipients' NOTIFY
// asks for DELAY (or is absent). After queueing the warning, set
// DelayWarned and save.
func (e *Envelope) DelayWarningDue(now time.Time, p Policy) []Recipient {
	p = p.norm()
	if e.DelayWarned || p.DelayWarning <= 0 || p.DelayWarning >= p.MaxAge || now.Sub(e.Created) < p.DelayWarning {
		return nil
	}
	var out []Recipient
	for i := range e.Recipients {
		if rc := &e.Recipients[i]; rc.State == Deferred && e.wants(rc, NotifyDelay) {
			out = append(out, *rc)
		}
	}
	return out
}

// Done reports whether nothing is left to do for the message: no
// recipient Pending or Deferred, and every failure notified. A done item
// is removed.
func (e *Envelope) Done() bool {
	for _, rc := range e.Recipients {
		switch {
		case rc.State == Pending, rc.State == Deferred:
			return false
		case rc.State == Failed && !rc.Notified:
			return false
		}
	}
	return true
}
