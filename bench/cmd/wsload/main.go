package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wsgate/wsgate/bench/load"
)

func main() {
	var cfg load.Config
	flag.StringVar(&cfg.Scenario, "scenario", "throughput", "scenario: "+strings.Join(load.Scenarios(), ", "))
	flag.StringVar(&cfg.URL, "url", "ws://127.0.0.1:8080/", "WebSocket URL (ws:// only)")
	flag.IntVar(&cfg.Conns, "c", 100, "throughput, latency, fanout: sessions; handshake: concurrent workers")
	flag.IntVar(&cfg.InFlight, "k", 8, "throughput: messages in flight per session")
	flag.IntVar(&cfg.Size, "s", 64, "throughput, latency, handshake: message size in bytes (>= 8)")
	flag.DurationVar(&cfg.Duration, "d", 10*time.Second, "throughput, latency, handshake, fanout: measured duration")
	flag.DurationVar(&cfg.Warmup, "warmup", time.Second, "throughput, latency, handshake, fanout: unmeasured time before the measured window")
	flag.Float64Var(&cfg.Rate, "rate", 1000, "latency: total messages/s over all sessions (open loop)")
	flag.DurationVar(&cfg.Drain, "drain", 5*time.Second, "latency: wait this long after the window for outstanding echoes")
	flag.IntVar(&cfg.MaxSessions, "max-sessions", 1_000_000, "handshake: at most this many sessions in all")
	flag.IntVar(&cfg.Idle, "n", 1000, "idle: sessions")
	flag.DurationVar(&cfg.Hold, "hold", 10*time.Second, "idle: hold time")
	flag.StringVar(&cfg.ReadyFile, "ready-file", "", "idle: file to create once all sessions are dialled")
	flag.DurationVar(&cfg.EchoTimeout, "echo-timeout", 5*time.Second, "idle: time allowed for each session's echo after the hold")
	flag.IntVar(&cfg.DialConcurrency, "dial-concurrency", 200, "dials in parallel")
	flag.DurationVar(&cfg.DialTimeout, "dial-timeout", 5*time.Second, "connect + handshake timeout")
	protocols := flag.String("protocols", "", "comma-separated subprotocols to offer")
	asJSON := flag.Bool("json", false, "print the result as one JSON line")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the run to this file")
	flag.Parse()
	if *protocols != "" {
		cfg.Protocols = strings.Split(*protocols, ",")
	}

	raiseNoFile()

	var outMu sync.Mutex
	cfg.Marker = func(line string) {
		outMu.Lock()
		defer outMu.Unlock()
		fmt.Fprintln(os.Stdout, line)
	}
	holdEnd := make(chan struct{})
	cfg.HoldEnd = holdEnd
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	go func() {
		<-usr1
		close(holdEnd)
	}()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	stopProfile := func() {}
	if *cpuProfile != "" {
		stopProfile = startProfile(*cpuProfile)
	}
	res, err := load.Run(ctx, cfg)
	stopProfile()
	if res == nil {
		fmt.Fprintln(os.Stderr, "wsload:", err)
		os.Exit(1)
	}
	outMu.Lock()
	if *asJSON {
		out := struct {
			*load.Result
			Error string `json:"error,omitempty"`
		}{Result: res}
		if err != nil {
			out.Error = err.Error()
		}
		b, _ := json.Marshal(out)
		fmt.Println(string(b))
	} else {
		printText(res)
	}
	outMu.Unlock()
	switch {
	case err != nil:
		fmt.Fprintln(os.Stderr, "wsload:", err)
		os.Exit(1)
	case res.DialFailures > 0 || res.SessionErrors > 0 || res.EchoFailed > 0 || res.Lost > 0:
		os.Exit(3)
	}
}

func printText(r *load.Result) {
	fmt.Printf("scenario %s  url %s\n", r.Scenario, r.URL)
	fmt.Printf("sessions %d established, %d dial failures\n", r.Established, r.DialFailures)
	for _, e := range r.DialErrors {
		fmt.Printf("  dial error: %s\n", e)
	}
	switch r.Scenario {
	case "throughput":
		fmt.Printf("in flight %d x %d bytes, window %.1fs\n", r.InFlight, r.Size, r.WindowSec)
		fmt.Printf("messages %d  %.0f msg/s  %.2f MB/s\n", r.Messages, r.MsgsPerSec, r.MBPerSec)
		if l := r.LatencyUS; l != nil {
			fmt.Printf("latency µs  p50 %.0f  p90 %.0f  p99 %.0f  p99.9 %.0f  max %.0f  (mean %.0f, n=%d)\n",
				l.P50, l.P90, l.P99, l.P999, l.Max, l.Mean, l.Count)
		}
		fmt.Printf("generator CPU %.2fs over the window, %.2f µs/msg\n", r.GenCPUSec, r.GenCPUPerMsgUS)
	case "latency":
		fmt.Printf("%d sessions x %d bytes at %.0f msg/s asked, window %.1fs\n", r.Established, r.Size, r.TargetRate, r.WindowSec)
		fmt.Printf("scheduled %.0f msg/s, echoed %.0f msg/s, lost %d\n", r.SentPerSec, r.MsgsPerSec, r.Lost)
		printLatency("latency µs (from the intended send time)", r.LatencyUS)
		printLatency("send lag µs (actual − intended send time)", r.SendLagUS)
		fmt.Printf("generator CPU %.2fs over the window, %.2f µs/msg\n", r.GenCPUSec, r.GenCPUPerMsgUS)
	case "handshake":
		fmt.Printf("%d upgrades in %.1fs: %.0f/s\n", r.Upgrades, r.WindowSec, r.UpgradesPerS)
		printLatency("handshake µs (connect + upgrade)", r.LatencyUS)
		printLatency("first echo µs", r.EchoLatencyUS)
	case "fanout":
		fmt.Printf("%d sessions, window %.1fs: %d pushed messages received, %.0f msg/s\n", r.Established, r.WindowSec, r.Messages, r.MsgsPerSec)
		printLatency("push-to-receipt µs", r.LatencyUS)
	case "idle":
		fmt.Printf("held %.1fs, dropped during hold %d\n", r.HoldSec, r.DroppedDuringHold)
		fmt.Printf("echo ok %d, failed %d\n", r.EchoOK, r.EchoFailed)
	}
	fmt.Printf("session errors %d, closing handshakes failed %d\n", r.SessionErrors, r.CloseFailed)
	for _, e := range r.Errors {
		fmt.Printf("  error: %s\n", e)
	}
}

func printLatency(what string, l *load.Latency) {
	if l == nil {
		return
	}
	fmt.Printf("%s  p50 %.0f  p90 %.0f  p99 %.0f  p99.9 %.0f  max %.0f  (mean %.0f, n=%d)\n",
		what, l.P50, l.P90, l.P99, l.P999, l.Max, l.Mean, l.Count)
}

// raiseNoFile lifts the soft limit on open files to the hard limit.
func raiseNoFile() {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil && rl.Cur < rl.Max {
		rl.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			fmt.Fprintln(os.Stderr, "wsload: raising RLIMIT_NOFILE:", err)
		}
	}
}

// startProfile starts a CPU profile written to path; the returned func
// stops it.
func startProfile(path string) func() {
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "wsload: cpuprofile:", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintln(os.Stderr, "wsload: cpuprofile:", err)
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}
