package cli

// "handoff daemon": system mode (PRODUCT.md §1, §7). The daemon runs as
// its own user, owns the queue and the relay secrets, and takes
// submissions from local processes over LMTP on a Unix socket. The
// kernel tells it who is calling (SO_PEERCRED), so the uid recorded in
// the queue and the sender policy cannot be forged by the caller.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/handoff-mta/handoff/config"
	"github.com/handoff-mta/handoff/internal/sendopt"
	"github.com/handoff-mta/handoff/internal/smtpin"
	"github.com/handoff-mta/handoff/internal/userdb"
	"github.com/handoff-mta/handoff/queue"
)

// daemon is one running "handoff daemon".
type daemon struct {
	env *Env
	cfg *config.Config
	q   *queue.Queue
	// base is the job the deliveries copy: config, addresser, log.
	base *job
	// pool holds the delivery workers, each a job with its own relay
	// connections, kept open between submissions (relay_idle).
	pool chan *job

	mu    sync.Mutex
	rates map[int]*rate // uid -> submissions this minute
	names map[int]string

	active   atomic.Int64 // open front-end connections
	inflight atomic.Int64 // deliveries under way
	last     atomic.Int64 // unix nanoseconds of the last activity
	wg       sync.WaitGroup
}

type rate struct {
	start time.Time
	n     int
}

// daemonCmd runs "handoff daemon [-C FILE] [-v]". The environment is
// not trusted: HANDOFF_CONFIG is ignored, the config is -C or the
// default path.
func daemonCmd(args []string, env *Env) int {
	inv := &sendopt.Invocation{Name: "handoff daemon"}
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-C" && i+1 < len(args):
			i++
			inv.ConfigFile = args[i]
		case a == "-v":
			inv.Verbose++
		default:
			fmt.Fprintf(env.Stderr, "handoff daemon: unexpected argument %q (usage: handoff daemon [-C FILE] [-v])\n", a)
			return exUsage
		}
	}
	cfg, err := config.Load(inv.ConfigFile)
	if err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(env.Stderr, "handoff daemon: %s\n", line)
		}
		return exConfig
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintf(env.Stderr, "handoff daemon: warning: %s\n", w)
	}
	ln, activated, err := daemonListener(cfg.Daemon.Socket, env)
	if err != nil {
		fmt.Fprintf(env.Stderr, "handoff daemon: %v\n", err)
		return exOSErr
	}
	defer ln.Close()
	q, err := queue.Open(cfg.Queue.Dir)
	if err != nil {
		fmt.Fprintf(env.Stderr, "handoff daemon: cannot use the queue in %s: %s\n", cfg.Queue.Dir, strings.TrimPrefix(err.Error(), "queue: "))
		return queueExit(err)
	}
	d := newDaemon(env, inv, cfg, q)
	ctx, stop := env.context()
	defer stop()
	return d.serve(ctx, ln, activated)
}

// daemonListener returns the socket systemd passed (LISTEN_FDS, fd 3)
// or, without one, a new socket at path, mode 0666 (any local user may
// submit; the daemon checks who they are).
func daemonListener(path string, env *Env) (net.Listener, bool, error) {
	if pid, _ := strconv.Atoi(env.Getenv("LISTEN_PID")); pid == os.Getpid() {
		if n, _ := strconv.Atoi(env.Getenv("LISTEN_FDS")); n >= 1 {
			f := os.NewFile(3, "LISTEN_FD_3")
			ln, err := net.FileListener(f)
			f.Close()
			if err != nil {
				return nil, false, fmt.Errorf("the socket passed by systemd (fd 3): %w", err)
			}
			if _, ok := ln.(*net.UnixListener); !ok {
				ln.Close()
				return nil, false, errors.New("the socket passed by systemd (fd 3) is not a Unix stream socket")
			}
			return ln, true, nil
		}
	}
	// A socket left by a daemon that died is removed; a live one is not.
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, false, fmt.Errorf("%s: another daemon is listening there", path)
	}
	if st, err := os.Lstat(path); err == nil && st.Mode()&os.ModeSocket != 0 {
		os.Remove(path)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, false, err
	}
	if err := os.Chmod(path, 0o666); err != nil {
		ln.Close()
		return nil, false, err
	}
	return ln, false, nil
}

func newDaemon(env *Env, inv *sendopt.Invocation, cfg *config.Config, q *queue.Queue) *daemon {
	base := &job{env: env, inv: inv, cfg: cfg, addr: addresser{cfg}, log: logWriter(env, cfg, inv.Verbose > 0)}
	if u, err := env.User(); err == nil {
		base.login, base.home = u.Username, u.HomeDir
	}
	n := max(cfg.Queue.ConnectionsPerRelay, 1)
	d := &daemon{env: env, cfg: cfg, q: q, base: base, pool: make(chan *job, n),
		rates: map[int]*rate{}, names: map[int]string{}}
	for range n {
		w := *base
		w.conns = newConnCache(cfg.Queue.MessagesPerConnection)
		d.pool <- &w
	}
	d.touch()
	return d
}

func (d *daemon) touch() { d.last.Store(d.env.Now().UnixNano()) }

// serve accepts front ends until ctx ends or, when socket-activated,
// the daemon has been idle for idle_exit with an empty queue. It runs
// the queue schedule meanwhile.
func (d *daemon) serve(ctx context.Context, ln net.Listener, activated bool) int {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	context.AfterFunc(ctx, func() { ln.Close() })
	d.wg.Add(1)
	go func() { defer d.wg.Done(); d.schedule(ctx, cancel, activated) }()
	sem := make(chan struct{}, max(d.cfg.Daemon.MaxConnections, 1))
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			fmt.Fprintf(d.env.Stderr, "handoff daemon: accept: %v\n", err)
			break
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			c.Close()
			continue
		}
		d.active.Add(1)
		d.touch()
		d.wg.Add(1)
		go func() {
			defer func() { <-sem; d.active.Add(-1); d.touch(); d.wg.Done() }()
			d.session(ctx, c.(*net.UnixConn))
		}()
	}
	cancel()
	d.wg.Wait()
	for range cap(d.pool) {
		w := <-d.pool
		w.conns.closeAll(context.Background())
	}
	return exOK
}

// schedule runs the due items of the queue every minute (or retry_min,
// if shorter), closes relay connections idle for relay_idle, and ends
// an activated daemon that has nothing to do.
func (d *daemon) schedule(ctx context.Context, stop func(), activated bool) {
	tick := min(time.Minute, max(d.cfg.Queue.RetryMin.Duration, time.Second))
	idle := d.cfg.Daemon.RelayIdle.Duration
	if idle > 0 {
		tick = min(tick, max(idle/2, 100*time.Millisecond))
	}
	nextRun := time.Time{}
	for {
		now := d.env.Now()
		if !now.Before(nextRun) {
			d.runDue(ctx)
			nextRun = now.Add(min(time.Minute, max(d.cfg.Queue.RetryMin.Duration, time.Second)))
		}
		d.closeIdle(idle)
		if activated && d.idleExit(now) {
			d.base.verbosef("idle for %v with an empty queue: exiting", d.cfg.Daemon.IdleExit)
			stop()
			return
		}
		if d.env.sleep(ctx, tick) != nil {
			return
		}
	}
}

// runDue is one queue run over the due items, as "sendmail -q".
func (d *daemon) runDue(ctx context.Context) {
	j := *d.base
	j.inv = &sendopt.Invocation{Name: d.base.inv.Name, Verbose: d.base.inv.Verbose}
	d.inflight.Add(1)
	defer d.inflight.Add(-1)
	j.runQueue(ctx, d.q, []queue.Filter{{}}, nil, false)
}

// closeIdle quits the relay connections of idle workers unused for idle.
func (d *daemon) closeIdle(idle time.Duration) {
	if idle <= 0 {
		return
	}
	before := d.env.Now().Add(-idle)
	var idleWorkers []*job // taken from the pool, so none is used meanwhile
	for range cap(d.pool) {
		select {
		case w := <-d.pool:
			idleWorkers = append(idleWorkers, w)
		default:
		}
	}
	for _, w := range idleWorkers {
		w.conns.closeIdle(context.Background(), before)
		d.pool <- w
	}
}

// idleExit reports whether an activated daemon may exit: no front end,
// no delivery, nothing queued, idle_exit since the last activity.
func (d *daemon) idleExit(now time.Time) bool {
	limit := d.cfg.Daemon.IdleExit.Duration
	if limit <= 0 || d.active.Load() > 0 || d.inflight.Load() > 0 {
		return false
	}
	if now.Sub(time.Unix(0, d.last.Load())) < limit {
		return false
	}
	items, err := d.q.List(queue.Filter{})
	return err == nil && len(items) == 0
}

// peer is the process at the other end of a submission.
type peer struct {
	uid, gid, pid int
	login         string
}

// peerOf reads the caller's credentials from the kernel.
func peerOf(c *net.UnixConn) (peer, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return peer{}, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return peer{}, err
	}
	if cerr != nil {
		return peer{}, cerr
	}
	return peer{uid: int(cred.Uid), gid: int(cred.Gid), pid: int(cred.Pid)}, nil
}

// loginOf names a uid ("uid1234" when it has no passwd entry).
func (d *daemon) loginOf(uid int) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if n, ok := d.names[uid]; ok {
		return n
	}
	n := "uid" + strconv.Itoa(uid)
	if u, err := userdb.LookupId(strconv.Itoa(uid)); err == nil {
		n = u.Username
	}
	d.names[uid] = n
	return n
}

// session serves one front end.
func (d *daemon) session(ctx context.Context, c *net.UnixConn) {
	defer c.Close()
	// When the daemon is told to stop, a front end gets shutdownGrace
	// to finish what it is sending; then its connection is closed (it
	// reports a temporary failure and keeps the message).
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(shutdownGrace, func() { c.Close() }) })
	defer stop()
	p, err := peerOf(c)
	if err != nil {
		fmt.Fprintf(d.env.Stderr, "handoff daemon: reading the caller's credentials: %v\n", err)
		return
	}
	p.login = d.loginOf(p.uid)
	h := &submission{d: d, ctx: ctx, peer: p}
	srv := &smtpin.Server{
		Hostname:       d.cfg.Hostname,
		MaxMessageSize: d.cfg.Daemon.MaxMessageSize,
		MaxRecipients:  d.cfg.Daemon.MaxRecipients,
		Handler:        h,
		LMTP:           true,
		DSN:            true,
		Params:         []string{modeParam},
		Timeout:        5 * time.Minute,
	}
	if err := srv.Serve(c, c); err != nil && d.base.inv.Verbose > 0 {
		d.base.verbosef("session with uid %d (pid %d): %v", p.uid, p.pid, err)
	}
}

// submission is the smtpin handler of one front end's session.
type submission struct {
	d    *daemon
	ctx  context.Context
	peer peer
	// rewrite is the sender to use instead of the one asked for ("" to
	// keep it), decided by CheckSender.
	rewrite string
}

// trusted reports whether the caller may use any sender: root, the
// daemon's own user, and trusted_users.
func (s *submission) trusted() bool {
	if s.peer.uid == 0 || s.peer.uid == os.Geteuid() {
		return true
	}
	for _, u := range s.d.cfg.Daemon.TrustedUsers {
		if u == s.peer.login {
			return true
		}
	}
	return false
}

// ownAddress is the caller's own envelope sender: their login at the
// domain.
func (s *submission) ownAddress() string { return s.d.base.addr.qualify(s.peer.login) }

// senderAllowed reports whether an untrusted caller may use from.
func (s *submission) senderAllowed(from string) bool {
	if strings.EqualFold(from, s.ownAddress()) {
		return true
	}
	for _, pat := range s.d.cfg.Daemon.Senders[s.peer.login] {
		if ok, _ := path.Match(strings.ToLower(pat), strings.ToLower(from)); ok {
			return true
		}
	}
	return false
}

func (s *submission) CheckSender(from string) *smtpin.Reply {
	s.rewrite = ""
	if !s.trusted() {
		if r := s.d.limit(s.peer.uid); r != nil {
			return r
		}
	}
	if forced := s.d.cfg.Sender; forced != "" {
		s.rewrite = s.d.base.addr.qualify(forced)
		return nil
	}
	if s.trusted() || from == "" || s.senderAllowed(from) {
		return nil
	}
	if s.d.cfg.Daemon.SenderPolicy == config.SenderRewrite {
		s.rewrite = s.ownAddress()
		s.d.base.logNote("", fmt.Sprintf("uid=%d user=%s asked for sender <%s>; rewritten to <%s> (sender_policy)", s.peer.uid, s.peer.login, from, s.rewrite))
		return nil
	}
	s.d.base.logNote("", fmt.Sprintf("uid=%d user=%s refused sender <%s> (sender_policy)", s.peer.uid, s.peer.login, from))
	return &smtpin.Reply{Code: 550, Text: fmt.Sprintf("5.7.1 user %s may not send as <%s> (sender_policy in [daemon]; trusted_users or senders allow it)", s.peer.login, from)}
}

// limit counts a submission of uid against submissions_per_minute.
func (d *daemon) limit(uid int) *smtpin.Reply {
	max := d.cfg.Daemon.SubmissionsPerMinute
	if max <= 0 {
		return nil
	}
	now := d.env.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	r := d.rates[uid]
	if r == nil || now.Sub(r.start) >= time.Minute {
		r = &rate{start: now}
		d.rates[uid] = r
	}
	if r.n >= max {
		return &smtpin.Reply{Code: 452, Text: fmt.Sprintf("4.7.0 too many messages from uid %d (submissions_per_minute = %d); try again in a minute", uid, max)}
	}
	r.n++
	return nil
}

func (s *submission) CheckRecipient(to string) *smtpin.Reply { return nil }

func (s *submission) Deliver(env smtpin.Envelope, data io.Reader) smtpin.Reply {
	return smtpin.Reply{Code: 554, Text: "5.5.1 LMTP only"}
}

// DeliverLMTP queues the message durably, then, as the front end asked,
// answers at once (queued) or after a first attempt (its outcome).
func (s *submission) DeliverLMTP(env smtpin.Envelope, data io.Reader) []smtpin.Reply {
	d := s.d
	d.touch()
	all := func(code int, text string) []smtpin.Reply {
		out := make([]smtpin.Reply, len(env.To))
		for i := range out {
			out[i] = smtpin.Reply{Code: code, Text: text}
		}
		return out
	}
	sender := env.From
	if s.rewrite != "" {
		sender = s.rewrite
	}
	e := &queue.Envelope{
		Sender:   sender,
		Ret:      env.Return,
		EnvID:    env.EnvelopeID,
		Body8Bit: env.Body8Bit,
		SMTPUTF8: env.SMTPUTF8,
		UID:      s.peer.uid,
		User:     s.peer.login,
		GID:      s.peer.gid,
		PID:      s.peer.pid,
		Created:  stamp(d.env.Now()),
	}
	for i, to := range env.To {
		rc := queue.Recipient{Addr: to}
		if i < len(env.Rcpts) {
			rc.Notify = env.Rcpts[i].Notify
			if t, addr, ok := strings.Cut(env.Rcpts[i].ORcpt, ";"); ok && strings.EqualFold(t, "rfc822") {
				rc.ORCPT = addr
			}
		}
		e.Recipients = append(e.Recipients, rc)
	}
	it, err := d.q.EnqueueLocked(e, data)
	if err != nil {
		if errors.Is(err, smtpin.ErrMessageTooBig) {
			return all(552, "5.3.4 message too big")
		}
		fmt.Fprintf(d.env.Stderr, "handoff daemon: queueing a message from uid %d: %v\n", s.peer.uid, err)
		return all(451, "4.3.0 cannot queue the message now: "+oneLine(err.Error()))
	}
	id := it.ID()
	d.base.logNote(id, fmt.Sprintf("queued from=<%s>, nrcpt=%d, size=%d, uid=%d, pid=%d", e.Sender, len(e.Recipients), it.Env.Size, s.peer.uid, s.peer.pid))
	mode := env.Params[modeParam]
	never := d.cfg.Queue.Mode == config.ModeNever
	if never {
		mode = "i"
	}
	switch mode {
	case "q":
		it.Unlock()
		return all(250, "2.0.0 queued as "+id)
	case "i":
		return d.interactive(s.ctx, it, never)
	}
	it.Unlock()
	d.inflight.Add(1)
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer d.inflight.Add(-1)
		d.attemptID(s.ctx, id)
	}()
	return all(250, "2.0.0 queued as "+id)
}

// attemptID delivers a queued item on a worker, if no one else has it.
func (d *daemon) attemptID(ctx context.Context, id string) {
	it, err := d.q.Lock(id)
	if err != nil {
		return // a queue run has it, or it is gone
	}
	d.attemptLocked(ctx, it)
}

// attemptLocked delivers a locked item now, whatever its schedule, on a
// worker (waiting for one), and unlocks it.
func (d *daemon) attemptLocked(ctx context.Context, it *queue.Item) {
	w := <-d.pool
	defer func() { d.pool <- w }()
	w.attempt(ctx, d.q, it, true)
}

// interactive makes the first attempt of a locked item and answers with
// its outcome per recipient: sent, refused (the caller is told, so no
// bounce is sent), or queued after a temporary failure (with never,
// refused with 4xx and dropped instead: the caller keeps the message).
func (d *daemon) interactive(ctx context.Context, it *queue.Item, never bool) []smtpin.Reply {
	w := <-d.pool
	defer func() { d.pool <- w }()
	d.inflight.Add(1)
	defer d.inflight.Add(-1)
	defer it.Unlock()
	id, p := it.ID(), w.policy()
	w.logID = id
	defer func() { w.logID = "" }()
	if err := it.RecordAttempt(d.env.Now(), p); err != nil {
		out := make([]smtpin.Reply, len(it.Env.Recipients))
		for i := range out {
			out[i] = smtpin.Reply{Code: 250, Text: "2.0.0 queued as " + id}
		}
		return out
	}
	byAddr := map[string]outcome{}
	for _, dl := range itemDeliveries(it) {
		out := w.send(ctx, dl.delivery, dl.rcpts)
		it.Apply(results(out, retryLater), d.env.Now(), p)
		for _, o := range out {
			byAddr[o.rcpt] = o
		}
	}
	replies := make([]smtpin.Reply, len(it.Env.Recipients))
	for i := range it.Env.Recipients {
		rc := &it.Env.Recipients[i]
		o, ok := byAddr[rc.Addr]
		switch {
		case !ok || o.err == nil:
			via := o.via
			if via == "" {
				via = "the relay"
			}
			replies[i] = smtpin.Reply{Code: 250, Text: "2.0.0 sent via " + via}
		case retryLater(o.err) && !never:
			replies[i] = smtpin.Reply{Code: 250, Text: "2.0.0 queued as " + id + ": " + oneLine(o.err.Error())}
		default:
			code := 550
			if retryLater(o.err) {
				code = 451
			}
			text := oneLine(o.err.Error())
			if r := o.reply; r != nil && r.Code/100 == code/100 {
				code = r.Code
				if e := r.Enhanced.String(); e != "" {
					text = e + " " + text
				}
			}
			replies[i] = smtpin.Reply{Code: code, Text: text}
			// The caller hears of it now: no DSN, nothing left to try.
			rc.State, rc.Notified = queue.Failed, true
		}
	}
	if it.Done() {
		if err := it.Remove(); err != nil {
			w.warnf("queue item %s: removing it: %v", id, err)
		}
		return replies
	}
	if err := it.Save(); err != nil {
		w.warnf("queue item %s: saving its state: %v", id, err)
	}
	return replies
}

// shutdownGrace is how long a stopping daemon lets a connected front end
// finish.
const shutdownGrace = 5 * time.Second

// own selects the items the caller may see and manage: every item for
// root and the daemon's user, else those the caller submitted.
func (s *submission) own() queue.Filter {
	if s.peer.uid == 0 || s.peer.uid == os.Geteuid() {
		return queue.Filter{}
	}
	return queue.Filter{MatchUID: true, UID: s.peer.uid}
}

// itemCommand is "XQUEUE SHOW|DELETE|HOLD|RELEASE|FLUSH id" for an item
// the caller may manage (as "handoff queue" does for root): SHOW answers
// the envelope and the message's header in base64 lines (as LIST does),
// FLUSH makes an attempt now and answers when it is over. An item of
// another user is "no such queue item", as for one that is not there.
func (s *submission) itemCommand(op, id string) smtpin.Reply {
	d := s.d
	switch op {
	case "SHOW", "DELETE", "HOLD", "RELEASE", "FLUSH":
	default:
		return smtpin.Reply{Code: 501, Text: "5.5.4 unknown XQUEUE operation " + op}
	}
	it, err := d.q.Lock(id)
	var ce *queue.CorruptError
	switch {
	case errors.Is(err, queue.ErrBusy):
		return smtpin.Reply{Code: 451, Text: "4.3.0 " + id + ": being delivered or changed by another process; try again later"}
	case errors.Is(err, queue.ErrNotFound), errors.As(err, &ce):
		return smtpin.Reply{Code: 550, Text: "5.1.0 " + id + ": no such queue item"}
	case err != nil:
		return smtpin.Reply{Code: 451, Text: "4.3.0 " + oneLine(err.Error())}
	}
	if !s.own().Match(it.Env) {
		it.Unlock()
		return smtpin.Reply{Code: 550, Text: "5.1.0 " + id + ": no such queue item"}
	}
	d.base.logNote(id, fmt.Sprintf("uid=%d user=%s: queue %s", s.peer.uid, s.peer.login, strings.ToLower(op)))
	switch op {
	case "SHOW":
		data, err := itemText(it)
		it.Unlock()
		if err != nil {
			return smtpin.Reply{Code: 451, Text: "4.3.0 " + oneLine(err.Error())}
		}
		return smtpin.Reply{Code: 250, Text: "2.0.0 item follows\n" + base64Lines(data) + "END"}
	case "DELETE":
		if err := it.Remove(); err != nil {
			return smtpin.Reply{Code: 451, Text: "4.3.0 " + oneLine(err.Error())}
		}
		return smtpin.Reply{Code: 250, Text: "2.0.0 " + id + ": deleted"}
	case "HOLD", "RELEASE":
		it.Env.Held = op == "HOLD"
		err := it.Save()
		it.Unlock()
		if err != nil {
			return smtpin.Reply{Code: 451, Text: "4.3.0 " + oneLine(err.Error())}
		}
		word := "released"
		if op == "HOLD" {
			word = "held"
		}
		return smtpin.Reply{Code: 250, Text: "2.0.0 " + id + ": " + word}
	}
	// FLUSH: an attempt now, whatever the schedule, on a worker.
	if it.Env.Held {
		it.Unlock()
		return smtpin.Reply{Code: 450, Text: "4.3.0 " + id + ": on hold (release it first)"}
	}
	d.inflight.Add(1)
	d.attemptLocked(s.ctx, it)
	d.inflight.Add(-1)
	return smtpin.Reply{Code: 250, Text: "2.0.0 " + id + ": attempted"}
}

// base64Lines is data in base64, cut into lines of 400, each ended by a
// newline.
func base64Lines(data []byte) string {
	enc := base64.StdEncoding.EncodeToString(data)
	var b strings.Builder
	for len(enc) > 0 {
		n := min(len(enc), 400)
		b.WriteString(enc[:n] + "\n")
		enc = enc[n:]
	}
	return b.String()
}

// listPage is how many items one XQUEUE LIST reply carries (well under
// the client's 64 KiB cap on a reply).
const listPage = 25

// Command answers "XQUEUE LIST [after-id]": the caller's queue items
// (every item for root and the daemon's user), oldest first, after the
// id given, at most listPage of them: a JSON array of queue summaries in
// base64, cut into lines of 400, then a last line "MORE id" (ask again
// after that id) or "END". This is how mailq works for users who may
// not read the queue directory.
func (s *submission) Command(verb, arg string) (smtpin.Reply, bool) {
	if verb != "XQUEUE" {
		return smtpin.Reply{}, false
	}
	op, after, _ := strings.Cut(arg, " ")
	op = strings.ToUpper(op)
	if op != "LIST" {
		if !queue.ValidID(after) {
			return smtpin.Reply{Code: 501, Text: "5.5.4 Syntax: XQUEUE LIST [after-id] | SHOW id | DELETE id | HOLD id | RELEASE id | FLUSH id"}, true
		}
		return s.itemCommand(op, after), true
	}
	if after != "" && !queue.ValidID(after) {
		return smtpin.Reply{Code: 501, Text: "5.5.4 Syntax: XQUEUE LIST [after-id]"}, true
	}
	f := s.own()
	items, err := s.d.q.List(f)
	if err != nil {
		return smtpin.Reply{Code: 451, Text: "4.3.0 cannot read the queue: " + oneLine(err.Error())}, true
	}
	page := []queue.Summary{}
	more := false
	for _, it := range items {
		if after != "" && it.ID <= after {
			continue
		}
		if len(page) == listPage {
			more = true
			break
		}
		page = append(page, it)
	}
	data, err := json.Marshal(page)
	if err != nil {
		return smtpin.Reply{Code: 451, Text: "4.3.0 " + oneLine(err.Error())}, true
	}
	var b strings.Builder
	b.WriteString("2.0.0 queue listing follows\n")
	b.WriteString(base64Lines(data))
	if more {
		b.WriteString("MORE " + page[len(page)-1].ID)
	} else {
		b.WriteString("END")
	}
	return smtpin.Reply{Code: 250, Text: b.String()}, true
}
