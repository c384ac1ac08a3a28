package loop

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"
)

// eachWait runs test once for a reactor that parks in Go's poller and once
// for one that waits in epoll_wait on its own thread.
func eachWait(t *testing.T, test func(t *testing.T, wait waitMode)) {
	t.Run("parked", func(t *testing.T) { test(t, waitParked) })
	t.Run("thread", func(t *testing.T) { test(t, waitThread) })
}

// TestReactorWakes: a reactor with nothing to do parks in Go's poller on
// its epoll descriptor, or waits in epoll_wait as a system call; a frame
// arriving then must wake it at once, not at the next tick of the timers
// (tickEvery), which is when a lost wake-up would be noticed. Each echo
// round trip below needs two wake-ups of an idle reactor (the sleeps let
// it go idle: on a thread, past busyWaitMillis); were they lost, 40 round
// trips would take about 40 ticks (10 s) instead of a fraction of one.
func TestReactorWakes(t *testing.T) { eachWait(t, testReactorWakes) }

func testReactorWakes(t *testing.T, wait waitMode) {
	_, client, backend := runningSession(t, Config{Reactors: 1, wait: wait})

	const trips = 20
	var waited time.Duration // in the reads, not in the sleeps
	for i := range trips {
		// A reactor on a thread waits holding its P for busyWaitMillis, as
		// a system call after that: let it reach each on alternate trips.
		idle := time.Millisecond
		if i%2 == 1 {
			idle = busyWaitMillis * time.Millisecond * 3 / 2
		}
		payload := []byte{byte(i), 'p', 'i', 'n', 'g'}
		time.Sleep(idle)
		start := time.Now()
		toBackend(t, i, client, backend, payload)
		waited += time.Since(start)
		time.Sleep(idle)
		start = time.Now()
		toClient(t, i, backend, client, payload)
		waited += time.Since(start)
	}
	// A quarter of what lost wake-ups would cost: generous for a loaded
	// machine, far short of trips ticks.
	if limit := time.Duration(trips * tickEvery / 4); waited > limit {
		t.Fatalf("%d round trips waited %v for the relay (limit %v): the idle reactor was woken by its tick, not by the events", trips, waited, limit)
	}
}

// TestReactorReadsOnAfterFullRead: a read that fills the reactor's scratch
// buffer may leave input in the kernel, which no new readiness will
// announce (the sender is done), so the reactor must ask epoll again
// rather than park. Each message below is three reads' worth, all in the
// client socket's queue before the reactor reads; were the rest left to
// the timers' tick, each would take two ticks (500 ms).
func TestReactorReadsOnAfterFullRead(t *testing.T) { eachWait(t, testReactorReadsOnAfterFullRead) }

func testReactorReadsOnAfterFullRead(t *testing.T, wait waitMode) {
	r, client, backend := runningSession(t, Config{Reactors: 1, MaxMessageBytes: 1 << 20, wait: wait})
	// Room for a whole message in the client's queue: the write returns
	// before the reactor has read anything, and nothing arrives after.
	if err := unix.SetsockoptInt(int(client.Fd()), unix.SOL_SOCKET, unix.SO_SNDBUF, 1<<20); err != nil {
		t.Fatal(err)
	}

	const trips = 20
	payload := bytes.Repeat([]byte("0123456789abcdef"), 3*len(r.scratch)/16-1)
	start := time.Now()
	for i := range trips {
		time.Sleep(time.Millisecond) // let the reactor park
		toBackend(t, i, client, backend, payload)
	}
	if took, limit := time.Since(start), time.Duration(trips*tickEvery/4); took > limit {
		t.Fatalf("%d messages of %d bytes took %v (limit %v): the reactor parked with input left", trips, len(payload), took, limit)
	}
}

// TestReactorOnThreadLetsTheWorldStop: a reactor on its own thread holds
// its P in epoll_wait while busy, where the runtime cannot stop it; it must
// still give way to every stop of the world (its signal interrupts the
// wait) and keep relaying across garbage collections. Were it deaf to
// them, the collections below would wait for its timeouts or hang.
func TestReactorOnThreadLetsTheWorldStop(t *testing.T) {
	r, client, backend := runningSession(t, Config{Reactors: 1, wait: waitThread})
	if !r.onThread {
		t.Fatal("the reactor is not on its own thread")
	}
	var collections atomic.Int64
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			runtime.GC()
			collections.Add(1)
		}
	}()
	// Until enough collections ran during the relay (each stops the world
	// twice); bounded, in case the collector never gets through.
	const wantCollections, maxTrips = 50, 200_000
	i := 0
	for ; collections.Load() < wantCollections && i < maxTrips; i++ {
		payload := []byte{byte(i), byte(i >> 8), 'g', 'c'}
		toBackend(t, i, client, backend, payload)
		toClient(t, i, backend, client, payload)
	}
	if n := collections.Load(); n < wantCollections {
		t.Fatalf("%d collections completed during %d round trips, want %d", n, i, wantCollections)
	}

	// Idle (past quietAfter), the reactor waits as a system call, where the
	// world stops without it. Were it to hold its P deaf to the runtime
	// until its tick, each collection would wait up to a tick to stop the
	// world: half a tick (125 ms) at the median. The runtime's own record
	// of how long stopping took is read rather than the wall time of the
	// collections, which a loaded host stretches (a CI run once took 1 s
	// for 50).
	time.Sleep(time.Duration(quietAfter) + 10*busyWaitMillis*time.Millisecond)
	before := gcStopLatencies()
	base := collections.Load()
	for collections.Load() < base+wantCollections {
		time.Sleep(time.Millisecond)
	}
	after := gcStopLatencies()
	med, n := medianSince(before, after)
	t.Logf("stopping the world beside an idle reactor: %.3f ms at the median of %d", med*1e3, n)
	if n < wantCollections {
		t.Fatalf("%d stops of the world recorded for %d collections", n, wantCollections)
	} else if limit := time.Duration(tickEvery / 10); med > limit.Seconds() {
		t.Fatalf("stopping the world beside an idle reactor took %.1f ms at the median of %d (limit %v)", med*1e3, n, limit)
	}
}

// TestReactorOnThreadHoldsThroughPauses: a reactor on its own thread keeps
// its P through a pause in the traffic shorter than quietAfter, waiting in
// raw system calls the runtime does not see (an ordinary one would cost a
// burst of sysmon wake-ups at each pause: quietAfter says why), and waits
// as an ordinary system call ("syscall" in a stack dump) once the pause is
// longer, so that an idle proxy leaves sysmon and its P alone. It relays at
// once after either.
func TestReactorOnThreadHoldsThroughPauses(t *testing.T) {
	r, client, backend := runningSession(t, Config{Reactors: 1, wait: waitThread})
	if !r.onThread {
		t.Fatal("the reactor is not on its own thread")
	}
	const serve = "loop.(*reactor).serveOnThread"
	pause := 3 * busyWaitMillis * time.Millisecond
	// A loaded host may oversleep a pause towards quietAfter; such a round
	// says nothing, and another is tried. The bound is the design's (pauses
	// under 200 ms are held), not quietAfter's value.
	const inconclusive = 200 * time.Millisecond
	held, trip := 0, 0
	for ; held < 3 && trip < 20; trip++ {
		payload := []byte{byte(trip), 'p', 'a', 'u', 's', 'e'}
		toBackend(t, trip, client, backend, payload)
		toClient(t, trip, backend, client, payload)
		last := time.Now()
		time.Sleep(pause)
		state := goroutineState(t, serve)
		if time.Since(last) >= inconclusive {
			continue
		}
		if state == "syscall" {
			t.Fatalf("trip %d: %v after its last event the reactor waits in an ordinary system call", trip, pause)
		}
		held++
	}
	if held < 3 {
		t.Fatalf("%d of %d pauses of %v were overslept past %v", trip-held, trip, pause, inconclusive)
	}

	// Past quietAfter: looked at every 100 ms (each look interrupts a held
	// wait), for up to 5 s, since a loaded host may run the reactor late.
	toBackend(t, trip, client, backend, []byte("quiet"))
	deadline := time.Now().Add(5 * time.Second)
	for {
		time.Sleep(100 * time.Millisecond)
		state := goroutineState(t, serve)
		if state == "syscall" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("5 s after its last event the reactor's goroutine is %q, want %q", state, "syscall")
		}
	}
	toBackend(t, trip+1, client, backend, []byte("awake"))
	toClient(t, trip+1, backend, client, []byte("awake"))
}

// goroutineState returns the state, as a stack dump gives it, of the one
// goroutine whose stack holds fn.
func goroutineState(t *testing.T, fn string) string {
	t.Helper()
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var found []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if !strings.Contains(g, fn) {
			continue
		}
		head, _, _ := strings.Cut(g, "\n")
		// goroutine 42 [IO wait]: or goroutine 42 [IO wait, 2 minutes]:
		_, state, ok := strings.Cut(head, "[")
		state, _, _ = strings.Cut(state, "]")
		state, _, _ = strings.Cut(state, ",")
		if ok {
			found = append(found, state)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d goroutines in %s: %q", len(found), fn, found)
	}
	return found[0]
}

// gcStopLatencies is the runtime's histogram of how long each
// collection's stops of the world took to stop every goroutine.
func gcStopLatencies() *metrics.Float64Histogram {
	s := []metrics.Sample{{Name: "/sched/pauses/stopping/gc:seconds"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64Histogram {
		panic("runtime/metrics: no " + s[0].Name)
	}
	return s[0].Value.Float64Histogram()
}

// medianSince is the upper bound of the bucket holding the median of what
// after recorded beyond before, and how many that was.
func medianSince(before, after *metrics.Float64Histogram) (median float64, n uint64) {
	for i := range after.Counts {
		n += after.Counts[i] - before.Counts[i]
	}
	var seen uint64
	for i := range after.Counts {
		if seen += after.Counts[i] - before.Counts[i]; seen*2 >= n && n > 0 {
			return after.Buckets[i+1], n
		}
	}
	return 0, n
}

// TestReactorWaitChoice: reactors wait on threads of their own only when
// GOMAXPROCS leaves a P for the rest of the process.
func TestReactorWaitChoice(t *testing.T) {
	procs := runtime.GOMAXPROCS(0)
	for _, tc := range []struct {
		reactors int
		onThread bool
	}{{procs, false}, {procs + 1, false}, {max(procs-1, 1), procs > 1}} {
		l, err := New(Config{Reactors: tc.reactors}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range l.reactors {
			if r.onThread != tc.onThread {
				t.Errorf("GOMAXPROCS %d, %d reactors: on a thread = %v, want %v", procs, tc.reactors, r.onThread, tc.onThread)
			}
		}
		l.Close()
	}
	if got, want := ReactorThreads(2, 2), 5; got != want {
		t.Errorf("ReactorThreads(2, 2) = %d, want %d", got, want)
	}
}

// toBackend sends payload from the client's end and checks that the
// backend's end receives it, unmasked. trip numbers the failure.
func toBackend(t *testing.T, trip int, client, backend *os.File, payload []byte) {
	t.Helper()
	if _, err := client.Write(maskedFrame(ws.OpBinary, true, payload)); err != nil {
		t.Fatal(err)
	}
	f, err := ws.ReadFrame(backend)
	if err != nil {
		t.Fatalf("round trip %d: backend read: %v", trip, err)
	}
	ws.Cipher(f.Payload, f.Header.Mask, 0)
	if !bytes.Equal(f.Payload, payload) {
		t.Fatalf("round trip %d: backend got %s, want %s", trip, abbrev(f.Payload), abbrev(payload))
	}
}

// toClient sends payload from the backend's end and checks that the
// client's end receives it.
func toClient(t *testing.T, trip int, backend, client *os.File, payload []byte) {
	t.Helper()
	if err := ws.WriteFrame(backend, ws.NewBinaryFrame(payload)); err != nil {
		t.Fatal(err)
	}
	f, err := ws.ReadFrame(client)
	if err != nil {
		t.Fatalf("round trip %d: client read: %v", trip, err)
	}
	if !bytes.Equal(f.Payload, payload) {
		t.Fatalf("round trip %d: client got %s, want %s", trip, abbrev(f.Payload), abbrev(payload))
	}
}

// abbrev shows a payload, or only its length when it is long.
func abbrev(p []byte) string {
	if len(p) > 64 {
		return fmt.Sprintf("%d bytes", len(p))
	}
	return fmt.Sprintf("%q", p)
}

// runningSession starts a loop with one running reactor and a session on it
// between two socket pairs, and returns the reactor and the remote ends the
// test plays: the client and the backend.
func runningSession(t *testing.T, cfg Config) (r *reactor, client, backend *os.File) {
	t.Helper()
	l, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return sessionOn(t, l.reactors[0])
}

// sessionOn starts a session on r between two socket pairs and returns the
// ends that play its client and its backend.
func sessionOn(t *testing.T, r *reactor) (_ *reactor, client, backend *os.File) {
	t.Helper()
	l := r.l
	s := &Session{loop: l, r: r, start: time.Now()}
	s.initPeers()
	l.stats.SessionsActive.Add(1)
	cfd, client := socketPair(t)
	bfd, backend := socketPair(t)
	t.Cleanup(func() { client.Close(); backend.Close() })
	s.adopt(SideClient, cfd, nil)
	s.adopt(SideBackend, bfd, nil)
	return r, client, backend
}

// Each reactor counts what it relays on its own (no cache line shared
// between cores per message); Stats adds the reactors' counts up.
func TestStatsAddUpReactors(t *testing.T) {
	l, err := New(Config{Reactors: 2}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	payload := []byte("counted")
	for i, r := range l.reactors {
		_, client, backend := sessionOn(t, r)
		for trip := range i + 1 {
			toBackend(t, trip, client, backend, payload)
		}
		toClient(t, 0, backend, client, payload)
	}
	st := l.Stats()
	// Reactor 0 relayed one frame to its backend, reactor 1 two; each one
	// frame back.
	wantC2B := [2]uint64{3, 3 * uint64(2+4+len(payload))} // masked, from the client
	wantB2C := [2]uint64{2, 2 * uint64(2+len(payload))}
	counts := func() (c2b, b2c [2]uint64) {
		return [2]uint64{st.Frames(ClientToBackend), st.Bytes(ClientToBackend)},
			[2]uint64{st.Frames(BackendToClient), st.Bytes(BackendToClient)}
	}
	// A reactor counts a write once it is made, which is after the
	// receiving end may have read it.
	c2b, b2c := counts()
	for deadline := time.Now().Add(5 * time.Second); (c2b != wantC2B || b2c != wantB2C) && time.Now().Before(deadline); c2b, b2c = counts() {
		time.Sleep(time.Millisecond)
	}
	if c2b != wantC2B || b2c != wantB2C {
		t.Fatalf("frames and bytes: client to backend %v, backend to client %v; want %v, %v", c2b, b2c, wantC2B, wantB2C)
	}
	for i, r := range l.reactors {
		if f := r.relayed.frames[ClientToBackend].Load(); f != uint64(i+1) {
			t.Fatalf("reactor %d counted %d frames to backends, want %d", i, f, i+1)
		}
	}
}
