package tests

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// TestQueueParallelConnections: with connections_per_relay = 3 a run of
// 30 queued messages opens exactly three connections to the relay, all
// three at once, and delivers every message exactly once; with 1 it
// opens one.
func TestQueueParallelConnections(t *testing.T) {
	for _, tc := range []struct{ conns, msgs int }{{3, 30}, {1, 10}} {
		t.Run(fmt.Sprintf("connections_per_relay=%d", tc.conns), func(t *testing.T) {
			s := startSink(t)
			// A pause after each dot keeps every connection busy long
			// enough for the others to be needed.
			s.set(sinkFault{slow: 20 * time.Millisecond})
			e := newQueueEnv(t, s, "1s", "10s")
			cfg, err := os.ReadFile(e.config)
			if err != nil {
				t.Fatal(err)
			}
			edited := strings.Replace(string(cfg), "[queue]\n", fmt.Sprintf("[queue]\nconnections_per_relay = %d\n", tc.conns), 1)
			if edited == string(cfg) {
				t.Fatalf("no [queue] table in the config:\n%s", cfg)
			}
			cfg = []byte(edited)
			if err := os.WriteFile(e.config, cfg, 0o600); err != nil {
				t.Fatal(err)
			}
			markers := make([]string, tc.msgs)
			for i := range markers {
				markers[i] = fmt.Sprintf("QMARK-par-%d-%d", i, time.Now().UnixNano())
				r, err := e.runBin([]string{"sendmail", "-odq", "-i", "rcpt@example.net"}, testMessage(markers[i]), 30*time.Second)
				if err != nil || r.code != 0 {
					t.Fatalf("-odq %d: exit %d, %v\n%s", i, r.code, err, r.stderr)
				}
			}
			r, err := e.runBin([]string{"sendmail", "-q"}, "", 60*time.Second)
			if err != nil || r.code != 0 {
				t.Fatalf("-q: exit %d, %v\n%s", r.code, err, r.stderr)
			}
			got := s.delivered()
			for _, m := range markers {
				if n := got[m+" rcpt@example.net"]; n != 1 {
					t.Errorf("%s delivered %d times, want 1", m, n)
				}
			}
			if n := len(s.messages()); n != tc.msgs {
				t.Errorf("the sink took %d messages, want %d", n, tc.msgs)
			}
			if c, p := s.connections(), s.peakConnections(); c != tc.conns || p != tc.conns {
				t.Errorf("%d connections, %d at once; want %d and %d", c, p, tc.conns, tc.conns)
			}
			if items := e.list(t); len(items) != 0 {
				t.Errorf("%d items left in the queue", len(items))
			}
		})
	}
}
