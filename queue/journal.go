package queue

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// journalDir holds the attempt journals of a queue run (see Journal).
const journalDir = "journal"

// journalMagic is the first line of a journal file, with its version.
const journalMagic = "handoff-journal 1"

// A Journal is the durable record that a queue run is about to attempt
// a batch of items: one small file in journal/ listing, for each item,
// its id, the attempts its envelope had, and the next attempt the new
// one schedules. Writing it costs one file for the whole batch where
// RecordAttempts writes a new envelope per item (on many file systems
// creating files, not writing bytes, is what a flush pays for).
//
// The envelopes on disk are not rewritten when the attempts start: each
// item's envelope is saved after its attempt, with the attempt counted
// (its Env got Envelope.RecordAttempt in memory), or the item is
// removed. Done then deletes the journal. A run that dies leaves its
// journal; the next run, before it starts (ReplayJournals), counts the
// attempt of every item listed that is still queued with the attempts it
// had: the attempt that was under way when the run died is never lost,
// so a message that crashes the runner cannot be retried at once, again
// and again.
//
// Only a queue run, holding RunnerLock, writes and replays journals: a
// journal found by the run that holds the lock belongs to a run that
// died.
type Journal struct {
	q    *Queue
	path string
}

// JournalAttempts records durably, in one journal, that the attempts of
// the locked items are about to start, and counts them in memory
// (Envelope.RecordAttempt). On an error nothing is recorded, no Env is
// changed, and the caller must not deliver the items on the strength of
// it (RecordAttempts is the fallback).
func (q *Queue) JournalAttempts(items []*Item, now time.Time, p Policy) (*Journal, error) {
	for _, it := range items {
		if it.body == nil {
			return nil, fmt.Errorf("queue item %s: %w", it.id, ErrUnlocked)
		}
	}
	if err := q.ensureJournalDir(); err != nil {
		return nil, err
	}
	dir := filepath.Join(q.Dir, journalDir)
	next := make([]time.Time, len(items))
	for i, it := range items {
		e := *it.Env
		e.RecordAttempt(now, p)
		next[i] = e.NextAttempt
	}
	name := newID(q.now())
	write := func(w io.Writer) error {
		bw := bufio.NewWriter(w)
		bw.WriteString(journalMagic + "\n")
		for i, it := range items {
			fmt.Fprintf(bw, "%s %d %s\n", it.id, it.Env.Attempts, formatTime(next[i]))
		}
		bw.WriteString("end\n")
		return bw.Flush()
	}
	if _, err := writeDurable(q.ops, dir, name, write, writeOpts{owner: q.chown}); err != nil {
		return nil, fmt.Errorf("queue: writing the attempt journal: %w", err)
	}
	for i, it := range items {
		it.Env.Attempts++
		it.Env.NextAttempt = next[i]
	}
	return &Journal{q: q, path: filepath.Join(dir, name)}, nil
}

// ensureJournalDir makes journal/ in a queue made before it existed (it
// is made when first needed, not at every Open).
func (q *Queue) ensureJournalDir() error {
	made, err := q.subdir(journalDir)
	if err == nil && made {
		if err = q.ops.syncDir(q.Dir); err != nil {
			err = fmt.Errorf("queue: %w", err)
		}
	}
	return err
}

// Done deletes the journal: every item of its batch has been saved,
// removed, or left as it was (not attempted). The deletion need not be
// durable: replaying a journal whose items are done changes nothing.
func (j *Journal) Done() error {
	if j == nil {
		return nil
	}
	if err := os.Remove(j.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("queue: %w", err)
	}
	return nil
}

// journalEntry is one line of a journal.
type journalEntry struct {
	id     string
	before int
	next   time.Time
}

// parseJournal reads a journal file; anything but the exact format is
// an error.
func parseJournal(data []byte) ([]journalEntry, error) {
	lines := strings.Split(string(data), "\n")
	if len(lines) < 3 || lines[0] != journalMagic || lines[len(lines)-1] != "" || lines[len(lines)-2] != "end" {
		return nil, fmt.Errorf("not a whole %q file", journalMagic)
	}
	var out []journalEntry
	for _, l := range lines[1 : len(lines)-2] {
		f := strings.Split(l, " ")
		if len(f) != 3 || !ValidID(f[0]) {
			return nil, fmt.Errorf("bad line %q", l)
		}
		n, err := strconv.Atoi(f[1])
		if err != nil || n < 0 {
			return nil, fmt.Errorf("bad attempts in %q", l)
		}
		t, err := parseTime(f[2])
		if err != nil {
			return nil, fmt.Errorf("bad time in %q: %v", l, err)
		}
		out = append(out, journalEntry{id: f[0], before: n, next: t})
	}
	return out, nil
}

// ReplayJournals applies the journals that a queue run which died left
// behind: each item listed that is still queued, not locked by anyone,
// and still has the attempts it had when the journal was written gets
// that attempt counted (Attempts+1 and the recorded next attempt) and
// saved. Then the journal is deleted. Call it holding RunnerLock, before
// the run. It returns how many attempts it counted; a journal it cannot
// read is deleted and reported in the error (its items are then retried
// as if the attempt had not started).
func (q *Queue) ReplayJournals() (int, error) {
	dir := filepath.Join(q.Dir, journalDir)
	names, err := readDirNames(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	counted := 0
	var firstErr error
	for _, name := range names {
		path := filepath.Join(dir, name)
		if strings.HasPrefix(name, tmpPrefix) {
			os.Remove(path) // a journal being written when its run died
			continue
		}
		f, st, err := openNoFollow(path, "journal "+name)
		var data []byte
		if err == nil {
			err = q.checkFile("journal "+name, st)
			if err == nil {
				data, err = io.ReadAll(io.LimitReader(f, 1<<20))
			}
			f.Close()
		}
		var entries []journalEntry
		if err == nil {
			entries, err = parseJournal(data)
		}
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("queue: journal %s: %w", name, err)
			}
			os.Remove(path)
			continue
		}
		for _, e := range entries {
			it, err := q.Lock(e.id)
			if err != nil {
				continue // gone (delivered), busy, or moved aside
			}
			if it.Env.Attempts == e.before {
				it.Env.Attempts++
				it.Env.NextAttempt = e.next
				if err := it.Save(); err != nil && firstErr == nil {
					firstErr = err
				} else if err == nil {
					counted++
				}
			}
			it.Unlock()
		}
		if err := os.Remove(path); err != nil && firstErr == nil {
			firstErr = fmt.Errorf("queue: %w", err)
		}
	}
	return counted, firstErr
}
