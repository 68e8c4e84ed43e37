package relay

import (
	"errors"
	"strings"
	"testing"
)

// With SendOptions.Next, the next message's MAIL, RCPT and DATA go out
// right behind the final dot: the server reads them before it answers
// the data, and the next SendMail only reads their replies.
func TestSendAhead(t *testing.T) {
	f := startFake(t, func(s *session) {
		if !s.greetEHLO("PIPELINING", "SIZE 1000") {
			return
		}
		s.expect("MAIL FROM:<a@x.test> SIZE=5")
		s.expect("RCPT TO:<b@y.test>")
		s.expect("DATA")
		s.send("250 ok", "250 ok", "354 go")
		if got := s.data(); got != "one\r\n" {
			s.t.Errorf("first data %q", got)
		}
		// Nothing answered yet: the next envelope is already here.
		s.expect("MAIL FROM:<c@x.test> SIZE=5")
		s.expect("RCPT TO:<d@y.test>")
		s.expect("RCPT TO:<e@y.test>")
		s.expect("DATA")
		s.send("250 2.0.0 first queued", "250 ok", "250 ok", "550 5.1.1 no e", "354 go")
		if got := s.data(); got != "two\r\n" {
			s.t.Errorf("second data %q", got)
		}
		s.send("250 2.0.0 second queued")
		s.quit()
	})
	c := dialFake(t, f, plainOpts(f))
	next := &NextMessage{From: "c@x.test", To: []string{"d@y.test", "e@y.test"}, Options: &SendOptions{Mail: MailOptions{Size: 5}}}
	res, err := c.SendMail(bg, "a@x.test", []string{"b@y.test"}, strings.NewReader("one"), &SendOptions{Mail: MailOptions{Size: 5}, Next: next})
	if err != nil || res.Reply.Text() != "first queued" {
		t.Fatalf("first: %+v, %v", res, err)
	}
	res, err = c.SendMail(bg, "c@x.test", []string{"d@y.test", "e@y.test"}, strings.NewReader("two"), next.Options)
	if err != nil || res.Reply.Text() != "second queued" || res.Delivered() != 1 {
		t.Fatalf("second: %+v, %v", res, err)
	}
	if ref := res.Refused(); len(ref) != 1 || ref["e@y.test"] == nil {
		t.Errorf("refused %v", ref)
	}
	if err := c.Quit(bg); err != nil {
		t.Fatal(err)
	}
	f.wait()
}

// A transaction sent ahead and then not used: its replies are read and
// it is undone. With a recipient accepted and DATA at 354, the client
// must not end the data (that would deliver an empty message): it closes
// the connection, and the command that found it pending fails as a lost
// connection.
func TestSendAheadAbandonedAfter354(t *testing.T) {
	sawDot := make(chan bool, 1)
	f := startFake(t, func(s *session) {
		if !firstThenAhead(s) {
			return
		}
		s.send("250 queued", "250 ok", "250 ok", "354 go")
		// Whatever comes now would be message text; the client must
		// close instead.
		l, err := s.br.ReadString('\n')
		sawDot <- err == nil && l == ".\r\n"
		if err == nil {
			s.t.Errorf("the client sent %q after abandoning the data", l)
		}
	})
	c := dialFake(t, f, plainOpts(f))
	next := &NextMessage{From: "c@x.test", To: []string{"d@y.test"}}
	if _, err := c.SendMail(bg, "a@x.test", []string{"b@y.test"}, strings.NewReader("one"), &SendOptions{Next: next}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Noop(bg); !errors.Is(err, ErrServerDisconnected) {
		t.Errorf("NOOP after an abandoned transaction: %v, want ErrServerDisconnected", err)
	}
	f.wait()
	if <-sawDot {
		t.Error("an empty message was ended")
	}
}

// Abandoned with every recipient refused: the lone dot of RFC 2920 §3.1
// for a 354, then RSET, and the connection goes on. A different next
// message counts as abandoning.
func TestSendAheadAbandonedNoRecipient(t *testing.T) {
	f := startFake(t, func(s *session) {
		if !firstThenAhead(s) {
			return
		}
		s.send("250 queued", "250 ok", "550 5.1.1 no d", "354 go (broken server)")
		s.expect(".")
		s.send("554 5.5.1 no valid recipients")
		s.expect("RSET")
		s.send("250 ok")
		// The message the client really sends next.
		s.expect("MAIL FROM:<f@x.test>")
		s.expect("RCPT TO:<g@y.test>")
		s.expect("DATA")
		s.send("250 ok", "250 ok", "354 go")
		if got := s.data(); got != "three\r\n" {
			s.t.Errorf("data %q", got)
		}
		s.send("250 third queued")
		s.quit()
	})
	c := dialFake(t, f, plainOpts(f))
	next := &NextMessage{From: "c@x.test", To: []string{"d@y.test"}}
	if _, err := c.SendMail(bg, "a@x.test", []string{"b@y.test"}, strings.NewReader("one"), &SendOptions{Next: next}); err != nil {
		t.Fatal(err)
	}
	res, err := c.SendMail(bg, "f@x.test", []string{"g@y.test"}, strings.NewReader("three"), nil)
	if err != nil || res.Reply.Text() != "third queued" {
		t.Fatalf("third: %+v, %v", res, err)
	}
	c.Quit(bg)
	f.wait()
}

// A message refused at the end of data while the next envelope is out:
// no RSET (the reply ended that transaction), and the next SendMail reads
// its replies as usual. Hangup with a transaction pending closes without
// QUIT, which would be message text after a 354.
func TestSendAheadAfterRefusedDataAndHangup(t *testing.T) {
	eof := make(chan bool, 1)
	f := startFake(t, func(s *session) {
		if !firstThenAhead(s) {
			return
		}
		s.send("554 5.7.1 spam", "250 ok", "250 ok", "354 go")
		if got := s.data(); got != "two\r\n" {
			s.t.Errorf("data %q", got)
		}
		s.expect("MAIL FROM:<c@x.test>")
		s.expect("RCPT TO:<d@y.test>")
		s.expect("DATA")
		s.send("250 second queued", "250 ok", "250 ok", "354 go")
		_, err := s.br.ReadString('\n')
		eof <- err != nil
	})
	c := dialFake(t, f, plainOpts(f))
	next := &NextMessage{From: "c@x.test", To: []string{"d@y.test"}}
	_, err := c.SendMail(bg, "a@x.test", []string{"b@y.test"}, strings.NewReader("one"), &SendOptions{Next: next})
	if !errors.Is(err, ErrData) || IsTemporary(err) {
		t.Fatalf("first: %v, want a permanent ErrData", err)
	}
	res, err := c.SendMail(bg, "c@x.test", []string{"d@y.test"}, strings.NewReader("two"), &SendOptions{Next: next})
	if err != nil || res.Reply.Text() != "second queued" {
		t.Fatalf("second: %+v, %v", res, err)
	}
	c.Hangup(bg)
	f.wait()
	if !<-eof {
		t.Error("Hangup wrote after the 354 of a pending transaction")
	}
}

// No PIPELINING, LMTP, or a next message with no recipient: nothing goes
// ahead, and the wire is what it always was.
func TestSendAheadOnlyWhenPipelining(t *testing.T) {
	f := startFake(t, func(s *session) {
		if !s.greetEHLO("8BITMIME") {
			return
		}
		for _, who := range []string{"a", "c"} {
			s.expect("MAIL FROM:<" + who + "@x.test>")
			s.send("250 ok")
			s.expect("RCPT TO:<b@y.test>")
			s.send("250 ok")
			s.expect("DATA")
			s.send("354 go")
			s.data()
			s.send("250 queued")
		}
		s.quit()
	})
	c := dialFake(t, f, plainOpts(f))
	next := &NextMessage{From: "c@x.test", To: []string{"b@y.test"}}
	for _, from := range []string{"a@x.test", "c@x.test"} {
		if _, err := c.SendMail(bg, from, []string{"b@y.test"}, strings.NewReader("m"), &SendOptions{Next: next}); err != nil {
			t.Fatal(err)
		}
	}
	c.Quit(bg)
	f.wait()
}

// NoPipelining on the message being sent: nothing goes ahead behind it,
// even when the server offers PIPELINING and Next is set.
func TestSendAheadNotWithNoPipelining(t *testing.T) {
	f := startFake(t, func(s *session) {
		if !s.greetEHLO("PIPELINING") {
			return
		}
		s.expect("MAIL FROM:<a@x.test>")
		s.send("250 ok")
		s.expect("RCPT TO:<b@y.test>")
		s.send("250 ok")
		s.expect("DATA")
		s.send("354 go")
		s.data()
		s.send("250 queued")
		s.quit()
	})
	c := dialFake(t, f, plainOpts(f))
	next := &NextMessage{From: "c@x.test", To: []string{"b@y.test"}}
	if _, err := c.SendMail(bg, "a@x.test", []string{"b@y.test"}, strings.NewReader("m"), &SendOptions{NoPipelining: true, Next: next}); err != nil {
		t.Fatal(err)
	}
	c.Quit(bg)
	f.wait()
}

// firstThenAhead is the server's side of the first message from
// a@x.test to b@y.test, pipelined and accepted up to the data, followed
// by the envelope of c@x.test to d@y.test sent ahead, read but not yet
// answered (the reply to the first data neither).
func firstThenAhead(s *session) bool {
	if !s.greetEHLO("PIPELINING") {
		return false
	}
	s.expect("MAIL FROM:<a@x.test>")
	s.expect("RCPT TO:<b@y.test>")
	s.expect("DATA")
	s.send("250 ok", "250 ok", "354 go")
	s.data()
	s.expect("MAIL FROM:<c@x.test>")
	s.expect("RCPT TO:<d@y.test>")
	s.expect("DATA")
	return !s.failed
}
