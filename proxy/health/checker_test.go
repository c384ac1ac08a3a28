package health

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func fastConfig(kind Kind, path string) Config {
	return Config{
		Kind:               kind,
		Path:               path,
		Interval:           50 * time.Millisecond,
		Timeout:            200 * time.Millisecond,
		HealthyThreshold:   2,
		UnhealthyThreshold: 3,
		InitiallyHealthy:   true,
	}
}

// streakBefore counts the Checked events with result ok that directly
// precede index i, and reports whether the streak was started by the
// opposite result (rather than by the start of the history).
func streakBefore(evs []event, i int, ok bool) (n int, bounded bool) {
	for j := i - 1; j >= 0; j-- {
		if evs[j].state {
			continue
		}
		if evs[j].ok != ok {
			return n, true
		}
		n++
	}
	return n, false
}

func stateEvents(evs []event) []int {
	var idx []int
	for i, e := range evs {
		if e.state {
			idx = append(idx, i)
		}
	}
	return idx
}

func TestThresholdsKillAndRestart(t *testing.T) {
	t.Parallel()
	b := newBackend(t)
	rec := &recorder{}
	c := New(fastConfig(WebSocket, "/ws"), rec, 0)
	defer c.Stop()
	c.Add(b.addr)

	countOK := func() (n int) {
		for _, e := range rec.snapshot() {
			if !e.state && e.ok {
				n++
			}
		}
		return n
	}
	waitFor(t, 3*time.Second, "3 successful checks", func() bool { return countOK() >= 3 })
	if !c.Healthy(b.addr) {
		t.Fatal("healthy backend reported unhealthy")
	}
	if idx := stateEvents(rec.snapshot()); len(idx) != 0 {
		t.Fatalf("StateChanged called while staying healthy: %+v", rec.snapshot()[idx[0]])
	}

	b.kill()
	waitFor(t, 3*time.Second, "unhealthy", func() bool { return !c.Healthy(b.addr) })
	// Keep it dead a few more intervals: further failures must not repeat
	// the transition.
	time.Sleep(200 * time.Millisecond)

	b.start()
	waitFor(t, 3*time.Second, "healthy again", func() bool { return c.Healthy(b.addr) })
	time.Sleep(250 * time.Millisecond) // more successes, still no new transition
	c.Stop()

	evs := rec.snapshot()
	idx := stateEvents(evs)
	if len(idx) != 2 {
		for _, e := range evs {
			t.Logf("%+v", e)
		}
		t.Fatalf("got %d StateChanged calls, want exactly 2", len(idx))
	}
	down, up := evs[idx[0]], evs[idx[1]]
	if down.ok || !strings.Contains(down.reason, "3 consecutive failed") {
		t.Fatalf("first transition = %+v, want unhealthy after 3 failures", down)
	}
	if n, bounded := streakBefore(evs, idx[0], false); n != 3 || !bounded {
		t.Fatalf("unhealthy after %d failures (bounded=%v), want exactly 3", n, bounded)
	}
	if !up.ok || !strings.Contains(up.reason, "2 consecutive successful") {
		t.Fatalf("second transition = %+v, want healthy after 2 successes", up)
	}
	if n, bounded := streakBefore(evs, idx[1], true); n != 2 || !bounded {
		t.Fatalf("healthy after %d successes (bounded=%v), want exactly 2", n, bounded)
	}
	for _, e := range evs {
		if !e.state && e.latency <= 0 {
			t.Fatalf("Checked without latency: %+v", e)
		}
		if !e.state && e.ok != (e.err == nil) {
			t.Fatalf("Checked ok=%v with err=%v", e.ok, e.err)
		}
	}
}

func TestInitiallyUnhealthy(t *testing.T) {
	t.Parallel()
	b := newBackend(t)
	rec := &recorder{}
	cfg := fastConfig(HTTP, "/healthz")
	cfg.InitiallyHealthy = false
	c := New(cfg, rec, 0)
	defer c.Stop()
	c.Add(b.addr)
	if c.Healthy(b.addr) {
		t.Fatal("healthy before any check")
	}
	waitFor(t, 3*time.Second, "healthy", func() bool { return c.Healthy(b.addr) })
	c.Stop()
	evs := rec.snapshot()
	idx := stateEvents(evs)
	if len(idx) != 1 || !evs[idx[0]].ok {
		t.Fatalf("StateChanged events at %v, want one transition to healthy", idx)
	}
	if n, _ := streakBefore(evs, idx[0], true); n != 2 {
		t.Fatalf("healthy after %d successes, want 2", n)
	}
}

func TestFirstChecksAreSpread(t *testing.T) {
	t.Parallel()
	const n = 20
	const interval = time.Second
	rec := &recorder{}
	cfg := fastConfig(TCP, "")
	cfg.Interval = interval
	c := New(cfg, rec, 0)
	defer c.Stop()
	added := time.Now()
	for range n {
		c.Add(silentServer(t))
	}
	first := func() map[string]time.Duration {
		m := map[string]time.Duration{}
		for _, e := range rec.snapshot() {
			if _, seen := m[e.target]; !seen && !e.state {
				m[e.target] = e.at.Sub(added)
			}
		}
		return m
	}
	waitFor(t, 3*time.Second, "a first check of every target", func() bool { return len(first()) == n })
	c.Stop()

	var lo, hi time.Duration = time.Hour, 0
	buckets := map[time.Duration]bool{}
	for _, d := range first() {
		lo, hi = min(lo, d), max(hi, d)
		buckets[d/(100*time.Millisecond)] = true
	}
	// Uniform over [0, 1s): a span under 500ms or fewer than 5 distinct
	// 100ms buckets for 20 targets has probability far below 1e-4.
	if hi > interval+200*time.Millisecond {
		t.Fatalf("a first check came %v after Add, past the first interval", hi)
	}
	if hi-lo < interval/2 || len(buckets) < 5 {
		t.Fatalf("first checks bunched: span %v, %d distinct 100ms buckets", hi-lo, len(buckets))
	}
}

func TestJitterBounds(t *testing.T) {
	t.Parallel()
	const interval = 5 * time.Second
	seen := map[time.Duration]bool{}
	for range 1000 {
		d := jitter(interval)
		if d < interval*9/10 || d > interval*11/10 {
			t.Fatalf("jitter(%v) = %v, outside ±10%%", interval, d)
		}
		seen[d] = true
	}
	if len(seen) < 100 {
		t.Fatalf("only %d distinct delays in 1000 draws", len(seen))
	}
}

func TestBoundedConcurrency(t *testing.T) {
	t.Parallel()
	const targets, limit = 10, 2
	var inFlight, peak, served atomic.Int64
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		time.Sleep(80 * time.Millisecond)
		inFlight.Add(-1)
		served.Add(1)
		_, _ = io.WriteString(w, "ok")
	})
	var addrs []string
	for range targets {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: slow, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		t.Cleanup(func() { _ = srv.Close() })
		addrs = append(addrs, ln.Addr().String())
	}

	cfg := fastConfig(HTTP, "/")
	cfg.Interval = 100 * time.Millisecond
	cfg.Timeout = 2 * time.Second
	rec := &recorder{}
	c := New(cfg, rec, limit)
	defer c.Stop()
	for _, a := range addrs {
		c.Add(a)
	}
	waitFor(t, 5*time.Second, "15 served checks", func() bool { return served.Load() >= 15 })
	c.Stop()
	if p := peak.Load(); p != limit {
		t.Fatalf("peak concurrent checks = %d, want exactly %d", p, limit)
	}
	for _, e := range rec.snapshot() {
		if !e.state && !e.ok {
			t.Fatalf("slow but healthy check failed: %v", e.err)
		}
	}
}

func TestRemoveStopsCallbacks(t *testing.T) {
	t.Parallel()
	b := newBackend(t)
	rec := &recorder{}
	c := New(fastConfig(TCP, ""), rec, 0)
	defer c.Stop()
	c.Add(b.addr)
	c.Add(b.addr) // duplicate: no second schedule
	waitFor(t, 2*time.Second, "a check", func() bool { return len(rec.snapshot()) >= 2 })
	c.Remove(b.addr)
	n := len(rec.snapshot())
	if c.Healthy(b.addr) {
		t.Fatal("removed target reported healthy")
	}
	time.Sleep(200 * time.Millisecond) // four intervals
	if got := len(rec.snapshot()); got != n {
		t.Fatalf("%d callbacks after Remove returned", got-n)
	}
	c.Remove(b.addr) // removing twice is harmless
	// Re-adding starts afresh.
	c.Add(b.addr)
	waitFor(t, 2*time.Second, "checks after re-Add", func() bool { return len(rec.snapshot()) > n })
}

func TestAddAfterStopAndStopTwice(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	c := New(fastConfig(TCP, ""), rec, 1)
	c.Stop()
	c.Stop()
	c.Add(closedPort(t))
	time.Sleep(100 * time.Millisecond)
	if n := len(rec.snapshot()); n != 0 {
		t.Fatalf("%d callbacks after Stop", n)
	}
}

// TestStopLeavesNoGoroutines is not parallel: it counts every goroutine in
// the process. Parallel tests only start after all serial ones finish.
func TestStopLeavesNoGoroutines(t *testing.T) {
	b := newBackend(t)
	silent := silentServer(t)
	closed := closedPort(t)
	settle := func(limit int) int {
		n := runtime.NumGoroutine()
		for deadline := time.Now().Add(3 * time.Second); n > limit && time.Now().Before(deadline); n = runtime.NumGoroutine() {
			time.Sleep(10 * time.Millisecond)
		}
		return n
	}
	before := runtime.NumGoroutine()

	for round := range 3 {
		cfg := fastConfig(WebSocket, "/ws")
		cfg.Timeout = 5 * time.Second // checks of silent are in flight at Stop
		rec := &recorder{}
		c := New(cfg, rec, 4)
		c.Add(b.addr)
		c.Add(silent)
		c.Add(closed)
		for i := range 20 {
			c.Add(fmt.Sprintf("127.0.0.1:%d", 1+i)) // refused quickly
		}
		time.Sleep(300 * time.Millisecond)
		start := time.Now()
		c.Stop()
		if d := time.Since(start); d > time.Second {
			t.Fatalf("round %d: Stop took %v; in-flight checks were not cancelled", round, d)
		}
		n := len(rec.snapshot())
		time.Sleep(60 * time.Millisecond)
		if m := len(rec.snapshot()); m != n {
			t.Fatalf("round %d: %d callbacks after Stop returned", round, m-n)
		}
		if n == 0 {
			t.Fatalf("round %d: no checks ran", round)
		}
	}

	if after := settle(before); after > before {
		buf := make([]byte, 1<<20)
		t.Fatalf("goroutines: %d before, %d after Stop\n%s", before, after, buf[:runtime.Stack(buf, true)])
	}
}

// TestDelegateMayCallHealthy guards against a lock-order deadlock: the
// proxy's delegate will typically look at Healthy while handling an event.
func TestDelegateMayCallHealthy(t *testing.T) {
	t.Parallel()
	b := newBackend(t)
	var c *Checker
	var mu sync.Mutex
	var calls int
	d := delegateFuncs{
		checked: func(target string) {
			_ = c.Healthy(target)
			mu.Lock()
			calls++
			mu.Unlock()
		},
	}
	c = New(fastConfig(TCP, ""), d, 0)
	defer c.Stop()
	c.Add(b.addr)
	waitFor(t, 2*time.Second, "callbacks", func() bool { mu.Lock(); defer mu.Unlock(); return calls >= 3 })
}

type delegateFuncs struct{ checked func(string) }

func (d delegateFuncs) StateChanged(string, bool, string) {}
func (d delegateFuncs) Checked(target string, _ bool, _ time.Duration, _ error) {
	d.checked(target)
}
