package queue

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The tests of the item files of version 2 (the envelope at the head of
// msg/ID, env/ID once saved) and of legacy items (version 1: msg/ID the
// message, env/ID the envelope), which this version still reads,
// delivers, saves and removes.

// sizeLine matches the size in the envelope at the head of an item file.
var sizeLine = regexp.MustCompile(`\nsize: ([0-9]+)\n`)

// checkItem checks item id of a queue whose message is msg: the item
// file is the envelope of version 2, with the size in 15 digits, then msg;
// List, Lock and Body give back env and msg exactly.
func checkItem(t *testing.T, q *Queue, id string, env *Envelope, msg []byte) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(q.Dir, "msg", id))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, []byte("handoff-envelope 2\n")) {
		t.Fatalf("the item file starts %.30q", data)
	}
	end := bytes.Index(data, []byte("\nend\n")) + len("\nend\n")
	m := sizeLine.FindSubmatch(data[:end])
	if m == nil || len(m[1]) != sizeWidth || string(m[1]) != fmt.Sprintf("%015d", len(msg)) {
		t.Errorf("the size in the head is %q, want %d in %d digits", m, len(msg), sizeWidth)
	}
	if !bytes.Equal(data[end:], msg) {
		t.Errorf("the item file holds %d bytes after its head, want the %d of the message", len(data)-end, len(msg))
	}
	head, off, err := readHead(bytes.NewReader(data), id, int64(len(data)))
	if err != nil || off != int64(end) || !reflect.DeepEqual(head, env) {
		t.Errorf("readHead = %+v, %d, %v; want\n%+v, %d", head, off, err, env, end)
	}

	items, err := q.List(Filter{ID: id})
	if err != nil || len(items) != 1 || items[0].Err != nil || !reflect.DeepEqual(items[0].Envelope, *env) {
		t.Errorf("List = %+v, %v; want\n%+v", items, err, *env)
	}
	it, err := q.Lock(id)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Unlock()
	if !reflect.DeepEqual(it.Env, env) {
		t.Errorf("Lock read\n%+v\nwant\n%+v", it.Env, env)
	}
	checkBody(t, it, msg)
}

// checkBody checks that the item's Body is msg, exactly, and seekable.
func checkBody(t *testing.T, it *Item, msg []byte) {
	t.Helper()
	body, err := it.Body()
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	got, err := io.ReadAll(body)
	if err != nil || !bytes.Equal(got, msg) {
		t.Errorf("Body = %d bytes %.40q, %v; want %d bytes %.40q", len(got), got, err, len(msg), msg)
	}
	if n, err := body.Seek(0, io.SeekEnd); err != nil || n != int64(len(msg)) {
		t.Errorf("Body ends at %d, %v; want %d", n, err, len(msg))
	}
	if len(msg) > 0 {
		if _, err := body.Seek(-1, io.SeekEnd); err != nil {
			t.Fatal(err)
		}
		if last, _ := io.ReadAll(body); !bytes.Equal(last, msg[len(msg)-1:]) {
			t.Errorf("the last byte of Body is %q, want %q", last, msg[len(msg)-1:])
		}
	}
}

// TestItemMessages: messages of every shape go through an item file and
// come back exactly: empty, one that looks like the end of an envelope,
// one larger than what readHead reads at first, binary.
func TestItemMessages(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	binary := make([]byte, 3*headChunk+17)
	for i := range binary {
		binary[i] = byte(r.Uint32())
	}
	for name, msg := range map[string][]byte{
		"empty":          {},
		"one byte":       []byte("x"),
		"end lines":      []byte("end\n\nend\nhandoff-envelope 2\nend\n"),
		"an envelope":    []byte(fullEnvelopeTextV2),
		"large":          bytes.Repeat([]byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd\r\n\nend\n"), 1000),
		"binary":         binary,
		"headChunk":      bytes.Repeat([]byte{'y'}, headChunk),
		"no final break": []byte(testMessage),
	} {
		t.Run(name, func(t *testing.T) {
			q := newQueue(t)
			q.now = func() time.Time { return t0 }
			env := testEnvelope()
			it, err := q.EnqueueLocked(env, bytes.NewReader(msg))
			if err != nil {
				t.Fatal(err)
			}
			if env.Size != int64(len(msg)) {
				t.Errorf("Size %d, want %d", env.Size, len(msg))
			}
			// The Item of EnqueueLocked reads the message it wrote,
			// and holds no envelope file.
			if it.Env != env || it.legacy || it.hasEnv || it.envFiles != nil {
				t.Errorf("EnqueueLocked: Env %p (env %p), legacy %v, hasEnv %v, envFiles %v", it.Env, env, it.legacy, it.hasEnv, it.envFiles)
			}
			checkBody(t, it, msg)
			it.Unlock()
			checkItem(t, q, it.ID(), env, msg)

			// Saved, the same.
			if err := q.Hold(it.ID(), true); err != nil {
				t.Fatal(err)
			}
			env.Held = true
			it, err = q.Lock(it.ID())
			if err != nil {
				t.Fatal(err)
			}
			if !it.hasEnv || !reflect.DeepEqual(it.Env, env) {
				t.Errorf("after Hold, Lock read (hasEnv %v)\n%+v\nwant\n%+v", it.hasEnv, it.Env, env)
			}
			checkBody(t, it, msg)
			if err := it.Remove(); err != nil {
				t.Fatal(err)
			}
			if got := files(t, q.Dir); len(got) != 0 {
				t.Errorf("files after Remove: %q", got)
			}
		})
	}
}

// TestItemLargeEnvelopes: envelopes of many recipients, larger than what
// readHead reads at first, and envelopes whose end falls on each side of
// that first read, are read whole from the head of the item file, and
// from the saved envelope.
func TestItemLargeEnvelopes(t *testing.T) {
	q := newQueue(t)
	q.now = func() time.Time { return t0 }
	headLen := func(id string) int {
		head, _ := itemFile(t, q, id)
		return len(head)
	}
	base := headLen(enqueue(t, q, testEnvelope()))
	var targets []int
	for _, d := range []int{-6, -5, -4, -3, -2, -1, 0, 1, 2, 5} {
		targets = append(targets, headChunk+d, 2*headChunk+d)
	}
	for _, target := range targets {
		t.Run(fmt.Sprint("head of ", target), func(t *testing.T) {
			env := testEnvelope()
			// The sender's length sets the head's.
			env.Sender = strings.Repeat("s", target-base) + env.Sender
			id := enqueue(t, q, env)
			if n := headLen(id); n != target {
				t.Fatalf("head of %d bytes, want %d", n, target)
			}
			checkItem(t, q, id, env, []byte(testMessage))
		})
	}
	t.Run("many recipients", func(t *testing.T) {
		env := testEnvelope()
		for i := range 2000 {
			env.Recipients = append(env.Recipients, Recipient{Addr: fmt.Sprintf("user%d@example.org", i), Notify: []string{NotifyNever}})
		}
		msg := bytes.Repeat([]byte("a line of the message\r\n"), 500)
		id, err := q.Enqueue(env, bytes.NewReader(msg))
		if err != nil {
			t.Fatal(err)
		}
		if n := headLen(id); n <= 8*headChunk {
			t.Fatalf("head of %d bytes: not large enough for the test", n)
		}
		checkItem(t, q, id, env, msg)
		err = q.Update(id, func(e *Envelope) error {
			e.Recipients[1999].State = Sent
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		it, err := q.Lock(id)
		if err != nil {
			t.Fatal(err)
		}
		defer it.Unlock()
		if len(it.Env.Recipients) != 2002 || it.Env.Recipients[1999].State != Sent || !it.hasEnv {
			t.Errorf("the saved envelope read back: %d recipients, the changed one %v, hasEnv %v", len(it.Env.Recipients), it.Env.Recipients[1999].State, it.hasEnv)
		}
		checkBody(t, it, msg)
	})
}

// errReaderAt fails every read.
type errReaderAt struct{ err error }

func (r errReaderAt) ReadAt([]byte, int64) (int, error) { return 0, r.err }

// TestReadHead: readHead takes the envelope at the head of an item file
// and checks that it is of version 2, names the item and gives the size
// of the rest; a file that does not start with "handoff-envelope " is
// errNoHead (a legacy message); anything else it refuses is a
// *ParseError (an item file, corrupt), or the reader's own error.
func TestReadHead(t *testing.T) {
	e := fullEnvelope()
	e.Size = int64(len(testMessage))
	head, err := e.marshal(true)
	if err != nil {
		t.Fatal(err)
	}
	valid := string(head) + testMessage
	read := func(data, id string) (*Envelope, int64, error) {
		return readHead(strings.NewReader(data), id, int64(len(data)))
	}
	got, off, err := read(valid, e.ID)
	if err != nil || off != int64(len(head)) || !reflect.DeepEqual(got, e) {
		t.Fatalf("readHead(valid) = %+v, %d, %v", got, off, err)
	}
	// The saved envelope's form (size unpadded) reads as well.
	unpadded, _ := e.Marshal()
	if got, off, err := read(string(unpadded)+testMessage, e.ID); err != nil || off != int64(len(unpadded)) || !reflect.DeepEqual(got, e) {
		t.Errorf("readHead(unpadded) = %+v, %d, %v", got, off, err)
	}

	for _, tc := range []struct{ name, data string }{
		{"empty", ""},
		{"a message", testMessage},
		{"near miss", "handoff-envelope\n"},
		{"another magic", strings.Replace(valid, "handoff-envelope 2\n", "handoff-envelopes 2\n", 1)},
	} {
		if _, _, err := read(tc.data, e.ID); err != errNoHead {
			t.Errorf("%s: err %v, want errNoHead", tc.name, err)
		}
	}
	// Any other version is an item file this handoff cannot read:
	// corrupt, never an orphan.
	for _, tc := range []struct{ name, data string }{
		{"version 1", strings.Replace(valid, "handoff-envelope 2\n", "handoff-envelope 1\n", 1)},
		{"version 3", strings.Replace(valid, "handoff-envelope 2\n", "handoff-envelope 3\n", 1)},
		{"version 02", strings.Replace(valid, "handoff-envelope 2\n", "handoff-envelope 02\n", 1)},
		{"first line without its newline", "handoff-envelope 2"},
		{"first line with CRLF", strings.Replace(valid, "handoff-envelope 2\n", "handoff-envelope 2\r\n", 1)},
	} {
		if _, _, err := read(tc.data, e.ID); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err %v, want ErrCorrupt", tc.name, err)
		}
	}
	for _, tc := range []struct{ name, data, id, msg string }{
		{"other id", valid, "0JM2Q4ZK8PX7A3BE", "in the file named"},
		{"longer", valid + "x", e.ID, "bytes of message"},
		{"shorter", valid[:len(valid)-1], e.ID, "bytes of message"},
		{"message only part", string(head), e.ID, "bytes of message"},
		{"first line only", "handoff-envelope 2\n", e.ID, "no end line"},
		{"no end", strings.Replace(valid, "\nend\n", "\nEND\n", 1), e.ID, "no end line"},
		{"unknown key", strings.Replace(valid, "held: yes\n", "held: yes\nx: y\n", 1), e.ID, "unknown key"},
		{"end in a value", strings.Replace(valid, "held: yes\n", "held: yes\nend\nheld: no\n", 1), e.ID, ""},
	} {
		_, _, err := read(tc.data, tc.id)
		var pe *ParseError
		if !errors.As(err, &pe) || !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: err %v, want a *ParseError saying %q", tc.name, err, tc.msg)
		}
	}
	errDisk := errors.New("I/O error")
	if _, _, err := readHead(errReaderAt{errDisk}, e.ID, 100); !errors.Is(err, errDisk) {
		t.Errorf("a failing reader: err %v, want %v", err, errDisk)
	}
}

// TestLegacyItem: an item queued by handoff before version 2 (msg/ID the
// message, env/ID its envelope of version 1) is listed, locked, read,
// saved (still of version 1), attempted (journal), and removed (both
// files); ReapOrphans leaves it alone.
func TestLegacyItem(t *testing.T) {
	q := newQueue(t)
	q.now = func() time.Time { return t0 }
	env := testEnvelope()
	id := writeLegacy(t, q, env, testMessage)
	newer := enqueue(t, q, testEnvelope())

	items, err := q.List(Filter{})
	if err != nil || len(items) != 2 || items[0].ID != id || items[0].Err != nil || !reflect.DeepEqual(items[0].Envelope, *env) {
		t.Fatalf("List = %+v, %v; want the legacy item first\n%+v", items, err, *env)
	}
	if items[0].Version != legacyVersion || items[1].Version != Version {
		t.Errorf("List gave versions %d and %d", items[0].Version, items[1].Version)
	}
	if due, _ := q.Due(t0, Filter{}); !slices.Equal(due, []string{id, newer}) {
		t.Errorf("Due = %q", due)
	}

	it, err := q.Lock(id)
	if err != nil {
		t.Fatal(err)
	}
	if !it.legacy || it.off != 0 || !reflect.DeepEqual(it.Env, env) {
		t.Errorf("Lock: legacy %v, offset %d, read\n%+v\nwant\n%+v", it.legacy, it.off, it.Env, env)
	}
	if _, err := q.Lock(id); !errors.Is(err, ErrBusy) {
		t.Errorf("a second Lock = %v, want ErrBusy", err)
	}
	checkBody(t, it, []byte(testMessage)) // the whole message file

	// Saved: still of version 1, the message file untouched.
	p := Policy{Rand: func() float64 { return 0.5 }}
	if err := it.RecordAttempt(t0, p); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(q.Dir, "env", id))
	if !strings.HasPrefix(string(data), "handoff-envelope 1\n") || !strings.Contains(string(data), fmt.Sprintf("\nsize: %d\n", len(testMessage))) ||
		!strings.Contains(string(data), "\nattempts: 1\n") {
		t.Errorf("the saved legacy envelope:\n%s", data)
	}
	if data, _ := os.ReadFile(filepath.Join(q.Dir, "msg", id)); string(data) != testMessage {
		t.Errorf("the message file changed: %q", data)
	}
	it.Unlock()
	if err := q.Hold(id, true); err != nil {
		t.Fatal(err)
	}
	if err := q.Hold(id, false); err != nil {
		t.Fatal(err)
	}

	// A journal of an attempt replayed.
	it, err = q.Lock(id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.JournalAttempts([]*Item{it}, t0.Add(time.Hour), p); err != nil {
		t.Fatal(err)
	}
	it.Unlock() // the run died
	if n, err := q.ReplayJournals(); n != 1 || err != nil {
		t.Errorf("ReplayJournals = %d, %v", n, err)
	}
	it, err = q.Lock(id)
	if err != nil {
		t.Fatal(err)
	}
	if it.Env.Attempts != 2 || it.Env.Version != legacyVersion || !it.legacy {
		t.Errorf("after the replay: attempts %d, version %d, legacy %v", it.Env.Attempts, it.Env.Version, it.legacy)
	}
	checkBody(t, it, []byte(testMessage))
	it.Unlock()

	if n, err := q.ReapOrphans(afterGrace(id, newer), OrphanGrace); n != 0 || err != nil {
		t.Errorf("ReapOrphans = %d, %v; want the legacy item left alone", n, err)
	}
	want := []string{"env/" + id, "msg/" + id, "msg/" + newer}
	if got := files(t, q.Dir); !slices.Equal(got, want) {
		t.Errorf("files %q, want %q", got, want)
	}

	it, err = q.Lock(id)
	if err != nil {
		t.Fatal(err)
	}
	fl := &faults{}
	q.ops = fl.ops()
	if err := it.Remove(); err != nil {
		t.Fatal(err)
	}
	q.ops = &defaultOps
	if fl.dirSynced("env") != 1 || fl.counts["syncDir"] != 1 {
		t.Errorf("fsyncs of directories %v, want one of env/", fl.dirSyncs)
	}
	if got := files(t, q.Dir); !slices.Equal(got, []string{"msg/" + newer}) {
		t.Errorf("files after Remove %q", got)
	}
	if _, err := q.Lock(id); !errors.Is(err, ErrNotFound) {
		t.Errorf("Lock after Remove = %v, want ErrNotFound", err)
	}
}

// TestLegacyOrphans: a legacy message file without its envelope (a crash
// of a legacy Enqueue, or Remove) is not an item, whatever it holds,
// unless it starts as an item file does ("handoff-envelope ", of any
// version); ReapOrphans deletes it once both it and its id are older
// than the grace period, and not while it is locked.
func TestLegacyOrphans(t *testing.T) {
	q := newQueue(t)
	item := enqueue(t, q, testEnvelope()) // an item file without env/ID: not an orphan
	contents := map[string]string{
		"message":   testMessage,
		"empty":     "",
		"binary":    "\x00\xff\x01handoff-envelope 2\n",
		"near head": "handoff-envelope\n",
	}
	ids := map[string]string{}
	for name, content := range contents {
		id := newID(time.Now())
		ids[name] = id
		if err := os.WriteFile(filepath.Join(q.Dir, "msg", id), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := q.Lock(id); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: Lock = %v, want ErrNotFound", name, err)
		}
	}
	// Those that start as an item file does are taken for one
	// (corrupt), never reaped: List shows them, for Lock to move them
	// aside. So is one of another version (a newer handoff's).
	looksLikeItem := newID(time.Now())
	if err := os.WriteFile(filepath.Join(q.Dir, "msg", looksLikeItem), []byte("handoff-envelope 2\nFrom: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	newer := newID(time.Now())
	if err := os.WriteFile(filepath.Join(q.Dir, "msg", newer), []byte(strings.Replace(fullEnvelopeText, "handoff-envelope 1\n", "handoff-envelope 3\n", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	items, _ := q.List(Filter{})
	if len(items) != 3 || items[0].ID != item || items[0].Err != nil || items[1].ID != looksLikeItem || !errors.Is(items[1].Err, ErrCorrupt) ||
		items[2].ID != newer || !errors.Is(items[2].Err, ErrCorrupt) {
		t.Errorf("List = %+v, want %s, and %s and %s unreadable", items, item, looksLikeItem, newer)
	}

	var all []string
	for _, id := range ids {
		all = append(all, id)
	}
	later := afterGrace(append(all, item, looksLikeItem, newer)...)
	if n, err := q.ReapOrphans(time.Now(), OrphanGrace); n != 0 || err != nil {
		t.Errorf("ReapOrphans at once = %d, %v", n, err)
	}
	// Recently modified at that time: not yet.
	for _, id := range all {
		setMtime(t, q, later.Add(-OrphanGrace+time.Second), "msg/"+id)
	}
	if n, err := q.ReapOrphans(later, OrphanGrace); n != 0 || err != nil {
		t.Errorf("ReapOrphans of files younger than the grace = %d, %v", n, err)
	}
	// Old enough, but one locked (being written by a legacy Enqueue).
	for _, id := range all {
		setMtime(t, q, later.Add(-OrphanGrace), "msg/"+id)
	}
	f, err := os.Open(filepath.Join(q.Dir, "msg", ids["message"]))
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	if n, err := q.ReapOrphans(later, OrphanGrace); n != len(all)-1 || err != nil {
		t.Errorf("ReapOrphans = %d, %v; want %d", n, err, len(all)-1)
	}
	f.Close()
	if n, err := q.ReapOrphans(later, OrphanGrace); n != 1 || err != nil {
		t.Errorf("ReapOrphans once unlocked = %d, %v; want 1", n, err)
	}
	want := []string{"msg/" + item, "msg/" + looksLikeItem, "msg/" + newer}
	slices.Sort(want)
	if got := files(t, q.Dir); !slices.Equal(got, want) {
		t.Errorf("files %q, want %q", got, want)
	}
	it, err := q.Lock(item)
	if err != nil {
		t.Fatal(err)
	}
	it.Unlock()
}

// TestOrphanSavedEnvelope: the saved envelope of an item whose item file
// is gone (a removal that died between its deletions) is not an item:
// Lock says ErrNotFound and leaves it, List and Due skip it, ReapOrphans
// deletes it in time. A legacy envelope without its message, or an
// unreadable one, is a corrupt item instead: listed, moved aside by
// Lock, never reaped.
func TestOrphanSavedEnvelope(t *testing.T) {
	q := newQueue(t)
	orphan := enqueue(t, q, testEnvelope())
	if err := q.Hold(orphan, false); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(q.Dir, "msg", orphan)); err != nil {
		t.Fatal(err)
	}
	legacy := writeLegacy(t, q, testEnvelope(), testMessage)
	if err := os.Remove(filepath.Join(q.Dir, "msg", legacy)); err != nil {
		t.Fatal(err)
	}
	garbage := newID(time.Now())
	if err := os.WriteFile(filepath.Join(q.Dir, "env", garbage), []byte("handoff-envelope 2 garbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	items, err := q.List(Filter{})
	if err != nil || len(items) != 2 || items[0].ID != legacy || items[0].Err != nil || items[1].ID != garbage || !errors.Is(items[1].Err, ErrCorrupt) {
		t.Errorf("List = %+v, %v; want %s, and %s unreadable", items, err, legacy, garbage)
	}
	if due, _ := q.Due(time.Now().Add(time.Hour), Filter{}); !slices.Equal(due, []string{legacy, garbage}) {
		t.Errorf("Due = %q", due)
	}
	if _, err := q.Lock(orphan); !errors.Is(err, ErrNotFound) {
		t.Errorf("Lock(orphan) = %v, want ErrNotFound", err)
	}
	if !exists(filepath.Join(q.Dir, "env", orphan)) {
		t.Error("Lock removed the orphan")
	}

	later := afterGrace(orphan, legacy, garbage)
	if n, err := q.ReapOrphans(time.Now(), OrphanGrace); n != 0 || err != nil {
		t.Errorf("ReapOrphans at once = %d, %v", n, err)
	}
	setMtime(t, q, later, "env/"+orphan)
	if n, err := q.ReapOrphans(later, OrphanGrace); n != 0 || err != nil {
		t.Errorf("ReapOrphans of a file modified just now = %d, %v", n, err)
	}
	setMtime(t, q, later.Add(-OrphanGrace), "env/"+orphan)
	if n, err := q.ReapOrphans(later, OrphanGrace); n != 1 || err != nil {
		t.Errorf("ReapOrphans = %d, %v; want 1", n, err)
	}
	want := []string{"env/" + legacy, "env/" + garbage}
	slices.Sort(want)
	if got := files(t, q.Dir); !slices.Equal(got, want) {
		t.Errorf("files %q, want %q", got, want)
	}

	for _, id := range []string{legacy, garbage} {
		_, err := q.Lock(id)
		var ce *CorruptError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), "no message file") {
			t.Errorf("Lock(%s) = %v, want a *CorruptError: no message file", id, err)
		}
	}
	want = []string{"corrupt/" + legacy + ".env", "corrupt/" + garbage + ".env"}
	slices.Sort(want)
	if got := files(t, q.Dir); !slices.Equal(got, want) {
		t.Errorf("files %q, want %q", got, want)
	}
}

// TestIDsYoungerThanGrace: ReapOrphans takes no message file named by
// an id younger than the grace period, whatever the file's modification
// time (a file is never older than its id, and most files of msg/
// without an envelope are items, not orphans: those are passed over
// without a look).
func TestIDsYoungerThanGrace(t *testing.T) {
	q := newQueue(t)
	legacyMsg := newID(time.Now())
	if err := os.WriteFile(filepath.Join(q.Dir, "msg", legacyMsg), []byte(testMessage), 0o600); err != nil {
		t.Fatal(err)
	}
	now := idTime(legacyMsg).Add(OrphanGrace - time.Second) // the id is not quite old enough
	setMtime(t, q, now.Add(-10*OrphanGrace), "msg/"+legacyMsg)
	if n, err := q.ReapOrphans(now, OrphanGrace); n != 0 || err != nil {
		t.Errorf("ReapOrphans = %d, %v; want nothing", n, err)
	}
	if n, err := q.ReapOrphans(now.Add(time.Second), OrphanGrace); n != 1 || err != nil {
		t.Errorf("ReapOrphans once the id is old enough = %d, %v; want 1", n, err)
	}
	if got := files(t, q.Dir); len(got) != 0 {
		t.Errorf("files %q", got)
	}
}
