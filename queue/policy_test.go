package queue

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/handoff-mta/handoff/config"
	"github.com/handoff-mta/handoff/relay"
)

func fixed(r float64) func() float64 { return func() float64 { return r } }

func TestBackoffSequence(t *testing.T) {
	m := time.Minute
	for _, tc := range []struct {
		name string
		p    Policy
		want []time.Duration // for attempts 1, 2, ...
	}{
		{"defaults, no jitter", Policy{Rand: fixed(0.5)}, []time.Duration{5 * m, 10 * m, 20 * m, 40 * m, 60 * m, 60 * m, 60 * m}},
		{"defaults, lowest jitter", Policy{Rand: fixed(0)}, []time.Duration{5 * m, 8 * m, 16 * m, 32 * m, 48 * m, 48 * m}},
		{"defaults, highest jitter", Policy{Rand: fixed(1)}, []time.Duration{6 * m, 12 * m, 24 * m, 48 * m, 60 * m, 60 * m}},
		{"custom", Policy{RetryMin: m, RetryMax: 4 * m, Rand: fixed(0.5)}, []time.Duration{m, 2 * m, 4 * m, 4 * m}},
		{"max below min", Policy{RetryMin: 10 * m, RetryMax: m, Rand: fixed(0)}, []time.Duration{10 * m, 10 * m}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for i, want := range tc.want {
				if got := tc.p.Backoff(i + 1); got != want {
					t.Errorf("Backoff(%d) = %v, want %v", i+1, got, want)
				}
			}
			if got := tc.p.Backoff(0); got != tc.p.Backoff(1) {
				t.Errorf("Backoff(0) = %v, want Backoff(1)", got)
			}
		})
	}
	// With real jitter every delay stays within [RetryMin, RetryMax] and
	// within ±20% of its base; huge attempt counts do not overflow.
	p := Policy{RetryMin: 30 * time.Second, RetryMax: 4 * time.Hour, Rand: rand.New(rand.NewPCG(3, 4)).Float64}
	for _, attempts := range []int{1, 2, 3, 5, 8, 9, 10, 20, 63, 64, 1000, 1 << 40} {
		base := min(p.RetryMin<<min(attempts-1, 20), p.RetryMax)
		for range 200 {
			d := p.Backoff(attempts)
			if d < p.RetryMin || d > p.RetryMax || float64(d) < 0.8*float64(base)-1 || float64(d) > 1.2*float64(base)+1 {
				t.Fatalf("Backoff(%d) = %v, base %v", attempts, d, base)
			}
		}
	}
	if d := (Policy{RetryMin: time.Duration(1) << 61, RetryMax: time.Duration(1<<63 - 1)}).Backoff(100); d <= 0 {
		t.Errorf("overflow: %v", d)
	}
}

func TestPolicyFromConfig(t *testing.T) {
	c := config.Queue{
		RetryMin:     config.Duration{Duration: time.Minute},
		RetryMax:     config.Duration{Duration: 2 * time.Hour},
		MaxAge:       config.Duration{Duration: 24 * time.Hour},
		DelayWarning: config.Duration{Duration: 0},
	}
	want := Policy{RetryMin: time.Minute, RetryMax: 2 * time.Hour, MaxAge: 24 * time.Hour}
	if got := PolicyFromConfig(c); !reflect.DeepEqual(got, want) {
		t.Errorf("PolicyFromConfig = %+v", got)
	}
	if got := DefaultPolicy(); got.RetryMin != 5*time.Minute || got.RetryMax != time.Hour || got.MaxAge != 120*time.Hour || got.DelayWarning != 4*time.Hour {
		t.Errorf("DefaultPolicy = %+v", got)
	}
}

func TestExpired(t *testing.T) {
	e := &Envelope{Created: t0}
	p := Policy{MaxAge: 24 * time.Hour}
	if e.Expired(t0.Add(24*time.Hour-time.Second), p) {
		t.Error("expired before MaxAge")
	}
	if !e.Expired(t0.Add(24*time.Hour), p) {
		t.Error("not expired at MaxAge")
	}
	if !e.Expired(t0.Add(DefaultMaxAge), Policy{}) || e.Expired(t0.Add(DefaultMaxAge-time.Minute), Policy{}) {
		t.Error("default MaxAge is not 5 days")
	}
}

func TestRecordAttemptSchedule(t *testing.T) {
	p := Policy{MaxAge: time.Hour, Rand: fixed(0.5)}
	e := &Envelope{Created: t0, NextAttempt: t0}
	e.RecordAttempt(t0, p)
	if e.Attempts != 1 || !e.NextAttempt.Equal(t0.Add(5*time.Minute)) {
		t.Errorf("after 1: attempts %d, next %v", e.Attempts, e.NextAttempt)
	}
	e.Attempts = 5
	now := t0.Add(50 * time.Minute)
	e.RecordAttempt(now, p)
	if !e.NextAttempt.Equal(t0.Add(time.Hour)) {
		t.Errorf("next %v: want the expiry %v, not later", e.NextAttempt, t0.Add(time.Hour))
	}
	e.RecordAttempt(t0.Add(2*time.Hour), p) // expired already: plain backoff
	if !e.NextAttempt.Equal(t0.Add(3 * time.Hour)) {
		t.Errorf("next %v", e.NextAttempt)
	}
	e.RecordAttempt(t0.Add(1500*time.Millisecond), p)
	if e.NextAttempt.Nanosecond() != 0 || e.NextAttempt.Location() != time.UTC {
		t.Errorf("next %v: want whole seconds, UTC", e.NextAttempt)
	}
}

var errTemp = errors.New("temporary")

// TestApply is the table of outcomes: what each result does to its
// recipient, and what is left to do.
func TestApply(t *testing.T) {
	ok := func(addr string) Result { return Result{Addr: addr, Reply: "250 2.0.0 Ok"} }
	temp := func(addr, reply string) Result {
		return Result{Addr: addr, Reply: reply, Temporary: true, Err: errTemp}
	}
	perm := func(addr, reply string) Result { return Result{Addr: addr, Reply: reply, Err: errors.New(reply)} }
	lost := Result{Addr: "a@x", Temporary: true, OutcomeUnknown: true,
		Err: fmt.Errorf("smtp.example.com:465: waiting for end-of-data reply: EOF: %w", relay.ErrOutcomeUnknown)}
	p := Policy{Rand: fixed(0.5)}
	type rcpt struct {
		state    State
		dup      bool
		notified bool
		attempts int
		reply    string
	}
	for _, tc := range []struct {
		name     string
		sender   string
		notify   []string
		start    []State // of a@x, b@x, c@x
		results  []Result
		now      time.Time
		want     []rcpt
		done     bool
		bounces  int
		nextWant time.Time // zero: not checked
	}{
		{name: "2xx: sent", start: []State{Pending},
			results: []Result{ok("a@x")},
			want:    []rcpt{{state: Sent, attempts: 1, reply: "250 2.0.0 Ok"}}, done: true},
		{name: "4xx: deferred with backoff", start: []State{Pending},
			results:  []Result{temp("a@x", "451 4.3.0 Try later")},
			want:     []rcpt{{state: Deferred, attempts: 1, reply: "451 4.3.0 Try later"}},
			nextWant: t0.Add(time.Hour + 5*time.Minute)},
		{name: "5xx: failed, sender to be told", start: []State{Pending},
			results: []Result{perm("a@x", "550 5.1.1 No such user")},
			want:    []rcpt{{state: Failed, attempts: 1, reply: "550 5.1.1 No such user"}}, bounces: 1},
		{name: "5xx with NOTIFY=NEVER: failed, nobody told", notify: []string{NotifyNever}, start: []State{Pending},
			results: []Result{perm("a@x", "550 5.1.1 No such user")},
			want:    []rcpt{{state: Failed, attempts: 1, notified: true, reply: "550 5.1.1 No such user"}}, done: true},
		{name: "5xx with NOTIFY=SUCCESS: nobody told", notify: []string{NotifySuccess}, start: []State{Pending},
			results: []Result{perm("a@x", "550 5.1.1 No such user")},
			want:    []rcpt{{state: Failed, attempts: 1, notified: true, reply: "550 5.1.1 No such user"}}, done: true},
		{name: "5xx from the null sender: no bounce", sender: "<>", start: []State{Pending},
			results: []Result{perm("a@x", "550 5.1.1 No such user")},
			want:    []rcpt{{state: Failed, attempts: 1, notified: true, reply: "550 5.1.1 No such user"}}, done: true},
		{name: "lost after the final dot: deferred, possible duplicate", start: []State{Pending},
			results: []Result{lost},
			want:    []rcpt{{state: Deferred, dup: true, attempts: 1, reply: lost.Err.Error()}}},
		{name: "LMTP mixed per recipient", start: []State{Pending, Pending, Pending},
			results: []Result{ok("a@x"), temp("b@x", "452 4.2.2 Mailbox full"), perm("c@x", "550 5.1.1 No such user")},
			want: []rcpt{{state: Sent, attempts: 1, reply: "250 2.0.0 Ok"}, {state: Deferred, attempts: 1, reply: "452 4.2.2 Mailbox full"},
				{state: Failed, attempts: 1, reply: "550 5.1.1 No such user"}}, bounces: 1},
		{name: "sent is never undone or retried", start: []State{Sent, Deferred},
			results: []Result{perm("a@x", "550 no"), ok("b@x")},
			want:    []rcpt{{state: Sent}, {state: Sent, attempts: 1, reply: "250 2.0.0 Ok"}}, done: true},
		{name: "failed stays failed", start: []State{Failed, Deferred},
			results: []Result{ok("a@x"), temp("b@x", "421 4.4.2 bye")},
			want:    []rcpt{{state: Failed}, {state: Deferred, attempts: 1, reply: "421 4.4.2 bye"}}, bounces: 1},
		{name: "unknown address ignored", start: []State{Pending},
			results: []Result{ok("z@x")},
			want:    []rcpt{{state: Pending}}},
		{name: "no reply: the error's text", start: []State{Pending},
			results: []Result{{Addr: "a@x", Temporary: true, Err: errors.New("dial tcp 192.0.2.1:465: connect: connection refused")}},
			want:    []rcpt{{state: Deferred, attempts: 1, reply: "dial tcp 192.0.2.1:465: connect: connection refused"}}},
		{name: "control characters in a reply", start: []State{Pending},
			results: []Result{temp("a@x", "451 4.3.0 evil\r\nRCPT TO:<x@y>")},
			want:    []rcpt{{state: Deferred, attempts: 1, reply: "451 4.3.0 evil  RCPT TO:<x@y>"}}},
		{name: "expired: the deferred fail", start: []State{Pending, Deferred, Sent}, now: t0.Add(DefaultMaxAge),
			results: []Result{temp("a@x", "451 4.3.0 Try later")},
			want:    []rcpt{{state: Failed, attempts: 1, reply: "451 4.3.0 Try later"}, {state: Failed}, {state: Sent}}, bounces: 2},
		{name: "expired without an attempt", start: []State{Deferred}, now: t0.Add(DefaultMaxAge + time.Hour),
			want: []rcpt{{state: Failed}}, bounces: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := &Envelope{Sender: "s@x", Created: t0, NextAttempt: t0}
			if tc.sender == "<>" {
				e.Sender = ""
			}
			for i, s := range tc.start {
				e.Recipients = append(e.Recipients, Recipient{Addr: string(rune('a'+i)) + "@x", State: s, Notify: tc.notify})
			}
			now := tc.now
			if now.IsZero() {
				now = t0.Add(time.Hour)
			}
			e.Apply(tc.results, now, p)
			for i, w := range tc.want {
				rc := e.Recipients[i]
				got := rcpt{rc.State, rc.PossibleDuplicate, rc.Notified, rc.Attempts, rc.LastReply}
				if got != w {
					t.Errorf("%s: %+v, want %+v", rc.Addr, got, w)
				}
				if w.attempts > 0 && !rc.LastAttempt.Equal(now) {
					t.Errorf("%s: last attempt %v", rc.Addr, rc.LastAttempt)
				}
			}
			if e.Done() != tc.done {
				t.Errorf("Done = %v, want %v", e.Done(), tc.done)
			}
			if got := len(e.Bounces()); got != tc.bounces {
				t.Errorf("%d bounces, want %d", got, tc.bounces)
			}
			if !tc.nextWant.IsZero() && !e.NextAttempt.Equal(tc.nextWant) {
				t.Errorf("next attempt %v, want %v", e.NextAttempt, tc.nextWant)
			}
			if len(e.Remaining()) > 0 && !e.NextAttempt.After(now) {
				t.Errorf("recipients remain but the next attempt %v is not after %v", e.NextAttempt, now)
			}
			for _, rc := range e.Remaining() {
				if rc.State == Sent || rc.State == Failed {
					t.Errorf("Remaining has %s %s", rc.Addr, rc.State)
				}
			}
			e.MarkNotified()
			if len(e.Bounces()) != 0 {
				t.Error("bounces after MarkNotified")
			}
		})
	}
}

func TestApplyLongReply(t *testing.T) {
	e := &Envelope{Sender: "s@x", Created: t0, Recipients: []Recipient{{Addr: "a@x"}}}
	e.Apply([]Result{{Addr: "a@x", Reply: "451 " + strings.Repeat("é", 400), Temporary: true, Err: errTemp}}, t0, Policy{})
	r := e.Recipients[0].LastReply
	if len(r) > maxReplyLen+3 || !strings.HasSuffix(r, "...") || !strings.HasPrefix(r, "451 éé") {
		t.Errorf("LastReply %d bytes: %q", len(r), r)
	}
	e.ID, e.Version = "0JM2Q4ZK8PX7A3BD", Version
	if err := e.Validate(); err != nil {
		t.Error(err)
	}
}

func TestDelayWarningDue(t *testing.T) {
	p := Policy{DelayWarning: 4 * time.Hour}
	mk := func() *Envelope {
		return &Envelope{Sender: "s@x", Created: t0, Recipients: []Recipient{
			{Addr: "a@x", State: Deferred},
			{Addr: "b@x", State: Deferred, Notify: []string{NotifyFailure}},
			{Addr: "c@x", State: Sent},
			{Addr: "d@x", State: Deferred, Notify: []string{NotifyFailure, NotifyDelay}},
		}}
	}
	addrs := func(rs []Recipient) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.Addr)
		}
		return out
	}
	e := mk()
	if got := e.DelayWarningDue(t0.Add(4*time.Hour-time.Second), p); got != nil {
		t.Errorf("due early: %v", got)
	}
	if got := addrs(e.DelayWarningDue(t0.Add(4*time.Hour), p)); !slices.Equal(got, []string{"a@x", "d@x"}) {
		t.Errorf("due = %q", got)
	}
	e.DelayWarned = true
	if got := e.DelayWarningDue(t0.Add(5*time.Hour), p); got != nil {
		t.Errorf("due twice: %v", got)
	}
	e = mk()
	e.Sender = ""
	if got := e.DelayWarningDue(t0.Add(5*time.Hour), p); got != nil {
		t.Errorf("due for <>: %v", got)
	}
	e = mk()
	if got := e.DelayWarningDue(t0.Add(5*time.Hour), Policy{}); got != nil {
		t.Errorf("due with the warning off: %v", got)
	}
	if got := e.DelayWarningDue(t0.Add(200*time.Hour), Policy{DelayWarning: 6 * 24 * time.Hour}); got != nil {
		t.Errorf("due with a warning past max_age: %v", got)
	}
}

func TestRelayResults(t *testing.T) {
	reply := func(code int, enh relay.EnhancedCode, text string) *relay.Reply {
		return &relay.Reply{Code: code, Enhanced: enh, Lines: []string{text}}
	}
	lmtpRes := &relay.Result{Recipients: []relay.RecipientResult{
		{Address: "a@x", Reply: reply(250, relay.EnhancedCode{2, 1, 5}, "Ok")},
		{Address: "b@x", Reply: reply(452, relay.EnhancedCode{4, 2, 2}, "Mailbox full"),
			Err: &relay.Error{Reply: *reply(452, relay.EnhancedCode{4, 2, 2}, "Mailbox full"), Command: "<end of data>"}},
		{Address: "c@x", Err: &relay.Error{Reply: *reply(550, relay.EnhancedCode{5, 1, 1}, "No such user"), Command: "RCPT TO:<c@x>"}},
		{Address: "d@x", Err: fmt.Errorf("waiting for end-of-data reply: EOF: %w", relay.ErrOutcomeUnknown)},
	}}
	got := RelayResults("lmtp", []string{"a@x", "b@x", "c@x", "d@x", "e@x"}, lmtpRes, nil)
	want := []struct {
		reply           string
		ok, temp, unkwn bool
	}{
		{"250 2.1.5 Ok", true, false, false},
		{"452 4.2.2 Mailbox full", false, true, false},
		{"550 5.1.1 No such user", false, false, false},
		{"", false, true, true},
		{"", false, true, false}, // not reported at all: temporary
	}
	for i, w := range want {
		g := got[i]
		if g.Reply != w.reply || (g.Err == nil) != w.ok || (g.Err != nil && g.Temporary != w.temp) || g.OutcomeUnknown != w.unkwn || g.Relay != "lmtp" {
			t.Errorf("%s: %+v, want %+v", g.Addr, g, w)
		}
	}

	// SMTP: accepted recipients carry the end-of-data reply.
	smtpRes := &relay.Result{Reply: reply(250, relay.EnhancedCode{2, 0, 0}, "queued as X"),
		Recipients: []relay.RecipientResult{{Address: "a@x"}}}
	if g := RelayResults("r", []string{"a@x"}, smtpRes, nil); g[0].Err != nil || g[0].Reply != "250 2.0.0 queued as X" {
		t.Errorf("SMTP accepted: %+v", g[0])
	}

	// A failure before any recipient: everyone shares it.
	dialErr := &relay.ConnError{Stage: "dial", Server: "smtp.example.com:465", Err: errors.New("connection refused")}
	for _, g := range RelayResults("r", []string{"a@x", "b@x"}, nil, dialErr) {
		if g.Err != dialErr || !g.Temporary || g.Reply != "" {
			t.Errorf("dial failure: %+v", g)
		}
	}
	mailErr := &relay.Error{Reply: *reply(553, relay.EnhancedCode{5, 7, 1}, "sender refused"), Command: "MAIL FROM:<s@x>"}
	for _, g := range RelayResults("r", []string{"a@x"}, nil, mailErr) {
		if g.Temporary || g.Reply != "553 5.7.1 sender refused" {
			t.Errorf("MAIL refused: %+v", g)
		}
	}

	// End to end with Apply.
	e := &Envelope{Sender: "s@x", Created: t0}
	for _, a := range []string{"a@x", "b@x", "c@x", "d@x"} {
		e.Recipients = append(e.Recipients, Recipient{Addr: a})
	}
	e.Apply(RelayResults("lmtp", []string{"a@x", "b@x", "c@x", "d@x"}, lmtpRes, nil), t0, Policy{})
	states := []State{e.Recipients[0].State, e.Recipients[1].State, e.Recipients[2].State, e.Recipients[3].State}
	if !slices.Equal(states, []State{Sent, Deferred, Failed, Deferred}) || !e.Recipients[3].PossibleDuplicate {
		t.Errorf("states %v, dup %v", states, e.Recipients[3].PossibleDuplicate)
	}
	if rem := e.Remaining(); len(rem) != 2 || rem[0].Addr != "b@x" || rem[1].Addr != "d@x" {
		t.Errorf("Remaining = %+v: only b and d are sent again", rem)
	}
}
