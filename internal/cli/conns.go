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

// get returns a connection to the named relay: the cached one, or a new
// one. A cached connection used less than freshConn ago is handed out
// as it is (a queue run's next message follows the last one's 250 at
// once, and a probe would cost a round trip per message); an older one
// must answer RSET first. unprobed says a cached connection came
// without the probe: if it turns out to be gone before the message went
// out, the caller tries once more on a new one (redial).
func (cc *connCache) get(ctx context.Context, name string, opts relay.Options) (c *relay.Client, unprobed bool, err error) {
	if cc != nil {
		if e := cc.conns[name]; e != nil {
			delete(cc.conns, name)
			if time.Since(e.last) < freshConn {
				cc.conns[name] = e
				return e.c, true, nil
			}
			if _, err := e.c.Reset(ctx); err == nil {
				cc.conns[name] = e
				return e.c, false, nil
			}
			e.c.Close()
		}
	}
	c, err = relay.Dial(ctx, opts)
	return c, false, err
}

// lastUse reports whether the connection to the named relay carries its
// last message now: no cache (one message per connection), or its share
// of messages_per_connection is used up by this one.
func (cc *connCache) lastUse(name string) bool {
	if cc == nil {
		return true
	}
	used := 0
	if e := cc.conns[name]; e != nil {
		used = e.used
	}
	return used+1 >= cc.max
}

// redial replaces a cached connection that was gone: the cache forgets
// it, and a new one is dialled.
func (cc *connCache) redial(ctx context.Context, name string, old *relay.Client, opts relay.Options) (*relay.Client, error) {
	old.Close()
	if cc != nil {
		if e := cc.conns[name]; e != nil && e.c == old {
			delete(cc.conns, name)
		}
	}
	return relay.Dial(ctx, opts)
}

// freshConn is how recently a cached connection must have been used to
// be reused without an RSET to probe it.
const freshConn = time.Second

// goneBeforeSending reports whether a SendMail on a connection taken
// from the cache failed because the server had closed it before it
// took anything of the message: the MAIL command met end of file or a
// 421 (RFC 5321 §3.8), so no recipient was accepted and no data sent.
// The message can then go over a new connection at once.
func goneBeforeSending(err error) bool {
	switch {
	case err == nil, errors.Is(err, relay.ErrOutcomeUnknown):
		return false
	case errors.Is(err, relay.ErrSenderRefused):
		r := relay.ReplyOf(err)
		return r != nil && r.Code == 421
	}
	return errors.Is(err, relay.ErrServerDisconnected) && relay.ReplyOf(err) == nil
}

// put hands a connection back after a message: it stays open for the
// next message unless the connection failed, there is no cache, or it
// has carried its share of messages.
func (cc *connCache) put(ctx context.Context, name string, c *relay.Client, sendErr error) {
	if cc == nil || c.Closed() || errors.Is(sendErr, relay.ErrServerDisconnected) {
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
