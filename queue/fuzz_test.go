package queue

import (
	"errors"
	"reflect"
	"testing"
)

// FuzzParseEnvelope feeds arbitrary bytes to the envelope parser, which
// must never panic and must fail with ErrCorrupt; what it accepts must
// marshal and parse back to the same envelope. The same bytes also drive
// genEnvelope, and every generated envelope must survive
// ParseEnvelope(Marshal(e)) unchanged.
func FuzzParseEnvelope(f *testing.F) {
	f.Add([]byte(fullEnvelopeText))
	f.Add([]byte("handoff-envelope 1\nid: 0JM2Q4ZK8PX7A3BD\ncreated: 2025-06-02T10:00:00Z\nuid: 0\nsender: <>\nbody: 7BIT\nsmtputf8: no\nsize: 0\nattempts: 0\nheld: no\ndelay-warned: no\nrcpt: pending a@b\nend\n"))
	f.Add([]byte("handoff-envelope 2\nend\n"))
	f.Add([]byte("handoff-envelope 1\nrcpt: failed a%20b%25@x attempts=3 dup notified\nlast-reply: 550%0A\nend\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := ParseEnvelope(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
		} else {
			out, err := e.Marshal()
			if err != nil {
				t.Fatalf("an accepted envelope does not marshal: %v", err)
			}
			back, err := ParseEnvelope(out)
			if err != nil {
				t.Fatalf("the marshalled envelope does not parse: %v\n%s", err, out)
			}
			if !reflect.DeepEqual(back, e) {
				t.Fatalf("round trip changed the envelope:\n%+v\n%+v", back, e)
			}
		}

		g := genEnvelope(data)
		out, err := g.Marshal()
		if err != nil {
			t.Fatalf("a generated envelope does not marshal: %v\n%+v", err, g)
		}
		back, err := ParseEnvelope(out)
		if err != nil {
			t.Fatalf("a generated envelope does not parse: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(back, g) {
			t.Fatalf("round trip changed the generated envelope:\n%+v\n%+v\n%s", back, g, out)
		}
	})
}
