package load_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/bench/echo"
	"github.com/wsgate/wsgate/bench/load"
)

func startEcho(t *testing.T) (*echo.Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := echo.New(echo.Config{})
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return srv, "ws://" + ln.Addr().String() + "/"
}

type markers struct {
	mu    sync.Mutex
	lines []string
	ch    chan string
}

func (m *markers) add(line string) {
	m.mu.Lock()
	m.lines = append(m.lines, line)
	m.mu.Unlock()
	if m.ch != nil {
		m.ch <- line
	}
}

func (m *markers) get() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.lines)
}

func TestThroughput(t *testing.T) {
	_, url := startEcho(t)
	for _, size := range []int{8, 64, 100 << 10} {
		var mk markers
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		res, err := load.Run(ctx, load.Config{
			Scenario: "throughput", URL: url,
			Conns: 4, InFlight: 4, Size: size,
			Warmup: 100 * time.Millisecond, Duration: 400 * time.Millisecond,
			Marker: mk.add,
		})
		cancel()
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if res.Established != 4 || res.DialFailures != 0 || res.SessionErrors != 0 {
			t.Fatalf("size %d: %+v", size, res)
		}
		if res.Messages < 10 || res.LatencyUS == nil || res.LatencyUS.Count != res.Messages {
			t.Fatalf("size %d: %d messages, latency %+v", size, res.Messages, res.LatencyUS)
		}
		if l := res.LatencyUS; !(l.P50 > 0 && l.P50 <= l.P99 && l.P99 <= l.Max) {
			t.Fatalf("size %d: latency %+v", size, l)
		}
		if res.MsgsPerSec <= 0 || res.GenCPUSec <= 0 {
			t.Fatalf("size %d: %+v", size, res)
		}
		if got := mk.get(); !slices.Equal(got, []string{"WSLOAD MEASURE-START", "WSLOAD MEASURE-END"}) {
			t.Fatalf("markers %q", got)
		}
	}
}

func TestIdle(t *testing.T) {
	srv, url := startEcho(t)
	ready := filepath.Join(t.TempDir(), "ready")
	var mk markers
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := load.Run(ctx, load.Config{
		Scenario: "idle", URL: url, Idle: 100, Hold: 200 * time.Millisecond,
		DialConcurrency: 20, ReadyFile: ready, Marker: mk.add,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Established != 100 || res.EchoOK != 100 || res.EchoFailed != 0 || res.CloseFailed != 0 || res.DroppedDuringHold != 0 {
		t.Fatalf("%+v", res)
	}
	if got := mk.get(); !slices.Equal(got, []string{"WSLOAD READY established=100 failed=0", "WSLOAD HOLD-END"}) {
		t.Fatalf("markers %q", got)
	}
	if b, err := os.ReadFile(ready); err != nil || strings.TrimSpace(string(b)) != "100" {
		t.Fatalf("ready file: %q %v", b, err)
	}
	// Every session closed its side: the server sees none left.
	deadline := time.Now().Add(2 * time.Second)
	for srv.Stats().Active != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if a := srv.Stats().Active; a != 0 {
		t.Fatalf("%d sessions still open on the server", a)
	}
}

// Sessions the server drops during the hold are reported as such.
func TestIdleDropped(t *testing.T) {
	srv, url := startEcho(t)
	mk := markers{ch: make(chan string, 4)}
	holdEnd := make(chan struct{})
	go func() {
		if line := <-mk.ch; strings.HasPrefix(line, "WSLOAD READY") {
			srv.Close()
			time.Sleep(200 * time.Millisecond)
		}
		close(holdEnd)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := load.Run(ctx, load.Config{
		Scenario: "idle", URL: url, Idle: 20, Hold: 5 * time.Second, HoldEnd: holdEnd,
		Marker: mk.add, EchoTimeout: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.HoldSec > 4 {
		t.Fatalf("HoldEnd did not end the hold: %.1fs", res.HoldSec)
	}
	if res.Established != 20 || res.DroppedDuringHold != 20 || res.EchoFailed != 20 || res.EchoOK != 0 {
		t.Fatalf("%+v", res)
	}
}

func TestDialFailures(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	url := "ws://" + ln.Addr().String() + "/"
	ln.Close() // nothing listens there any more
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := load.Run(ctx, load.Config{Scenario: "throughput", URL: url, Conns: 3, Duration: 100 * time.Millisecond})
	if err == nil || res.DialFailures != 3 || len(res.DialErrors) == 0 {
		t.Fatalf("err %v, result %+v", err, res)
	}
	if _, err := load.Run(ctx, load.Config{Scenario: "throughput", URL: url, Size: 4}); err == nil {
		t.Fatal("size 4 accepted")
	}
	if _, err := load.Run(ctx, load.Config{Scenario: "nope", URL: url}); err == nil {
		t.Fatal("unknown scenario accepted")
	}
}
