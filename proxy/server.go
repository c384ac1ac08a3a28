package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsgate/wsgate/loop"
	"github.com/wsgate/wsgate/proxy/config"
)

// Server is one running wsgate: its reactor, listener, pools and admin API.
type Server struct {
	cfg      atomic.Pointer[config.Config]
	log      *slog.Logger
	loop     *loop.Loop
	routing  atomic.Pointer[routing]
	m        *metrics
	reloadMu sync.Mutex // one reload at a time
	checkers checkers

	rebalanceMu    sync.Mutex
	rebalancePools map[string]bool // pools that await a rebalance

	ln      *loop.Listener
	admin   *http.Server
	adminLn net.Listener

	stopping chan struct{}
	stopOnce sync.Once
}

// New builds a server from a validated configuration.
func New(cfg *config.Config, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.Default()
	}
	sc := cfg.Server
	l, err := loop.New(loop.Config{
		HandshakeTimeout: sc.HandshakeTimeout,
		IdleTimeout:      sc.IdleTimeout,
		PingInterval:     sc.PingInterval,
		PingTimeout:      sc.PingTimeout,
		CloseTimeout:     sc.CloseTimeout,
		MaxMessageBytes:  sc.MaxMessageBytes,
		MaxBufferedBytes: sc.MaxBufferedBytes,
		MaxBufferedTotal: sc.MaxBufferedTotal,
		Reactors:         sc.Reactors,
	}, log)
	if err != nil {
		return nil, err
	}
	s := &Server{log: log, loop: l, stopping: make(chan struct{})}
	s.cfg.Store(cfg)
	s.m = newMetrics(l.Stats())
	s.checkers.srv = s
	s.routing.Store(s.buildRouting(cfg, nil))
	s.m.reg.MustRegister(newBackendCollector(s))
	return s, nil
}

// routing is what a handshake consults: routes and pools. It is replaced
// whole by a reload, so a handshake sees one configuration throughout.
type routing struct {
	router *router
	pools  []*pool
	byName map[string]*pool
}

func (s *Server) buildRouting(cfg *config.Config, old *routing) *routing {
	rt := &routing{byName: make(map[string]*pool, len(cfg.Pools))}
	for _, pc := range cfg.Pools {
		var prev *pool
		if old != nil {
			prev = old.byName[pc.Name]
		}
		p := newPool(s, cfg.Node, pc, prev)
		rt.pools = append(rt.pools, p)
		rt.byName[p.name] = p
		// Series exist from the start, so a dashboard sees zeros rather
		// than gaps.
		p.m = s.m.forPool(p.name)
	}
	rt.router = newRouter(cfg.Routes, rt.byName)
	return rt
}

// Start opens the listeners and begins filling the warm pools.
func (s *Server) Start() error {
	cfg := s.cfg.Load()
	ln, err := s.loop.Listen(cfg.Server.Listen, s)
	if err != nil {
		return err
	}
	s.ln = ln
	if a := cfg.Server.AdminListen; a != "" && a != "off" {
		if err := s.startAdmin(a); err != nil {
			s.loop.Shutdown(context.Background())
			s.loop.Close()
			return err
		}
	}
	rt := s.routing.Load()
	for _, p := range rt.pools {
		for _, b := range p.backends {
			b.refill()
		}
	}
	s.applyDrains(rt, nil)
	s.checkers.sync(rt)
	go s.rebalanceLoop()
	s.log.Info("wsgate listening", "addr", ln.Addr().String(), "admin", s.AdminAddr())
	return nil
}

// Addr is the address clients connect to.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// AdminAddr is the admin listener's address, "" when it is off.
func (s *Server) AdminAddr() string {
	if s.adminLn == nil {
		return ""
	}
	return s.adminLn.Addr().String()
}

// Ready reports whether the server listens and every backend has its warm
// connections (or has been found unreachable).
func (s *Server) Ready() bool {
	if s.ln == nil {
		return false
	}
	select {
	case <-s.stopping:
		return false
	default:
	}
	for _, p := range s.routing.Load().pools {
		for _, b := range p.backends {
			if !b.ready() {
				return false
			}
		}
	}
	return true
}

// Shutdown stops accepting, closes every session with 1001 and waits for
// their closing handshakes until ctx is done. It returns how many sessions
// had to be cut.
func (s *Server) Shutdown(ctx context.Context) int {
	s.stopOnce.Do(func() { close(s.stopping) })
	s.checkers.stop()
	cut := s.loop.Shutdown(ctx)
	for _, p := range s.routing.Load().pools {
		for _, b := range p.backends {
			b.close()
		}
	}
	if s.admin != nil {
		actx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = s.admin.Shutdown(actx)
		cancel()
	}
	s.loop.Close()
	return cut
}

// dial opens a connection to b within the pool's dial_timeout and before
// deadline (none if zero), counting the result.
func (s *Server) dial(deadline time.Time, b *backend) (*loop.Upstream, error) {
	// The deadline shortens the timeout here rather than through a context,
	// which would cost a timer per dial; loop.Dial takes the shorter of its
	// timeout and its context's deadline, so the two are the same.
	timeout := b.pool.Load().dialTimeout
	if !deadline.IsZero() {
		timeout = dialTimeoutFor(b, deadline)
	}
	u, err := s.loop.Dial(context.Background(), b.addr, timeout)
	if err := s.dialed(b, err); err != nil {
		return nil, err
	}
	return u, nil
}

// dialTimeout is how long a dial to b may take before deadline.
func dialTimeoutFor(b *backend, deadline time.Time) time.Duration {
	timeout := b.pool.Load().dialTimeout
	if left := time.Until(deadline); left < timeout || timeout <= 0 {
		timeout = left
	}
	return timeout
}

// dialed counts the result of a dial to b, and names the pool in its
// error.
func (s *Server) dialed(b *backend, err error) error {
	result := dialOK
	if err != nil {
		result = dialError
		if errors.Is(err, context.DeadlineExceeded) {
			result = dialTimeout
		}
	}
	p := b.pool.Load()
	p.m.dials[result].Inc()
	if err != nil {
		return fmt.Errorf("pool %s: %w", p.name, err)
	}
	return nil
}

// Sessions is the number of sessions in frame relay.
func (s *Server) Sessions() int { return s.loop.Sessions() }
