package queue

import (
	"crypto/rand"
	"encoding/binary"
	"sync"
	"time"
)

// An item id is 16 characters of Crockford's base32 alphabet (digits and
// upper-case letters without I, L, O and U): 11 for the microseconds since
// 1970 at Enqueue, most significant first, then 5 random (25 bits). Ids
// sort by arrival time as strings, are safe as file names (no '/', no
// leading '.'), and are distinct within a process (the time part never
// repeats) and across processes with overwhelming probability; Enqueue
// also refuses to overwrite an existing item (RENAME_NOREPLACE), so a
// collision fails the enqueue instead of losing a message.
const (
	idLen       = 16
	idTimeLen   = 11
	idAlphabet  = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	idRandomLen = idLen - idTimeLen
)

var idClock struct {
	sync.Mutex
	last int64
}

// newID returns a new item id for the time now.
func newID(now time.Time) string {
	us := now.UnixMicro()
	idClock.Lock()
	if us <= idClock.last {
		us = idClock.last + 1
	}
	idClock.last = us
	idClock.Unlock()

	var b [idLen]byte
	v := uint64(us)
	for i := idTimeLen - 1; i >= 0; i-- {
		b[i] = idAlphabet[v&31]
		v >>= 5
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	r := binary.BigEndian.Uint64(rnd[:])
	for i := idTimeLen; i < idLen; i++ {
		b[i] = idAlphabet[r&31]
		r >>= 5
	}
	return string(b[:])
}

// ValidID reports whether id has the syntax of an item id. Every function
// that takes an id checks it first, so an id can never name a file
// outside the queue.
func ValidID(id string) bool {
	if len(id) != idLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if !isIDChar(id[i]) {
			return false
		}
	}
	return true
}

func isIDChar(c byte) bool {
	switch {
	case c >= '0' && c <= '9':
		return true
	case c >= 'A' && c <= 'Z':
		return c != 'I' && c != 'L' && c != 'O' && c != 'U'
	}
	return false
}

// idTime returns the arrival time encoded in a valid id.
func idTime(id string) time.Time {
	var v int64
	for i := 0; i < idTimeLen; i++ {
		c := id[i]
		var d int64
		for j := 0; j < len(idAlphabet); j++ {
			if idAlphabet[j] == c {
				d = int64(j)
				break
			}
		}
		v = v<<5 | d
	}
	return time.UnixMicro(v)
}
