package proxy

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/wsgate/wsgate/loop"
	"github.com/wsgate/wsgate/proxy/config"
)

// pool is a named set of backends that routes send sessions to.
type pool struct {
	name        string
	backends    []*backend
	dialTimeout time.Duration
	rr          roundRobin
}

// backend is one upstream address with its warm connections: pre-dialed TCP
// connections that a new session takes instead of paying a dial (across
// clouds, the dial is most of the handshake's latency).
type backend struct {
	addr   string
	weight int
	pool   *pool
	srv    *Server

	mu        sync.Mutex
	warm      []*loop.Upstream
	target    int  // warm connections to keep
	dialing   bool // a refill is running
	lastErr   error
	triedOnce bool // the first refill has finished, successfully or not
	closed    bool
}

func newPool(srv *Server, pc config.Pool) *pool {
	p := &pool{name: pc.Name, dialTimeout: pc.DialTimeout}
	for _, bc := range pc.Backends {
		w := bc.Weight
		if w <= 0 {
			w = 100
		}
		p.backends = append(p.backends, &backend{addr: bc.Address, weight: w, pool: p, srv: srv, target: pc.Preconnect})
	}
	return p
}

// take returns a claimed warm connection, or nil when none is ready.
func (b *backend) take() *loop.Upstream {
	b.mu.Lock()
	var u *loop.Upstream
	for len(b.warm) > 0 && u == nil {
		c := b.warm[len(b.warm)-1]
		b.warm = b.warm[:len(b.warm)-1]
		if c.Claim() {
			u = c
		} else {
			c.Close()
		}
	}
	b.mu.Unlock()
	b.refill()
	return u
}

// refill dials in the background until the backend has its warm
// connections again. One refill runs per backend; after a failed dial it
// waits before trying again, so a dead backend costs one dial per second.
func (b *backend) refill() {
	b.mu.Lock()
	if b.dialing || b.closed || len(b.warm) >= b.target {
		b.mu.Unlock()
		return
	}
	b.dialing = true
	b.mu.Unlock()
	go b.refillLoop()
}

func (b *backend) refillLoop() {
	backoff := 100 * time.Millisecond
	for {
		b.mu.Lock()
		if b.closed || len(b.warm) >= b.target {
			b.dialing = false
			b.triedOnce = true
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		u, err := b.srv.dial(context.Background(), b)
		if err == nil {
			u.OnClose(func() { b.forget(u) })
		}
		b.mu.Lock()
		if err != nil {
			b.lastErr = err
			b.triedOnce = true
			closed := b.closed
			b.mu.Unlock()
			if closed {
				return
			}
			b.srv.log.Debug("warm dial failed", "pool", b.pool.name, "backend", b.addr, "err", err)
			select {
			case <-time.After(backoff):
			case <-b.srv.stopping:
				b.mu.Lock()
				b.dialing = false
				b.mu.Unlock()
				return
			}
			if backoff < time.Second {
				backoff *= 2
			}
			continue
		}
		backoff = 100 * time.Millisecond
		b.lastErr = nil
		if b.closed {
			b.mu.Unlock()
			u.Close()
			continue
		}
		b.warm = append(b.warm, u)
		b.mu.Unlock()
	}
}

// forget drops a warm connection the backend closed while it waited, and
// dials a replacement.
func (b *backend) forget(u *loop.Upstream) {
	b.mu.Lock()
	for i, c := range b.warm {
		if c == u {
			b.warm = append(b.warm[:i], b.warm[i+1:]...)
			break
		}
	}
	b.mu.Unlock()
	b.refill()
}

// ready reports whether the backend has its warm connections, or has been
// tried and cannot be reached (a dead backend must not hold up readiness of
// the whole proxy; health is reported per backend).
func (b *backend) ready() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.warm) >= b.target || (b.triedOnce && b.lastErr != nil)
}

func (b *backend) warmCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.warm)
}

func (b *backend) close() {
	b.mu.Lock()
	b.closed = true
	warm := b.warm
	b.warm = nil
	b.mu.Unlock()
	for _, u := range warm {
		u.Close()
	}
}

func (p *pool) logAttrs() slog.Attr { return slog.String("pool", p.name) }
