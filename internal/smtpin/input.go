package smtpin

import (
	"io"
	"os"
	"time"
)

// This file holds the I/O plumbing under the session's bufio.Reader and
// bufio.Writer: the reader that flushes pending replies before it waits,
// and the per-read timeout, done with deadlines where the reader has
// them and with a helper goroutine where it does not.

type readDeadliner interface {
	SetReadDeadline(t time.Time) error
}

type writeDeadliner interface {
	SetWriteDeadline(t time.Time) error
}

// inputReader is what the session's bufio.Reader reads from. Before every
// read it calls flush, so replies leave exactly when the server is about
// to wait for the client (see "Pipelining and flushing" in the package
// documentation), and it bounds each read by timeout (<= 0: no limit).
type inputReader struct {
	r       io.Reader
	flush   func() error
	timeout time.Duration
	dl      readDeadliner // set when r's deadlines work
	async   *asyncReader  // set when a timeout is wanted and r has no deadlines
}

func newInputReader(r io.Reader, flush func() error, timeout time.Duration) *inputReader {
	in := &inputReader{r: r, flush: flush, timeout: timeout}
	if timeout <= 0 {
		return in
	}
	// An *os.File for a blocking descriptor has SetReadDeadline but it
	// fails with os.ErrNoDeadline; try it before relying on it.
	if d, ok := r.(readDeadliner); ok && d.SetReadDeadline(time.Time{}) == nil {
		in.dl = d
		return in
	}
	in.async = newAsyncReader(r)
	return in
}

func (in *inputReader) Read(p []byte) (int, error) {
	if err := in.flush(); err != nil {
		return 0, err
	}
	switch {
	case in.dl != nil:
		if err := in.dl.SetReadDeadline(time.Now().Add(in.timeout)); err != nil {
			return 0, err
		}
		return in.r.Read(p)
	case in.async != nil:
		return in.async.read(p, in.timeout)
	}
	return in.r.Read(p)
}

// close clears the deadline and lets the helper goroutine end.
func (in *inputReader) close() {
	if in.dl != nil {
		in.dl.SetReadDeadline(time.Time{})
	}
	if in.async != nil {
		in.async.close()
	}
}

// asyncReader reads r in a goroutine of its own, one Read at a time and
// only when asked, so that the caller can stop waiting. The goroutine
// reads into a buffer of its own: after a timeout the caller's buffer is
// never written to. It ends when close is called and the read in
// progress, if any, has returned.
type asyncReader struct {
	r       io.Reader
	req     chan int
	res     chan asyncResult
	buf     []byte
	started bool
	busy    bool // a read is in progress; its result has not been taken
}

type asyncResult struct {
	n   int
	err error
}

func newAsyncReader(r io.Reader) *asyncReader {
	return &asyncReader{
		r:   r,
		req: make(chan int),
		res: make(chan asyncResult, 1),
		buf: make([]byte, readBufSize),
	}
}

func (a *asyncReader) loop() {
	for n := range a.req {
		m, err := a.r.Read(a.buf[:n])
		a.res <- asyncResult{m, err}
	}
}

// read waits at most d for the goroutine's next Read and returns
// os.ErrDeadlineExceeded when it does not come. After a timeout the read
// stays in progress; a later call waits for the same read.
func (a *asyncReader) read(p []byte, d time.Duration) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if !a.busy {
		if !a.started {
			a.started = true
			go a.loop()
		}
		a.busy = true
		a.req <- min(len(p), len(a.buf))
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case r := <-a.res:
		a.busy = false
		n := copy(p, a.buf[:r.n])
		return n, r.err
	case <-t.C:
		return 0, os.ErrDeadlineExceeded
	}
}

func (a *asyncReader) close() {
	if a.started {
		close(a.req)
		a.started = false
	}
}

// deadlineWriter sets a write deadline before each Write.
type deadlineWriter struct {
	w       io.Writer
	dl      writeDeadliner
	timeout time.Duration
}

// newDeadlineWriter returns w itself unless timeout > 0 and w's write
// deadlines work.
func newDeadlineWriter(w io.Writer, timeout time.Duration) io.Writer {
	if timeout <= 0 {
		return w
	}
	if d, ok := w.(writeDeadliner); ok && d.SetWriteDeadline(time.Time{}) == nil {
		return &deadlineWriter{w: w, dl: d, timeout: timeout}
	}
	return w
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	if err := d.dl.SetWriteDeadline(time.Now().Add(d.timeout)); err != nil {
		return 0, err
	}
	return d.w.Write(p)
}

// clear removes the deadline, when there is one.
func clearWriteDeadline(w io.Writer) {
	if d, ok := w.(*deadlineWriter); ok {
		d.dl.SetWriteDeadline(time.Time{})
	}
}
