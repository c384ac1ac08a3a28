package proxy

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsgate/wsgate/loop"
	"github.com/wsgate/wsgate/proxy/balance"
	"github.com/wsgate/wsgate/proxy/config"
)

// pool is a named set of backends that routes send sessions to. A pool is
// immutable once built: a reload builds a new one, reusing the backend
// objects whose address stays, so their warm connections and sessions
// carry over.
type pool struct {
	name        string
	cfg         config.Pool
	backends    []*backend
	byAddr      map[string]*backend
	bal         *balance.Balancer
	hashSource  string
	hashName    string
	dialTimeout time.Duration
	drainPeriod time.Duration
	m           poolMetrics
}

// backend is one upstream address with its warm connections: pre-dialed TCP
// connections that a new session takes instead of paying a dial (across
// clouds, the dial is most of the handshake's latency).
type backend struct {
	addr string
	ap   netip.AddrPort // addr, if literal
	srv  *Server
	pool atomic.Pointer[pool] // the pool it serves now (replaced on reload)
	// bb is the balancer's view of the backend; a reload that changes its
	// weight, location or cap replaces it.
	bb atomic.Pointer[balance.Backend]

	draining atomic.Bool
	removed  atomic.Bool // left the configuration; never picked again
	active   atomic.Int64

	// mUpgrades caches the backend's wsgate_backend_upgrades_total series
	// by result, each created at its first use as before (a backend serves
	// one pool name for its whole life).
	mUpgrades [numUpgradeResults]atomic.Pointer[prometheus.Counter]

	// Health: the active checks' verdict, and passive ejection.
	checkedUp    atomic.Bool
	ejectedUntil atomic.Int64 // unix nanoseconds; 0: not ejected
	failures     atomic.Int32 // consecutive failed dials or upgrades
	ejections    atomic.Int32 // ejections in a row, for the doubling

	// sessions are the backend's live sessions, for drains and reloads.
	smu      sync.Mutex
	sessions map[*trackedSession]struct{}
	drainGen int // bumped by every drain and undrain, to stop a stale spread

	mu        sync.Mutex
	warm      []*loop.Upstream
	target    int  // warm connections to keep
	dialing   bool // a refill is running
	lastErr   error
	triedOnce bool // the first refill has finished, successfully or not
	closed    bool
}

// newPool builds a pool from its configuration, taking over the backends
// of old (the same pool before a reload, may be nil) whose address stays.
func newPool(srv *Server, node config.Node, pc config.Pool, old *pool) *pool {
	p := &pool{
		name: pc.Name, cfg: pc, byAddr: make(map[string]*backend, len(pc.Backends)),
		hashSource: pc.HashKeySource, hashName: pc.HashKeyName,
		dialTimeout: pc.DialTimeout, drainPeriod: pc.DrainPeriod,
	}
	for _, bc := range pc.Backends {
		var b *backend
		if old != nil {
			b = old.byAddr[bc.Address]
		}
		if b == nil {
			b = &backend{addr: bc.Address, srv: srv, sessions: make(map[*trackedSession]struct{})}
			// Invalid for a host name: only a literal address is dialed
			// from a reactor, which must not wait for a resolver.
			b.ap, _ = netip.ParseAddrPort(bc.Address)
			// Healthy until checks say otherwise: a restarting proxy must not
			// refuse all traffic while its first checks run.
			b.checkedUp.Store(true)
		}
		w := bc.Weight
		if w <= 0 {
			w = 100
		}
		nb := &balance.Backend{
			Addr:        bc.Address,
			Loc:         balance.Locality{Cloud: bc.Cloud, Region: bc.Region, Zone: bc.Zone},
			Weight:      w,
			MaxSessions: bc.MaxSessions,
		}
		if ob := b.bb.Load(); ob != nil && ob.Weight == nb.Weight && ob.Loc == nb.Loc && ob.MaxSessions == nb.MaxSessions {
			nb = ob
		}
		b.bb.Store(nb)
		b.mu.Lock()
		b.target = pc.Preconnect
		b.mu.Unlock()
		b.pool.Store(p)
		b.syncState()
		p.backends = append(p.backends, b)
		p.byAddr[b.addr] = b
	}
	p.bal = newBalancer(node, pc, p.backends)
	return p
}

// upgrades is wsgate_backend_upgrades_total{pool, backend, result}.
func (b *backend) upgrades(result int) prometheus.Counter {
	if c := b.mUpgrades[result].Load(); c != nil {
		return *c
	}
	c := b.srv.m.backendUpgrades.WithLabelValues(b.pool.Load().name, b.addr, upgradeResults[result])
	b.mUpgrades[result].Store(&c)
	return c
}

// available reports whether the backend may take a new session.
func (b *backend) available() bool {
	return !b.draining.Load() && !b.removed.Load() && b.up()
}

// up reports whether health checks and outlier detection allow sessions.
func (b *backend) up() bool {
	if !b.checkedUp.Load() {
		return false
	}
	if until := b.ejectedUntil.Load(); until != 0 && time.Now().UnixNano() < until {
		return false
	}
	return true
}

// syncState tells the balancer what the backend's state is now.
func (b *backend) syncState() {
	bb := b.bb.Load()
	bb.SetHealthy(b.up())
	bb.SetDraining(b.draining.Load() || b.removed.Load())
}

// state names the backend's state for the admin API.
func (b *backend) state() string {
	switch {
	case b.removed.Load():
		return "removed"
	case b.draining.Load():
		return "draining"
	case !b.checkedUp.Load():
		return "unhealthy"
	case !b.up():
		return "ejected"
	}
	return "healthy"
}

// take returns a claimed warm connection, or nil when none is ready. It
// prefers one on client's reactor, whose handshake can then run there to
// the end (StartHandshake).
func (b *backend) take(client *loop.ClientConn) *loop.Upstream {
	b.mu.Lock()
	var u *loop.Upstream
	for len(b.warm) > 0 && u == nil {
		i := len(b.warm) - 1
		for j := i; j >= 0; j-- {
			if client.SameReactor(b.warm[j]) {
				i = j
				break
			}
		}
		c := b.warm[i]
		b.warm[i] = b.warm[len(b.warm)-1]
		b.warm = b.warm[:len(b.warm)-1]
		if c.Claim() {
			u = c
		} else {
			c.Close()
		}
	}
	b.mu.Unlock()
	b.refillFrom(client)
	return u
}

// refillFrom is refill from a handshake on client's reactor: its first
// dial, to a literal address, is made at once, where it stands. A connect
// on loopback or in a data centre completes at once, and a goroutine
// started per upgrade cost a thread's wake-up each. A connect in progress
// goes on on refill's goroutine.
func (b *backend) refillFrom(client *loop.ClientConn) {
	if !b.ap.IsValid() {
		b.refill()
		return
	}
	if !b.startRefill() {
		return
	}
	u, connected, err := client.DialNow(b.ap, b.addr)
	switch {
	case err != nil:
		// Counted here; the goroutine backs off before it dials again.
		go b.refillLoop(nil, b.srv.dialed(b, err))
	case !connected:
		go b.refillLoop(u, nil)
	default:
		b.srv.dialed(b, nil)
		b.addWarm(u)
		b.mu.Lock()
		b.dialing = false
		short := !b.closed && len(b.warm) < b.target
		b.mu.Unlock()
		if short {
			b.refill()
		}
	}
}

// addWarm puts a connected upstream in the warm pool (the caller is the
// refill in progress).
func (b *backend) addWarm(u *loop.Upstream) {
	u.OnClose(b)
	b.mu.Lock()
	b.lastErr = nil
	if b.closed {
		b.mu.Unlock()
		u.Close()
		return
	}
	b.warm = append(b.warm, u)
	b.mu.Unlock()
}

// refill dials in the background until the backend has its warm
// connections again. One refill runs per backend; after a failed dial it
// waits before trying again, so a dead backend costs one dial per second.
func (b *backend) refill() {
	if b.startRefill() {
		go b.refillLoop(nil, nil)
	}
}

// startRefill reports whether the pool is short and no refill runs; if so,
// the caller's refill now runs.
func (b *backend) startRefill() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dialing || b.closed || len(b.warm) >= b.target {
		return false
	}
	b.dialing = true
	return true
}

// refillLoop dials until the pool is full. The first dial may be one that
// refillFrom started: a connect in progress to wait for, or its error (a
// back-off first).
func (b *backend) refillLoop(connecting *loop.Upstream, failed error) {
	backoff := 100 * time.Millisecond
	for {
		var u *loop.Upstream
		var err error
		switch {
		case connecting != nil:
			u, connecting = connecting, nil
			err = b.srv.dialed(b, u.AwaitConnected(time.Now().Add(b.pool.Load().dialTimeout)))
		case failed != nil:
			err, failed = failed, nil
		default:
			b.mu.Lock()
			if b.closed || len(b.warm) >= b.target {
				b.dialing = false
				b.triedOnce = true
				b.mu.Unlock()
				return
			}
			b.mu.Unlock()
			u, err = b.srv.dial(time.Time{}, b)
		}
		if err == nil {
			backoff = 100 * time.Millisecond
			b.addWarm(u)
			continue
		}
		b.mu.Lock()
		b.lastErr = err
		b.triedOnce = true
		closed := b.closed
		b.mu.Unlock()
		if closed {
			return
		}
		b.srv.log.Debug("warm dial failed", "pool", b.pool.Load().name, "backend", b.addr, "err", err)
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
	}
}

// IdleClosed (loop.IdleCloseHandler) drops a warm connection the backend
// closed while it waited, and dials a replacement.
func (b *backend) IdleClosed(u *loop.Upstream) {
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
