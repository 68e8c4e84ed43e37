package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/handoff-mta/handoff/config"
	"github.com/handoff-mta/handoff/internal/sendopt"
	"github.com/handoff-mta/handoff/message"
	"github.com/handoff-mta/handoff/queue"
	"github.com/handoff-mta/handoff/relay"
)

// How a submission uses the queue, from [queue] mode and -od.
type submitMode int

const (
	// submitNever: deliver now; a temporary failure is the caller's
	// (exit 75). queue.mode = "never", whatever -od says: the host has
	// no queue (no runner), so -odb and -odq deliver at once too.
	submitNever submitMode = iota
	// submitFallback: deliver now; queue the recipients that failed
	// temporarily. queue.mode = "fallback" (the default), and -odi.
	submitFallback
	// submitBackground: queue everything, then attempt delivery of the
	// item at once, in this process, holding its lock. queue.mode =
	// "always", and -odb. (A detached background process is future
	// work; the caller waits for the attempt, but its outcome no longer
	// changes the exit status.)
	submitBackground
	// submitQueueOnly: queue everything and leave it to the runner. -odq.
	submitQueueOnly
)

// submitMode decides how this submission uses the queue.
func (j *job) submitMode() submitMode {
	if j.cfg.Queue.Mode == config.ModeNever {
		return submitNever
	}
	switch j.inv.Delivery {
	case sendopt.DeliveryQueue:
		return submitQueueOnly
	case sendopt.DeliveryBackground:
		return submitBackground
	case sendopt.DeliveryInteractive:
		return submitFallback
	}
	if j.cfg.Queue.Mode == config.ModeAlways {
		return submitBackground
	}
	return submitFallback
}

// submitted is what became of a submission.
type submitted struct {
	// out holds the recipients delivered (err nil) and those that failed
	// and were not queued.
	out []outcome
	// queued holds the recipients queued in item id, each with the error
	// that deferred it (nil when queued without an attempt).
	queued []outcome
	id     string
	// qerr is why the queue could not take the message: then nothing is
	// queued (queued is empty).
	qerr error
}

// submit delivers or queues a prepared message to expanded recipients, as
// the queue mode says.
func (j *job) submit(msg *message.Message, rcpts []string) *submitted {
	if s := j.submitDaemon(msg, rcpts); s != nil {
		return s
	}
	mode := j.submitMode()
	if mode == submitBackground || mode == submitQueueOnly {
		return j.submitQueued(msg, rcpts, mode == submitBackground)
	}
	out := j.send(context.Background(), j.submission(msg), rcpts)
	s := &submitted{}
	if mode == submitNever {
		s.out = out
		return s
	}
	var temp []outcome
	for _, o := range out {
		if o.err != nil && exitFor(o.err) == exTempFail {
			temp = append(temp, o)
		} else {
			s.out = append(s.out, o)
		}
	}
	if len(temp) == 0 {
		return s
	}
	id, err := j.enqueueDeferred(msg, temp)
	if err != nil {
		s.qerr = err
		s.out = append(s.out, temp...)
		return s
	}
	s.id, s.queued = id, temp
	return s
}

// submitQueued queues the message for every recipient and, when attempt
// is set, tries to deliver it at once.
func (j *job) submitQueued(msg *message.Message, rcpts []string, attempt bool) *submitted {
	s := &submitted{}
	q, err := j.openQueue()
	if err != nil {
		s.qerr = err
		return s
	}
	r, err := msg.Reader()
	if err != nil {
		s.qerr = err
		return s
	}
	it, err := q.EnqueueLocked(j.newEnvelope(msg, rcpts), r)
	if err != nil {
		s.qerr = err
		return s
	}
	s.id = it.ID()
	for _, rc := range rcpts {
		s.queued = append(s.queued, outcome{rcpt: rc})
	}
	j.verbosef("queued as %s", s.id)
	j.logNote(s.id, fmt.Sprintf("queued from=<%s>, nrcpt=%d, size=%d", it.Env.Sender, len(rcpts), it.Env.Size))
	if !attempt {
		it.Unlock()
		return s
	}
	if j.env.Background != nil {
		// -odb / mode always: a detached "handoff queue flush ID" makes
		// the attempt, so the caller does not wait for the relay. If it
		// cannot be started, the attempt is made here.
		it.Unlock()
		args := []string{"handoff", "queue"}
		if j.cfg.Path != "" {
			args = append(args, "-C", j.cfg.Path)
		}
		if err := j.env.Background(append(args, "flush", s.id)); err == nil {
			return s
		}
		if it, err = q.Lock(s.id); err != nil {
			return s // a runner has it already
		}
	}
	// The item is locked: no runner can deliver it twice. Its fate is the
	// queue's now (deferred, or bounced with a DSN), not the exit
	// status's.
	j.attempt(context.Background(), q, it, true)
	return s
}

// newEnvelope is the queue envelope of a submission to rcpts, all
// pending.
func (j *job) newEnvelope(msg *message.Message, rcpts []string) *queue.Envelope {
	e := &queue.Envelope{
		Sender:   j.sender,
		Ret:      j.inv.Return,
		EnvID:    j.inv.EnvelopeID,
		Body8Bit: msg.Has8Bit,
		SMTPUTF8: msg.NeedsSMTPUTF8,
		UID:      j.env.uid(),
		User:     j.login,
		Created:  stamp(j.env.Now()),
	}
	notify := notifyList(j.inv.Notify)
	for _, rc := range rcpts {
		e.Recipients = append(e.Recipients, queue.Recipient{Addr: rc, Notify: notify})
	}
	return e
}

// stamp is how the queue records a time: UTC, whole seconds.
func stamp(t time.Time) time.Time { return t.UTC().Truncate(time.Second) }

// enqueueDeferred queues the message for the recipients that failed
// temporarily, with the first attempt recorded: attempts 1, each one's
// reply, the next attempt after the first backoff.
func (j *job) enqueueDeferred(msg *message.Message, temp []outcome) (string, error) {
	rcpts := make([]string, len(temp))
	for i, o := range temp {
		rcpts[i] = o.rcpt
	}
	e := j.newEnvelope(msg, rcpts)
	now, p := j.env.Now(), j.policy()
	e.RecordAttempt(now, p)
	e.Apply(results(temp, func(error) bool { return true }), now, p)
	q, err := j.openQueue()
	if err != nil {
		return "", err
	}
	r, err := msg.Reader()
	if err != nil {
		return "", err
	}
	id, err := q.Enqueue(e, r)
	if err == nil {
		j.logNote(id, fmt.Sprintf("queued from=<%s>, nrcpt=%d, size=%d", e.Sender, len(rcpts), e.Size))
	}
	return id, err
}

// results turns outcomes into the queue's results; retry says which
// failures are temporary. It follows queue.RelayResults (the reply, or
// the error's text; ErrOutcomeUnknown), for outcomes that may come from
// several relays tried in turn.
func results(out []outcome, retry func(error) bool) []queue.Result {
	res := make([]queue.Result, len(out))
	for i, o := range out {
		r := queue.Result{Addr: o.rcpt, Relay: o.via, Err: o.err}
		if o.reply != nil {
			r.Reply = o.reply.String()
		}
		if o.err != nil {
			if rp := relay.ReplyOf(o.err); rp != nil {
				r.Reply = rp.String()
			}
			r.Temporary = retry(o.err)
			r.OutcomeUnknown = errors.Is(o.err, relay.ErrOutcomeUnknown)
		}
		res[i] = r
	}
	return res
}

// policy is the retry schedule of the config.
func (j *job) policy() queue.Policy { return queue.PolicyFromConfig(j.cfg.Queue) }

// openQueue opens the queue directory of the config.
func (j *job) openQueue() (*queue.Queue, error) { return queue.Open(j.cfg.Queue.Dir) }

// queueError prints why the queue cannot be used, in one line naming the
// directory.
func (j *job) queueError(err error) {
	fmt.Fprintf(j.env.Stderr, "%s: cannot use the queue in %s: %s\n", j.inv.Name, j.cfg.Queue.Dir, strings.TrimPrefix(err.Error(), "queue: "))
}

// reportQueued prints, for -v, the recipients queued after a temporary
// failure: one line each with the reason. (A message queued first says
// "queued as ID" when it is queued.)
func (j *job) reportQueued(s *submitted) {
	for _, o := range s.queued {
		if o.err != nil {
			fmt.Fprintf(j.env.Stderr, "%s: %s: queued as %s: %v\n", j.inv.Name, o.rcpt, s.id, o.err)
		}
	}
}

// warnf prints one line on stderr, prefixed with the program's name.
func (j *job) warnf(format string, a ...any) {
	fmt.Fprintf(j.env.Stderr, "%s: %s\n", j.inv.Name, fmt.Sprintf(format, a...))
}

// verbosef is warnf for -v only.
func (j *job) verbosef(format string, a ...any) {
	if j.inv.Verbose > 0 {
		j.warnf(format, a...)
	}
}

// attempt is one step of the queue for a locked item: when it is due (or
// force), it records the attempt durably, delivers its remaining
// recipients through job.send and applies the results; an expired item
// gives up instead. Failed recipients are reported to the sender by a DSN
// queued as a new item (never to <>). The item is then saved, or removed
// when done, and unlocked. A queued submission (-odb, mode always) and
// the daemon call it for one item; the runner does the same for batches
// (planBatch, then deliverBatch).
func (j *job) attempt(ctx context.Context, q *queue.Queue, it *queue.Item, force bool) {
	j.deliverBatch(ctx, q, j.planBatch(q, []*queue.Item{it}, force, false), nil)
}

// A batch is items of a run that a worker attempts together, planned.
type batch struct {
	items []batchItem
	// code is the exit status that locking the items contributed.
	code int
	// journal records the attempts of the batch (queue.Journal), when a
	// run wrote one; deliverBatch ends it.
	journal *queue.Journal
}

// batchItem is a locked item of a batch.
type batchItem struct {
	*queue.Item
	// deliver: the item is due and its attempt recorded. Without it
	// the item only has failures to report, or is done, or not due.
	deliver bool
}

// planBatch decides what to do with each of the locked items, in order:
// an expired one gives up, one that is due (or every one, with force) is
// to be delivered, and the attempts of those are recorded together,
// durably, before any of them is sent: in one journal file
// (queue.JournalAttempts) when journal is set, which only a queue run
// holding the runner lock may do, else in their envelopes
// (queue.RecordAttempts: one batch write). An item whose attempt cannot
// be recorded is unlocked and left out: it is not delivered now.
func (j *job) planBatch(q *queue.Queue, items []*queue.Item, force, journal bool) *batch {
	p := j.policy()
	now := j.env.Now()
	due := make([]bool, len(items))
	var record []*queue.Item
	for i, it := range items {
		e := it.Env
		switch {
		case len(e.Remaining()) == 0:
			// Done, or failures still to report.
		case e.Expired(now, p):
			e.GiveUp()
			j.verbosef("%s: expired after %v in the queue; giving up", it.ID(), p.MaxAge)
		case e.NextAttempt.After(now) && !force:
			// Not due (Due reads without locks; another process may have
			// tried it meanwhile).
		default:
			due[i] = true
			record = append(record, it)
		}
	}
	b := &batch{items: make([]batchItem, 0, len(items))}
	var errs []error // in the order of record
	if journal && len(record) > 0 {
		jr, err := q.JournalAttempts(record, now, p)
		if err == nil {
			b.journal = jr
			errs = make([]error, len(record))
		} else {
			j.verbosef("%v; recording the attempts in the envelopes instead", err)
		}
	}
	if errs == nil {
		errs = q.RecordAttempts(record, now, p)
	}
	for i, it := range items {
		if due[i] {
			err := errs[0]
			errs = errs[1:]
			if err != nil {
				j.warnf("queue item %s: recording the attempt: %v; not delivered now", it.ID(), err)
				it.Unlock()
				continue
			}
		}
		b.items = append(b.items, batchItem{it, due[i]})
	}
	return b
}

// deliverBatch delivers the items of a planned batch in turn, over the
// worker's connections, and saves them, or removes them through rm (the
// removals made durable together; nil: Item.Remove, one fsync each).
// When ctx ends, the items not reached yet are only unlocked: an attempt
// recorded for them was not made, and they wait for their next one.
// Every item is unlocked (or handed to rm, which unlocks it).
func (j *job) deliverBatch(ctx context.Context, q *queue.Queue, b *batch, rm *queue.Remover) {
	for k, bi := range b.items {
		if ctx.Err() != nil {
			bi.Unlock()
			continue
		}
		if bi.deliver {
			j.ahead = j.aheadOf(b.items[k+1:])
		}
		j.attemptItem(ctx, q, bi.Item, bi.deliver, rm)
		j.ahead = nil
	}
	if err := b.journal.Done(); err != nil {
		j.warnf("%v", err)
	}
}

// attemptItem delivers one item of a batch (when deliver: its
// attempt is recorded), reports its failures and saves or removes it.
func (j *job) attemptItem(ctx context.Context, q *queue.Queue, it *queue.Item, deliver bool, rm *queue.Remover) {
	j.logID = it.ID()
	defer func() { j.logID = "" }()
	e, id, p := it.Env, it.ID(), j.policy()
	if deliver {
		dels := itemDeliveries(it)
		if len(dels) != 1 {
			// The next message's envelope goes ahead only behind a
			// message that makes one SMTP transaction.
			j.ahead = nil
		}
		for _, d := range dels {
			out := j.send(ctx, d.delivery, d.rcpts)
			it.Apply(results(out, retryLater), j.env.Now(), p)
			for _, o := range out {
				switch {
				case o.err == nil:
					j.verbosef("%s: %s: sent via %s", id, o.rcpt, o.via)
				case errors.Is(o.err, relay.ErrOutcomeUnknown):
					j.verbosef("%s: %s: deferred, possible duplicate (connection lost after the data): %v", id, o.rcpt, o.err)
				case retryLater(o.err):
					j.verbosef("%s: %s: deferred: %v", id, o.rcpt, o.err)
				default:
					j.verbosef("%s: %s: failed: %v", id, o.rcpt, o.err)
				}
			}
		}
	}
	if b := e.Bounces(); len(b) > 0 {
		j.bounce(q, it, b, false)
	}
	if w := e.DelayWarningDue(j.env.Now(), p); len(w) > 0 {
		j.bounce(q, it, w, true)
	}
	if it.Done() {
		var err error
		if rm != nil {
			err = rm.Remove(it)
		} else {
			err = it.Remove()
		}
		if err != nil {
			j.warnf("queue item %s: removing it: %v", id, err)
		}
		return
	}
	if err := it.Save(); err != nil {
		j.warnf("queue item %s: saving its state: %v", id, err)
	}
	it.Unlock()
}

// itemDelivery is a delivery of a queue item to some of its recipients.
type itemDelivery struct {
	*delivery
	rcpts []string
}

// itemDeliveries returns the deliveries of a queue item's remaining
// recipients: one per NOTIFY list (RCPT parameters are per message in
// job.send; recipients queued together share theirs).
func itemDeliveries(it *queue.Item) []itemDelivery {
	e := it.Env
	var out []itemDelivery
	byNotify := map[string]int{}
	for _, rc := range e.Remaining() {
		key := strings.Join(rc.Notify, ",")
		i, ok := byNotify[key]
		if !ok {
			i = len(out)
			byNotify[key] = i
			out = append(out, itemDelivery{delivery: &delivery{
				arrival:  e.Created,
				sender:   e.Sender,
				open:     func() (io.Reader, error) { return it.Body() },
				size:     e.Size,
				has8Bit:  e.Body8Bit,
				smtpUTF8: e.SMTPUTF8,
				ret:      e.Ret,
				envID:    e.EnvID,
				notify:   rc.Notify,
			}})
		}
		d := &out[i]
		d.rcpts = append(d.rcpts, rc.Addr)
		if rc.ORCPT != "" {
			if d.orcpt == nil {
				d.orcpt = map[string]string{}
			}
			d.orcpt[rc.Addr] = rc.ORCPT
		}
	}
	return out
}

// bounce queues a delivery status notification about rcpts to the
// item's sender: a failure report that marks them notified, or with
// delayed a delay warning that marks the item warned (once per item).
// When the DSN cannot be queued nothing is marked, and the next run tries
// again.
func (j *job) bounce(q *queue.Queue, it *queue.Item, rcpts []queue.Recipient, delayed bool) {
	e, id := it.Env, it.ID()
	what := "bounce"
	if delayed {
		what = "delay warning"
	}
	done := func() {
		if delayed {
			e.DelayWarned = true
		} else {
			e.MarkNotified()
		}
	}
	if e.Sender == "" {
		done() // never a DSN to <>
		return
	}
	body, err := it.Body()
	if err != nil {
		j.warnf("queue item %s: reading it for the %s: %v", id, what, err)
		return
	}
	defer body.Close()
	header, err := queue.ReadHeader(body, 0)
	if err != nil {
		j.warnf("queue item %s: reading it for the bounce: %v", id, err)
		return
	}
	now := j.env.Now()
	dsn, err := queue.BuildDSN(e, rcpts, header, j.cfg.Hostname, now, delayed)
	if err != nil {
		j.warnf("queue item %s: building the %s: %v", id, what, err)
		return
	}
	de := queue.DSNEnvelope(e, dsn)
	de.Created = stamp(now)
	dsnID, err := q.Enqueue(de, bytes.NewReader(dsn))
	if err != nil {
		j.warnf("queue item %s: cannot queue the %s to %s: %v", id, what, e.Sender, err)
		return
	}
	done()
	j.verbosef("%s: %s to %s queued as %s", id, what, e.Sender, dsnID)
}

// queueRunMode is -q, -q<interval> and runq: run the due items once, or
// forever every interval until SIGTERM or SIGINT. The exit status is 0
// when a run completed, whatever stays queued, and when another runner
// holds the queue.
func queueRunMode(env *Env, inv *sendopt.Invocation) int {
	j, code := newJob(env, inv)
	if j == nil {
		return code
	}
	q, err := j.openQueue()
	if err != nil {
		j.queueError(err)
		return queueExit(err)
	}
	filters := selectorFilters(inv.QueueSelectors)
	ctx, stop := env.context()
	defer stop()
	for {
		code := j.runQueue(ctx, q, filters, nil, false)
		if inv.QueueInterval == 0 {
			return code
		}
		// A loop (a service) goes on after a failed run: the problem
		// was printed, and may be gone at the next.
		if env.sleep(ctx, inv.QueueInterval) != nil {
			return exOK
		}
	}
}

// selectorFilters turns -qI, -qR and -qS into queue filters, whose union
// is selected: selectors of one kind are alternatives, of different
// kinds all apply (as in sendmail 8).
func selectorFilters(sel []sendopt.Selector) []queue.Filter {
	filters := []queue.Filter{{}}
	for _, kind := range []byte{'I', 'R', 'S'} {
		var values []string
		for _, s := range sel {
			if s.Kind == kind {
				values = append(values, s.Value)
			}
		}
		if len(values) == 0 {
			continue
		}
		var next []queue.Filter
		for _, f := range filters {
			for _, v := range values {
				g := f
				switch kind {
				case 'I':
					g.ID = v
				case 'R':
					g.Recipient = v
				case 'S':
					g.Sender = v
				}
				next = append(next, g)
			}
		}
		filters = next
	}
	return filters
}

// runQueue is one queue run: the runner lock, the orphans reaped, then
// each item that the filters select and that is due (every item not held
// with flush) is locked and attempted, in batches (splitBatches) on
// connections_per_relay workers (parallel, runBatches). ids, when not
// nil, are the items to run instead (handoff queue flush ID...): an id
// that is not queued is reported. It returns the exit status.
func (j *job) runQueue(ctx context.Context, q *queue.Queue, filters []queue.Filter, ids []string, flush bool) int {
	unlock, err := q.RunnerLock()
	if errors.Is(err, queue.ErrBusy) {
		j.warnf("another queue run is in progress")
		if flush {
			return exTempFail
		}
		return exOK
	}
	if err != nil {
		j.queueError(err)
		return queueExit(err)
	}
	defer unlock()
	// Only a flush of the whole queue is the admin's word that a relay
	// refusing the credentials may be tried again. (Each worker keeps
	// its own relay connections: see parallel.)
	j.auth = loadAuthBlocks(q.Dir, j.cfg.Path, flush && ids == nil)
	defer func() { j.auth = nil }()
	// A run that died left the journal of the attempts it was making:
	// they count.
	if n, err := q.ReplayJournals(); err != nil {
		j.warnf("replaying the attempt journals of an earlier run: %v", err)
	} else if n > 0 {
		j.verbosef("counted %d attempts that an interrupted run was making", n)
	}
	now := j.env.Now()
	if n, err := q.ReapOrphans(now, queue.OrphanGrace); err != nil {
		j.warnf("removing the leftovers of crashes from %s: %v", q.Dir, err)
	} else if n > 0 {
		j.verbosef("removed %d leftovers of crashes from %s", n, q.Dir)
	}
	explicit := ids != nil
	own := j.callerFilter(q)
	if !explicit {
		for i := range filters {
			filters[i].MatchUID, filters[i].UID = own.MatchUID, own.UID
		}
		ids, err = j.candidates(q, now, filters, flush)
		if err != nil {
			j.queueError(err)
			return queueExit(err)
		}
	}
	// Removals are made durable in the background, their fsyncs shared
	// by every worker (queue.Remover); the run ends when they are.
	rm := q.NewRemover()
	defer func() {
		if err := rm.Close(); err != nil {
			j.warnf("removing delivered items: %v; they may be delivered again after a crash", err)
		}
	}()
	workers := max(min(j.cfg.Queue.ConnectionsPerRelay, len(ids)), 1)
	return j.parallel(ctx, workers, splitBatches(ids, workers), func(w *job, batches <-chan []string) int {
		return w.runBatches(ctx, q, batches, explicit, own, flush, rm)
	})
}

// maxBatch caps the items of a batch: enough to share the fsyncs of
// their attempts' records widely, few enough that every worker gets some
// of a small run and that the items of a batch, locked and with their
// attempts recorded together, do not wait long for their turn.
const maxBatch = 16

// splitBatches cuts the ids of a run into batches in order: of equal
// size for the workers when the run is small, of maxBatch otherwise.
func splitBatches(ids []string, workers int) [][]string {
	size := min(max((len(ids)+workers-1)/workers, 1), maxBatch)
	var out [][]string
	for len(ids) > 0 {
		n := min(size, len(ids))
		out = append(out, ids[:n:n])
		ids = ids[n:]
	}
	return out
}

// parallel runs the batches of one queue run on workers goroutines, each
// running work on the batches it takes from a shared feed. Each worker
// keeps its own connection to each relay it delivers to, so a relay sees
// at most workers connections (connections_per_relay) from this run; the
// 535 blocks are shared. Output to the caller and the log goes through
// locks, one line at a time.
func (j *job) parallel(ctx context.Context, workers int, batches [][]string, work func(*job, <-chan []string) int) int {
	env := *j.env
	env.Stderr = &lockedWriter{w: env.Stderr}
	var log io.Writer
	if j.log != nil {
		log = &lockedWriter{w: j.log}
	}
	feed := make(chan []string)
	var (
		mu   sync.Mutex
		code = exOK
		wg   sync.WaitGroup
	)
	for range workers {
		w := *j
		w.env, w.log, w.logID = &env, log, ""
		w.conns = newConnCache(j.cfg.Queue.MessagesPerConnection)
		wg.Go(func() {
			defer w.conns.closeAll(ctx)
			c := work(&w, feed)
			mu.Lock()
			code = worse(code, c)
			mu.Unlock()
		})
	}
	for _, b := range batches {
		if ctx.Err() != nil {
			break
		}
		feed <- b
	}
	close(feed)
	wg.Wait()
	return code
}

// lockedWriter serialises the writes of parallel workers.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// runBatches is the work of one worker of a run: it takes batches of ids
// from the feed, locks their items (reporting what stops any) and plans
// them (planBatch: their attempts recorded) in one goroutine while it
// delivers the previous batch in another, so that the queue's disk work
// and the relay's network work overlap; at most two batches are locked
// at a time. It returns the exit status of the batches. explicit says
// the admin named the items (a missing or busy one is then an error).
func (j *job) runBatches(ctx context.Context, q *queue.Queue, feed <-chan []string, explicit bool, own queue.Filter, flush bool, rm *queue.Remover) int {
	planned := make(chan *batch)
	go func() {
		defer close(planned)
		for ids := range feed {
			if ctx.Err() != nil {
				continue // the run is over: leave the rest alone
			}
			code := exOK
			var items []*queue.Item
			for _, id := range ids {
				it, c := j.lockItem(q, id, explicit, own)
				code = worse(code, c)
				if it != nil {
					items = append(items, it)
				}
			}
			b := j.planBatch(q, items, flush, true)
			b.code = code
			planned <- b
		}
	}()
	code := exOK
	for b := range planned {
		code = worse(code, b.code)
		j.deliverBatch(ctx, q, b, rm)
	}
	return code
}

// lockItem locks one item of a run, or reports what stops it (nil and
// the exit status it contributes).
func (j *job) lockItem(q *queue.Queue, id string, explicit bool, own queue.Filter) (*queue.Item, int) {
	it, err := q.Lock(id)
	var ce *queue.CorruptError
	switch {
	case errors.Is(err, queue.ErrBusy):
		// Being delivered by its submitter, or edited.
		if explicit {
			j.warnf("%s: %v; try again later", id, queue.ErrBusy)
			return nil, exTempFail
		}
		return nil, exOK
	case errors.As(err, &ce):
		j.warnf("%v", err)
		if explicit {
			return nil, exUnavailable
		}
		return nil, exOK
	case errors.Is(err, queue.ErrNotFound):
		if explicit {
			j.warnf("%s: no such queue item", id)
			return nil, exUnavailable
		}
		return nil, exOK
	case err != nil:
		j.warnf("%v", err)
		return nil, exOK
	}
	if !own.Match(it.Env) {
		it.Unlock()
		j.warnf("%s: no such queue item", id)
		return nil, exUnavailable
	}
	if it.Env.Held {
		it.Unlock()
		if explicit {
			j.warnf("%s: on hold (handoff queue release %s)", id, id)
		}
		return nil, exOK
	}
	return it, exOK
}

// candidates lists the ids a run looks at: those Due, or with flush every
// item that is not held (and unreadable ones, so that Lock moves them
// aside and they are reported), for the union of the filters.
func (j *job) candidates(q *queue.Queue, now time.Time, filters []queue.Filter, flush bool) ([]string, error) {
	seen := map[string]bool{}
	var ids []string
	for _, f := range filters {
		var list []string
		if flush {
			items, err := q.List(f)
			if err != nil {
				return nil, err
			}
			for _, s := range items {
				if s.Err != nil || !s.Held {
					list = append(list, s.ID)
				}
			}
		} else {
			var err error
			if list, err = q.Due(now, f); err != nil {
				return nil, err
			}
		}
		for _, id := range list {
			if !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
	}
	slices.Sort(ids) // ids sort by arrival
	return ids, nil
}

// privileged reports whether the caller sees and manages every item: it
// is root, or it owns the queue directory (the handoff user). Anyone else
// sees and manages only the items it submitted.
func (j *job) privileged(q *queue.Queue) bool {
	uid := j.env.uid()
	if uid == 0 {
		return true
	}
	var st syscall.Stat_t
	return syscall.Stat(q.Dir, &st) == nil && int(st.Uid) == uid
}

// callerFilter selects the items the caller may see.
func (j *job) callerFilter(q *queue.Queue) queue.Filter {
	if j.privileged(q) {
		return queue.Filter{}
	}
	return queue.Filter{MatchUID: true, UID: j.env.uid()}
}

// openQueueToRead opens the queue for a listing; a queue directory that
// does not exist yet is an empty queue (nil, nil), and is not created.
func (j *job) openQueueToRead() (*queue.Queue, error) {
	if _, err := os.Lstat(j.cfg.Queue.Dir); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return j.openQueue()
}

// listItems returns the items the caller may see.
func (j *job) listItems() ([]queue.Summary, int) {
	if j.env.uid() != 0 && j.useDaemon() {
		// System mode: the queue is the daemon's; it lists the
		// caller's items.
		items, err := j.listViaDaemon()
		if err != nil {
			j.warnf("%v", err)
			return nil, exTempFail
		}
		return items, exOK
	}
	q, err := j.openQueueToRead()
	if err != nil {
		j.queueError(err)
		return nil, queueExit(err)
	}
	if q == nil {
		return []queue.Summary{}, exOK
	}
	items, err := q.List(j.callerFilter(q))
	if err != nil {
		j.queueError(err)
		return nil, queueExit(err)
	}
	if items == nil {
		items = []queue.Summary{}
	}
	return items, exOK
}

// queueListMode is mailq and sendmail -bp: the queue in Postfix's layout;
// a caller other than root (or the queue's owner) sees only its own
// items.
func queueListMode(env *Env, inv *sendopt.Invocation) int {
	j, code := newJob(env, inv)
	if j == nil {
		return code
	}
	items, code := j.listItems()
	if code != exOK {
		return code
	}
	if err := queue.WriteListing(env.Stdout, items); err != nil {
		j.warnf("%v", err)
		return exIOErr
	}
	return exOK
}
