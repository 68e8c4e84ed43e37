// Package queue is handoff's mail queue: messages that could not be
// delivered at once wait here, crash-safe, until a runner delivers them,
// bounces them, or an administrator deletes them.
//
// # Layout
//
// One directory (queue.dir in handoff.toml, default /var/spool/handoff), mode 0700,
// owned by the user that runs the queue (root standalone, handoff in
// system mode):
//
//	DIR/env/ID          the envelope: the item's commit marker
//	DIR/msg/ID          the message, as prepared (raw bytes, any line ends)
//	DIR/corrupt/ID.env  items moved aside (unparsable or unsafe files)
//	DIR/corrupt/ID.msg
//	DIR/runner.lock     flock'ed by the one queue runner
//	DIR/*/.tmp-*        temporary files of writes in progress (or of crashes)
//
// Every file is mode 0600, owned by the queue's owner, with one link, and
// is opened with O_NOFOLLOW; a file that is not so is never used. An id
// is 16 characters of Crockford base32: 11 of arrival time in
// microseconds, 5 random (see ValidID). Ids sort by arrival.
//
// # The envelope file
//
// Text, one record per line, "key: value", versioned by its first line,
// and ended by "end" (a file without it is truncated, hence corrupt).
// Times are RFC 3339 in UTC. In values, '%', control characters and bytes
// that are not valid UTF-8 are written %XX (and so are spaces inside the
// fields of a rcpt line); no stored value may contain a control character
// (CR, LF, NUL, ... are refused at Enqueue), so a value is always one
// line. For example:
//
//	handoff-envelope 1
//	id: 0JM2Q4ZK8PX7A3BD
//	created: 2025-06-02T10:00:00Z
//	user: www-data
//	uid: 33
//	gid: 33
//	pid: 4711
//	sender: www-data@example.com
//	ret: HDRS
//	envid: QQ314159
//	body: 8BITMIME
//	smtputf8: no
//	size: 2048
//	attempts: 2
//	next-attempt: 2025-06-02T10:15:12Z
//	held: no
//	delay-warned: no
//	rcpt: sent alice@example.org attempts=1 last-attempt=2025-06-02T10:00:01Z relay=primary
//	last-reply: 250 2.0.0 Ok: queued as 4F2A3B1C9D
//	rcpt: deferred bob@example.net orcpt=bob@example.net notify=FAILURE,DELAY attempts=2 last-attempt=2025-06-02T10:05:12Z relay=primary
//	last-reply: 451 4.3.0 Mailbox temporarily unavailable
//	end
//
// The header keys, each at most once and before the first rcpt line:
// id, created, uid, sender ("<>" for the null sender), body (7BIT or
// 8BITMIME), smtputf8, size, attempts, held, delay-warned (all required),
// and user, gid and pid (the submitting process, recorded when the
// daemon learns them from the kernel), ret, envid, next-attempt
// (optional). Then one line per
// recipient: "rcpt: STATE ADDRESS" with STATE pending, deferred, sent or
// failed, then optional fields orcpt=, notify=, attempts=, last-attempt=,
// relay= and flags dup (possible duplicate) and notified; each rcpt line
// may be followed by its last-reply line. ParseEnvelope is strict: an
// unknown version, an unknown or repeated key, field or flag, a missing
// required key, a bad escape or value, anything after "end": all corrupt.
// The format is human-readable on purpose (less, grep), as chasquid's and
// OpenSMTPD's are; the commit marker plays the role of Postfix's END
// record.
//
// # Durability order
//
// Every write goes through WriteFileDurable or its batch form: a
// temporary file in the target's directory (anonymous, O_TMPFILE, on
// Linux where the file system has it, else .tmp-… with O_EXCL and
// O_NOFOLLOW; mode 0600), write, fsync, the anonymous file linked to
// its .tmp- name once its content is durable, close, rename to the
// target, fsync of the directory. Enqueue writes
//
//  1. the message: msg/.tmp-… → fsync → rename to msg/ID (never replacing
//     an existing file) → fsync msg/;
//  2. the envelope: env/.tmp-… → fsync → rename to env/ID → fsync env/.
//
// The rename of env/ID is the commit: before it the message is not queued,
// after the directory fsync it is, durably. The message file is locked
// (flock) from its creation until Enqueue returns, so nobody can take it
// for an orphan. If any step fails Enqueue removes what it wrote and
// returns the error; its caller (sendmail) then exits 75 or 73 and never
// reports a message as queued that is not. Save (after each attempt)
// rewrites the envelope the same way; a crash leaves the old envelope or
// the new one. Remove deletes the envelope first and fsyncs env/ (the item
// is then no longer queued), then the message.
//
// A runner works on batches of items, sharing the waits: JournalAttempts
// records a batch's attempts in one file of journal/ (see Journal), or
// RecordAttempts writes the envelopes of a batch together (writeDurableBatch: the
// writeback of all started at once, then each fsynced, renamed, and one
// fsync of env/ for all the renames), and a Remover removes delivered
// items in Remove's order with one fsync of env/ for all the envelopes
// deleted since the previous one (group commit, at most one every 20 ms),
// in the background. A killed runner leaves the states it left before
// (see below). A crash of the machine (power loss, a kernel panic) can
// undo one thing more: the removals of items delivered less than 20 ms
// and one fsync of env/ before it; those items come back and are
// delivered again (at least once, never lost). (The attempts of a batch whose fsync of env/ did not
// happen may be lost too, as one item's could: none of them was sent.)
//
// # Recovery rules
//
// The queue needs no recovery pass: every state a crash can leave is
// defined.
//
//   - env/ID exists: the item is queued. Its message must exist with the
//     recorded size; otherwise it is corrupt.
//   - msg/ID without env/ID: not queued (a crash before the commit, or
//     during Remove): invisible to List and Due, deleted by ReapOrphans
//     once older than its grace period (OrphanGrace) and not locked.
//   - .tmp-* files: ignored; deleted by ReapOrphans likewise. (With
//     anonymous temporary files a crash leaves one only between its
//     link and its rename.)
//   - An envelope that cannot be parsed, a file that is a symbolic link,
//     not a regular file, of another owner or mode, or an envelope without
//     its message: Lock moves the item to corrupt/ and returns a
//     *CorruptError, so it is reported once and never retried; List shows
//     it with its problem until then.
//
// # Locking
//
// An item is locked by an exclusive, non-blocking flock on msg/ID (its
// inode never changes; the envelope's does at every Save). Whoever holds
// it (a submitter delivering its own message, the runner, an
// administrator's hold or delete) is the only one to deliver, change or
// remove the item; anyone else gets ErrBusy and moves on. One runner per
// queue: RunnerLock, a flock on runner.lock. Locks die with their process.
//
// # Delivery and retries
//
// A runner takes RunnerLock, then for each id of Due: Lock; if the item
// expired (Expired), GiveUp; else RecordAttempt (attempts+1 and the next
// attempt, saved durably before connecting, as mox does, so a crash or a
// hang cannot cause a retry storm); deliver the Remaining recipients;
// Apply the per-recipient results (RelayResults converts the relay
// package's) and Save. Apply marks a 2xx Sent (never sent again), a 4xx
// (an LMTP 452 for one recipient retries only that one) Deferred, a 5xx
// Failed, and a connection lost after the final dot Deferred with
// PossibleDuplicate (at-least-once: the one window for a duplicate, to be
// logged as such). Retries follow Policy.Backoff: RetryMin doubling up to
// RetryMax with ±20% jitter (defaults 5m and 1h, like Postfix's 300 s and
// 4000 s), until MaxAge (5 days), after which the remaining recipients
// fail.
//
// The runner of handoff does this for a batch of items at a time: it
// locks them, records their attempts together in one journal file
// (JournalAttempts; see Journal: the envelopes are saved after the
// attempts, and a run that dies leaves the journal for the next run's
// ReplayJournals), then delivers them one after the other, removing the
// delivered ones through a Remover. Where the journal cannot be written
// it records them in the envelopes instead (RecordAttempts). Every attempt is still durable before its connection; an
// attempt recorded for an item the runner does not reach (it was killed,
// or stopped) is one counted but not made, so that item waits one more
// backoff, which is the safe direction.
//
// Failed recipients (Bounces) are reported to the envelope sender by a
// DSN (BuildDSN, queued with DSNEnvelope from <>), never to <>; then
// MarkNotified. After DelayWarning (4h by default) a one-time delay DSN
// (DelayWarningDue, DelayWarned). When Done, Remove.
//
// # Known limitations
//
//   - A DSN carries the original headers only, never the full message,
//     even with RET=FULL.
//   - The directory fsync makes renames (and the links of anonymous
//     temporary files) durable on Linux file systems (ext4, xfs,
//     btrfs); network file systems with weaker semantics are not
//     supported for the queue, nor are file systems without flock.
//   - List reads without locks: it never shows an item half-written, but
//     an item may be delivered (and gone) by the time it is printed.
package queue
