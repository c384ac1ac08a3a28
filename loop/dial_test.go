package loop

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// boundSocket binds a TCP socket to a loopback port, without SO_REUSEADDR,
// for the life of the test: no other test can take the port meanwhile.
func boundSocket(t testing.TB) (fd int, addr string) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("socket: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatalf("bind: %v", err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatalf("getsockname: %v", err)
	}
	return fd, "127.0.0.1:" + strconv.Itoa(sa.(*unix.SockaddrInet4).Port)
}

// rawListener listens on a loopback port with the given backlog, without
// accepting: the test accepts (or leaves the queue full) itself.
func rawListener(t testing.TB, backlog int) (fd int, addr string) {
	t.Helper()
	fd, addr = boundSocket(t)
	if err := unix.Listen(fd, backlog); err != nil {
		t.Fatalf("listen: %v", err)
	}
	return fd, addr
}

// reservedClosedAddr returns an address whose port stays bound and never
// listens, for the life of the test: connects to it are refused.
func reservedClosedAddr(t *testing.T) string {
	t.Helper()
	_, addr := boundSocket(t)
	return addr
}

// fullBacklogAddr returns a listening address whose accept queue is full,
// so that the kernel drops further SYNs and a dial to it hangs until its
// timeout.
func fullBacklogAddr(t *testing.T) string {
	_, addr := fullBacklog(t)
	return addr
}

// fullBacklog is fullBacklogAddr with the listening socket: accepting from
// it makes room, and the next SYN a hanging dial retransmits (after the
// initial RTO, 1 s) gets through.
func fullBacklog(t *testing.T) (int, string) {
	t.Helper()
	fd, addr := rawListener(t, 0)
	for range 8 {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err != nil {
			return fd, addr // this SYN was dropped: the queue is full
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Fatalf("listen backlog 0 at %s never filled", addr)
	return -1, ""
}

func openFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("count fds: %v", err)
	}
	return len(ents)
}

// checkNoFDLeak compares the process's descriptors with before, allowing
// for a reactor closing a descriptor a moment after Close returns.
func checkNoFDLeak(t *testing.T, before int) {
	t.Helper()
	var n int
	for deadline := time.Now().Add(2 * time.Second); ; {
		if n = openFDs(t); n <= before || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n > before {
		t.Errorf("%d descriptors open, %d before: leaked %d", n, before, n-before)
	}
}

func listenTCP(t *testing.T, network, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatalf("listen %s %s: %v", network, addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// roundTrip dials addr, sends a request through the Upstream, has the
// backend answer it, and reads the answer back.
func roundTrip(t *testing.T, l *Loop, ln net.Listener, addr string) {
	t.Helper()
	u, err := l.Dial(context.Background(), addr, time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer u.Close()
	if u.Addr() != addr {
		t.Errorf("Addr() = %q, want %q", u.Addr(), addr)
	}
	if !u.Claim() {
		t.Fatal("a fresh upstream could not be claimed")
	}
	if v, err := unix.GetsockoptInt(u.fd, unix.IPPROTO_TCP, unix.TCP_NODELAY); err != nil || v == 0 {
		t.Errorf("TCP_NODELAY = %d (%v), want on", v, err)
	}
	srv, err := ln.Accept()
	if err != nil {
		t.Fatalf("accept: %v", err)
	}
	defer srv.Close()
	srv.SetDeadline(time.Now().Add(5 * time.Second))
	if err := u.Send([]byte("ping"), time.Now().Add(5*time.Second)); err != nil {
		t.Fatalf("send: %v", err)
	}
	buf := make([]byte, 4)
	if _, err := srv.Read(buf); err != nil || string(buf) != "ping" {
		t.Fatalf("backend read %q, %v; want ping", buf, err)
	}
	if _, err := srv.Write([]byte("pong")); err != nil {
		t.Fatalf("backend write: %v", err)
	}
	// The answer comes after Fill has begun to wait for it.
	for len(u.Buffered()) < 4 {
		if err := u.Fill(time.Now().Add(5*time.Second), 64); err != nil {
			t.Fatalf("upstream read: %v", err)
		}
	}
	if got := string(u.Buffered()); got != "pong" {
		t.Fatalf("upstream read %q; want pong", got)
	}
	u.Consume(4)
}

func TestDialRoundTrip(t *testing.T) {
	l := testLoop(t)
	ln := listenTCP(t, "tcp4", "127.0.0.1:0")
	roundTrip(t, l, ln, ln.Addr().String()) // warms up the reactors
	before := openFDs(t)
	roundTrip(t, l, ln, ln.Addr().String())
	checkNoFDLeak(t, before)
	// An IPv4 address written as IPv6 is dialed as IPv4.
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	roundTrip(t, l, ln, net.JoinHostPort("::ffff:127.0.0.1", port))
}

func TestDialIPv6(t *testing.T) {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	roundTrip(t, testLoop(t), ln, ln.Addr().String())
}

// A host name is not a literal address: it takes the resolving path.
func TestDialHostname(t *testing.T) {
	ln := listenTCP(t, "tcp4", "127.0.0.1:0")
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	roundTrip(t, testLoop(t), ln, net.JoinHostPort("localhost", port))
}

func TestDialRefused(t *testing.T) {
	l := testLoop(t)
	addr := reservedClosedAddr(t)
	if _, err := l.Dial(context.Background(), addr, time.Second); err == nil {
		t.Fatal("dial to a closed port succeeded")
	}
	before := openFDs(t)
	for range 20 {
		_, err := l.Dial(context.Background(), addr, time.Second)
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("dial %s: %v, want ECONNREFUSED", addr, err)
		}
		if errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("refusal %v counts as a timeout", err)
		}
		if want := "dial " + addr + ": "; !strings.HasPrefix(err.Error(), want) {
			t.Errorf("error %q does not start with %q", err, want)
		}
	}
	checkNoFDLeak(t, before)
}

func TestDialTimeout(t *testing.T) {
	l := testLoop(t)
	addr := fullBacklogAddr(t)
	const timeout = 200 * time.Millisecond
	l.Dial(context.Background(), addr, timeout) // warms up the runtime's poller
	before := openFDs(t)
	start := time.Now()
	u, err := l.Dial(context.Background(), addr, timeout)
	took := time.Since(start)
	if err == nil {
		u.Close()
		t.Fatalf("dial to %s (full backlog) succeeded", addr)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("dial %s: %v, want DeadlineExceeded", addr, err)
	}
	if want := "dial " + addr + ": "; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q does not start with %q", err, want)
	}
	if took < timeout-10*time.Millisecond || took > timeout+time.Second {
		t.Errorf("timed out after %v, want about %v", took, timeout)
	}
	checkNoFDLeak(t, before)

	// Through the resolving path too.
	_, port, _ := net.SplitHostPort(addr)
	host := net.JoinHostPort("localhost", port)
	if _, err := l.Dial(context.Background(), host, timeout); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("dial %s: %v, want DeadlineExceeded", host, err)
	}
}

// The context's deadline, when shorter, is the dial's.
func TestDialContextDeadline(t *testing.T) {
	l := testLoop(t)
	addr := fullBacklogAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := l.Dial(ctx, addr, 10*time.Second)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Errorf("dial: %v after %v, want DeadlineExceeded after about 100ms", err, time.Since(start))
	}
	_, err = l.Dial(ctx, addr, time.Second) // deadline passed
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("dial past the deadline: %v, want DeadlineExceeded", err)
	}
}

// A backend that answers the SYN only after the dial has begun waiting:
// the dial waits in Go's poller, then connects (or learns the refusal).
func TestDialSlowBackend(t *testing.T) {
	l := testLoop(t)
	t.Run("connects", func(t *testing.T) {
		t.Parallel()
		lfd, addr := fullBacklog(t)
		before := openFDs(t)
		go func() {
			time.Sleep(200 * time.Millisecond)
			if fd, _, err := unix.Accept4(lfd, unix.SOCK_CLOEXEC); err == nil {
				unix.Close(fd) // the queue's filler: room for the dial
			}
		}()
		start := time.Now()
		u, err := l.Dial(context.Background(), addr, 5*time.Second)
		if err != nil {
			t.Fatalf("dial %s: %v", addr, err)
		}
		if took := time.Since(start); took < 200*time.Millisecond {
			t.Errorf("connected after %v, before the backend made room", took)
		}
		if !u.Claim() {
			t.Fatal("a fresh upstream could not be claimed")
		}
		if err := u.Send([]byte("ping"), time.Now().Add(5*time.Second)); err != nil {
			t.Fatalf("send: %v", err)
		}
		nfd, _, err := unix.Accept4(lfd, unix.SOCK_CLOEXEC)
		if err != nil {
			t.Fatalf("accept: %v", err)
		}
		defer unix.Close(nfd)
		buf := make([]byte, 4)
		if n, err := unix.Read(nfd, buf); err != nil || string(buf[:n]) != "ping" {
			t.Fatalf("backend read %q, %v; want ping", buf[:n], err)
		}
		u.Close()
		checkNoFDLeak(t, before+1) // +1: the backend's end, nfd
	})
	t.Run("refused", func(t *testing.T) {
		t.Parallel()
		lfd, addr := fullBacklog(t)
		before := openFDs(t)
		go func() {
			time.Sleep(200 * time.Millisecond)
			unix.Shutdown(lfd, unix.SHUT_RDWR) // stops listening: the next SYN meets a RST
		}()
		_, err := l.Dial(context.Background(), addr, 5*time.Second)
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("dial %s: %v, want ECONNREFUSED", addr, err)
		}
		checkNoFDLeak(t, before)
	})
}

// Parsing the address and connecting it allocate nothing when the
// connect completes before Dial asks, as it does on loopback.
func TestConnectAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	// Connections the test never accepts wait in the queue until cleanup.
	_, addr := rawListener(t, 1024)
	a := testing.AllocsPerRun(200, func() {
		ap, err := netip.ParseAddrPort(addr)
		if err != nil {
			t.Fatal(err)
		}
		fd, connected, err := startConnect(ap)
		if err != nil || !connected {
			t.Fatal(connected, err)
		}
		unix.Close(fd)
	})
	if a != 0 {
		t.Errorf("%v allocations per connect, want 0", a)
	}
}

func threads(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no Threads line in /proc/self/status")
	return 0
}

// Dials waiting on a slow backend must not each hold an OS thread.
func TestDialSlowDoesNotHoldThreads(t *testing.T) {
	l := testLoop(t)
	addr := fullBacklogAddr(t)
	const n = 100
	before, fds := threads(t), openFDs(t)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			u, err := l.Dial(context.Background(), addr, 300*time.Millisecond)
			if err == nil {
				u.Close()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("dial: %v, want DeadlineExceeded", err)
			break
		}
	}
	if after := threads(t); after-before > n/4 {
		t.Errorf("%d threads after %d concurrent slow dials, %d before", after, n, before)
	}
	checkNoFDLeak(t, fds)
}

// BenchmarkDial measures Dial alone: closing the upstream and accepting and
// closing the backend's end are outside the timer.
func BenchmarkDial(b *testing.B) {
	l, err := New(Config{MaxMessageBytes: 16 << 20, Reactors: 1}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	lfd, addr := rawListener(b, 1024)
	b.ReportAllocs()
	for b.Loop() {
		u, err := l.Dial(context.Background(), addr, time.Second)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		u.Close()
		nfd, _, err := unix.Accept4(lfd, unix.SOCK_CLOEXEC)
		if err != nil {
			b.Fatal(err)
		}
		unix.Close(nfd)
		b.StartTimer()
	}
}
