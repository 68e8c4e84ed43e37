package queue

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestEnqueueRoundTrip(t *testing.T) {
	q := newQueue(t)
	q.now = func() time.Time { return t0.Add(1500 * time.Millisecond) }
	env := testEnvelope()
	id, err := q.Enqueue(env, strings.NewReader(testMessage))
	if err != nil {
		t.Fatal(err)
	}
	if !ValidID(id) || env.ID != id {
		t.Fatalf("id %q, env.ID %q", id, env.ID)
	}
	if env.Size != int64(len(testMessage)) || !env.Created.Equal(t0.Add(time.Second)) || !env.NextAttempt.Equal(env.Created) || env.Version != Version {
		t.Errorf("Enqueue set size %d, created %v, next %v, version %d", env.Size, env.Created, env.NextAttempt, env.Version)
	}

	// Files and modes.
	if got, want := files(t, q.Dir), []string{"env/" + id, "msg/" + id}; !slices.Equal(got, want) {
		t.Errorf("files %q, want %q", got, want)
	}
	for _, p := range []string{"", "env", "msg", "corrupt"} {
		fi, err := os.Lstat(filepath.Join(q.Dir, p))
		if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s/: %v %v, want a directory 0700", p, fi.Mode(), err)
		}
	}
	for _, p := range []string{"env/" + id, "msg/" + id} {
		fi, _ := os.Lstat(filepath.Join(q.Dir, p))
		if fi.Mode() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", p, fi.Mode())
		}
	}

	// List.
	items, err := q.List(Filter{})
	if err != nil || len(items) != 1 {
		t.Fatalf("List = %v, %v", items, err)
	}
	if !reflect.DeepEqual(items[0].Envelope, *env) || items[0].Err != nil {
		t.Errorf("List gave\n%+v\nwant\n%+v", items[0].Envelope, *env)
	}

	// Lock and the exact bytes.
	it, err := q.Lock(id)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Unlock()
	if !reflect.DeepEqual(it.Env, env) {
		t.Errorf("Lock read\n%+v\nwant\n%+v", it.Env, env)
	}
	for range 2 { // a second reader starts from the beginning again
		body, err := it.Body()
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(body)
		if err != nil || string(got) != testMessage {
			t.Fatalf("Body = %q, %v; want %q", got, err, testMessage)
		}
		if _, err := body.Seek(6, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		rest, _ := io.ReadAll(body)
		if string(rest) != testMessage[6:] {
			t.Errorf("after Seek(6): %q", rest)
		}
		body.Close()
	}
}

func TestEnvelopeFileIsReadable(t *testing.T) {
	q := newQueue(t)
	q.now = func() time.Time { return t0 }
	id := enqueue(t, q, testEnvelope())
	data, err := os.ReadFile(filepath.Join(q.Dir, "env", id))
	if err != nil {
		t.Fatal(err)
	}
	want := "handoff-envelope 1\n" +
		"id: " + id + "\n" +
		"created: 2025-06-02T10:00:00Z\n" +
		"user: www-data\n" +
		"uid: 33\n" +
		"sender: www-data@example.com\n" +
		"ret: HDRS\n" +
		"envid: QQ314159\n" +
		"body: 7BIT\n" +
		"smtputf8: no\n" +
		fmt.Sprintf("size: %d\n", len(testMessage)) +
		"attempts: 0\n" +
		"next-attempt: 2025-06-02T10:00:00Z\n" +
		"held: no\n" +
		"delay-warned: no\n" +
		"rcpt: pending alice@example.org\n" +
		"rcpt: pending bob@example.net orcpt=bob@example.net notify=FAILURE,DELAY\n" +
		"end\n"
	if string(data) != want {
		t.Errorf("envelope file:\n%s\nwant:\n%s", data, want)
	}
}

func TestEnqueueRefusesInvalid(t *testing.T) {
	for name, mutate := range map[string]func(e *Envelope){
		"CRLF in sender":      func(e *Envelope) { e.Sender = "a@b\r\nRCPT TO:<x@y>" },
		"LF in recipient":     func(e *Envelope) { e.Recipients[0].Addr = "a@b\nx" },
		"NUL in envid":        func(e *Envelope) { e.EnvID = "a\x00b" },
		"CR in orcpt":         func(e *Envelope) { e.Recipients[1].ORCPT = "a\rb" },
		"CR in user":          func(e *Envelope) { e.User = "a\rb" },
		"no recipients":       func(e *Envelope) { e.Recipients = nil },
		"duplicate recipient": func(e *Envelope) { e.Recipients[1].Addr = e.Recipients[0].Addr },
		"empty recipient":     func(e *Envelope) { e.Recipients[0].Addr = "" },
		"bad notify":          func(e *Envelope) { e.Recipients[0].Notify = []string{"NEVER", "FAILURE"} },
		"bad ret":             func(e *Envelope) { e.Ret = "ALL" },
		"sender <>":           func(e *Envelope) { e.Sender = "<>" },
		// Lock reads at most 16 MiB of an envelope: a bigger one would be
		// queued, then moved aside as corrupt.
		"envelope over 16 MiB": func(e *Envelope) {
			pad := strings.Repeat("x", 240)
			e.Recipients = nil
			for i := 0; i < maxEnvelopeSize/250; i++ {
				e.Recipients = append(e.Recipients, Recipient{Addr: fmt.Sprintf("%s%06d@example.org", pad, i)})
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			q := newQueue(t)
			env := testEnvelope()
			mutate(env)
			before := *env
			_, err := q.Enqueue(env, strings.NewReader(testMessage))
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			if got := files(t, q.Dir); len(got) != 0 {
				t.Errorf("files written: %q", got)
			}
			if !reflect.DeepEqual(*env, before) {
				t.Errorf("the envelope was changed by a failed Enqueue")
			}
		})
	}
}

// TestEnqueueFailures fails each file operation of Enqueue in turn, in
// the message write and in the envelope write, with anonymous temporary
// files (O_TMPFILE, where the system has them) and with named ones: the
// error is returned with its cause, and nothing is left: no item listed,
// no file but the directories.
func TestEnqueueFailures(t *testing.T) {
	// The calls Enqueue makes, in order (the message file stays open and
	// locked, the envelope open, so neither is closed; an anonymous file
	// is linked to its temporary name once its content is durable).
	type step struct {
		op string
		at int
	}
	for _, named := range []bool{false, true} {
		steps := []step{
			{"create", 1}, {"write", 1}, {"sync", 1}, {"link", 1}, {"rename", 1}, {"syncDir", 1},
			{"create", 2}, {"write", 2}, {"sync", 2}, {"link", 2}, {"rename", 2}, {"syncDir", 2},
		}
		want := map[string]int{"create": 2, "write": 2, "sync": 2, "link": 2, "rename": 2, "syncDir": 2}
		// The counts of a successful Enqueue must match the list above.
		fl := &faults{named: named}
		q := newQueue(t)
		q.ops = fl.ops()
		enqueue(t, q, testEnvelope())
		if fl.counts["link"] == 0 {
			if !named {
				t.Log("no anonymous temporary files here: named ones")
			}
			steps = slices.DeleteFunc(steps, func(s step) bool { return s.op == "link" })
			delete(want, "link")
		}
		if !reflect.DeepEqual(fl.counts, want) {
			t.Fatalf("calls of a successful Enqueue: %v, want %v", fl.counts, want)
		}

		for _, s := range steps {
			for _, errno := range []syscall.Errno{syscall.ENOSPC, syscall.EACCES, syscall.EIO} {
				t.Run(fmt.Sprintf("%s#%d/%s/named=%v", s.op, s.at, errno, named), func(t *testing.T) {
					q := newQueue(t)
					q.ops = (&faults{op: s.op, at: s.at, err: errno, named: named}).ops()
					env := testEnvelope()
					id, err := q.Enqueue(env, strings.NewReader(testMessage))
					if !errors.Is(err, errno) {
						t.Fatalf("err = %v, want it to wrap %v", err, errno)
					}
					if id != "" || env.ID != "" {
						t.Errorf("failed Enqueue returned id %q, env.ID %q", id, env.ID)
					}
					if items, err := q.List(Filter{}); err != nil || len(items) != 0 {
						t.Errorf("List after a failed Enqueue: %v, %v", items, err)
					}
					if got := files(t, q.Dir); len(got) != 0 {
						t.Errorf("files left: %q", got)
					}
					if due, _ := q.Due(t0.Add(time.Hour), Filter{}); len(due) != 0 {
						t.Errorf("Due: %q", due)
					}
				})
			}
		}
	}
}

// TestEnqueueDiskFull is the full-disk case end to end: ENOSPC while the
// message is written.
func TestEnqueueDiskFull(t *testing.T) {
	q := newQueue(t)
	q.ops = (&faults{op: "write", at: 1, err: syscall.ENOSPC}).ops()
	_, err := q.Enqueue(testEnvelope(), strings.NewReader(strings.Repeat("x", 200<<10)))
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("err = %v, want ENOSPC", err)
	}
	t.Logf("the error the submitter prints: %v", err)
	if items, _ := q.List(Filter{}); len(items) != 0 {
		t.Errorf("listed: %v", items)
	}
	if got := files(t, q.Dir); len(got) != 0 {
		t.Errorf("files left: %q", got)
	}
}

func TestEnqueueUnwritableQueue(t *testing.T) {
	q := newQueue(t)
	q.ops = (&faults{op: "create", at: 1, err: syscall.EACCES}).ops()
	_, err := q.Enqueue(testEnvelope(), strings.NewReader(testMessage))
	if !errors.Is(err, syscall.EACCES) || !errors.Is(err, os.ErrPermission) {
		t.Fatalf("err = %v, want EACCES", err)
	}
	if got := files(t, q.Dir); len(got) != 0 {
		t.Errorf("files left: %q", got)
	}
}

func TestEnqueueReaderError(t *testing.T) {
	q := newQueue(t)
	errRead := errors.New("stdin broke")
	_, err := q.Enqueue(testEnvelope(), io.MultiReader(strings.NewReader("Subject: x\r\n"), iotestErrReader{errRead}))
	if !errors.Is(err, errRead) {
		t.Fatalf("err = %v", err)
	}
	if got := files(t, q.Dir); len(got) != 0 {
		t.Errorf("files left: %q", got)
	}
}

type iotestErrReader struct{ err error }

func (r iotestErrReader) Read([]byte) (int, error) { return 0, r.err }

func TestEnqueueConcurrent(t *testing.T) {
	q := newQueue(t)
	const n = 50
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			env := testEnvelope()
			env.Recipients[0].Addr = fmt.Sprintf("user%d@example.org", i)
			ids[i], errs[i] = q.Enqueue(env, strings.NewReader(testMessage))
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if seen[ids[i]] {
			t.Fatalf("id %s twice", ids[i])
		}
		seen[ids[i]] = true
	}
	items, err := q.List(Filter{})
	if err != nil || len(items) != n {
		t.Fatalf("List: %d items, %v", len(items), err)
	}
	for i, s := range items {
		if !seen[s.ID] {
			t.Errorf("unknown id %s listed", s.ID)
		}
		if i > 0 && items[i-1].ID >= s.ID {
			t.Errorf("not sorted: %s then %s", items[i-1].ID, s.ID)
		}
	}
}

func TestIDs(t *testing.T) {
	prev := ""
	for i := range 1000 {
		id := newID(t0)
		if !ValidID(id) {
			t.Fatalf("invalid id %q", id)
		}
		if id <= prev {
			t.Fatalf("id %d %q not after %q", i, id, prev)
		}
		prev = id
	}
	// Later than any id made so far (the time part never repeats in a
	// process, so an id for an earlier time gets the last one's + 1µs).
	later := time.Now().Add(24 * time.Hour)
	a, b := newID(later), newID(later.Add(time.Hour))
	if a >= b {
		t.Errorf("ids do not sort by time: %s, %s", a, b)
	}
	if got := idTime(b); !got.Equal(later.Add(time.Hour).Truncate(time.Microsecond)) {
		t.Errorf("idTime = %v, want %v", got, later.Add(time.Hour))
	}
	for _, bad := range []string{"", "../../etc/passwd", "0JM2Q4ZK8PX7A3B", "0JM2Q4ZK8PX7A3BDX", "0JM2Q4ZK8PX7A3Bd", "0JM2Q4ZK8PX7A3BI", ".tmp-0JM2Q4ZK8PX"} {
		if ValidID(bad) {
			t.Errorf("ValidID(%q) = true", bad)
		}
	}
}

// TestCrashLeftovers simulates what crashes leave: a message file without
// an envelope (a crash between the two renames of Enqueue) and temporary
// files. They are not items, and ReapOrphans deletes them after the grace
// period, but never a file whose Enqueue is still going on.
func TestCrashLeftovers(t *testing.T) {
	q := newQueue(t)
	keep := enqueue(t, q, testEnvelope())
	orphan := newID(time.Now())
	if err := WriteFileDurable(filepath.Join(q.Dir, "msg"), orphan, func(w io.Writer) error {
		_, err := io.WriteString(w, testMessage)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"msg/.tmp-" + orphan + "-0123", "env/.tmp-" + keep + "-4567"} {
		if err := os.WriteFile(filepath.Join(q.Dir, p), []byte("half"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// An Enqueue in progress: its message file exists, locked, without an
	// envelope yet.
	inProgress := newID(time.Now())
	f, err := writeDurable(&defaultOps, filepath.Join(q.Dir, "msg"), inProgress, func(w io.Writer) error { return nil }, writeOpts{lock: true, owner: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	items, _ := q.List(Filter{})
	if len(items) != 1 || items[0].ID != keep {
		t.Errorf("List = %v, want only %s", items, keep)
	}
	due, _ := q.Due(time.Now().Add(time.Hour), Filter{})
	if !slices.Equal(due, []string{keep}) {
		t.Errorf("Due = %q, want only %s", due, keep)
	}
	if _, err := q.Lock(orphan); !errors.Is(err, ErrNotFound) {
		t.Errorf("Lock(orphan) = %v, want ErrNotFound", err)
	}

	now := time.Now()
	if n, err := q.ReapOrphans(now, OrphanGrace); n != 0 || err != nil {
		t.Errorf("ReapOrphans within the grace period = %d, %v", n, err)
	}
	n, err := q.ReapOrphans(now.Add(OrphanGrace+time.Minute), OrphanGrace)
	if n != 3 || err != nil {
		t.Errorf("ReapOrphans after the grace period = %d, %v; want 3", n, err)
	}
	want := []string{"env/" + keep, "msg/" + inProgress, "msg/" + keep}
	slices.Sort(want)
	if got := files(t, q.Dir); !slices.Equal(got, want) {
		t.Errorf("files %q, want %q", got, want)
	}
	if _, err := q.Lock(keep); err != nil {
		t.Errorf("the queued item was disturbed: %v", err)
	}
}

func TestLockBusyInProcess(t *testing.T) {
	q := newQueue(t)
	id := enqueue(t, q, testEnvelope())
	for round := range 20 {
		var wg sync.WaitGroup
		var items [2]*Item
		var errs [2]error
		start := make(chan struct{})
		for i := range 2 {
			wg.Go(func() {
				<-start
				items[i], errs[i] = q.Lock(id)
			})
		}
		close(start)
		wg.Wait()
		got, busy := 0, 0
		for i := range 2 {
			switch {
			case errs[i] == nil:
				got++
				items[i].Unlock()
			case errors.Is(errs[i], ErrBusy):
				busy++
			default:
				t.Fatalf("round %d: %v", round, errs[i])
			}
		}
		if got != 1 || busy != 1 {
			t.Fatalf("round %d: %d got the item, %d ErrBusy; want 1 and 1", round, got, busy)
		}
	}
}

func TestLockHeldByEnqueueLocked(t *testing.T) {
	q := newQueue(t)
	it, err := q.EnqueueLocked(testEnvelope(), strings.NewReader(testMessage))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.Lock(it.ID()); !errors.Is(err, ErrBusy) {
		t.Errorf("Lock of an item held by its submitter = %v, want ErrBusy", err)
	}
	due, _ := q.Due(time.Now(), Filter{})
	if !slices.Equal(due, []string{it.ID()}) {
		t.Errorf("Due = %q", due)
	}
	it.Unlock()
	it2, err := q.Lock(it.ID())
	if err != nil {
		t.Fatal(err)
	}
	it2.Unlock()
}

func TestLockNotFound(t *testing.T) {
	q := newQueue(t)
	for _, id := range []string{"../msg/x", "", newID(t0)} {
		if _, err := q.Lock(id); !errors.Is(err, ErrNotFound) {
			t.Errorf("Lock(%q) = %v, want ErrNotFound", id, err)
		}
	}
	id := enqueue(t, q, testEnvelope())
	if err := q.Delete(id); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Lock(id); !errors.Is(err, ErrNotFound) {
		t.Errorf("Lock after Delete = %v, want ErrNotFound", err)
	}
}

func TestSaveRecordAttemptRemove(t *testing.T) {
	q := newQueue(t)
	q.now = func() time.Time { return t0 }
	id := enqueue(t, q, testEnvelope())
	it, err := q.Lock(id)
	if err != nil {
		t.Fatal(err)
	}
	p := Policy{Rand: func() float64 { return 0.5 }}
	if err := it.RecordAttempt(t0, p); err != nil {
		t.Fatal(err)
	}
	// Durable before connecting: another reader sees it at once.
	items, _ := q.List(Filter{})
	if items[0].Attempts != 1 || !items[0].NextAttempt.Equal(t0.Add(5*time.Minute)) {
		t.Errorf("after RecordAttempt the file says attempts %d, next %v", items[0].Attempts, items[0].NextAttempt)
	}
	it.Apply([]Result{
		{Addr: "alice@example.org", Reply: "250 2.0.0 Ok"},
		{Addr: "bob@example.net", Reply: "451 4.3.0 Try later", Temporary: true, Err: errors.New("451")},
	}, t0.Add(time.Second), p)
	if err := it.Save(); err != nil {
		t.Fatal(err)
	}
	saved := *it.Env
	it.Unlock()
	if err := it.Save(); !errors.Is(err, ErrUnlocked) {
		t.Errorf("Save after Unlock = %v", err)
	}

	it, err = q.Lock(id)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*it.Env, saved) {
		t.Errorf("read back\n%+v\nwant\n%+v", *it.Env, saved)
	}
	if it.Done() {
		t.Error("Done with a deferred recipient")
	}
	it.Env.ID = "0000000000000000"
	if err := it.Save(); !errors.Is(err, ErrInvalid) {
		t.Errorf("Save with a changed id = %v", err)
	}
	it.Env.ID = id
	if err := it.Remove(); err != nil {
		t.Fatal(err)
	}
	if got := files(t, q.Dir); len(got) != 0 {
		t.Errorf("files after Remove: %q", got)
	}
	if err := it.Remove(); !errors.Is(err, ErrUnlocked) {
		t.Errorf("second Remove = %v", err)
	}
}

func TestSaveFailureKeepsOldEnvelope(t *testing.T) {
	q := newQueue(t)
	id := enqueue(t, q, testEnvelope())
	it, err := q.Lock(id)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Unlock()
	q.ops = (&faults{op: "write", at: 1, err: syscall.ENOSPC}).ops()
	if err := it.RecordAttempt(t0, Policy{}); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("RecordAttempt = %v, want ENOSPC (and then no connection)", err)
	}
	items, _ := q.List(Filter{})
	if len(items) != 1 || items[0].Attempts != 0 {
		t.Errorf("after a failed save: %+v", items)
	}
	if got := files(t, q.Dir); len(got) != 2 {
		t.Errorf("files %q", got)
	}
}

func TestHoldReleaseDelete(t *testing.T) {
	q := newQueue(t)
	id := enqueue(t, q, testEnvelope())
	now := time.Now().Add(time.Minute)
	if err := q.Hold(id, true); err != nil {
		t.Fatal(err)
	}
	if due, _ := q.Due(now, Filter{}); len(due) != 0 {
		t.Errorf("held item due: %q", due)
	}
	items, _ := q.List(Filter{})
	if !items[0].Held {
		t.Error("not held")
	}
	if err := q.Hold(id, false); err != nil {
		t.Fatal(err)
	}
	if due, _ := q.Due(now, Filter{}); !slices.Equal(due, []string{id}) {
		t.Errorf("released item not due: %q", due)
	}
	it, _ := q.Lock(id)
	if err := q.Hold(id, true); !errors.Is(err, ErrBusy) {
		t.Errorf("Hold while locked = %v, want ErrBusy", err)
	}
	if err := q.Delete(id); !errors.Is(err, ErrBusy) {
		t.Errorf("Delete while locked = %v, want ErrBusy", err)
	}
	it.Unlock()
	if err := q.Delete(id); err != nil {
		t.Fatal(err)
	}
	if got := files(t, q.Dir); len(got) != 0 {
		t.Errorf("files after Delete: %q", got)
	}
}

func TestDueAndFilters(t *testing.T) {
	q := newQueue(t)
	q.now = func() time.Time { return t0 }
	mk := func(uid int, sender, rcpt string) string {
		env := &Envelope{Sender: sender, Recipients: []Recipient{{Addr: rcpt}}, UID: uid}
		return enqueue(t, q, env)
	}
	a := mk(0, "root@example.com", "ops@example.com")
	b := mk(1000, "alice@example.com", "bob@Example.NET")
	c := mk(1000, "", "carol@example.org")
	if err := q.Update(b, func(e *Envelope) error { e.NextAttempt = t0.Add(time.Hour); return nil }); err != nil {
		t.Fatal(err)
	}
	check := func(name string, got []string, want ...string) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	ids := func(items []Summary, err error) []string {
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, s := range items {
			out = append(out, s.ID)
		}
		return out
	}
	due, _ := q.Due(t0, Filter{})
	check("Due(now)", due, a, c)
	due, _ = q.Due(t0.Add(time.Hour), Filter{})
	check("Due(now+1h)", due, a, b, c)
	check("List(uid 1000)", ids(q.List(Filter{MatchUID: true, UID: 1000})), b, c)
	check("List(uid 0)", ids(q.List(Filter{MatchUID: true, UID: 0})), a)
	check("List(uid 5)", ids(q.List(Filter{MatchUID: true, UID: 5})))
	check("List(-qR example.net)", ids(q.List(Filter{Recipient: "EXAMPLE.net"})), b)
	check("List(-qS alice)", ids(q.List(Filter{Sender: "alice"})), b)
	check("List(-qS <>)", ids(q.List(Filter{Sender: "<>"})), c)
	check("List(-qI)", ids(q.List(Filter{ID: strings.ToLower(c[6:])})), c)
	due, _ = q.Due(t0, Filter{Recipient: "carol"})
	check("Due(-qR carol)", due, c)
}

func TestCorruptEnvelope(t *testing.T) {
	for name, damage := range map[string]func(q *Queue, id string){
		"garbage": func(q *Queue, id string) {
			os.WriteFile(filepath.Join(q.Dir, "env", id), []byte("\x00\x01garbage"), 0o600)
		},
		"truncated": func(q *Queue, id string) {
			data, _ := os.ReadFile(filepath.Join(q.Dir, "env", id))
			os.WriteFile(filepath.Join(q.Dir, "env", id), data[:len(data)-4], 0o600)
		},
		"future version": func(q *Queue, id string) {
			data, _ := os.ReadFile(filepath.Join(q.Dir, "env", id))
			os.WriteFile(filepath.Join(q.Dir, "env", id), []byte(strings.Replace(string(data), "handoff-envelope 1", "handoff-envelope 2", 1)), 0o600)
		},
		"unknown key": func(q *Queue, id string) {
			data, _ := os.ReadFile(filepath.Join(q.Dir, "env", id))
			os.WriteFile(filepath.Join(q.Dir, "env", id), []byte(strings.Replace(string(data), "held: no\n", "held: no\npriority: high\n", 1)), 0o600)
		},
		"size mismatch": func(q *Queue, id string) {
			f, _ := os.OpenFile(filepath.Join(q.Dir, "msg", id), os.O_WRONLY|os.O_APPEND, 0)
			f.WriteString("more")
			f.Close()
		},
		"envelope without message": func(q *Queue, id string) {
			os.Remove(filepath.Join(q.Dir, "msg", id))
		},
	} {
		t.Run(name, func(t *testing.T) {
			q := newQueue(t)
			good := enqueue(t, q, testEnvelope())
			id := enqueue(t, q, testEnvelope())
			damage(q, id)

			// List reads envelopes only: it sees a damaged envelope, not a
			// damaged message file.
			envDamage := name != "size mismatch" && name != "envelope without message"
			items, _ := q.List(Filter{})
			if len(items) != 2 || items[1].ID != id || errors.Is(items[1].Err, ErrCorrupt) != envDamage {
				t.Errorf("List = %+v", items)
			}
			if items, _ := q.List(Filter{MatchUID: true, UID: 33}); envDamage && len(items) != 1 {
				t.Errorf("a restricted List shows the unreadable item: %+v", items)
			}
			due, _ := q.Due(time.Now(), Filter{})
			if !slices.Contains(due, id) {
				t.Errorf("Due = %q, want the corrupt %s for the runner to move it aside", due, id)
			}
			_, err := q.Lock(id)
			var ce *CorruptError
			if !errors.Is(err, ErrCorrupt) || !errors.As(err, &ce) || ce.ID != id || ce.Dir == "" {
				t.Fatalf("Lock = %v, want a *CorruptError", err)
			}
			t.Logf("reported: %v", err)
			got := files(t, q.Dir)
			if !slices.Contains(got, "corrupt/"+id+".env") || slices.Contains(got, "env/"+id) || slices.Contains(got, "msg/"+id) {
				t.Errorf("files after moving aside: %q", got)
			}
			items, _ = q.List(Filter{})
			if len(items) != 1 || items[0].ID != good {
				t.Errorf("List after moving aside = %+v", items)
			}
			if _, err := q.Lock(id); !errors.Is(err, ErrNotFound) {
				t.Errorf("second Lock = %v, want ErrNotFound", err)
			}
		})
	}
}

func TestUnsafeFiles(t *testing.T) {
	cases := map[string]func(t *testing.T, q *Queue, id string){
		"symlinked envelope": func(t *testing.T, q *Queue, id string) {
			p := filepath.Join(q.Dir, "env", id)
			elsewhere := filepath.Join(t.TempDir(), "env")
			data, _ := os.ReadFile(p)
			os.WriteFile(elsewhere, data, 0o600)
			os.Remove(p)
			if err := os.Symlink(elsewhere, p); err != nil {
				t.Fatal(err)
			}
		},
		"symlinked message": func(t *testing.T, q *Queue, id string) {
			p := filepath.Join(q.Dir, "msg", id)
			elsewhere := filepath.Join(t.TempDir(), "msg")
			os.Rename(p, elsewhere)
			os.Symlink(elsewhere, p)
		},
		"envelope mode 0644": func(t *testing.T, q *Queue, id string) {
			os.Chmod(filepath.Join(q.Dir, "env", id), 0o644)
		},
		"message mode 0640": func(t *testing.T, q *Queue, id string) {
			os.Chmod(filepath.Join(q.Dir, "msg", id), 0o640)
		},
		"hard-linked envelope": func(t *testing.T, q *Queue, id string) {
			os.Link(filepath.Join(q.Dir, "env", id), filepath.Join(t.TempDir(), "link"))
		},
		"envelope is a FIFO": func(t *testing.T, q *Queue, id string) {
			p := filepath.Join(q.Dir, "env", id)
			os.Remove(p)
			if err := syscall.Mkfifo(p, 0o600); err != nil {
				t.Skip(err)
			}
		},
		"envelope owned by nobody": func(t *testing.T, q *Queue, id string) {
			if os.Geteuid() != 0 {
				t.Skip("needs root to chown")
			}
			if err := os.Lchown(filepath.Join(q.Dir, "env", id), 65534, 65534); err != nil {
				t.Fatal(err)
			}
		},
		"message owned by nobody": func(t *testing.T, q *Queue, id string) {
			if os.Geteuid() != 0 {
				t.Skip("needs root to chown")
			}
			if err := os.Lchown(filepath.Join(q.Dir, "msg", id), 65534, 65534); err != nil {
				t.Fatal(err)
			}
		},
	}
	for name, damage := range cases {
		t.Run(name, func(t *testing.T) {
			q := newQueue(t)
			id := enqueue(t, q, testEnvelope())
			damage(t, q, id)
			if strings.Contains(name, "envelope") {
				items, _ := q.List(Filter{})
				if len(items) != 1 || !errors.Is(items[0].Err, ErrUnsafe) {
					t.Errorf("List = %+v, want the item with ErrUnsafe", items)
				}
			}
			_, err := q.Lock(id)
			if !errors.Is(err, ErrUnsafe) || !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Lock = %v, want ErrUnsafe and ErrCorrupt", err)
			}
			t.Logf("reported: %v", err)
			for _, p := range []string{"env/" + id, "msg/" + id} {
				if _, err := os.Lstat(filepath.Join(q.Dir, p)); err == nil {
					t.Errorf("%s still in place", p)
				}
			}
			if _, err := os.Lstat(filepath.Join(q.Dir, "corrupt", id+".env")); err != nil {
				t.Errorf("not moved aside: %v", err)
			}
		})
	}
}

func TestOpenChecks(t *testing.T) {
	base := t.TempDir()

	// Created with its subdirectories, and opened again.
	dir := filepath.Join(base, "q")
	if _, err := Open(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); err != nil {
		t.Fatal(err)
	}

	link := filepath.Join(base, "link")
	os.Symlink(dir, link)
	if _, err := Open(link); !errors.Is(err, ErrUnsafe) {
		t.Errorf("Open(symlink) = %v, want ErrUnsafe", err)
	}

	open := filepath.Join(base, "open")
	os.Mkdir(open, 0o777)
	os.Chmod(open, 0o777)
	if _, err := Open(open); !errors.Is(err, ErrUnsafe) {
		t.Errorf("Open(0777 dir) = %v, want ErrUnsafe", err)
	}

	sub := filepath.Join(base, "sub")
	os.MkdirAll(filepath.Join(sub, "env"), 0o700)
	os.Chmod(filepath.Join(sub, "env"), 0o733)
	if _, err := Open(sub); !errors.Is(err, ErrUnsafe) {
		t.Errorf("Open with env/ 0733 = %v, want ErrUnsafe", err)
	}

	subLink := filepath.Join(base, "sublink")
	os.MkdirAll(subLink, 0o700)
	os.Symlink(t.TempDir(), filepath.Join(subLink, "msg"))
	if _, err := Open(subLink); !errors.Is(err, ErrUnsafe) {
		t.Errorf("Open with msg/ a symlink = %v, want ErrUnsafe", err)
	}

	file := filepath.Join(base, "file")
	os.WriteFile(file, nil, 0o600)
	if _, err := Open(file); !errors.Is(err, ErrUnsafe) {
		t.Errorf("Open(file) = %v, want ErrUnsafe", err)
	}

	if _, err := Open(filepath.Join(base, "no", "parent")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open without parent = %v, want ErrNotExist", err)
	}
}

// TestRootManagesOtherOwner: root may work on a queue owned by another
// user (the handoff user's), and what it writes belongs to that user.
func TestRootManagesOtherOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dir := filepath.Join(t.TempDir(), "q")
	os.Mkdir(dir, 0o700)
	os.Chown(dir, 65534, 65534)
	q, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	id := enqueue(t, q, testEnvelope())
	unlock, err := q.RunnerLock()
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	for _, p := range []string{"env", "msg", "corrupt", "env/" + id, "msg/" + id, "runner.lock"} {
		var st syscall.Stat_t
		if err := syscall.Lstat(filepath.Join(dir, p), &st); err != nil || st.Uid != 65534 {
			t.Errorf("%s: uid %d, %v; want 65534", p, st.Uid, err)
		}
	}
	it, err := q.Lock(id)
	if err != nil {
		t.Fatal(err)
	}
	if err := it.Save(); err != nil {
		t.Fatal(err)
	}
	it.Unlock()
	var st syscall.Stat_t
	syscall.Lstat(filepath.Join(dir, "env", id), &st)
	if st.Uid != 65534 {
		t.Errorf("saved envelope uid %d", st.Uid)
	}
}

func TestRunnerLockInProcess(t *testing.T) {
	q := newQueue(t)
	unlock, err := q.RunnerLock()
	if err != nil {
		t.Fatal(err)
	}
	q2, _ := Open(q.Dir)
	if _, err := q2.RunnerLock(); !errors.Is(err, ErrBusy) {
		t.Errorf("second RunnerLock = %v, want ErrBusy", err)
	}
	unlock()
	unlock() // idempotent
	unlock2, err := q2.RunnerLock()
	if err != nil {
		t.Fatal(err)
	}
	unlock2()

	// A strict umask does not make the lock file unusable.
	os.Remove(filepath.Join(q.Dir, "runner.lock"))
	old := syscall.Umask(0o377)
	unlock3, err := q.RunnerLock()
	syscall.Umask(old)
	if err != nil {
		t.Fatalf("RunnerLock under umask 0377: %v", err)
	}
	unlock3()

	os.Remove(filepath.Join(q.Dir, "runner.lock"))
	os.Symlink(filepath.Join(t.TempDir(), "x"), filepath.Join(q.Dir, "runner.lock"))
	if _, err := q.RunnerLock(); !errors.Is(err, ErrUnsafe) {
		t.Errorf("RunnerLock through a symlink = %v, want ErrUnsafe", err)
	}
}

// lockAll enqueues n items and locks them.
func lockAll(t *testing.T, q *Queue, n int) []*Item {
	t.Helper()
	var items []*Item
	for range n {
		it, err := q.Lock(enqueue(t, q, testEnvelope()))
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, it)
	}
	return items
}

// attemptsOnDisk maps each listed item to the attempts its envelope file
// records.
func attemptsOnDisk(t *testing.T, q *Queue) map[string]int {
	t.Helper()
	list, err := q.List(Filter{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, s := range list {
		if s.Err != nil {
			t.Errorf("%s: %v", s.ID, s.Err)
		}
		out[s.ID] = s.Attempts
	}
	return out
}

// TestRecordAttempts records the attempts of a batch with one fsync of
// env/ for all of them.
func TestRecordAttempts(t *testing.T) {
	q := newQueue(t)
	items := lockAll(t, q, 3)
	fl := &faults{}
	q.ops = fl.ops()
	p := Policy{Rand: func() float64 { return 0.5 }}
	for i, err := range q.RecordAttempts(items, t0, p) {
		if err != nil {
			t.Fatalf("item %d: %v", i, err)
		}
	}
	if fl.counts["syncDir"] != 1 || fl.counts["sync"] != 3 {
		t.Errorf("calls %v, want one fsync of env/ for the three", fl.counts)
	}
	for _, it := range items {
		if it.Env.Attempts != 1 || !it.Env.NextAttempt.Equal(t0.Add(5*time.Minute)) {
			t.Errorf("%s: attempts %d, next %v", it.ID(), it.Env.Attempts, it.Env.NextAttempt)
		}
		if n := attemptsOnDisk(t, q)[it.ID()]; n != 1 {
			t.Errorf("%s: the file says %d attempts", it.ID(), n)
		}
		it.Unlock()
	}
}

// TestRecordAttemptsFailures fails the batch write of the attempts for
// the middle item, at each step, then the final fsync of env/ for all:
// an item whose record failed is not counted as attempted, in memory
// (its caller must not connect) or on disk (except after the failed
// fsync, where the new envelope may be in place: an attempt counted,
// never one lost), and every item stays queued, whole.
func TestRecordAttemptsFailures(t *testing.T) {
	for _, op := range []string{"create", "write", "sync", "link", "rename", "syncDir"} {
		t.Run(op, func(t *testing.T) {
			q := newQueue(t)
			items := lockAll(t, q, 3)
			before := make([]Envelope, len(items))
			for i, it := range items {
				before[i] = *it.Env
			}
			at := 2 // the middle item's call
			if op == "syncDir" {
				at = 1 // one for the batch
			}
			fl := &faults{op: op, at: at, err: syscall.EIO}
			q.ops = fl.ops()
			errs := q.RecordAttempts(items, t0, Policy{})
			if op == "link" && fl.counts["link"] == 0 {
				t.Skip("no anonymous temporary files here")
			}
			for i, it := range items {
				failed := i == 1 || op == "syncDir"
				if failed != (errs[i] != nil) || failed && !errors.Is(errs[i], syscall.EIO) {
					t.Errorf("item %d: err %v", i, errs[i])
				}
				if failed && (it.Env.Attempts != 0 || !it.Env.NextAttempt.Equal(before[i].NextAttempt)) {
					t.Errorf("item %d failed but counts %d attempts, next %v, in memory", i, it.Env.Attempts, it.Env.NextAttempt)
				}
			}
			q.ops = &defaultOps
			disk := attemptsOnDisk(t, q)
			if len(disk) != 3 {
				t.Fatalf("%d items queued, want 3", len(disk))
			}
			if op != "syncDir" && (disk[items[0].ID()] != 1 || disk[items[1].ID()] != 0 || disk[items[2].ID()] != 1) {
				t.Errorf("attempts on disk %v, want 1, 0, 1", disk)
			}
			for _, it := range items {
				it.Unlock()
				again, err := q.Lock(it.ID())
				if err != nil {
					t.Fatalf("%s after the failed batch: %v", it.ID(), err)
				}
				again.Unlock()
			}
			if got := files(t, q.Dir); len(got) != 6 {
				t.Errorf("files %q, want the 3 items' and nothing else", got)
			}
		})
	}
}

// TestRemover removes items from several goroutines: every file is gone
// once Close returns, with far fewer fsyncs of env/ than items when the
// removals come faster than an fsync.
func TestRemover(t *testing.T) {
	q := newQueue(t)
	items := lockAll(t, q, 40)
	fl := &faults{}
	q.ops = fl.ops()
	rm := q.NewRemover()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for _, it := range items[w*10 : w*10+10] {
				if err := rm.Remove(it); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if err := rm.Close(); err != nil {
		t.Fatal(err)
	}
	if got := files(t, q.Dir); len(got) != 0 {
		t.Errorf("files left: %q", got)
	}
	n := fl.counts["syncDir"]
	if n < 1 || n > 40 {
		t.Errorf("%d fsyncs of env/ for 40 removals", n)
	}
	t.Logf("%d fsyncs of env/ for 40 removals", n)
	for _, it := range items {
		if _, err := it.Body(); !errors.Is(err, ErrUnlocked) {
			t.Errorf("%s still locked after Close", it.ID())
		}
	}
}

// TestRemoverWindow: removals that trickle in (one a millisecond) share
// fsyncs of env/, at most one per removalWindow, and Close does not wait
// for the window to end: what is pending is made durable at once.
func TestRemoverWindow(t *testing.T) {
	q := newQueue(t)
	items := lockAll(t, q, 60)
	fl := &faults{}
	q.ops = fl.ops()
	rm := q.NewRemover()
	start := time.Now()
	for _, it := range items {
		if err := rm.Remove(it); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	closing := time.Now()
	if err := rm.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(closing); d > removalWindow*3/4 {
		t.Errorf("Close took %v: it waited for the window", d)
	}
	elapsed := time.Since(start)
	n := fl.counts["syncDir"]
	if most := int(elapsed/removalWindow) + 2; n < 1 || n > most {
		t.Errorf("%d fsyncs of env/ for 60 removals over %v; want at most %d", n, elapsed, most)
	}
	t.Logf("%d fsyncs of env/ for 60 removals over %v", n, elapsed)
	if got := files(t, q.Dir); len(got) != 0 {
		t.Errorf("files left: %q", got)
	}
}

// TestRemoverFailure: when the fsync of env/ fails, Close says so, and
// the message files stay (orphans, reaped in time) while the removal of
// their envelopes is not known durable.
func TestRemoverFailure(t *testing.T) {
	q := newQueue(t)
	items := lockAll(t, q, 2)
	q.ops = (&faults{op: "syncDir", at: 1, err: syscall.EIO}).ops()
	rm := q.NewRemover()
	for _, it := range items {
		if err := rm.Remove(it); err != nil {
			t.Fatal(err)
		}
	}
	if err := rm.Close(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Close = %v, want EIO", err)
	}
	if items, _ := q.List(Filter{}); len(items) != 0 {
		t.Errorf("listed after removal: %+v", items)
	}
	q.ops = &defaultOps
	n, _ := q.ReapOrphans(time.Now().Add(2*OrphanGrace), OrphanGrace)
	if n < 1 {
		t.Errorf("reaped %d", n)
	}
	if got := files(t, q.Dir); len(got) != 0 {
		t.Errorf("files left: %q", got)
	}
	if err := rm.Remove(items[0]); !errors.Is(err, ErrUnlocked) {
		t.Errorf("Remove of a removed item = %v", err)
	}
}

// TestItemClosesItsFiles: an item holds its envelope files open while it
// is locked (see Item.envFiles) and closes every one of them when it is
// unlocked or removed.
func TestItemClosesItsFiles(t *testing.T) {
	fds := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skip("no /proc/self/fd")
		}
		return len(ents)
	}
	q := newQueue(t)
	id := enqueue(t, q, testEnvelope())
	before := fds()
	for _, remove := range []bool{false, true} {
		it, err := q.Lock(id)
		if err != nil {
			t.Fatal(err)
		}
		if err := it.RecordAttempt(t0, Policy{}); err != nil {
			t.Fatal(err)
		}
		if err := it.Save(); err != nil {
			t.Fatal(err)
		}
		if remove {
			err = it.Remove()
		} else {
			it.Unlock()
		}
		if err != nil {
			t.Fatal(err)
		}
		if n := fds(); n != before {
			t.Errorf("remove=%v: %d open files, %d before", remove, n, before)
		}
	}
}
