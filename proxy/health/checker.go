package health

import (
	"container/heap"
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// Delegate receives the checker's results. See the package doc for the
// ordering and concurrency guarantees.
type Delegate interface {
	// StateChanged is called when a target crosses a threshold.
	StateChanged(target string, healthy bool, reason string)
	// Checked is called after every check (for metrics): latency, success,
	// error. It precedes the StateChanged call the same check causes.
	Checked(target string, ok bool, latency time.Duration, err error)
}

// Checker checks a changing set of targets with one Config.
type Checker struct {
	cfg      Config
	delegate Delegate

	// ctx is cancelled by Stop so in-flight checks end at once instead of
	// at their timeout.
	ctx    context.Context
	cancel context.CancelFunc
	jobs   chan *target  // scheduler → workers; unbuffered so "due" means "running now"
	wake   chan struct{} // a new earliest deadline may exist; buffered 1
	done   chan struct{} // closed by Stop
	wg     sync.WaitGroup
	once   sync.Once

	mu      sync.Mutex
	targets map[string]*target
	queue   timerHeap
	stopped bool
}

type target struct {
	addr string

	// cbMu is held while a check's outcome is applied and delivered, so
	// Remove can wait for a delivery in progress and callbacks for one
	// target never overlap.
	cbMu sync.Mutex

	// Guarded by Checker.mu.
	next      time.Time
	index     int // position in the heap, -1 while not queued
	removed   bool
	healthy   bool
	successes int // consecutive
	failures  int // consecutive
}

// New returns a running Checker with no targets. Zero fields of cfg take
// the Default* values; maxConcurrent <= 0 means DefaultMaxConcurrent.
// A nil d discards results. New panics if cfg.Validate fails, because
// configuration is validated when it is parsed and a bad Config here is a
// programming error.
func New(cfg Config, d Delegate, maxConcurrent int) *Checker {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	if d == nil {
		d = nopDelegate{}
	}
	if maxConcurrent <= 0 {
		maxConcurrent = DefaultMaxConcurrent
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Checker{
		cfg:      cfg.withDefaults(),
		delegate: d,
		ctx:      ctx,
		cancel:   cancel,
		jobs:     make(chan *target),
		wake:     make(chan struct{}, 1),
		done:     make(chan struct{}),
		targets:  make(map[string]*target),
	}
	c.wg.Add(1 + maxConcurrent)
	go c.schedule()
	for range maxConcurrent {
		go c.work()
	}
	return c
}

// Add starts checking target (host:port). Adding a target that is already
// checked keeps its state; Add after Stop does nothing.
func (c *Checker) Add(addr string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped || c.targets[addr] != nil {
		return
	}
	t := &target{
		addr:    addr,
		healthy: c.cfg.InitiallyHealthy,
		// Spreading first checks over a whole interval keeps a proxy that
		// starts with many backends (or many proxies restarted together)
		// from checking them all at once.
		next: time.Now().Add(rand.N(c.cfg.Interval)),
	}
	c.targets[addr] = t
	heap.Push(&c.queue, t)
	c.nudge()
}

// Remove stops checking target. When it returns, no Delegate call for
// target is in progress and none will follow. A check already running is
// not interrupted; its result is dropped.
func (c *Checker) Remove(addr string) {
	c.mu.Lock()
	t := c.targets[addr]
	if t == nil {
		c.mu.Unlock()
		return
	}
	delete(c.targets, addr)
	t.removed = true
	if t.index >= 0 {
		heap.Remove(&c.queue, t.index)
	}
	c.mu.Unlock()
	// The empty critical section is deliberate: it waits out a delivery
	// that began before removed was set, which is what lets the caller
	// forget the backend as soon as Remove returns.
	t.cbMu.Lock()
	t.cbMu.Unlock()
}

// Healthy reports the target's current state; false for unknown targets.
func (c *Checker) Healthy(addr string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.targets[addr]
	return t != nil && t.healthy
}

// Stop cancels running checks, stops all goroutines and waits for them.
// No Delegate call happens after Stop returns. Stop is idempotent.
func (c *Checker) Stop() {
	c.once.Do(func() {
		c.mu.Lock()
		c.stopped = true
		c.mu.Unlock()
		close(c.done)
		c.cancel()
	})
	c.wg.Wait()
}

// nudge tells the scheduler the earliest deadline may have changed. The
// channel holds one token, so a burst of Adds costs one wake-up, and the
// send never blocks, so it is safe under c.mu.
func (c *Checker) nudge() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// schedule is the only goroutine that waits on time: it sleeps until the
// earliest due target, hands it to a worker, and repeats.
func (c *Checker) schedule() {
	defer c.wg.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		c.mu.Lock()
		var due *target
		wait := time.Duration(-1)
		if len(c.queue) > 0 {
			if d := time.Until(c.queue[0].next); d > 0 {
				wait = d
			} else {
				due = heap.Pop(&c.queue).(*target)
			}
		}
		c.mu.Unlock()

		if due != nil {
			// Blocking here while all workers are busy is the concurrency
			// bound: due targets wait in the heap, late, rather than
			// piling up sockets.
			select {
			case c.jobs <- due:
			case <-c.done:
				return
			}
			continue
		}
		if wait >= 0 {
			timer.Reset(wait) // Go ≥ 1.23 timers: Reset needs no drain
		}
		select {
		case <-timer.C:
		case <-c.wake:
			timer.Stop()
		case <-c.done:
			return
		}
	}
}

func (c *Checker) work() {
	defer c.wg.Done()
	for {
		select {
		case t := <-c.jobs:
			c.run(t)
		case <-c.done:
			return
		}
	}
}

// run performs one check of t, applies it to the thresholds, requeues t and
// tells the delegate.
func (c *Checker) run(t *target) {
	c.mu.Lock()
	removed := t.removed
	c.mu.Unlock()
	if removed {
		return
	}

	start := time.Now()
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.Timeout)
	err := Check(ctx, c.cfg.Kind, t.addr, c.cfg.Path)
	cancel()
	latency := time.Since(start)
	if c.ctx.Err() != nil {
		// Stopping: the failure is ours, not the backend's.
		return
	}

	t.cbMu.Lock()
	defer t.cbMu.Unlock()
	c.mu.Lock()
	if t.removed {
		c.mu.Unlock()
		return
	}
	changed, reason := t.record(err, c.cfg)
	healthy := t.healthy
	// Measured from the start so a check that ran into its timeout does
	// not push the next one later; never in the past, so a check longer
	// than the interval is followed immediately rather than by a burst.
	next := start.Add(jitter(c.cfg.Interval))
	if now := time.Now(); next.Before(now) {
		next = now
	}
	t.next = next
	heap.Push(&c.queue, t)
	c.mu.Unlock()
	c.nudge()

	c.delegate.Checked(t.addr, err == nil, latency, err)
	if changed {
		c.delegate.StateChanged(t.addr, healthy, reason)
	}
}

// record applies one result to the consecutive counters and reports whether
// the state flipped.
func (t *target) record(err error, cfg Config) (changed bool, reason string) {
	if err == nil {
		t.failures = 0
		t.successes++
		if !t.healthy && t.successes >= cfg.HealthyThreshold {
			t.healthy = true
			return true, fmt.Sprintf("%d consecutive successful checks", t.successes)
		}
		return false, ""
	}
	t.successes = 0
	t.failures++
	if t.healthy && t.failures >= cfg.UnhealthyThreshold {
		t.healthy = false
		return true, fmt.Sprintf("%d consecutive failed checks, last: %v", t.failures, err)
	}
	return false, ""
}

// jitter returns interval ± up to 10 %, uniformly, so checks from many
// proxies drift apart instead of hitting a backend in lockstep.
func jitter(interval time.Duration) time.Duration {
	spread := interval / 10
	if spread <= 0 {
		return interval
	}
	return interval - spread + rand.N(2*spread+1)
}

type nopDelegate struct{}

func (nopDelegate) StateChanged(string, bool, string)          {}
func (nopDelegate) Checked(string, bool, time.Duration, error) {}

// timerHeap orders targets by their next check time.
type timerHeap []*target

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].next.Before(h[j].next) }
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *timerHeap) Push(x any) {
	t := x.(*target)
	t.index = len(*h)
	*h = append(*h, t)
}
func (h *timerHeap) Pop() any {
	old := *h
	n := len(old)
	t := old[n-1]
	old[n-1] = nil
	t.index = -1
	*h = old[:n-1]
	return t
}
