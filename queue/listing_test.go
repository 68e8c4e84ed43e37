package queue

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestWriteListing(t *testing.T) {
	arrival := func(ts time.Time) string { return ts.Local().Format("Mon Jan _2 15:04:05") }
	items := []Summary{
		{Envelope: Envelope{ID: "0JM2Q4ZK8PX7A3BD", Size: 2048, Created: t0, Sender: "alice@example.com", Recipients: []Recipient{
			{Addr: "done@example.org", State: Sent, LastReply: "250 ok"},
			{Addr: "bob@example.net", State: Deferred, LastReply: "451 4.3.0 Mailbox busy"},
			{Addr: "carol@example.net", State: Deferred, LastReply: "451 4.3.0 Mailbox busy"},
			{Addr: "dave@example.net", State: Pending},
		}}},
		{Envelope: Envelope{ID: "0JM2Q4ZK8PX7A3BE", Size: 1000, Created: t0.Add(time.Minute), Held: true, Recipients: []Recipient{
			{Addr: "root@example.com", State: Deferred, LastReply: strings.Repeat("x", 80)},
		}}},
		{Envelope: Envelope{ID: "0JM2Q4ZK8PX7A3BF", Created: t0}, Err: errors.New("envelope line 3: unknown key \"x\"")},
	}
	var b strings.Builder
	if err := WriteListing(&b, items); err != nil {
		t.Fatal(err)
	}
	indent := strings.Repeat(" ", 47)
	want := "" +
		"-Queue ID-       --Size-- ----Arrival Time---- -Sender/Recipient-------\n" +
		fmt.Sprintf("0JM2Q4ZK8PX7A3BD     2048 %s  alice@example.com\n", arrival(t0)) +
		strings.Repeat(" ", 76-22) + "(451 4.3.0 Mailbox busy)\n" +
		indent + "bob@example.net\n" +
		indent + "carol@example.net\n" +
		indent + "dave@example.net\n" +
		"\n" +
		fmt.Sprintf("0JM2Q4ZK8PX7A3BE!    1000 %s  MAILER-DAEMON\n", arrival(t0.Add(time.Minute))) +
		"(" + strings.Repeat("x", 80) + ")\n" +
		indent + "root@example.com\n" +
		"\n" +
		fmt.Sprintf("0JM2Q4ZK8PX7A3BF        0 %s  (unreadable: envelope line 3: unknown key \"x\")\n", arrival(t0)) +
		"\n" +
		"-- 2 Kbytes in 3 Requests.\n"
	if b.String() != want {
		t.Errorf("listing:\n%s\nwant:\n%s", b.String(), want)
	}

	b.Reset()
	WriteListing(&b, nil)
	if b.String() != "Mail queue is empty\n" {
		t.Errorf("empty: %q", b.String())
	}
	b.Reset()
	WriteListing(&b, items[:1])
	if !strings.HasSuffix(b.String(), "\n-- 2 Kbytes in 1 Request.\n") {
		t.Errorf("one item: %q", b.String())
	}
}

// TestListingFromQueue: what mailq prints for a real queue.
func TestListingFromQueue(t *testing.T) {
	q := newQueue(t)
	q.now = func() time.Time { return t0 }
	id := enqueue(t, q, testEnvelope())
	q.Update(id, func(e *Envelope) error {
		e.Apply([]Result{{Addr: "bob@example.net", Reply: "452 4.2.2 Mailbox full", Temporary: true, Err: errTemp}}, t0, Policy{})
		return nil
	})
	items, err := q.List(Filter{})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	WriteListing(&b, items)
	t.Logf("\n%s", b.String())
	for _, want := range []string{id + " ", "www-data@example.com", "(452 4.2.2 Mailbox full)", "alice@example.org", "bob@example.net", "-- 0 Kbytes in 1 Request."} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("%q missing", want)
		}
	}
}
