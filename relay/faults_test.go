package relay

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// faultStage is where in a session the fake server misbehaves.
type faultStage int

const (
	atGreeting faultStage = iota
	atEHLO
	atSTARTTLS
	atAUTH
	atMAIL
	atRCPT1 // the first of two recipients
	atRCPT2 // the second
	atDATA
	atEnd // the reply after the final dot
)

var faultStageNames = [...]string{"greeting", "EHLO", "STARTTLS", "AUTH", "MAIL", "RCPT1", "RCPT2", "DATA", "end of data"}

type faultKind int

const (
	faultDrop         faultKind = iota // the server closes the connection instead of replying
	faultDropAfter220                  // STARTTLS: "220", then close before the handshake
	faultReply                         // the server replies faultRow.reply (421, 4xx or 5xx)
)

// faultRcpt is what one recipient's Result entry must say.
type faultRcpt struct {
	idx  int
	is   []error
	temp bool
	code int // code of the *Error in the entry; 0: no reply (connection error)
}

type faultRow struct {
	stage     faultStage
	fault     faultKind
	reply     string // the reply for faultReply
	tls       bool   // STARTTLS (set for the STARTTLS rows)
	auth      bool   // Login over the loopback (set for the AUTH rows)
	pipelined bool   // the server offers PIPELINING
	lmtp      bool   // LMTP: one reply per accepted recipient after the dot

	at     string  // the call that fails: "Dial", "Login", "SendMail", or "" for none
	is     []error // sentinels the error wraps
	not    []error // sentinels it must not wrap
	temp   bool    // IsTemporary(err)
	code   int     // code of the *Error found with errors.As; 0: none
	rcpt   *faultRcpt
	usable bool     // a later NOOP works (otherwise it fails with ErrServerDisconnected)
	rset   bool     // RSET is on the wire
	absent []string // must not be on the wire
}

func (r faultRow) name() string {
	n := faultStageNames[r.stage] + "/"
	switch r.fault {
	case faultDrop:
		n += "drop"
	case faultDropAfter220:
		n += "drop after 220"
	default:
		code := r.reply[:3]
		if code != "421" {
			code = code[:1] + "xx"
		}
		n += code
	}
	if r.pipelined {
		n += "/pipelined"
	}
	if r.tls && r.stage != atSTARTTLS {
		n += "/tls"
	}
	if r.auth && r.stage != atAUTH {
		n += "/auth"
	}
	if r.lmtp {
		n += "/lmtp"
	}
	return n
}

const faultBody = "Subject: fault\r\n\r\nbody\r\n"

func faultErrs(e ...error) []error { return e }

// faultRows: every stage × {drop, 421, 4xx, 5xx} where it makes sense.
// No 4xx at the greeting (RFC 5321 §4.3.2: 220, 554, or 421).
func faultRows() []faultRow {
	disc := faultErrs(ErrServerDisconnected)
	unknown := faultErrs(ErrOutcomeUnknown)
	rows := []faultRow{
		// Greeting: Dial fails; the greeting stage wraps ErrConnect (Dial's doc).
		{stage: atGreeting, at: "Dial", is: faultErrs(ErrConnect, ErrServerDisconnected), not: unknown, temp: true},
		{stage: atGreeting, fault: faultReply, reply: "421 4.3.2 too busy, try later", at: "Dial", is: faultErrs(ErrConnect), temp: true, code: 421},
		{stage: atGreeting, fault: faultReply, reply: "554 5.3.2 no SMTP service here", at: "Dial", is: faultErrs(ErrConnect), temp: false, code: 554},

		// EHLO: no HELO fallback except on 500/502.
		{stage: atEHLO, at: "Dial", is: disc, not: unknown, temp: true, absent: []string{"HELO "}},
		{stage: atEHLO, fault: faultReply, reply: "421 4.3.2 shutting down", at: "Dial", is: faultErrs(ErrHelo), temp: true, code: 421, absent: []string{"HELO "}},
		{stage: atEHLO, fault: faultReply, reply: "451 4.3.0 local error, try later", at: "Dial", is: faultErrs(ErrHelo), temp: true, code: 451, absent: []string{"HELO "}},
		{stage: atEHLO, fault: faultReply, reply: "550 5.7.1 go away", at: "Dial", is: faultErrs(ErrHelo), temp: false, code: 550, absent: []string{"HELO "}},

		// STARTTLS required: never continues in plain text.
		{stage: atSTARTTLS, at: "Dial", is: disc, not: unknown, temp: true, absent: []string{"AUTH", "MAIL"}},
		{stage: atSTARTTLS, fault: faultDropAfter220, at: "Dial", is: faultErrs(ErrTLS, ErrServerDisconnected), temp: true, absent: []string{"AUTH", "MAIL"}},
		{stage: atSTARTTLS, fault: faultReply, reply: "421 4.3.2 shutting down", at: "Dial", is: faultErrs(ErrTLS), temp: true, code: 421, absent: []string{"AUTH", "MAIL", "QUIT"}},
		{stage: atSTARTTLS, fault: faultReply, reply: "454 4.7.0 TLS not available due to temporary reason", at: "Dial", is: faultErrs(ErrTLS), temp: true, code: 454, absent: []string{"AUTH", "MAIL"}},
		{stage: atSTARTTLS, fault: faultReply, reply: "501 5.5.4 syntax error", at: "Dial", is: faultErrs(ErrTLS), temp: false, code: 501, absent: []string{"AUTH", "MAIL"}},

		// AUTH (PLAIN over the loopback): only 504/534 try another mechanism.
		{stage: atAUTH, at: "Login", is: disc, not: unknown, temp: true, absent: []string{"AUTH LOGIN"}},
		{stage: atAUTH, fault: faultReply, reply: "421 4.3.2 shutting down", at: "Login", is: faultErrs(ErrAuthentication), temp: true, code: 421, absent: []string{"AUTH LOGIN"}},
		{stage: atAUTH, fault: faultReply, reply: "454 4.7.0 temporary authentication failure", at: "Login", is: faultErrs(ErrAuthentication), temp: true, code: 454, usable: true, absent: []string{"AUTH LOGIN"}},
		{stage: atAUTH, fault: faultReply, reply: "535 5.7.8 authentication credentials invalid", at: "Login", is: faultErrs(ErrAuthentication), temp: false, code: 535, usable: true, absent: []string{"AUTH LOGIN"}},
	}
	for _, pipelined := range []bool{false, true} {
		rows = append(rows,
			faultRow{stage: atMAIL, at: "SendMail", is: disc, not: unknown, temp: true, absent: []string{"RSET"}},
			faultRow{stage: atMAIL, fault: faultReply, reply: "421 4.3.2 closing", at: "SendMail", is: faultErrs(ErrSenderRefused), not: unknown, temp: true, code: 421},
			faultRow{stage: atMAIL, fault: faultReply, reply: "451 4.3.0 local error", at: "SendMail", is: faultErrs(ErrSenderRefused), temp: true, code: 451, usable: true, rset: true, absent: []string{"\r\n.\r\n"}},
			faultRow{stage: atMAIL, fault: faultReply, reply: "550 5.7.1 sender blocked", at: "SendMail", is: faultErrs(ErrSenderRefused), temp: false, code: 550, usable: true, rset: true, absent: []string{"\r\n.\r\n"}},

			// First recipient: with the second accepted, a 4xx/5xx is only
			// that recipient's Result entry.
			faultRow{stage: atRCPT1, at: "SendMail", is: disc, not: unknown, temp: true,
				rcpt: &faultRcpt{idx: 0, is: disc, temp: true}},
			faultRow{stage: atRCPT1, fault: faultReply, reply: "421 4.3.2 closing", at: "SendMail", is: faultErrs(ErrRecipientsRefused), temp: true, code: 421,
				rcpt: &faultRcpt{idx: 0, is: faultErrs(ErrRecipientsRefused), temp: true, code: 421}},
			faultRow{stage: atRCPT1, fault: faultReply, reply: "450 4.2.1 mailbox busy", at: "", usable: true,
				rcpt: &faultRcpt{idx: 0, is: faultErrs(ErrRecipientsRefused), temp: true, code: 450}},
			faultRow{stage: atRCPT1, fault: faultReply, reply: "550 5.1.1 no such user", at: "", usable: true,
				rcpt: &faultRcpt{idx: 0, is: faultErrs(ErrRecipientsRefused), temp: false, code: 550}},

			// Second recipient: the first was accepted, but nothing is
			// delivered when the connection goes.
			faultRow{stage: atRCPT2, at: "SendMail", is: disc, not: unknown, temp: true, absent: []string{"Subject"},
				rcpt: &faultRcpt{idx: 1, is: disc, temp: true}},
			faultRow{stage: atRCPT2, fault: faultReply, reply: "421 4.3.2 closing", at: "SendMail", is: faultErrs(ErrRecipientsRefused), temp: true, code: 421,
				rcpt: &faultRcpt{idx: 1, is: faultErrs(ErrRecipientsRefused), temp: true, code: 421}},
			faultRow{stage: atRCPT2, fault: faultReply, reply: "450 4.2.1 mailbox busy", at: "", usable: true,
				rcpt: &faultRcpt{idx: 1, is: faultErrs(ErrRecipientsRefused), temp: true, code: 450}},
			faultRow{stage: atRCPT2, fault: faultReply, reply: "550 5.1.1 no such user", at: "", usable: true,
				rcpt: &faultRcpt{idx: 1, is: faultErrs(ErrRecipientsRefused), temp: false, code: 550}},

			// DATA: no message data without a 354 (RFC 5321 §3.3).
			faultRow{stage: atDATA, at: "SendMail", is: disc, not: unknown, temp: true, absent: []string{"Subject"}},
			faultRow{stage: atDATA, fault: faultReply, reply: "421 4.3.2 closing", at: "SendMail", is: faultErrs(ErrData), not: unknown, temp: true, code: 421, absent: []string{"Subject"}},
			faultRow{stage: atDATA, fault: faultReply, reply: "451 4.3.0 try again later", at: "SendMail", is: faultErrs(ErrData), temp: true, code: 451, usable: true, rset: true, absent: []string{"Subject"}},
			faultRow{stage: atDATA, fault: faultReply, reply: "554 5.5.1 no valid recipients", at: "SendMail", is: faultErrs(ErrData), temp: false, code: 554, usable: true, rset: true, absent: []string{"Subject"}},
		)
		for i := len(rows) - 16; i < len(rows); i++ {
			rows[i].pipelined = pipelined
		}
	}
	rows = append(rows,
		// After the final dot: a drop leaves the outcome unknown.
		faultRow{stage: atEnd, at: "SendMail", is: faultErrs(ErrOutcomeUnknown, ErrServerDisconnected), temp: true},
		faultRow{stage: atEnd, fault: faultReply, reply: "421 4.3.2 shutting down", at: "SendMail", is: faultErrs(ErrData), not: unknown, temp: true, code: 421},
		faultRow{stage: atEnd, fault: faultReply, reply: "451 4.3.0 error in processing", at: "SendMail", is: faultErrs(ErrData), not: unknown, temp: true, code: 451, usable: true, rset: true},
		faultRow{stage: atEnd, fault: faultReply, reply: "554 5.6.0 content rejected", at: "SendMail", is: faultErrs(ErrData), not: unknown, temp: false, code: 554, usable: true, rset: true},

		// LMTP (RFC 2033 §4.2): the reply after the dot is per recipient;
		// the fault hits the first one, the second gets 250 unless the
		// server has gone. A drop leaves every outcome unknown.
		faultRow{stage: atEnd, lmtp: true, at: "SendMail", is: faultErrs(ErrOutcomeUnknown), temp: true,
			rcpt: &faultRcpt{idx: 0, is: faultErrs(ErrOutcomeUnknown, ErrServerDisconnected), temp: true}},
		faultRow{stage: atEnd, lmtp: true, fault: faultReply, reply: "421 4.3.2 shutting down", at: "SendMail", is: faultErrs(ErrData), temp: true,
			rcpt: &faultRcpt{idx: 0, is: faultErrs(ErrData), temp: true, code: 421}},
		faultRow{stage: atEnd, lmtp: true, fault: faultReply, reply: "452 4.2.2 mailbox over quota", at: "", usable: true, rset: true,
			rcpt: &faultRcpt{idx: 0, is: faultErrs(ErrData), temp: true, code: 452}},
		faultRow{stage: atEnd, lmtp: true, fault: faultReply, reply: "550 5.2.1 mailbox disabled", at: "", usable: true, rset: true,
			rcpt: &faultRcpt{idx: 0, is: faultErrs(ErrData), temp: false, code: 550}},

		// The same inside a TLS session with AUTH, as for submission.
		faultRow{stage: atMAIL, tls: true, auth: true, at: "SendMail", is: disc, not: unknown, temp: true},
		faultRow{stage: atMAIL, tls: true, auth: true, fault: faultReply, reply: "550 5.7.1 sender blocked", at: "SendMail", is: faultErrs(ErrSenderRefused), temp: false, code: 550, usable: true, rset: true},
		faultRow{stage: atRCPT2, tls: true, auth: true, fault: faultReply, reply: "421 4.3.2 closing", at: "SendMail", is: faultErrs(ErrRecipientsRefused), temp: true, code: 421,
			rcpt: &faultRcpt{idx: 1, is: faultErrs(ErrRecipientsRefused), temp: true, code: 421}},
		faultRow{stage: atEnd, tls: true, auth: true, at: "SendMail", is: faultErrs(ErrOutcomeUnknown, ErrServerDisconnected), temp: true},
		faultRow{stage: atEnd, tls: true, auth: true, fault: faultReply, reply: "451 4.3.0 error in processing", at: "SendMail", is: faultErrs(ErrData), temp: true, code: 451, usable: true, rset: true},
	)
	for i := range rows {
		rows[i].tls = rows[i].tls || rows[i].stage == atSTARTTLS
		rows[i].auth = rows[i].auth || rows[i].stage == atAUTH
	}
	return rows
}

func (r faultRow) is421() bool { return r.fault == faultReply && strings.HasPrefix(r.reply, "421") }

// inject ends the script at the fault: close, or reply and then serve
// RSET/NOOP/QUIT until the client goes.
func (r faultRow) inject(s *session) {
	if r.fault == faultReply {
		s.send(r.reply)
		slServeRest(s)
	}
}

func (r faultRow) extensions(afterTLS bool) []string {
	ext := []string{"8BITMIME", "ENHANCEDSTATUSCODES"}
	if r.pipelined {
		ext = append(ext, "PIPELINING")
	}
	if r.tls && !afterTLS {
		return append(ext, "STARTTLS")
	}
	if r.auth {
		ext = append(ext, "AUTH PLAIN LOGIN")
	}
	return ext
}

// script behaves as a normal server up to r.stage, then injects the fault.
func (r faultRow) script(srvTLS *tls.Config) func(s *session) {
	return func(s *session) {
		if r.stage == atGreeting {
			r.inject(s)
			return
		}
		s.send("220 fake.test ESMTP")
		hello := "EHLO "
		if r.lmtp {
			hello = "LHLO "
		}
		if s.expectPrefix(hello) == "" {
			return
		}
		if r.stage == atEHLO {
			r.inject(s)
			return
		}
		s.ehloReply(r.extensions(false)...)
		if r.tls {
			if !s.expect("STARTTLS") {
				return
			}
			if r.stage == atSTARTTLS {
				if r.fault == faultDropAfter220 {
					s.send("220 2.0.0 go ahead")
				} else {
					r.inject(s)
				}
				return
			}
			s.send("220 2.0.0 go ahead")
			tc := tls.Server(s.conn, srvTLS)
			if err := tc.Handshake(); err != nil {
				s.t.Errorf("server handshake: %v", err)
				return
			}
			s.setConn(tc)
			if s.expectPrefix("EHLO ") == "" {
				return
			}
			s.ehloReply(r.extensions(true)...)
		}
		if r.auth {
			if !s.expect("AUTH PLAIN AHUAcA==") {
				return
			}
			if r.stage == atAUTH {
				r.inject(s)
				return
			}
			s.send("235 2.7.0 authenticated")
		}
		if r.pipelined {
			r.pipelinedTransaction(s)
		} else {
			r.lockStepTransaction(s)
		}
	}
}

func (r faultRow) lockStepTransaction(s *session) {
	if !s.expect("MAIL FROM:<a@x.test>") {
		return
	}
	if r.stage == atMAIL {
		r.inject(s)
		return
	}
	s.send("250 2.1.0 ok")
	for k, st := range []faultStage{atRCPT1, atRCPT2} {
		if !s.expect(fmt.Sprintf("RCPT TO:<%c@y.test>", 'b'+k)) {
			return
		}
		switch {
		case r.stage != st:
			s.send("250 2.1.5 ok")
		case r.fault == faultDrop || r.is421():
			r.inject(s)
			return
		default:
			s.send(r.reply) // the transaction goes on for the other one
		}
	}
	if !s.expect("DATA") {
		return
	}
	if r.stage == atDATA {
		r.inject(s)
		return
	}
	s.send("354 go ahead")
	r.dataAndEnd(s)
}

func (r faultRow) pipelinedTransaction(s *session) {
	for _, want := range []string{"MAIL FROM:<a@x.test>", "RCPT TO:<b@y.test>", "RCPT TO:<c@y.test>", "DATA"} {
		if !s.expect(want) {
			return
		}
	}
	normal := []string{"250 2.1.0 ok", "250 2.1.5 ok", "250 2.1.5 ok", "354 go ahead"}
	k := int(r.stage - atMAIL) // 0 MAIL, 1 RCPT1, 2 RCPT2, 3 DATA
	for i := range normal {
		switch {
		case i < k:
			s.send(normal[i])
		case i == k:
			if r.fault == faultDrop || r.is421() {
				r.inject(s)
				return
			}
			s.send(r.reply)
		case k == 0 && i < 3:
			s.send("503 5.5.1 need MAIL first")
		case k == 0:
			s.send("503 5.5.1 no valid recipients")
		default:
			s.send(normal[i])
		}
	}
	if k == 0 || k == 3 {
		slServeRest(s)
		return
	}
	r.dataAndEnd(s)
}

// dataAndEnd reads the data after the 354 and answers the final dot.
func (r faultRow) dataAndEnd(s *session) {
	if d := s.data(); d != faultBody {
		s.t.Errorf("server got data %q", d)
	}
	if s.failed {
		return
	}
	if r.stage == atEnd {
		if r.lmtp && r.fault == faultReply && !r.is421() {
			s.send(r.reply, "250 2.0.0 delivered")
			slServeRest(s)
			return
		}
		r.inject(s)
		return
	}
	s.send("250 2.0.0 queued")
	if r.lmtp {
		s.send("250 2.0.0 queued")
	}
	slServeRest(s)
}

// TestFaultTable injects a fault at every stage of a session: the server
// closes the connection, or answers 421, a 4xx or a 5xx. For each it
// checks the error (sentinels, IsTemporary, the *Error code), the Result
// entry of a refused recipient, whether RSET was sent, and whether the
// connection can still be used (after a plain 4xx/5xx yes, thanks to
// RSET; after a drop or a 421 no).
func TestFaultTable(t *testing.T) {
	srvTLS, roots := slTLS(t)
	for _, row := range faultRows() {
		t.Run(row.name(), func(t *testing.T) {
			f := startFake(t, row.script(srvTLS))
			o := Options{Address: f.addr, TLS: NoTLS, LocalName: "client.test", LMTP: row.lmtp}
			if row.tls {
				o.TLS = STARTTLSRequired
				o.TLSConfig = TLSOptions{RootCAs: roots}
			}
			var res *Result
			at := "Dial"
			c, err := Dial(bg, o)
			if err == nil {
				defer c.Close()
				if row.auth {
					at = "Login"
					err = c.Login(bg, Credentials{Username: "u", Password: "p"})
				}
			} else if c != nil {
				t.Error("Dial returned a client with an error")
			}
			if err == nil {
				at = "SendMail"
				res, err = c.SendMail(bg, "a@x.test", []string{"b@y.test", "c@y.test"}, strings.NewReader(faultBody), nil)
				if err == nil {
					at = ""
				}
			}
			if at != row.at {
				t.Fatalf("failed at %q, want %q: %v", at, row.at, err)
			}

			// The error.
			if err != nil {
				for _, s := range row.is {
					if !errors.Is(err, s) {
						t.Errorf("error %q does not wrap %q", err, s)
					}
				}
				for _, s := range row.not {
					if errors.Is(err, s) {
						t.Errorf("error %q wraps %q", err, s)
					}
				}
				if IsTemporary(err) != row.temp || IsPermanent(err) == row.temp {
					t.Errorf("IsTemporary = %v, want %v: %v", IsTemporary(err), row.temp, err)
				}
				var se *Error
				switch {
				case row.code == 0 && errors.As(err, &se):
					t.Errorf("an *Error (%d) where the server sent no reply: %v", se.Code, err)
				case row.code != 0 && !errors.As(err, &se):
					t.Errorf("no *Error in %v, want code %d", err, row.code)
				case row.code != 0 && (se.Code != row.code || se.Text() != row.reply[10:]):
					t.Errorf("*Error %d %q, want %q", se.Code, se.Text(), row.reply)
				}
				if at == "SendMail" && (res == nil || res.Delivered() != 0) {
					t.Errorf("result %+v, want every recipient undelivered", res)
				}
			}

			// The recipient the fault was about.
			if rc := row.rcpt; rc != nil && res != nil {
				rr := res.Recipients[rc.idx]
				for _, s := range rc.is {
					if !errors.Is(rr.Err, s) {
						t.Errorf("%s: %v does not wrap %q", rr.Address, rr.Err, s)
					}
				}
				if IsTemporary(rr.Err) != rc.temp {
					t.Errorf("%s: IsTemporary = %v, want %v: %v", rr.Address, IsTemporary(rr.Err), rc.temp, rr.Err)
				}
				var se *Error
				if got := errors.As(rr.Err, &se); got != (rc.code != 0) || got && (se.Code != rc.code || rr.Reply == nil || rr.Reply.Code != rc.code) {
					t.Errorf("%s: entry %+v, want code %d", rr.Address, rr, rc.code)
				}
				if row.at == "" {
					other := res.Recipients[1-rc.idx]
					if other.Err != nil || other.Reply == nil || other.Reply.Code != 250 || res.Delivered() != 1 || (res.Reply == nil) != row.lmtp {
						t.Errorf("the other recipient: %+v (delivered %d)", other, res.Delivered())
					}
				}
			}

			// Still usable?
			if c != nil {
				_, nerr := c.Noop(bg)
				if row.usable {
					if nerr != nil {
						t.Errorf("NOOP after the fault: %v", nerr)
					} else if qerr := c.Quit(bg); qerr != nil {
						t.Errorf("QUIT: %v", qerr)
					}
				} else if !errors.Is(nerr, ErrServerDisconnected) {
					t.Errorf("NOOP after the fault: %v, want ErrServerDisconnected", nerr)
				}
				c.Close()
			}

			wire := f.received()
			if got := strings.Contains(wire, "RSET\r\n"); got != row.rset {
				t.Errorf("RSET sent: %v, want %v\nwire %q", got, row.rset, wire)
			}
			for _, a := range row.absent {
				if strings.Contains(wire, a) {
					t.Errorf("%q on the wire: %q", a, wire)
				}
			}
			if !row.usable && strings.Contains(wire, "NOOP") {
				t.Errorf("NOOP written to a closed connection: %q", wire)
			}
		})
	}
}
