package load

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"sync"
	"syscall"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Config describes one load run. Zero values take the defaults noted.
type Config struct {
	Scenario string // "throughput", "latency", "handshake", "fanout" or "idle"
	URL      string // ws://host:port/path

	// throughput
	Conns    int           // sessions (default 100)
	InFlight int           // messages in flight per session (default 8)
	Size     int           // message size in bytes, >= 8 (default 64)
	Duration time.Duration // measured window (default 10s)
	Warmup   time.Duration // unmeasured time before the window (throughput, latency, fanout)

	// latency: total send rate over all Conns sessions, messages/s
	// (default 1000), open loop.
	Rate float64
	// latency: how long to wait for outstanding echoes after the window
	// (default 5s); messages still missing then are counted as lost.
	Drain time.Duration

	// handshake: upper bound on sessions opened (default 1,000,000), on top
	// of the time bound Warmup + Duration.
	MaxSessions int

	// idle
	Idle        int           // sessions to open (default 1000)
	Hold        time.Duration // how long to hold them (default 10s)
	ReadyFile   string        // created once all dials are done
	HoldEnd     <-chan struct{}
	EchoTimeout time.Duration // per-session echo check after the hold (default 5s)

	DialConcurrency int           // parallel dials (default 200)
	DialTimeout     time.Duration // connect + handshake (default 5s)
	Protocols       []string      // offered subprotocols

	// Marker receives marker lines ("WSLOAD ...") as they happen.
	Marker func(line string)
}

func (c *Config) defaults() error {
	if c.Conns <= 0 {
		c.Conns = 100
	}
	if c.InFlight <= 0 {
		c.InFlight = 8
	}
	if c.Size == 0 {
		c.Size = 64
	}
	if c.Size < 8 {
		return fmt.Errorf("message size %d: must be at least 8 (the timestamp)", c.Size)
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Rate <= 0 {
		c.Rate = 1000
	}
	if c.Drain <= 0 {
		c.Drain = 5 * time.Second
	}
	if c.MaxSessions <= 0 {
		c.MaxSessions = 1_000_000
	}
	if c.Idle <= 0 {
		c.Idle = 1000
	}
	if c.Hold <= 0 {
		c.Hold = 10 * time.Second
	}
	if c.EchoTimeout <= 0 {
		c.EchoTimeout = 5 * time.Second
	}
	if c.DialConcurrency <= 0 {
		c.DialConcurrency = 200
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = 5 * time.Second
	}
	if c.Marker == nil {
		c.Marker = func(string) {}
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		return fmt.Errorf("url: %w", err)
	}
	if u.Scheme != "ws" {
		return fmt.Errorf("url %q: only ws:// is supported", c.URL)
	}
	return nil
}

// Latency summarises a latency histogram, in microseconds.
type Latency struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p99_9"`
	Max   float64 `json:"max"`
}

// Result is the outcome of a run. Fields that do not apply to the scenario
// are zero and omitted from JSON.
type Result struct {
	Scenario     string   `json:"scenario"`
	URL          string   `json:"url"`
	Sessions     int      `json:"sessions"`
	Established  int      `json:"established"`
	DialFailures int      `json:"dial_failures"`
	DialErrors   []string `json:"dial_errors,omitempty"`

	// throughput
	InFlight      int      `json:"in_flight,omitempty"`
	Size          int      `json:"size,omitempty"`
	WindowSec     float64  `json:"window_sec,omitempty"`
	Messages      int64    `json:"messages,omitempty"`
	MsgsPerSec    float64  `json:"msgs_per_sec,omitempty"`
	MBPerSec      float64  `json:"mb_per_sec,omitempty"`
	LatencyUS     *Latency `json:"latency_us,omitempty"`
	SessionErrors int      `json:"session_errors"`
	CloseFailed   int      `json:"close_failed"` // closing handshakes not completed
	Errors        []string `json:"errors,omitempty"`

	// latency: the rate asked for, the rate of messages scheduled in the
	// window, and the messages scheduled in the window whose echo never
	// came (within Drain).
	TargetRate float64 `json:"target_rate,omitempty"`
	SentPerSec float64 `json:"sent_per_sec,omitempty"`
	Lost       int64   `json:"lost,omitempty"`
	// latency: how late the generator wrote each message after its
	// intended time (timer wake-up, scheduling, a blocked write): a part
	// of LatencyUS that is the load side's, or back-pressure.
	SendLagUS *Latency `json:"send_lag_us,omitempty"`

	// handshake: sessions completed (upgrade, one echo, close) in the
	// window, per second; LatencyUS is then the handshake time (TCP
	// connect + upgrade), EchoLatencyUS the first echo's.
	Upgrades      int64    `json:"upgrades,omitempty"`
	UpgradesPerS  float64  `json:"upgrades_per_sec,omitempty"`
	EchoLatencyUS *Latency `json:"echo_latency_us,omitempty"`

	// idle
	HoldSec           float64 `json:"hold_sec,omitempty"`
	DroppedDuringHold int     `json:"dropped_during_hold"`
	EchoOK            int     `json:"echo_ok"`
	EchoFailed        int     `json:"echo_failed"`

	// The generator's own CPU time (user+system) over the measured window
	// (throughput) or the whole run (idle), and per echoed message.
	GenCPUSec      float64 `json:"gen_cpu_sec"`
	GenCPUPerMsgUS float64 `json:"gen_cpu_per_msg_us,omitempty"`
}

// Scenario runs one kind of load.
type Scenario func(ctx context.Context, cfg Config) (*Result, error)

var scenarios = map[string]Scenario{
	"throughput": Throughput,
	"latency":    OpenLoop,
	"handshake":  Handshake,
	"fanout":     Fanout,
	"idle":       Idle,
}

// Scenarios lists the scenario names.
func Scenarios() []string {
	names := make([]string, 0, len(scenarios))
	for n := range scenarios {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Run runs cfg.Scenario.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	s, ok := scenarios[cfg.Scenario]
	if !ok {
		return nil, fmt.Errorf("unknown scenario %q (have %v)", cfg.Scenario, Scenarios())
	}
	return s(ctx, cfg)
}

// cpuTime returns this process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// errSamples keeps a count of errors and the first few distinct messages.
type errSamples struct {
	mu      sync.Mutex
	n       int
	samples []string
}

func (e *errSamples) add(err error) {
	if err == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.n++
	msg := err.Error()
	if len(e.samples) < 5 && !slices.Contains(e.samples, msg) {
		e.samples = append(e.samples, msg)
	}
}

// newHist returns a histogram of nanoseconds from 1µs to 60s, 3 digits.
func newHist() *hdrhistogram.Histogram {
	return hdrhistogram.New(1000, 60e9, 3)
}

func summarize(h *hdrhistogram.Histogram) *Latency {
	us := func(v int64) float64 { return float64(v) / 1e3 }
	return &Latency{
		Count: h.TotalCount(),
		Mean:  h.Mean() / 1e3,
		P50:   us(h.ValueAtQuantile(50)),
		P90:   us(h.ValueAtQuantile(90)),
		P99:   us(h.ValueAtQuantile(99)),
		P999:  us(h.ValueAtQuantile(99.9)),
		Max:   us(h.Max()),
	}
}

// dialAll opens n sessions with at most cfg.DialConcurrency dials at once,
// without retry. open is called for each attempt (index i) and returns an
// error on failure. It returns the number of failures.
func dialAll(ctx context.Context, n, concurrency int, open func(ctx context.Context, i int) error, errs *errSamples) int {
	var wg sync.WaitGroup
	sem := make(chan struct{}, concurrency)
	var mu sync.Mutex
	failed := 0
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			mu.Lock()
			failed += n - i
			mu.Unlock()
			wg.Wait()
			return failed
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := open(ctx, i); err != nil {
				errs.add(err)
				mu.Lock()
				failed++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return failed
}

var errInterrupted = errors.New("interrupted")
