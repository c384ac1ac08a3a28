package loop

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsgate/wsgate/frame"
)

// Config holds the limits and timers that apply to every session.
type Config struct {
	HandshakeTimeout time.Duration // a client must finish its upgrade request within this
	IdleTimeout      time.Duration // no data frame in either direction for this long: Close 1001 (0: never)
	PingInterval     time.Duration // ping a client silent this long (0: no pings)
	PingTimeout      time.Duration // no Pong this long after a ping: Close 1001
	CloseTimeout     time.Duration // a closing handshake wsgate waits for before it cuts TCP
	MaxMessageBytes  int64         // limit on one message across its fragments (0: none)
	MaxBufferedBytes int64         // per session and direction: received but not yet written
	MaxBufferedTotal int64         // sum over all sessions (0: none)
	// Reactors is the number of relay reactors, each an epoll set served
	// by one goroutine (0: one per core the process may use, at most
	// GOMAXPROCS). Two reactors on one core only wake each other's
	// thread more often. When GOMAXPROCS exceeds Reactors, each reactor
	// waits in epoll_wait on a P of its own; otherwise it parks in Go's
	// poller (see reactor.run). ReactorThreads says how the caller
	// should size GOMAXPROCS for the first.
	Reactors int

	// wait overrides how the reactors wait, for tests.
	wait waitMode
}

// waitMode is how a reactor waits for readiness.
type waitMode uint8

const (
	waitAuto   waitMode = iota // waitThread if GOMAXPROCS > Reactors, else waitParked
	waitParked                 // in Go's poller, on the epoll descriptor
	waitThread                 // in epoll_wait, holding its P while busy
)

// DefaultReactors is the number of reactors a Loop starts when Config
// leaves it 0: one per core the process may use, at most GOMAXPROCS.
func DefaultReactors() int {
	return min(runtime.NumCPU(), runtime.GOMAXPROCS(0))
}

// ReactorThreads is the GOMAXPROCS that gives each of n reactors a P of
// its own on top of base, the Ps the rest of the process runs on, plus one.
// The one more was for netpoll's poller, which waited in epoll_wait as a
// system call holding a P (with no P idle, sysmon took it back after 20 µs
// and kept waking every 20 µs while handshakes came and went). netpoll is
// gone; the spare P now only keeps a handshake's goroutine from waiting for
// one. Measured again without netpoll (bench/RESULTS.md, 2026-11-25), it
// neither costs nor saves anything that shows: an idle P costs nothing,
// and it is kept for the handshakes that do run on goroutines.
func ReactorThreads(base, n int) int {
	return base + n + 1
}

func (c *Config) setDefaults() {
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = 5 * time.Second
	}
	if c.PingTimeout <= 0 {
		c.PingTimeout = 10 * time.Second
	}
	if c.CloseTimeout <= 0 {
		c.CloseTimeout = 5 * time.Second
	}
	if c.MaxBufferedBytes <= 0 {
		c.MaxBufferedBytes = 1 << 20
	}
	if c.Reactors <= 0 {
		c.Reactors = DefaultReactors()
	}
}

// Loop is wsgate's data path: its listeners, and the reactors that accept
// clients, watch handshakes and relay sessions.
type Loop struct {
	cfg   Config
	log   *slog.Logger
	stats Stats

	reactors []*reactor
	next     atomic.Uint32 // round-robin over reactors for new sessions
	// pingFrame is wsgate's keepalive Ping, built once: it is the same
	// bytes for every client.
	pingFrame []byte

	mu        sync.Mutex
	listeners []*Listener
	draining  atomic.Bool
	stopOnce  sync.Once
}

// New starts a reactor with cfg. log receives session-level logs.
func New(cfg Config, log *slog.Logger) (*Loop, error) {
	cfg.setDefaults()
	if log == nil {
		log = slog.Default()
	}
	l := &Loop{
		cfg:       cfg,
		log:       log,
		pingFrame: frame.AppendPing(nil, []byte(keepalivePayload), nil),
	}
	onThread := cfg.wait == waitThread || cfg.wait == waitAuto && runtime.GOMAXPROCS(0) > cfg.Reactors
	for range cfg.Reactors {
		r, err := newReactor(l, onThread)
		if err != nil {
			l.stopReactors()
			return nil, err
		}
		l.reactors = append(l.reactors, r)
		l.stats.relayed = append(l.stats.relayed, r.relayed)
		go r.run()
	}
	return l, nil
}

// Config returns the limits the loop was started with, defaults applied.
func (l *Loop) Config() Config { return l.cfg }

// Stats returns the loop's counters.
func (l *Loop) Stats() *Stats { return &l.stats }

// Sessions returns the number of sessions in frame relay.
func (l *Loop) Sessions() int { return int(l.stats.SessionsActive.Load()) }

func (l *Loop) isDraining() bool { return l.draining.Load() }

func (l *Loop) pickReactor() *reactor {
	return l.reactors[int(l.next.Add(1))%len(l.reactors)]
}

// bufferedTotal is what all reactors held for blocked receivers at their
// last tick.
func (l *Loop) bufferedTotal() int64 {
	var t int64
	for _, r := range l.reactors {
		t += r.buffered.Load()
	}
	return t
}

// Shutdown stops accepting, closes every session with 1001 at a frame
// boundary, and waits for the closing handshakes until ctx is done; what is
// left then is cut. It returns the number of sessions that were cut.
func (l *Loop) Shutdown(ctx context.Context) int {
	l.mu.Lock()
	l.draining.Store(true)
	lns := l.listeners
	l.listeners = nil
	l.mu.Unlock()
	for _, ln := range lns {
		ln.stopAccepting()
	}
	for _, r := range l.reactors {
		r.each(func(s *Session) { s.abort(CauseShutdown, 1001, 1001) })
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	cut := 0
wait:
	for l.stats.SessionsActive.Load() > 0 {
		select {
		case <-ctx.Done():
			var n atomic.Int64
			done := make(chan struct{}, len(l.reactors))
			for _, r := range l.reactors {
				r.post(func() {
					for len(r.sessions.items) > 0 {
						n.Add(1)
						r.sessions.items[len(r.sessions.items)-1].finish()
					}
					done <- struct{}{}
				})
			}
			for range l.reactors {
				<-done
			}
			cut = int(n.Load())
			break wait
		case <-tick.C:
		}
	}
	return cut
}

// Close stops the reactors, cutting what sessions remain. Call it after
// Shutdown.
func (l *Loop) Close() {
	l.stopOnce.Do(l.stopReactors)
}

func (l *Loop) stopReactors() {
	for _, r := range l.reactors {
		r.stop()
	}
}

var errDraining = errors.New("loop is shutting down")
