package queue

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// benchMessage is a 2 KB message, as in PRODUCT.md §9.
var benchMessage = []byte(testMessage[:strings.Index(testMessage, "\r\n\r\n")+4] + strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd\r\n", 30))[:2048]

// BenchmarkEnqueue is a durable enqueue of a 2 KB message with every
// fsync (two files, two directories) on the test's file system.
func BenchmarkEnqueue(b *testing.B) {
	q := newQueue(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(benchMessage)))
	start := time.Now()
	for b.Loop() {
		if _, err := q.Enqueue(testEnvelope(), bytes.NewReader(benchMessage)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

// BenchmarkLockSaveUnlock is one step of the runner for one item: lock
// and read the envelope, save it durably, unlock.
func BenchmarkLockSaveUnlock(b *testing.B) {
	q := newQueue(b)
	id := enqueue(b, q, testEnvelope())
	b.ReportAllocs()
	for b.Loop() {
		it, err := q.Lock(id)
		if err != nil {
			b.Fatal(err)
		}
		it.Env.Attempts++
		if err := it.Save(); err != nil {
			b.Fatal(err)
		}
		it.Unlock()
	}
}

// BenchmarkParseEnvelope parses a typical envelope.
func BenchmarkParseEnvelope(b *testing.B) {
	data := []byte(fullEnvelopeText)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := ParseEnvelope(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRunnerBatch is the queue's part of a runner's work on a batch
// of n items, reported per item: Lock, the attempts recorded together
// (RecordAttempts: one batch write), then each item removed through a
// Remover, whose fsyncs of env/ are shared. n = 1 is the cost of an item
// on its own (RecordAttempt, then a removal with its own fsync); 16 is
// the runner's batch. B/op and allocs/op are per batch.
func BenchmarkRunnerBatch(b *testing.B) {
	for _, n := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			q := newQueue(b)
			p := Policy{}
			b.ReportAllocs()
			items := 0
			start := time.Now()
			var setup time.Duration
			for b.Loop() {
				b.StopTimer()
				s := time.Now()
				ids := make([]string, n)
				for i := range ids {
					ids[i] = enqueue(b, q, testEnvelope())
				}
				setup += time.Since(s)
				b.StartTimer()
				batch := make([]*Item, n)
				for i, id := range ids {
					it, err := q.Lock(id)
					if err != nil {
						b.Fatal(err)
					}
					batch[i] = it
				}
				for _, err := range q.RecordAttempts(batch, t0, p) {
					if err != nil {
						b.Fatal(err)
					}
				}
				rm := q.NewRemover()
				for _, it := range batch {
					if err := rm.Remove(it); err != nil {
						b.Fatal(err)
					}
				}
				if err := rm.Close(); err != nil {
					b.Fatal(err)
				}
				items += n
			}
			b.ReportMetric(float64((time.Since(start)-setup).Nanoseconds())/float64(items), "ns/item")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// BenchmarkStartOfRun is what a queue run does before its first
// delivery, on a queue of 1000 items: reap orphans, then list what is
// due (every envelope read).
func BenchmarkStartOfRun(b *testing.B) {
	q := newQueue(b)
	q.ops = &fileOps{}
	*q.ops = defaultOps
	q.ops.sync = func(*os.File) error { return nil } // filling the queue fast
	q.ops.syncDir = func(string) error { return nil }
	for range 1000 {
		enqueue(b, q, testEnvelope())
	}
	q.ops = &defaultOps
	b.ReportAllocs()
	for b.Loop() {
		if _, err := q.ReapOrphans(time.Now(), OrphanGrace); err != nil {
			b.Fatal(err)
		}
		ids, err := q.Due(time.Now().Add(time.Hour), Filter{})
		if err != nil || len(ids) != 1000 {
			b.Fatalf("%d due, %v", len(ids), err)
		}
	}
}
