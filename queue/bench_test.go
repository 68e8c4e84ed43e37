package queue

import (
	"bytes"
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
