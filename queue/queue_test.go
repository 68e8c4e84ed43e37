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

	// Files and modes: one file, the item file, and no saved envelope.
	if got, want := files(t, q.Dir), []string{"msg/" + id}; !slices.Equal(got, want) {
		t.Errorf("files %q, want %q", got, want)
	}
	for _, p := range []string{"", "env", "msg", "corrupt"} {
		fi, err := os.Lstat(filepath.Join(q.Dir, p))
		if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s/: %v %v, want a directory 0700", p, fi.Mode(), err)
		}
	}
	if fi, err := os.Lstat(filepath.Join(q.Dir, "msg", id)); err != nil || fi.Mode() != 0o600 {
		t.Errorf("msg/%s: mode %v, %v; want 0600", id, fi.Mode(), err)
	}
	// The item file: the envelope of version 2, then the message.
	head, rest := itemFile(t, q, id)
	if !strings.HasPrefix(head, "handoff-envelope 2\n") {
		t.Errorf("the item file starts %.30q", head)
	}
	if rest != testMessage {
		t.Errorf("the item file holds the message %q, want %q", rest, testMessage)
	}
	if henv, err := ParseEnvelope([]byte(head)); err != nil || !reflect.DeepEqual(henv, env) {
		t.Errorf("the head parses to\n%+v, %v\nwant\n%+v", henv, err, env)
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
	if it.legacy || it.hasEnv || len(it.envFiles) != 0 {
		t.Errorf("a new item: legacy %v, hasEnv %v, %d envelope files", it.legacy, it.hasEnv, len(it.envFiles))
	}

	// Save writes env/ID (version 2, the size unpadded), which from then
	// on is the envelope; the item file is left as it was.
	before, err := os.ReadFile(filepath.Join(q.Dir, "msg", id))
	if err != nil {
		t.Fatal(err)
	}
	it.Env.Held = true
	if err := it.Save(); err != nil {
		t.Fatal(err)
	}
	if !it.hasEnv {
		t.Error("hasEnv not set by Save")
	}
	if got, want := files(t, q.Dir), []string{"env/" + id, "msg/" + id}; !slices.Equal(got, want) {
		t.Errorf("files after Save %q, want %q", got, want)
	}
	if fi, err := os.Lstat(filepath.Join(q.Dir, "env", id)); err != nil || fi.Mode() != 0o600 {
		t.Errorf("env/%s: mode %v, %v; want 0600", id, fi.Mode(), err)
	}
	saved, err := os.ReadFile(filepath.Join(q.Dir, "env", id))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(saved), "handoff-envelope 2\n") || !strings.Contains(string(saved), fmt.Sprintf("\nsize: %d\n", len(testMessage))) {
		t.Errorf("saved envelope:\n%s", saved)
	}
	if after, _ := os.ReadFile(filepath.Join(q.Dir, "msg", id)); string(after) != string(before) {
		t.Errorf("Save changed the item file")
	}
	it.Unlock()
	it, err = q.Lock(id)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Unlock()
	if !it.Env.Held || !it.hasEnv || len(it.envFiles) != 1 {
		t.Errorf("after Save, Lock read held %v, hasEnv %v, %d envelope files", it.Env.Held, it.hasEnv, len(it.envFiles))
	}
	if items, err := q.List(Filter{}); err != nil || len(items) != 1 || !items[0].Held {
		t.Errorf("List after Save = %+v, %v", items, err)
	}
	body, _ := it.Body()
	if got, _ := io.ReadAll(body); string(got) != testMessage {
		t.Errorf("Body after Save = %q", got)
	}
}

// TestEnvelopeFileIsReadable: the envelope at the head of an item file,
// and the saved one, are as the package documentation shows them.
func TestEnvelopeFileIsReadable(t *testing.T) {
	q := newQueue(t)
	q.now = func() time.Time { return t0 }
	id := enqueue(t, q, testEnvelope())
	data, err := os.ReadFile(filepath.Join(q.Dir, "msg", id))
	if err != nil {
		t.Fatal(err)
	}
	envelope := func(size string) string {
		return "handoff-envelope 2\n" +
			"id: " + id + "\n" +
			"created: 2025-06-02T10:00:00Z\n" +
			"user: www-data\n" +
			"uid: 33\n" +
			"sender: www-data@example.com\n" +
			"ret: HDRS\n" +
			"envid: QQ314159\n" +
			"body: 7BIT\n" +
			"smtputf8: no\n" +
			"size: " + size + "\n" +
			"attempts: 0\n" +
			"next-attempt: 2025-06-02T10:00:00Z\n" +
			"held: no\n" +
			"delay-warned: no\n" +
			"rcpt: pending alice@example.org\n" +
			"rcpt: pending bob@example.net orcpt=bob@example.net notify=FAILURE,DELAY\n" +
			"end\n"
	}
	// In the item file the size has 15 digits (written in place once the
	// message is copied).
	want := envelope(fmt.Sprintf("%015d", len(testMessage))) + testMessage
	if string(data) != want {
		t.Errorf("item file:\n%s\nwant:\n%s", data, want)
	}
	if err := q.Update(id, func(*Envelope) error { return nil }); err != nil {
		t.Fatal(err)
	}
	data, err = os.ReadFile(filepath.Join(q.Dir, "env", id))
	if err != nil {
		t.Fatal(err)
	}
	if want := envelope(fmt.Sprint(len(testMessage))); string(data) != want {
		t.Errorf("saved envelope:\n%s\nwant:\n%s", data, want)
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

// TestEnqueueFailures fails each file operation of Enqueue in turn (the
// write of its one file, the item file), with anonymous temporary files
// (O_TMPFILE, where the system has them) and with named ones: the error
// is returned with its cause, and nothing is left: no item listed, no
// file but the directories.
func TestEnqueueFailures(t *testing.T) {
	// The calls Enqueue makes, in order (the item file stays open and
	// locked, so it is not closed; an anonymous file is linked to its
	// temporary name once its content is durable). The envelope and the
	// message go out in one write (they fit the buffer); the size,
	// written in place, is not a write of the ops.
	type step struct {
		op string
		at int
	}
	for _, named := range []bool{false, true} {
		steps := []step{{"create", 1}, {"write", 1}, {"sync", 1}, {"link", 1}, {"rename", 1}, {"syncDir", 1}}
		want := map[string]int{"create": 1, "write": 1, "sync": 1, "link": 1, "rename": 1, "syncDir": 1}
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
		if n := fl.dirSynced("msg"); n != 1 || fl.dirSynced("env") != 0 {
			t.Fatalf("a successful Enqueue fsyncs msg/ %d times and env/ %d times, want 1 and 0", n, fl.dirSynced("env"))
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

// TestCrashLeftovers simulates what crashes leave: a legacy message file
// without an envelope (a crash of a legacy Enqueue between its two
// renames), the saved envelope of an item whose item file is gone (a
// crash during Remove), and temporary files. They are not items, and
// ReapOrphans deletes them after the grace period, but never an item
// (whether saved or not) nor a file whose Enqueue is still going on.
func TestCrashLeftovers(t *testing.T) {
	q := newQueue(t)
	keep := enqueue(t, q, testEnvelope())
	keepSaved := enqueue(t, q, testEnvelope())
	if err := q.Hold(keepSaved, true); err != nil {
		t.Fatal(err)
	}
	orphan := newID(time.Now())
	if err := WriteFileDurable(filepath.Join(q.Dir, "msg"), orphan, func(w io.Writer) error {
		_, err := io.WriteString(w, testMessage)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	// A removal that died between its two deletions.
	removed := enqueue(t, q, testEnvelope())
	if err := q.Hold(removed, true); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(q.Dir, "msg", removed)); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"msg/.tmp-" + orphan + "-0123", "env/.tmp-" + keep + "-4567"} {
		if err := os.WriteFile(filepath.Join(q.Dir, p), []byte("half"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Enqueues in progress: an item file being written (a named
	// temporary file, where O_TMPFILE is missing), and a legacy
	// message file whose envelope is not written yet; both locked.
	inProgress := newID(time.Now())
	for _, name := range []string{".tmp-" + inProgress + "-89ab", inProgress} {
		content := "handoff-envelope 2\nid: " + inProgress + "\n" // the start of an item file
		if name == inProgress {
			content = testMessage // a legacy message file
		}
		f, err := writeDurable(&defaultOps, filepath.Join(q.Dir, "msg"), name, func(w io.Writer) error {
			_, err := io.WriteString(w, content)
			return err
		}, writeOpts{lock: true, owner: -1})
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
	}

	items, _ := q.List(Filter{})
	if len(items) != 2 || items[0].ID != keep || items[1].ID != keepSaved || items[0].Err != nil || items[1].Err != nil {
		t.Errorf("List = %+v, want only %s and %s", items, keep, keepSaved)
	}
	due, _ := q.Due(time.Now().Add(time.Hour), Filter{})
	if !slices.Equal(due, []string{keep}) {
		t.Errorf("Due = %q, want only %s", due, keep)
	}
	for _, id := range []string{orphan, removed} {
		if _, err := q.Lock(id); !errors.Is(err, ErrNotFound) {
			t.Errorf("Lock(%s) = %v, want ErrNotFound", id, err)
		}
	}

	now := time.Now()
	if n, err := q.ReapOrphans(now, OrphanGrace); n != 0 || err != nil {
		t.Errorf("ReapOrphans within the grace period = %d, %v", n, err)
	}
	later := afterGrace(keep, keepSaved, orphan, removed, inProgress)
	n, err := q.ReapOrphans(later, OrphanGrace)
	if n != 4 || err != nil {
		t.Errorf("ReapOrphans after the grace period = %d, %v; want 4", n, err)
	}
	want := []string{"env/" + keepSaved, "msg/.tmp-" + inProgress + "-89ab", "msg/" + inProgress, "msg/" + keep, "msg/" + keepSaved}
	slices.Sort(want)
	if got := files(t, q.Dir); !slices.Equal(got, want) {
		t.Errorf("files %q, want %q", got, want)
	}
	for _, id := range []string{keep, keepSaved} {
		it, err := q.Lock(id)
		if err != nil {
			t.Fatalf("the queued item %s was disturbed: %v", id, err)
		}
		it.Unlock()
	}
	if n, err := q.ReapOrphans(later, OrphanGrace); n != 0 || err != nil {
		t.Errorf("a second ReapOrphans = %d, %v", n, err)
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

// TestSaveFailureKeepsOldEnvelope: a failed save leaves the envelope
// that was in force: the head of the item file (no env/ID is left
// behind) before the first save, the saved one after it.
func TestSaveFailureKeepsOldEnvelope(t *testing.T) {
	q := newQueue(t)
	id := enqueue(t, q, testEnvelope())
	it, err := q.Lock(id)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Unlock()
	for round, wantAttempts := range []int{0, 1} {
		q.ops = (&faults{op: "write", at: 1, err: syscall.ENOSPC}).ops()
		if err := it.RecordAttempt(t0, Policy{}); !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("round %d: RecordAttempt = %v, want ENOSPC (and then no connection)", round, err)
		}
		q.ops = &defaultOps
		if it.Env.Attempts != wantAttempts {
			t.Errorf("round %d: %d attempts in memory after a failed save, want %d", round, it.Env.Attempts, wantAttempts)
		}
		items, _ := q.List(Filter{})
		if len(items) != 1 || items[0].Attempts != wantAttempts || items[0].Err != nil {
			t.Errorf("round %d: after a failed save: %+v", round, items)
		}
		want := []string{"msg/" + id}
		if round > 0 {
			want = []string{"env/" + id, "msg/" + id}
		}
		if got := files(t, q.Dir); !slices.Equal(got, want) {
			t.Errorf("round %d: files %q, want %q", round, got, want)
		}
		if round == 0 {
			// A failed save may have left env/ID (when only the
			// fsync of env/ failed): Remove must look for it.
			if !it.hasEnv {
				t.Error("hasEnv not set by a failed save")
			}
			if err := it.RecordAttempt(t0, Policy{}); err != nil {
				t.Fatal(err)
			}
		}
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

// editFile replaces the first old in the queue file p (relative to
// q.Dir) with new, in place (same inode, same mode).
func editFile(t *testing.T, q *Queue, p, old, new string) {
	t.Helper()
	path := filepath.Join(q.Dir, p)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), old) {
		t.Fatalf("%q not in %s", old, p)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(data), old, new, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
}

func appendFile(t *testing.T, q *Queue, p, more string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(q.Dir, p), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(more); err != nil {
		t.Fatal(err)
	}
}

// TestCorruptEnvelope damages an item in each way Lock must refuse: the
// envelope at the head of a new item's file, the saved envelope of a
// saved item (or the item file under it), a legacy item. List shows the
// damage it can see (it reads the envelope in force, without checking
// the message's size); Due includes the item; Lock moves its files to
// corrupt/ and reports a *CorruptError, once.
func TestCorruptEnvelope(t *testing.T) {
	size := len(testMessage)
	const otherID = "0JM2Q4ZK8PX7A3BD"
	type kind int
	const (
		fresh  kind = iota // a new item: msg/ID alone
		saved              // a saved item: msg/ID and env/ID of version 2
		legacy             // msg/ID (the message) and env/ID of version 1
	)
	for name, tc := range map[string]struct {
		kind    kind
		listErr bool // List reports the item corrupt
		damage  func(t *testing.T, q *Queue, id string)
	}{
		// The head of a new item's file.
		"head truncated message": {fresh, true, func(t *testing.T, q *Queue, id string) {
			p := filepath.Join(q.Dir, "msg", id)
			fi, _ := os.Stat(p)
			if err := os.Truncate(p, fi.Size()-4); err != nil {
				t.Fatal(err)
			}
		}},
		"head appended message": {fresh, true, func(t *testing.T, q *Queue, id string) { appendFile(t, q, "msg/"+id, "more") }},
		"head size": {fresh, true, func(t *testing.T, q *Queue, id string) {
			editFile(t, q, "msg/"+id, fmt.Sprintf("\nsize: %015d\n", size), fmt.Sprintf("\nsize: %015d\n", size+1))
		}},
		"head size of 16 digits": {fresh, true, func(t *testing.T, q *Queue, id string) {
			editFile(t, q, "msg/"+id, fmt.Sprintf("\nsize: %015d\n", size), fmt.Sprintf("\nsize: %016d\n", size))
		}},
		"head wrong id": {fresh, true, func(t *testing.T, q *Queue, id string) { editFile(t, q, "msg/"+id, "id: "+id, "id: "+otherID) }},
		"head unknown key": {fresh, true, func(t *testing.T, q *Queue, id string) {
			editFile(t, q, "msg/"+id, "held: no\n", "held: no\npriority: high\n")
		}},
		"head bad value":   {fresh, true, func(t *testing.T, q *Queue, id string) { editFile(t, q, "msg/"+id, "\nuid: 33\n", "\nuid: -1\n") }},
		"head without end": {fresh, true, func(t *testing.T, q *Queue, id string) { editFile(t, q, "msg/"+id, "\nend\n", "\nEND\n") }},
		"head only": {fresh, true, func(t *testing.T, q *Queue, id string) {
			head, _ := itemFile(t, q, id)
			os.WriteFile(filepath.Join(q.Dir, "msg", id), []byte(head), 0o600)
		}},
		"first line only": {fresh, true, func(t *testing.T, q *Queue, id string) {
			os.WriteFile(filepath.Join(q.Dir, "msg", id), []byte("handoff-envelope 2\n"), 0o600)
		}},

		// The saved envelope, or the item file under it.
		"saved garbage": {saved, true, func(t *testing.T, q *Queue, id string) {
			os.WriteFile(filepath.Join(q.Dir, "env", id), []byte("\x00\x01garbage"), 0o600)
		}},
		"saved truncated": {saved, true, func(t *testing.T, q *Queue, id string) {
			data, _ := os.ReadFile(filepath.Join(q.Dir, "env", id))
			os.WriteFile(filepath.Join(q.Dir, "env", id), data[:len(data)-4], 0o600)
		}},
		"saved future version": {saved, true, func(t *testing.T, q *Queue, id string) {
			editFile(t, q, "env/"+id, "handoff-envelope 2\n", "handoff-envelope 3\n")
		}},
		"saved unknown key": {saved, true, func(t *testing.T, q *Queue, id string) {
			editFile(t, q, "env/"+id, "held: no\n", "held: no\npriority: high\n")
		}},
		"saved wrong id": {saved, true, func(t *testing.T, q *Queue, id string) { editFile(t, q, "env/"+id, "id: "+id, "id: "+otherID) }},
		"saved size": {saved, false, func(t *testing.T, q *Queue, id string) {
			editFile(t, q, "env/"+id, fmt.Sprintf("\nsize: %d\n", size), fmt.Sprintf("\nsize: %d\n", size+1))
		}},
		"saved, appended message": {saved, false, func(t *testing.T, q *Queue, id string) { appendFile(t, q, "msg/"+id, "more") }},
		"saved, head damaged": {saved, false, func(t *testing.T, q *Queue, id string) {
			editFile(t, q, "msg/"+id, "held: no\n", "held: no\npriority: high\n")
		}},
		"saved, head gone": {saved, false, func(t *testing.T, q *Queue, id string) {
			_, msg := itemFile(t, q, id)
			os.WriteFile(filepath.Join(q.Dir, "msg", id), []byte(msg), 0o600)
		}},

		// Legacy items.
		"legacy size mismatch": {legacy, false, func(t *testing.T, q *Queue, id string) { appendFile(t, q, "msg/"+id, "more") }},
		"legacy garbage": {legacy, true, func(t *testing.T, q *Queue, id string) {
			os.WriteFile(filepath.Join(q.Dir, "env", id), []byte("\x00\x01garbage"), 0o600)
		}},
		"legacy truncated": {legacy, true, func(t *testing.T, q *Queue, id string) {
			data, _ := os.ReadFile(filepath.Join(q.Dir, "env", id))
			os.WriteFile(filepath.Join(q.Dir, "env", id), data[:len(data)-4], 0o600)
		}},
		"legacy envelope without message": {legacy, false, func(t *testing.T, q *Queue, id string) {
			os.Remove(filepath.Join(q.Dir, "msg", id))
		}},
	} {
		t.Run(name, func(t *testing.T) {
			q := newQueue(t)
			good := enqueue(t, q, testEnvelope())
			var id string
			if tc.kind == legacy {
				id = writeLegacy(t, q, testEnvelope(), testMessage)
			} else {
				id = enqueue(t, q, testEnvelope())
			}
			if tc.kind == saved {
				if err := q.Hold(id, true); err != nil {
					t.Fatal(err)
				}
				if err := q.Hold(id, false); err != nil {
					t.Fatal(err)
				}
			}
			hadMsg := exists(filepath.Join(q.Dir, "msg", id))
			tc.damage(t, q, id)
			hadMsg = hadMsg && exists(filepath.Join(q.Dir, "msg", id))
			hadEnv := exists(filepath.Join(q.Dir, "env", id))
			if hadEnv != (tc.kind != fresh) {
				t.Fatalf("env/%s exists: %v", id, hadEnv)
			}

			items, _ := q.List(Filter{})
			if len(items) != 2 || items[1].ID != id || errors.Is(items[1].Err, ErrCorrupt) != tc.listErr {
				t.Errorf("List = %+v", items)
			}
			wantRestricted := 2
			if tc.listErr {
				wantRestricted = 1 // an unreadable item only for the unrestricted Filter
			}
			if items, _ := q.List(Filter{MatchUID: true, UID: 33}); len(items) != wantRestricted {
				t.Errorf("a restricted List shows %d items, want %d: %+v", len(items), wantRestricted, items)
			}
			due, _ := q.Due(time.Now(), Filter{})
			if !slices.Contains(due, id) {
				t.Errorf("Due = %q, want the corrupt %s for the runner to move it aside", due, id)
			}
			_, err := q.Lock(id)
			var ce *CorruptError
			if !errors.Is(err, ErrCorrupt) || !errors.As(err, &ce) || ce.ID != id || ce.Dir == "" || ce.MoveErr != nil {
				t.Fatalf("Lock = %v, want a *CorruptError", err)
			}
			t.Logf("reported: %v", err)
			got := files(t, q.Dir)
			if slices.Contains(got, "corrupt/"+id+".env") != hadEnv || slices.Contains(got, "corrupt/"+id+".msg") != hadMsg ||
				slices.Contains(got, "env/"+id) || slices.Contains(got, "msg/"+id) {
				t.Errorf("files after moving aside: %q", got)
			}
			items, _ = q.List(Filter{})
			if len(items) != 1 || items[0].ID != good || items[0].Err != nil {
				t.Errorf("List after moving aside = %+v", items)
			}
			if _, err := q.Lock(id); !errors.Is(err, ErrNotFound) {
				t.Errorf("second Lock = %v, want ErrNotFound", err)
			}
			if n, err := q.ReapOrphans(afterGrace(good, id), OrphanGrace); n != 0 || err != nil {
				t.Errorf("ReapOrphans = %d, %v; want nothing to reap", n, err)
			}
			if it, err := q.Lock(good); err != nil {
				t.Errorf("the good item: %v", err)
			} else {
				it.Unlock()
			}
		})
	}
}

// TestUnsafeFiles: an item file or a saved envelope that is a symbolic
// link, not a regular file, of another mode, owner or link count condemns
// its item; the item file is checked whether its item has been saved or
// not, and so is a legacy item's message file.
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
			if err := os.Symlink(elsewhere, p); err != nil {
				t.Fatal(err)
			}
		},
		"envelope mode 0644": func(t *testing.T, q *Queue, id string) {
			os.Chmod(filepath.Join(q.Dir, "env", id), 0o644)
		},
		"message mode 0640": func(t *testing.T, q *Queue, id string) {
			os.Chmod(filepath.Join(q.Dir, "msg", id), 0o640)
		},
		"hard-linked envelope": func(t *testing.T, q *Queue, id string) {
			if err := os.Link(filepath.Join(q.Dir, "env", id), filepath.Join(t.TempDir(), "link")); err != nil {
				t.Fatal(err)
			}
		},
		"hard-linked message": func(t *testing.T, q *Queue, id string) {
			if err := os.Link(filepath.Join(q.Dir, "msg", id), filepath.Join(t.TempDir(), "link")); err != nil {
				t.Fatal(err)
			}
		},
		"envelope is a FIFO": func(t *testing.T, q *Queue, id string) {
			p := filepath.Join(q.Dir, "env", id)
			os.Remove(p)
			if err := syscall.Mkfifo(p, 0o600); err != nil {
				t.Skip(err)
			}
		},
		"message is a FIFO": func(t *testing.T, q *Queue, id string) {
			p := filepath.Join(q.Dir, "msg", id)
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
		envDamage := strings.Contains(name, "envelope")
		for _, kind := range []string{"new", "saved", "legacy"} {
			if envDamage && kind == "new" {
				continue // a new item has no envelope file
			}
			t.Run(name+"/"+kind, func(t *testing.T) {
				q := newQueue(t)
				var id string
				if kind == "legacy" {
					id = writeLegacy(t, q, testEnvelope(), testMessage)
				} else {
					id = enqueue(t, q, testEnvelope())
				}
				if kind == "saved" {
					if err := q.Hold(id, false); err != nil {
						t.Fatal(err)
					}
				}
				damage(t, q, id)
				// List reads the envelope in force: the saved one when
				// there is one, else the head of the item file.
				items, _ := q.List(Filter{})
				if envDamage || kind == "new" {
					if len(items) != 1 || !errors.Is(items[0].Err, ErrUnsafe) {
						t.Errorf("List = %+v, want the item with ErrUnsafe", items)
					}
				} else if len(items) != 1 || items[0].Err != nil {
					t.Errorf("List = %+v, want the item, read from its envelope file", items)
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
				moved := []string{id + ".msg"}
				if kind != "new" {
					moved = append(moved, id+".env")
				}
				for _, name := range moved {
					if _, err := os.Lstat(filepath.Join(q.Dir, "corrupt", name)); err != nil {
						t.Errorf("not moved aside: %v", err)
					}
				}
				if _, err := os.Lstat(filepath.Join(q.Dir, "corrupt", id+".env")); kind == "new" && err == nil {
					t.Error("corrupt/ has an envelope file for a new item")
				}
			})
		}
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
	for _, p := range []string{"env", "msg", "corrupt", "msg/" + id, "runner.lock"} {
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
	if err := syscall.Lstat(filepath.Join(dir, "env", id), &st); err != nil || st.Uid != 65534 {
		t.Errorf("saved envelope uid %d, %v; want 65534", st.Uid, err)
	}
	it, err = q.Lock(id)
	if err != nil {
		t.Fatalf("Lock of the saved item: %v", err)
	}
	it.Unlock()
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
	if fl.counts["syncDir"] != 1 || fl.dirSynced("env") != 1 || fl.counts["sync"] != 3 {
		t.Errorf("calls %v (directories %v), want one fsync of env/ for the three", fl.counts, fl.dirSyncs)
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
			// The item files, and the saved envelopes of the items
			// whose record reached its rename.
			var want []string
			for i, it := range items {
				want = append(want, "msg/"+it.ID())
				if i != 1 || op == "syncDir" {
					want = append(want, "env/"+it.ID())
				}
			}
			slices.Sort(want)
			if got := files(t, q.Dir); !slices.Equal(got, want) {
				t.Errorf("files %q, want %q: the 3 items' and nothing else", got, want)
			}
		})
	}
}

// TestRemover removes items from several goroutines: every file is gone
// once Close returns (the item files, and the saved envelopes of the
// items that have one), with far fewer fsyncs of msg/ than items when
// the removals come faster than an fsync, and none of env/ (whose
// deletions need not be durable).
func TestRemover(t *testing.T) {
	q := newQueue(t)
	items := lockAll(t, q, 40)
	for i, err := range q.RecordAttempts(items[:20], t0, Policy{}) {
		if err != nil {
			t.Fatalf("item %d: %v", i, err)
		}
	}
	if got := files(t, q.Dir); len(got) != 60 {
		t.Fatalf("%d files for 40 items, 20 of them saved", len(got))
	}
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
	n := fl.dirSynced("msg")
	if n < 1 || n > 40 || fl.dirSynced("env") != 0 || fl.counts["syncDir"] != n {
		t.Errorf("fsyncs of directories %v for 40 removals, want 1 to 40 of msg/ and none else", fl.dirSyncs)
	}
	t.Logf("%d fsyncs of msg/ for 40 removals", n)
	for _, it := range items {
		if _, err := it.Body(); !errors.Is(err, ErrUnlocked) {
			t.Errorf("%s still locked after Close", it.ID())
		}
	}
}

// TestRemoverLegacy: a Remover removes legacy items in their order (the
// envelope, the fsync of env/, the message file), in the same batches as
// items of version 2.
func TestRemoverLegacy(t *testing.T) {
	q := newQueue(t)
	var items []*Item
	for i := range 10 {
		var id string
		if i%2 == 0 {
			id = writeLegacy(t, q, testEnvelope(), testMessage)
		} else {
			id = enqueue(t, q, testEnvelope())
		}
		it, err := q.Lock(id)
		if err != nil {
			t.Fatal(err)
		}
		if it.legacy != (i%2 == 0) {
			t.Fatalf("item %d: legacy %v", i, it.legacy)
		}
		items = append(items, it)
	}
	fl := &faults{}
	q.ops = fl.ops()
	rm := q.NewRemover()
	for _, it := range items {
		if err := rm.Remove(it); err != nil {
			t.Fatal(err)
		}
	}
	if err := rm.Close(); err != nil {
		t.Fatal(err)
	}
	if got := files(t, q.Dir); len(got) != 0 {
		t.Errorf("files left: %q", got)
	}
	if fl.dirSynced("env") < 1 || fl.dirSynced("msg") < 1 {
		t.Errorf("fsyncs of directories %v, want env/ (legacy items) and msg/ (the others)", fl.dirSyncs)
	}
}

// TestRemoverWindow: removals that trickle in (one a millisecond) share
// fsyncs of msg/, at most one per removalWindow, and Close does not wait
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
	n := fl.dirSynced("msg")
	if most := int(elapsed/removalWindow) + 2; n < 1 || n > most || fl.counts["syncDir"] != n {
		t.Errorf("fsyncs of directories %v for 60 removals over %v; want at most %d, all of msg/", fl.dirSyncs, elapsed, most)
	}
	t.Logf("%d fsyncs of msg/ for 60 removals over %v", n, elapsed)
	if got := files(t, q.Dir); len(got) != 0 {
		t.Errorf("files left: %q", got)
	}
}

// TestRemoverFailure: when the fsync of the directory of the files
// deleted first fails, Close says so, and the files that go second stay
// while the first deletions are not known durable: for items of version 2
// the saved envelopes (whose item files are gone), for legacy items the
// message files (whose envelopes are gone). Either are orphans, never
// listed, reaped in time.
func TestRemoverFailure(t *testing.T) {
	for _, legacy := range []bool{false, true} {
		t.Run(fmt.Sprint("legacy=", legacy), func(t *testing.T) {
			q := newQueue(t)
			var items []*Item
			var ids []string
			for range 2 {
				var id string
				if legacy {
					id = writeLegacy(t, q, testEnvelope(), testMessage)
				} else {
					id = enqueue(t, q, testEnvelope())
					if err := q.Hold(id, false); err != nil { // saved: env/ID
						t.Fatal(err)
					}
				}
				it, err := q.Lock(id)
				if err != nil {
					t.Fatal(err)
				}
				items, ids = append(items, it), append(ids, id)
			}
			// Every fsync fails: the Remover may make one batch of the
			// two removals, or two.
			ops := defaultOps
			ops.syncDir = func(dir string) error { return &os.PathError{Op: "sync", Path: dir, Err: syscall.EIO} }
			q.ops = &ops
			rm := q.NewRemover()
			for _, it := range items {
				if err := rm.Remove(it); err != nil {
					t.Fatal(err)
				}
			}
			if err := rm.Close(); !errors.Is(err, syscall.EIO) {
				t.Fatalf("Close = %v, want EIO", err)
			}
			q.ops = &defaultOps
			left := "env/"
			if legacy {
				left = "msg/"
			}
			want := []string{left + ids[0], left + ids[1]}
			slices.Sort(want)
			if got := files(t, q.Dir); !slices.Equal(got, want) {
				t.Errorf("files after the failure %q, want %q", got, want)
			}
			if items, _ := q.List(Filter{}); len(items) != 0 {
				t.Errorf("listed after removal: %+v", items)
			}
			for _, id := range ids {
				if _, err := q.Lock(id); !errors.Is(err, ErrNotFound) {
					t.Errorf("Lock(%s) after removal = %v, want ErrNotFound", id, err)
				}
			}
			if n, err := q.ReapOrphans(time.Now(), OrphanGrace); n != 0 || err != nil {
				t.Errorf("ReapOrphans within the grace period = %d, %v", n, err)
			}
			if n, err := q.ReapOrphans(afterGrace(ids...), OrphanGrace); n != 2 || err != nil {
				t.Errorf("reaped %d, %v; want 2", n, err)
			}
			if got := files(t, q.Dir); len(got) != 0 {
				t.Errorf("files left: %q", got)
			}
			if err := rm.Remove(items[0]); !errors.Is(err, ErrUnlocked) {
				t.Errorf("Remove of a removed item = %v", err)
			}
		})
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
