package cli

import (
	"context"
	"errors"
	"time"

	"github.com/handoff-mta/handoff/relay"
)

// connCache keeps one open connection per relay during a queue run, so
// that queued messages for the same relay share it (PRODUCT.md §5): the
// next message starts with RSET, which also proves the connection is
// still alive (Postfix's connection cache does the same), and a
// connection is closed after max messages. A nil *connCache dials for
// every message and quits after it.
type connCache struct {
	max   int
	conns map[string]*cachedConn
}

type cachedConn struct {
	c    *relay.Client
	used int
	last time.Time // when it was last handed back
}

func newConnCache(max int) *connCache {
	if max <= 0 {
		max = 100
	}
	return &connCache{max: max, conns: map[string]*cachedConn{}}
}

// get returns a connection to the named relay: the cached one when it
// answers RSET, else a new one.
func (cc *connCache) get(ctx context.Context, name string, opts relay.Options) (*relay.Client, error) {
	if cc != nil {
		if e := cc.conns[name]; e != nil {
			delete(cc.conns, name)
			if _, err := e.c.Reset(ctx); err == nil {
				cc.conns[name] = e
				return e.c, nil
			}
			e.c.Close()
		}
	}
	return relay.Dial(ctx, opts)
}

// put hands a connection back after a message: it stays open for the
// next message unless the connection failed, there is no cache, or it
// has carried its share of messages.
func (cc *connCache) put(ctx context.Context, name string, c *relay.Client, sendErr error) {
	if cc == nil || errors.Is(sendErr, relay.ErrServerDisconnected) {
		c.Hangup(ctx)
		return
	}
	e := cc.conns[name]
	if e == nil || e.c != c {
		e = &cachedConn{c: c}
		cc.conns[name] = e
	}
	e.used++
	e.last = time.Now()
	if e.used >= cc.max {
		delete(cc.conns, name)
		c.Hangup(ctx)
	}
}

// closeIdle quits the connections last used before the time given (the
// daemon keeps them open between submissions only so long).
func (cc *connCache) closeIdle(ctx context.Context, before time.Time) {
	if cc == nil {
		return
	}
	for name, e := range cc.conns {
		if e.last.Before(before) {
			e.c.Hangup(ctx)
			delete(cc.conns, name)
		}
	}
}

// closeAll quits every cached connection.
func (cc *connCache) closeAll(ctx context.Context) {
	if cc == nil {
		return
	}
	for name, e := range cc.conns {
		e.c.Hangup(ctx)
		delete(cc.conns, name)
	}
}
