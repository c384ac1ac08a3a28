package load_test

import (
	"context"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/wsgate/wsgate/bench/echo"
	"github.com/wsgate/wsgate/bench/load"
)

func TestLatencyOpenLoop(t *testing.T) {
	_, url := startEcho(t)
	var mk markers
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	res, err := load.Run(ctx, load.Config{
		Scenario: "latency", URL: url, Conns: 5, Rate: 2000, Size: 64,
		Warmup: 100 * time.Millisecond, Duration: 500 * time.Millisecond, Marker: mk.add,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Established != 5 || res.SessionErrors != 0 || res.Lost != 0 || res.CloseFailed != 0 {
		t.Fatalf("%+v", res)
	}
	// 2000/s for 0.5 s: 1000 messages scheduled in the window, exactly
	// (the schedule does not depend on the replies).
	if res.SentPerSec < 1990 || res.SentPerSec > 2010 || res.Messages < 990 || res.Messages > 1010 {
		t.Fatalf("scheduled %.0f/s, echoed %d", res.SentPerSec, res.Messages)
	}
	if l := res.LatencyUS; l == nil || l.Count != res.Messages || !(l.P50 <= l.P99 && l.P99 <= l.Max) {
		t.Fatalf("latency %+v", res.LatencyUS)
	}
	if res.TargetRate != 2000 {
		t.Fatalf("%+v", res)
	}
	if got := mk.get(); !slices.Equal(got, []string{"WSLOAD MEASURE-START", "WSLOAD MEASURE-END"}) {
		t.Fatalf("markers %q", got)
	}
}

// A server that stops answering makes the open-loop generator keep its
// schedule, and the missing echoes count as lost, with the wait measured
// from the intended send times.
func TestLatencyStalledServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := echo.New(echo.Config{})
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	url := "ws://" + ln.Addr().String() + "/"
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	// Close the server in the middle of the window: sessions fail.
	time.AfterFunc(300*time.Millisecond, func() { srv.Close() })
	res, err := load.Run(ctx, load.Config{
		Scenario: "latency", URL: url, Conns: 2, Rate: 500,
		Warmup: 100 * time.Millisecond, Duration: 500 * time.Millisecond, Drain: 300 * time.Millisecond,
	})
	if err == nil && res.SessionErrors == 0 && res.Lost == 0 {
		t.Fatalf("a server gone mid-window went unnoticed: %+v", res)
	}
}

func TestHandshake(t *testing.T) {
	srv, url := startEcho(t)
	var mk markers
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	res, err := load.Run(ctx, load.Config{
		Scenario: "handshake", URL: url, Conns: 4, Size: 32,
		Warmup: 100 * time.Millisecond, Duration: 400 * time.Millisecond, Marker: mk.add,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Upgrades < 1 || res.DialFailures != 0 || res.SessionErrors != 0 {
		t.Fatalf("%+v", res)
	}
	if res.UpgradesPerS <= 0 || res.LatencyUS == nil || res.LatencyUS.Count != res.Upgrades ||
		res.EchoLatencyUS == nil || res.EchoLatencyUS.Count != res.Upgrades {
		t.Fatalf("%+v", res)
	}
	if got := mk.get(); !slices.Equal(got, []string{"WSLOAD MEASURE-START", "WSLOAD MEASURE-END"}) {
		t.Fatalf("markers %q", got)
	}
	// Every session was closed.
	deadline := time.Now().Add(2 * time.Second)
	for srv.Stats().Active != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if a := srv.Stats().Active; a != 0 {
		t.Fatalf("%d sessions still open on the server", a)
	}

	// The session cap bounds the loop: the window cannot be reached.
	res, err = load.Run(ctx, load.Config{
		Scenario: "handshake", URL: url, Conns: 2, MaxSessions: 5,
		Duration: 5 * time.Second,
	})
	if err == nil || res.Upgrades > 5 {
		t.Fatalf("max sessions: err %v, %+v", err, res)
	}
}

func TestFanout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := echo.New(echo.Config{PushInterval: 20 * time.Millisecond, PushSize: 32})
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	url := "ws://" + ln.Addr().String() + "/"
	var mk markers
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	res, err := load.Run(ctx, load.Config{
		Scenario: "fanout", URL: url, Conns: 10,
		Warmup: 100 * time.Millisecond, Duration: 500 * time.Millisecond, Marker: mk.add,
	})
	if err != nil {
		t.Fatal(err)
	}
	// 10 sessions × 50/s × 0.5 s = 250 messages, give or take ticks (and
	// fewer on a starved machine: the server's ticker drops late ticks).
	if res.Established != 10 || res.SessionErrors != 0 || res.Messages < 10 || res.Messages > 300 {
		t.Fatalf("%+v", res)
	}
	if l := res.LatencyUS; l == nil || l.Count != res.Messages || l.Max <= 0 {
		t.Fatalf("latency %+v", res.LatencyUS)
	}
	if got := mk.get(); !slices.Equal(got, []string{"WSLOAD MEASURE-START", "WSLOAD MEASURE-END"}) {
		t.Fatalf("markers %q", got)
	}

	// Without pushes there is nothing to count: an error.
	_, plain := startEcho(t)
	if _, err := load.Run(ctx, load.Config{Scenario: "fanout", URL: plain, Conns: 2, Duration: 200 * time.Millisecond}); err == nil {
		t.Fatal("fanout without pushes succeeded")
	}
}
