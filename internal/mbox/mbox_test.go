package mbox

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"golang.org/x/sys/unix"
)

// The test binary doubles as a helper process when this variable is set:
// "deliver" delivers messages, "hold" holds a classic fcntl lock.
const helperEnv = "HANDOFF_MBOX_TEST_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "deliver":
		os.Exit(helperDeliver())
	case "hold":
		os.Exit(helperHold())
	default:
		fmt.Fprintln(os.Stderr, "unknown helper", os.Getenv(helperEnv))
		os.Exit(2)
	}
}

// helperDeliver delivers MBOX_COUNT messages of MBOX_LINES lines, tagged
// MBOX_ID, to MBOX_PATH, owned by MBOX_UID.
func helperDeliver() int {
	uid, _ := strconv.Atoi(os.Getenv("MBOX_UID"))
	count, _ := strconv.Atoi(os.Getenv("MBOX_COUNT"))
	lines, _ := strconv.Atoi(os.Getenv("MBOX_LINES"))
	mb := Mailbox{Path: os.Getenv("MBOX_PATH"), UID: uid, GID: -1, Mode: 0o600}
	id := os.Getenv("MBOX_ID")
	// Start together with the other helpers: wait for stdin to close.
	io.Copy(io.Discard, os.Stdin)
	for j := range count {
		msg := &slowReader{r: strings.NewReader(testMessage(id, j, lines))}
		if err := Deliver(mb, id+"@example.com", msg, time.Now()); err != nil {
			fmt.Fprintln(os.Stderr, "helper deliver:", err)
			return 1
		}
	}
	return 0
}

// helperHold takes a classic POSIX write lock (F_SETLKW) on MBOX_PATH, as
// mutt or procmail would, says "locked", and holds it until stdin closes.
func helperHold() int {
	f, err := os.OpenFile(os.Getenv("MBOX_PATH"), os.O_RDWR, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart}
	if err := unix.FcntlFlock(f.Fd(), unix.F_SETLKW, &lk); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("locked")
	io.Copy(io.Discard, os.Stdin)
	return 0
}

// date is the fixed delivery time of the tests; its day has one digit, so
// ctime pads it with a space.
var date = time.Date(2006, time.January, 2, 15, 4, 5, 0, time.UTC)

const dateText = "Mon Jan  2 15:04:05 2006"

// testMessage is message j of sender id, with CRLF line endings and
// "From " lines to quote: large enough (lines × ~100 bytes) to need
// several writes, so that unlocked deliveries would interleave.
func testMessage(id string, j, lines int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Subject: %s/%d\r\n\r\n", id, j)
	for k := range lines {
		if k%7 == 0 {
			fmt.Fprintf(&b, "From %s/%d/%d needs quoting\r\n", id, j, k)
		} else {
			fmt.Fprintf(&b, "%s/%d/%d %s\r\n", id, j, k, strings.Repeat("x", 80))
		}
	}
	return b.String()
}

// yieldingReader returns msg in small pieces and lets other goroutines
// run between them, so that deliveries without locks would interleave.
func yieldingReader(msg string) io.Reader {
	return &yielding{r: strings.NewReader(msg)}
}

type yielding struct{ r io.Reader }

func (y *yielding) Read(p []byte) (int, error) {
	runtime.Gosched()
	return y.r.Read(p[:min(len(p), 4096)])
}

// slowReader is a pipe from a slow writer: 4 KB every 50 µs. It keeps
// each delivery of a helper process open long enough for the others to
// write in between, were they not locked out.
type slowReader struct{ r io.Reader }

func (s *slowReader) Read(p []byte) (int, error) {
	time.Sleep(50 * time.Microsecond)
	return s.r.Read(p[:min(len(p), 4096)])
}

// parsed is one message read back from an mboxrd file.
type parsed struct {
	sep  string // the "From " line
	body string // unquoted, LF line endings
}

// parseMbox splits an mboxrd file into messages and undoes the quoting.
func parseMbox(data []byte) ([]parsed, error) {
	if len(data) == 0 {
		return nil, nil
	}
	if data[len(data)-1] != '\n' {
		return nil, errors.New("mbox does not end with a newline")
	}
	var msgs []parsed
	var cur *parsed
	var lines []string
	finish := func() error {
		if len(lines) == 0 || lines[len(lines)-1] != "" {
			return fmt.Errorf("message %q does not end with an empty line", cur.sep)
		}
		lines = lines[:len(lines)-1]
		if len(lines) > 0 {
			cur.body = strings.Join(lines, "\n") + "\n"
		}
		msgs = append(msgs, *cur)
		return nil
	}
	for l := range strings.SplitSeq(string(data[:len(data)-1]), "\n") {
		if strings.HasPrefix(l, "From ") {
			if cur != nil {
				if err := finish(); err != nil {
					return nil, err
				}
			}
			cur, lines = &parsed{sep: l}, nil
			continue
		}
		if cur == nil {
			return nil, fmt.Errorf("line %q before the first From line", l)
		}
		if strings.HasPrefix(strings.TrimLeft(l, ">"), "From ") {
			l = l[1:]
		}
		lines = append(lines, l)
	}
	if err := finish(); err != nil {
		return nil, err
	}
	return msgs, nil
}

// checkWhole checks that data holds exactly the messages of want (keys
// "id/j"), each whole and unchanged, in any order.
func checkWhole(t *testing.T, data []byte, lines int, want map[string]bool) {
	t.Helper()
	msgs, err := parseMbox(data)
	if err != nil {
		t.Fatalf("parsing the mailbox: %v", err)
	}
	seen := map[string]bool{}
	for i, m := range msgs {
		first, _, _ := strings.Cut(m.body, "\n")
		key := strings.TrimPrefix(first, "Subject: ")
		id, js, _ := strings.Cut(key, "/")
		j, _ := strconv.Atoi(js)
		if !want[key] || seen[key] {
			t.Fatalf("message %d: unexpected or repeated %q (separator %q)", i, key, m.sep)
		}
		seen[key] = true
		if !strings.HasPrefix(m.sep, "From "+id+"@example.com ") {
			t.Errorf("message %d (%s): separator %q", i, key, m.sep)
		}
		if exp := strings.ReplaceAll(testMessage(id, j, lines), "\r\n", "\n"); m.body != exp {
			t.Fatalf("message %d (%s) is not whole: %d bytes, want %d", i, key, len(m.body), len(exp))
		}
	}
	if len(seen) != len(want) {
		t.Fatalf("found %d messages, want %d", len(seen), len(want))
	}
}

// refMboxrd is the obvious, non-streaming mboxrd conversion of a message.
func refMboxrd(in string) string {
	var b strings.Builder
	lines := strings.Split(in, "\n")
	if last := lines[len(lines)-1]; last == "" {
		lines = lines[:len(lines)-1]
	}
	for _, l := range lines {
		l = strings.TrimSuffix(l, "\r")
		if strings.HasPrefix(strings.TrimLeft(l, ">"), "From ") {
			b.WriteByte('>')
		}
		b.WriteString(l)
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	return b.String()
}

// convert runs the streaming conversion alone.
func convert(in io.Reader) (string, error) {
	var out bytes.Buffer
	c := getCopier(&out, in)
	defer putCopier(c)
	err := c.copyBody(nil)
	if ferr := c.w.Flush(); err == nil {
		err = ferr
	}
	return out.String(), err
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// mailbox returns a Mailbox in a fresh spool directory, owned by us.
func mailbox(t testing.TB) Mailbox {
	return Mailbox{Path: filepath.Join(t.TempDir(), "alice"), UID: os.Geteuid(), GID: -1, Mode: 0o600}
}

// setLockTimeout shortens the lock budget for one test.
func setLockTimeout(t *testing.T, d time.Duration) {
	old := lockTimeout
	lockTimeout = d
	t.Cleanup(func() { lockTimeout = old })
}

// busySignal installs testHookBusy and returns a channel that receives
// once a lock of the given kind was found held.
func busySignal(t *testing.T, kind string) <-chan struct{} {
	ch := make(chan struct{}, 1)
	testHookBusy = func(what string) {
		if what == kind {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
	t.Cleanup(func() { testHookBusy = nil })
	return ch
}

// wait fails the test if ch does not fire within a generous bound.
func wait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(20 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED: this test needs root (to chown, and to run helpers as nobody); CI runs it as root")
	}
}

func lookupNobodyMail(t *testing.T) (uid, gid int) {
	t.Helper()
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Fatalf("user nobody: %v", err)
	}
	g, err := user.LookupGroup("mail")
	if err != nil {
		t.Fatalf("group mail: %v", err)
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(g.Gid)
	return uid, gid
}

func TestDeliverExactBytes(t *testing.T) {
	in := "Subject: hi\r\n" +
		"\r\n" +
		"From me\r\n" +
		">From you\r\n" +
		">>From them\r\n" +
		"From: not a separator\r\n" +
		"Fromage\r\n" +
		" From indented\r\n" +
		">From\r\n" +
		"bare LF line\n" +
		"cr\rinside\r\n" +
		"last line without newline"
	body := "Subject: hi\n" +
		"\n" +
		">From me\n" +
		">>From you\n" +
		">>>From them\n" +
		"From: not a separator\n" +
		"Fromage\n" +
		" From indented\n" +
		">From\n" +
		"bare LF line\n" +
		"cr\rinside\n" +
		"last line without newline\n" +
		"\n"
	for _, tc := range []struct{ sender, sep string }{
		{"alice@example.com", "From alice@example.com " + dateText + "\n"},
		{"<alice@example.com>", "From alice@example.com " + dateText + "\n"},
		{"", "From MAILER-DAEMON " + dateText + "\n"},
		{"<>", "From MAILER-DAEMON " + dateText + "\n"},
	} {
		t.Run(tc.sender, func(t *testing.T) {
			mb := mailbox(t)
			if err := Deliver(mb, tc.sender, strings.NewReader(in), date); err != nil {
				t.Fatal(err)
			}
			if got, want := readFile(t, mb.Path), tc.sep+body; got != want {
				t.Errorf("mailbox:\n got %q\nwant %q", got, want)
			}
			if _, err := os.Lstat(mb.Path + ".lock"); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("dotlock left behind: %v", err)
			}
		})
	}
}

func TestDeliverEmptyMessage(t *testing.T) {
	mb := mailbox(t)
	if err := Deliver(mb, "a@b", strings.NewReader(""), date); err != nil {
		t.Fatal(err)
	}
	if got, want := readFile(t, mb.Path), "From a@b "+dateText+"\n\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestDeliverLocalTimeLayout(t *testing.T) {
	loc := time.FixedZone("X", 5*3600)
	mb := mailbox(t)
	now := time.Date(2024, time.November, 28, 9, 8, 7, 0, loc)
	if err := Deliver(mb, "a@b", strings.NewReader("x\r\n"), now); err != nil {
		t.Fatal(err)
	}
	// ctime(3): the time as given (local), no zone.
	if got, want := readFile(t, mb.Path), "From a@b Thu Nov 28 09:08:07 2024\nx\n\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestDeliverRejectsControlCharsInSender(t *testing.T) {
	mb := mailbox(t)
	for _, s := range []string{"a\r\nb@c", "a\nb", "a\x00b", "a\tb"} {
		if err := Deliver(mb, s, strings.NewReader("x\r\n"), date); err == nil {
			t.Errorf("sender %q accepted", s)
		}
	}
	if _, err := os.Lstat(mb.Path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("mailbox touched for a bad sender: %v", err)
	}
}

func TestDeliverAppendsInOrder(t *testing.T) {
	mb := mailbox(t)
	if err := Deliver(mb, "one@example.com", strings.NewReader("Subject: 1\r\n\r\nfirst\r\n"), date); err != nil {
		t.Fatal(err)
	}
	if err := Deliver(mb, "two@example.com", strings.NewReader("Subject: 2\r\n\r\nFrom second\r\n"), date.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	want := "From one@example.com Mon Jan  2 15:04:05 2006\nSubject: 1\n\nfirst\n\n" +
		"From two@example.com Mon Jan  2 16:04:05 2006\nSubject: 2\n\n>From second\n\n"
	if got := readFile(t, mb.Path); got != want {
		t.Errorf("mailbox:\n got %q\nwant %q", got, want)
	}
	msgs, err := parseMbox([]byte(want))
	if err != nil || len(msgs) != 2 || msgs[1].body != "Subject: 2\n\nFrom second\n" {
		t.Errorf("parsed back: %+v, %v", msgs, err)
	}
}

func TestDeliverAddsMissingEmptyLine(t *testing.T) {
	sep := "From a@b " + dateText + "\n"
	for _, tc := range []struct{ before, after string }{
		{"x", "x\n\n"},
		{"x\n", "x\n\n"},
		{"x\n\n", "x\n\n"},
		{"\n", "\n"},
	} {
		mb := mailbox(t)
		if err := os.WriteFile(mb.Path, []byte(tc.before), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := Deliver(mb, "a@b", strings.NewReader("m\r\n"), date); err != nil {
			t.Fatal(err)
		}
		if got, want := readFile(t, mb.Path), tc.after+sep+"m\n\n"; got != want {
			t.Errorf("after %q: got %q, want %q", tc.before, got, want)
		}
	}
}

// conversionInputs are messages whose conversion is compared with
// refMboxrd: quoting, CR handling, and lines around and beyond the read
// buffer, where a CRLF can straddle two chunks.
func conversionInputs() []string {
	in := []string{
		"", "\n", "\r\n", "\r", "x", "x\r", "x\r\r", "x\r\r\n", "\r\r\n", "\n\n\n",
		"From ", "From", "From x", ">From x", ">", ">>>", ">>>From", ">>>From ",
		"a\nFrom b\n>From c\r\n>>From d\rFrom e\r\n",
		"From:\r\nFromage\r\n From \r\n>>>>x From \r\n",
	}
	for _, n := range []int{readBufSize - 6, readBufSize - 5, readBufSize - 2, readBufSize - 1, readBufSize, readBufSize + 1} {
		long := strings.Repeat("a", n)
		in = append(in,
			long+"\r\nFrom x\r\n",
			long+"\r\r\nFrom x\r\n",
			long+"\r",
			long+"\nFrom",
			"From "+long+"\r\n>From "+long+"\r\n",
			strings.Repeat(">", n)+"From x\r\n"+strings.Repeat(">", n)+"\r\n",
		)
	}
	return in
}

func TestConversionMatchesReference(t *testing.T) {
	readers := []struct {
		name string
		wrap func(io.Reader) io.Reader
	}{
		{"plain", func(r io.Reader) io.Reader { return r }},
		{"onebyte", iotest.OneByteReader},
		{"half", iotest.HalfReader},
		{"dataerr", iotest.DataErrReader},
	}
	for i, in := range conversionInputs() {
		want := refMboxrd(in)
		for _, rd := range readers {
			got, err := convert(rd.wrap(strings.NewReader(in)))
			if err != nil {
				t.Fatalf("input %d, %s reader: %v", i, rd.name, err)
			}
			if got != want {
				t.Fatalf("input %d (%d bytes), %s reader: conversion differs from the reference\n got %.200q\nwant %.200q", i, len(in), rd.name, got, want)
			}
		}
	}
}

func FuzzConversion(f *testing.F) {
	for _, in := range conversionInputs() {
		if len(in) < 1000 {
			f.Add(in)
		}
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := convert(iotest.HalfReader(strings.NewReader(in)))
		if err != nil {
			t.Fatal(err)
		}
		if want := refMboxrd(in); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	})
}

func TestDeliverMegabyteLines(t *testing.T) {
	mega := 1 << 20
	in := "Subject: long\r\n\r\n" +
		"From " + strings.Repeat("f", mega) + "\r\n" +
		strings.Repeat("x", mega) + "\r\n" +
		"From after the long line\r\n" +
		strings.Repeat(">", mega) + "From deep\r\n" +
		"end"
	mb := mailbox(t)
	if err := Deliver(mb, "a@b", strings.NewReader(in), date); err != nil {
		t.Fatal(err)
	}
	got := readFile(t, mb.Path)
	if want := "From a@b " + dateText + "\n" + refMboxrd(in); got != want {
		t.Fatalf("1 MB lines: %d bytes, want %d", len(got), len(want))
	}
	msgs, err := parseMbox([]byte(got))
	if err != nil || len(msgs) != 1 {
		t.Fatalf("parsed %d messages, %v", len(msgs), err)
	}
	if want := strings.ReplaceAll(in, "\r\n", "\n") + "\n"; msgs[0].body != want {
		t.Errorf("round trip differs")
	}
}

func TestDeliverConcurrentGoroutines(t *testing.T) {
	const workers, each, lines = 8, 4, 2000 // ~180 KB per message
	mb := mailbox(t)
	want := map[string]bool{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, workers*each)
	for w := range workers {
		id := "g" + strconv.Itoa(w)
		for j := range each {
			want[id+"/"+strconv.Itoa(j)] = true
		}
		wg.Go(func() {
			<-start
			for j := range each {
				msg := yieldingReader(testMessage(id, j, lines))
				if err := Deliver(mb, id+"@example.com", msg, time.Now()); err != nil {
					errs <- err
				}
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	b, err := os.ReadFile(mb.Path)
	if err != nil {
		t.Fatal(err)
	}
	checkWhole(t, b, lines, want)
}

// runDeliverers starts n helper processes delivering each messages to
// path (owned by uid) and waits for them all.
func runDeliverers(t *testing.T, exe, path string, uid, n, each, lines int, cred *syscall.Credential) map[string]bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	want := map[string]bool{}
	var cmds []*exec.Cmd
	var outs []*bytes.Buffer
	var starts []io.Closer
	for p := range n {
		id := "p" + strconv.Itoa(p)
		for j := range each {
			want[id+"/"+strconv.Itoa(j)] = true
		}
		cmd := exec.CommandContext(ctx, exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), helperEnv+"=deliver", "MBOX_PATH="+path, "MBOX_UID="+strconv.Itoa(uid),
			"MBOX_ID="+id, "MBOX_COUNT="+strconv.Itoa(each), "MBOX_LINES="+strconv.Itoa(lines))
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if cred != nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		}
		start, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds, outs, starts = append(cmds, cmd), append(outs, &out), append(starts, start)
	}
	for _, start := range starts {
		start.Close() // all helpers are up: go
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("helper %d: %v\n%s", i, err, outs[i])
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return want
}

func TestDeliverConcurrentProcesses(t *testing.T) {
	const procs, each, lines = 4, 5, 2000
	mb := mailbox(t)
	want := runDeliverers(t, os.Args[0], mb.Path, mb.UID, procs, each, lines, nil)
	checkWhole(t, []byte(readFile(t, mb.Path)), lines, want)
}

// TestDeliverConcurrentProcessesFcntlOnly runs the helpers as nobody in a
// spool directory nobody cannot write: no dotlock can be made, so the
// fcntl lock alone must keep the processes apart.
func TestDeliverConcurrentProcessesFcntlOnly(t *testing.T) {
	requireRoot(t)
	uid, _ := lookupNobodyMail(t)
	const procs, each, lines = 4, 5, 2000

	// The test binary lives in a directory only root may enter; copy it
	// where nobody can run it.
	dir, err := os.MkdirTemp("", "mbox-fcntl-only-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	spool := filepath.Join(dir, "spool")
	if err := os.Mkdir(spool, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "mbox.test")
	bin, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(spool, "nobody")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, uid, -1); err != nil {
		t.Fatal(err)
	}

	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}
	want := runDeliverers(t, exe, path, uid, procs, each, lines, cred)
	checkWhole(t, []byte(readFile(t, path)), lines, want)
	if _, err := os.Lstat(path + ".lock"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a dotlock was made in a directory nobody cannot write: %v", err)
	}
}

func TestDeliverRemovesStaleDotlock(t *testing.T) {
	mb := mailbox(t)
	lock := mb.Path + ".lock"
	if err := os.WriteFile(lock, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-staleAfter - time.Minute)
	if err := os.Chtimes(lock, old, old); err != nil {
		t.Fatal(err)
	}
	setLockTimeout(t, 5*time.Second) // a stale lock must not cost a wait
	if err := Deliver(mb, "a@b", strings.NewReader("x\r\n"), date); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(lock); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("dotlock still there: %v", err)
	}
	if got := readFile(t, mb.Path); got != "From a@b "+dateText+"\nx\n\n" {
		t.Errorf("mailbox %q", got)
	}
}

func TestDeliverWaitsForDotlock(t *testing.T) {
	mb := mailbox(t)
	lock := mb.Path + ".lock"
	if err := os.WriteFile(lock, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	busyCh := busySignal(t, "dotlock")
	done := make(chan error, 1)
	go func() { done <- Deliver(mb, "a@b", strings.NewReader("x\r\n"), date) }()

	wait(t, busyCh, "Deliver to find the dotlock held")
	select {
	case err := <-done:
		t.Fatalf("Deliver returned while the dotlock was held: %v", err)
	default:
	}
	if _, err := os.Lstat(mb.Path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("mailbox opened under someone else's dotlock: %v", err)
	}
	if err := os.Remove(lock); err != nil {
		t.Fatal(err)
	}
	if err := wait(t, done, "Deliver to finish"); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, mb.Path); got != "From a@b "+dateText+"\nx\n\n" {
		t.Errorf("mailbox %q", got)
	}
}

func TestDeliverLockTimeout(t *testing.T) {
	mb := mailbox(t)
	lock := mb.Path + ".lock"
	if err := os.WriteFile(lock, []byte("theirs"), 0o600); err != nil {
		t.Fatal(err)
	}
	setLockTimeout(t, 200*time.Millisecond)
	err := Deliver(mb, "a@b", strings.NewReader("x\r\n"), date)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("got %v, want ErrLocked", err)
	}
	if got := readFile(t, lock); got != "theirs" {
		t.Errorf("someone else's fresh dotlock was touched: %q", got)
	}
	if _, err := os.Lstat(mb.Path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("mailbox created without the lock: %v", err)
	}
}

func TestDeliverWaitsForFcntlLock(t *testing.T) {
	t.Run("classic lock in another process", func(t *testing.T) {
		mb := mailbox(t)
		if err := os.WriteFile(mb.Path, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), helperEnv+"=hold", "MBOX_PATH="+mb.Path)
		cmd.Stderr = os.Stderr
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { stdin.Close(); cmd.Wait() })
		locked := make(chan string, 1)
		go func() {
			l, _ := bufio.NewReader(stdout).ReadString('\n')
			locked <- l
		}()
		if l := wait(t, locked, "the helper to lock"); l != "locked\n" {
			t.Fatalf("helper said %q", l)
		}
		waitForFcntl(t, mb, func() { stdin.Close() })
	})
	t.Run("OFD lock in this process", func(t *testing.T) {
		if runtime.GOOS != "linux" {
			t.Skip("open file description locks are Linux-only")
		}
		mb := mailbox(t)
		f, err := os.OpenFile(mb.Path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := lockFile(f, time.Now()); err != nil {
			t.Fatal(err)
		}
		waitForFcntl(t, mb, func() { unlockFile(f) })
	})
}

// waitForFcntl checks that Deliver waits while mb is fcntl-locked by
// someone else, and succeeds once release has been called.
func waitForFcntl(t *testing.T, mb Mailbox, release func()) {
	t.Helper()
	busyCh := busySignal(t, "fcntl")
	done := make(chan error, 1)
	go func() { done <- Deliver(mb, "a@b", strings.NewReader("x\r\n"), date) }()
	wait(t, busyCh, "Deliver to find the fcntl lock held")
	select {
	case err := <-done:
		t.Fatalf("Deliver returned while the file was locked: %v", err)
	default:
	}
	if fi, err := os.Stat(mb.Path); err != nil || fi.Size() != 0 {
		t.Fatalf("mailbox written under someone else's lock: %v, %v", fi, err)
	}
	release()
	if err := wait(t, done, "Deliver to finish"); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, mb.Path); got != "From a@b "+dateText+"\nx\n\n" {
		t.Errorf("mailbox %q", got)
	}
}

func TestDeliverRefusesUnsafeFiles(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, path string) (check func())
	}{
		{"symlink", func(t *testing.T, path string) func() {
			target := filepath.Join(filepath.Dir(path), "target")
			if err := os.WriteFile(target, []byte("secret\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, path); err != nil {
				t.Fatal(err)
			}
			return func() {
				if got := readFile(t, target); got != "secret\n" {
					t.Errorf("symlink target written: %q", got)
				}
			}
		}},
		{"dangling symlink", func(t *testing.T, path string) func() {
			target := filepath.Join(filepath.Dir(path), "created-through-link")
			if err := os.Symlink(target, path); err != nil {
				t.Fatal(err)
			}
			return func() {
				if _, err := os.Lstat(target); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("file created through a dangling symlink: %v", err)
				}
			}
		}},
		{"hard link", func(t *testing.T, path string) func() {
			other := filepath.Join(filepath.Dir(path), "other")
			if err := os.WriteFile(other, []byte("secret\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Link(other, path); err != nil {
				t.Fatal(err)
			}
			return func() {
				if got := readFile(t, other); got != "secret\n" {
					t.Errorf("hard-linked file written: %q", got)
				}
			}
		}},
		{"fifo", func(t *testing.T, path string) func() {
			if err := unix.Mkfifo(path, 0o600); err != nil {
				t.Fatal(err)
			}
			return func() {}
		}},
		{"directory", func(t *testing.T, path string) func() {
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
			return func() {}
		}},
		{"wrong owner", func(t *testing.T, path string) func() {
			if err := os.WriteFile(path, []byte("theirs\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			return func() {
				if got := readFile(t, path); got != "theirs\n" {
					t.Errorf("someone else's mailbox written: %q", got)
				}
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mb := mailbox(t)
			check := tc.setup(t, mb.Path)
			if tc.name == "wrong owner" {
				mb.UID = os.Geteuid() + 1
			}
			err := Deliver(mb, "a@b", strings.NewReader("x\r\n"), date)
			if tc.name == "directory" {
				// Not an attack, just a mistake: any error will do.
				if err == nil {
					t.Fatal("delivered into a directory")
				}
			} else if !errors.Is(err, ErrUnsafe) {
				t.Fatalf("got %v, want ErrUnsafe", err)
			}
			t.Log(err)
			check()
			if _, err := os.Lstat(mb.Path + ".lock"); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("dotlock left behind: %v", err)
			}
		})
	}
}

func TestDeliverCreatesWithModeAndOwner(t *testing.T) {
	requireRoot(t)
	uid, gid := lookupNobodyMail(t)
	old := syscall.Umask(0o077) // the mode must not depend on the umask
	t.Cleanup(func() { syscall.Umask(old) })
	for _, mode := range []os.FileMode{0, 0o600, 0o660} {
		mb := Mailbox{Path: filepath.Join(t.TempDir(), "nobody"), UID: uid, GID: gid, Mode: mode}
		if err := Deliver(mb, "a@b", strings.NewReader("x\r\n"), date); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Lstat(mb.Path)
		if err != nil {
			t.Fatal(err)
		}
		want := mode
		if want == 0 {
			want = DefaultMode
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode() != want || int(st.Uid) != uid || int(st.Gid) != gid {
			t.Errorf("Mode %v: created %v %d:%d, want %v %d:%d", mode, fi.Mode(), st.Uid, st.Gid, want, uid, gid)
		}
		// A second delivery accepts the mailbox it made.
		if err := Deliver(mb, "a@b", strings.NewReader("y\r\n"), date); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDeliverKeepsExistingMode(t *testing.T) {
	mb := mailbox(t)
	if err := os.WriteFile(mb.Path, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(mb.Path, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := Deliver(mb, "a@b", strings.NewReader("x\r\n"), date); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(mb.Path); fi.Mode() != 0o640 {
		t.Errorf("mode changed to %v", fi.Mode())
	}
}

// failingReader returns the first n bytes of r, then err.
type failingReader struct {
	r   io.Reader
	n   int
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, f.err
	}
	if len(p) > f.n {
		p = p[:f.n]
	}
	n, err := f.r.Read(p)
	f.n -= n
	return n, err
}

func TestDeliverFailureLeavesOriginalSize(t *testing.T) {
	boom := errors.New("boom")
	big := testMessage("big", 0, 5000) // ~450 KB, several buffer flushes
	for _, existing := range []bool{true, false} {
		t.Run(fmt.Sprintf("existing=%v", existing), func(t *testing.T) {
			mb := mailbox(t)
			before := ""
			if existing {
				if err := Deliver(mb, "a@b", strings.NewReader("first\r\n"), date); err != nil {
					t.Fatal(err)
				}
				before = readFile(t, mb.Path)
			}
			// Fail well after the write buffer was flushed to the file.
			msg := &failingReader{r: strings.NewReader(big), n: 3 * writeBufSize, err: boom}
			err := Deliver(mb, "a@b", msg, date)
			if !errors.Is(err, boom) || !strings.Contains(err.Error(), "reading message") {
				t.Fatalf("got %v, want the reader's error", err)
			}
			if got := readFile(t, mb.Path); got != before {
				t.Fatalf("mailbox is %d bytes after a failed delivery, want %d", len(got), len(before))
			}
			if _, err := os.Lstat(mb.Path + ".lock"); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("dotlock left behind: %v", err)
			}
			// The locks were released: the next delivery goes through.
			setLockTimeout(t, time.Second)
			if err := Deliver(mb, "a@b", strings.NewReader("next\r\n"), date); err != nil {
				t.Fatal(err)
			}
			if got, want := readFile(t, mb.Path), before+"From a@b "+dateText+"\nnext\n\n"; got != want {
				t.Errorf("got %q, want %q", got, want)
			}
		})
	}
}

func TestCanWrite(t *testing.T) {
	uid, _ := lookupNobodyMail(t)
	mb := Mailbox{Path: "/var/mail/nobody", UID: uid, GID: -1}
	for _, tc := range []struct {
		name string
		mb   Mailbox
		euid int
		ok   bool
	}{
		{"root", mb, 0, true},
		{"owner", mb, uid, true},
		{"other user", mb, 1000, false},
		{"no owner required", Mailbox{Path: mb.Path, UID: -1}, 1000, true},
	} {
		err := canWrite(tc.mb, tc.euid, false)
		if tc.ok != (err == nil) {
			t.Errorf("%s: got %v", tc.name, err)
		}
		// A process that delivers for others (CAP_CHOWN) may always try.
		if err := canWrite(tc.mb, tc.euid, true); err != nil {
			t.Errorf("%s, delegated: %v", tc.name, err)
		}
		if err != nil {
			if !errors.Is(err, ErrPermission) {
				t.Errorf("%s: %v does not wrap ErrPermission", tc.name, err)
			}
			want := "permission denied: writing /var/mail/nobody needs root or user nobody; run as root or configure a relay in /etc/handoff/handoff.toml"
			if err.Error() != want {
				t.Errorf("%s:\n got %q\nwant %q", tc.name, err, want)
			}
		}
	}
	err := canWrite(Mailbox{Path: "/x", UID: 4242424}, 1000, false)
	if err == nil || !strings.Contains(err.Error(), "needs root or user uid 4242424;") {
		t.Errorf("unknown owner: %v", err)
	}
	if os.Geteuid() == 0 {
		if err := CanWrite(mb); err != nil {
			t.Errorf("CanWrite as root: %v", err)
		}
	}
}

func TestForUser(t *testing.T) {
	mb, err := ForUser("/var/mail", "root")
	if err != nil {
		t.Fatal(err)
	}
	wantGID := 0
	if g, err := user.LookupGroup("mail"); err == nil {
		wantGID, _ = strconv.Atoi(g.Gid)
	}
	if want := (Mailbox{Path: "/var/mail/root", UID: 0, GID: wantGID, Mode: 0o600}); mb != want {
		t.Errorf("got %+v, want %+v", mb, want)
	}
	for _, name := range []string{"no-such-user-handoff-test", "", ".", "..", ".hidden", "../etc/passwd", "a/b", "root\x00"} {
		if _, err := ForUser("/var/mail", name); !errors.Is(err, ErrNoSuchUser) {
			t.Errorf("ForUser(%q): got %v, want ErrNoSuchUser", name, err)
		}
	}
}

func TestDeadLetter(t *testing.T) {
	home := t.TempDir()
	path, err := DeadLetter(home, "me@example.com", strings.NewReader("Subject: 1\r\n\r\nFrom here\r\n"), date)
	if err != nil {
		t.Fatal(err)
	}
	if path != filepath.Join(home, "dead.letter") {
		t.Errorf("path %q", path)
	}
	if fi, err := os.Lstat(path); err != nil || fi.Mode() != 0o600 {
		t.Errorf("dead.letter: %v, %v; want mode 0600", fi, err)
	}
	if _, err := DeadLetter(home, "", strings.NewReader("Subject: 2\r\n\r\nsecond"), date); err != nil {
		t.Fatal(err)
	}
	want := "From me@example.com " + dateText + "\nSubject: 1\n\n>From here\n\n" +
		"From MAILER-DAEMON " + dateText + "\nSubject: 2\n\nsecond\n\n"
	if got := readFile(t, path); got != want {
		t.Errorf("dead.letter:\n got %q\nwant %q", got, want)
	}
	if _, err := os.Lstat(path + ".lock"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("dead.letter got a dotlock: %v", err)
	}
}

func TestDeadLetterNeverTruncates(t *testing.T) {
	home := t.TempDir()
	path := filepath.Join(home, "dead.letter")
	old := "From earlier@example.com Sun Jan  1 00:00:00 2006\nold\n\n"
	if err := os.WriteFile(path, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := DeadLetter(home, "a@b", strings.NewReader("new\r\n"), date); err != nil {
		t.Fatal(err)
	}
	if got, want := readFile(t, path), old+"From a@b "+dateText+"\nnew\n\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	// A failed append leaves the file as it was.
	before := readFile(t, path)
	msg := &failingReader{r: strings.NewReader(testMessage("x", 0, 3000)), n: 2 * writeBufSize, err: io.ErrUnexpectedEOF}
	if _, err := DeadLetter(home, "a@b", msg, date); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("got %v", err)
	}
	if got := readFile(t, path); got != before {
		t.Errorf("dead.letter changed by a failed append: %d bytes, want %d", len(got), len(before))
	}
}

func TestDeadLetterRefusesSymlink(t *testing.T) {
	home := t.TempDir()
	target := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(target, []byte("keep\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(home, "dead.letter")); err != nil {
		t.Fatal(err)
	}
	if _, err := DeadLetter(home, "a@b", strings.NewReader("x\r\n"), date); !errors.Is(err, ErrUnsafe) {
		t.Fatalf("got %v, want ErrUnsafe", err)
	}
	if got := readFile(t, target); got != "keep\n" {
		t.Errorf("symlink target written: %q", got)
	}
	if _, err := DeadLetter("", "a@b", strings.NewReader("x"), date); err == nil {
		t.Error("no error without a home directory")
	}
}

// message2K is a typical 2 KB message with CRLF line endings.
func message2K() string {
	var b strings.Builder
	b.WriteString("From: Alice <alice@example.com>\r\nTo: bob@example.com\r\nSubject: benchmark\r\n" +
		"Date: Mon, 2 Jan 2006 15:04:05 +0000\r\nMessage-ID: <bench@example.com>\r\n\r\n")
	for b.Len() < 2048-74 {
		b.WriteString("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod.\r\n")
	}
	return b.String()
}

func BenchmarkDeliver(b *testing.B) {
	msg := message2K()
	mb := mailbox(b)
	r := strings.NewReader(msg)
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		r.Reset(msg)
		if err := Deliver(mb, "alice@example.com", r, date); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkConversion(b *testing.B) {
	var sb strings.Builder
	for sb.Len() < 1<<20 {
		sb.WriteString(message2K())
	}
	msg := sb.String()
	r := strings.NewReader(msg)
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		r.Reset(msg)
		c := getCopier(io.Discard, r)
		if err := c.copyBody(nil); err != nil {
			b.Fatal(err)
		}
		c.w.Flush()
		putCopier(c)
	}
}
