package runner

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wsgate/wsgate/bench/load"
)

// Targets and scenarios the runner knows.
var (
	KnownTargets   = []string{"direct", "wsgate"}
	KnownScenarios = []string{"throughput", "idle"}
)

// Options configure a benchmark session.
type Options struct {
	Targets   []string `json:"targets"`
	Scenarios []string `json:"scenarios"`

	Wsecho     string `json:"wsecho"`      // path of the wsecho binary
	Wsload     string `json:"wsload"`      // path of the wsload binary
	Wsgate     string `json:"wsgate"`      // path of the wsgate binary (target wsgate)
	WsgateArgs string `json:"wsgate_args"` // arguments; {config} is replaced by the config path

	Backend string `json:"backend"` // wsecho's address
	Listen  string `json:"listen"`  // wsgate's WebSocket address
	Admin   string `json:"admin"`   // wsgate's admin address (GET /readyz)

	Conns    int           `json:"conns"`
	InFlight int           `json:"in_flight"`
	Size     int           `json:"size"`
	Duration time.Duration `json:"duration_ns"`
	Warmup   time.Duration `json:"warmup_ns"`
	Idle     int           `json:"idle"`
	Hold     time.Duration `json:"hold_ns"`

	// Pin runs the load generator and the backend on CPU 0 and the proxy on
	// CPU 1 with taskset, if taskset is installed.
	Pin bool `json:"pin"`

	// QuietWait, if > 0, makes each run first wait (up to this long) for a
	// second in which the machine is less than 15% busy, so that other
	// work on a shared machine does not skew it.
	QuietWait time.Duration `json:"quiet_wait_ns"`

	WorkDir  string    `json:"-"` // configs and process logs go here
	Progress io.Writer `json:"-"` // one line per run
}

// DefaultOptions returns the standard benchmark: throughput C=100 K=8 S=64
// for 10s and idle N=1000 for 10s, against direct and wsgate.
func DefaultOptions() Options {
	return Options{
		Targets:    []string{"direct", "wsgate"},
		Scenarios:  []string{"throughput", "idle"},
		WsgateArgs: "run --config {config}",
		Backend:    "127.0.0.1:19001",
		Listen:     "127.0.0.1:18080",
		Admin:      "127.0.0.1:19090",
		Conns:      100,
		InFlight:   8,
		Size:       64,
		Duration:   10 * time.Second,
		Warmup:     time.Second,
		Idle:       1000,
		Hold:       10 * time.Second,
		Pin:        true,
	}
}

// Run is the outcome of one scenario against one target. The "target" is
// the process whose cost is measured: wsecho itself for direct, the proxy
// for wsgate (the backend is then measured too).
type Run struct {
	Target   string       `json:"target"`
	Scenario string       `json:"scenario"`
	Pinned   bool         `json:"pinned"`
	Load     *load.Result `json:"load,omitempty"`
	Error    string       `json:"error,omitempty"`

	// throughput: CPU time (user+system) over the measured window.
	WindowSec          float64 `json:"window_sec,omitempty"`
	TargetCPUSec       float64 `json:"target_cpu_sec,omitempty"`
	TargetCPUPct       float64 `json:"target_cpu_pct_of_core,omitempty"`
	TargetCPUPerMsgUS  float64 `json:"target_cpu_per_msg_us,omitempty"`
	BackendCPUSec      float64 `json:"backend_cpu_sec,omitempty"`
	BackendCPUPerMsgUS float64 `json:"backend_cpu_per_msg_us,omitempty"`
	// LoadSideCPUPct is the generator's plus the backend's CPU time over
	// the window, in % of one core: both share CPU 0 when pinned, so near
	// 100 the load side, not the target, limits the throughput.
	LoadSideCPUPct float64 `json:"load_side_cpu_pct_of_core,omitempty"`
	// OtherCPUPct is the CPU time the whole machine was busy over the
	// window minus that of the generator, backend and target, in % of one
	// core: other work on the machine that may have skewed the run.
	OtherCPUPct float64 `json:"other_cpu_pct_of_core"`

	// idle: VmRSS before the sessions and the highest reading during the
	// hold, and the difference per established session.
	TargetRSSBeforeKB      int64   `json:"target_rss_before_kb,omitempty"`
	TargetRSSHoldKB        int64   `json:"target_rss_hold_kb,omitempty"`
	TargetKBPerSession     float64 `json:"target_kb_per_session,omitempty"`
	BackendRSSBeforeKB     int64   `json:"backend_rss_before_kb,omitempty"`
	BackendRSSHoldKB       int64   `json:"backend_rss_hold_kb,omitempty"`
	BackendKBPerSession    float64 `json:"backend_kb_per_session,omitempty"`
	IdleSamples            int     `json:"idle_samples,omitempty"`
	TargetProcessesSampled int     `json:"target_processes,omitempty"`
}

// Runner runs benchmarks with fixed options.
type Runner struct {
	opts    Options
	taskset string
}

// New checks opts and returns a Runner.
func New(opts Options) (*Runner, error) {
	for _, t := range opts.Targets {
		if !slices.Contains(KnownTargets, t) {
			return nil, fmt.Errorf("unknown target %q (have %v)", t, KnownTargets)
		}
		if t == "wsgate" && opts.Wsgate == "" {
			return nil, errors.New("target wsgate needs the wsgate binary (-wsgate PATH)")
		}
	}
	for _, s := range opts.Scenarios {
		if !slices.Contains(KnownScenarios, s) {
			return nil, fmt.Errorf("unknown scenario %q (have %v)", s, KnownScenarios)
		}
	}
	for _, b := range []string{opts.Wsecho, opts.Wsload} {
		if _, err := os.Stat(b); err != nil {
			return nil, fmt.Errorf("binary: %w", err)
		}
	}
	if opts.WorkDir == "" {
		return nil, errors.New("no work directory")
	}
	if opts.Progress == nil {
		opts.Progress = io.Discard
	}
	r := &Runner{opts: opts}
	if opts.Pin {
		if p, err := exec.LookPath("taskset"); err == nil {
			r.taskset = p
		}
	}
	return r, nil
}

// Pinned reports whether processes are pinned to CPUs.
func (r *Runner) Pinned() bool { return r.taskset != "" }

// Execute runs every scenario against every target, in that order. A
// failed run is recorded in its Run.Error and the others go on.
func (r *Runner) Execute(ctx context.Context) []Run {
	total := len(r.opts.Targets) * len(r.opts.Scenarios)
	var runs []Run
	i := 0
	for _, target := range r.opts.Targets {
		for _, scenario := range r.opts.Scenarios {
			i++
			if ctx.Err() != nil {
				return runs
			}
			if r.opts.QuietWait > 0 {
				if busy, ok := waitQuiet(ctx, r.opts.QuietWait); !ok {
					fmt.Fprintf(r.opts.Progress, "[%d/%d] machine still %.0f%% busy after %v; running anyway\n", i, total, busy, r.opts.QuietWait)
				}
			}
			fmt.Fprintf(r.opts.Progress, "[%d/%d] %s %s: %s ...\n", i, total, target, scenario, r.describe(scenario))
			run := r.runOne(ctx, target, scenario)
			fmt.Fprintf(r.opts.Progress, "[%d/%d] %s %s: %s\n", i, total, target, scenario, summary(&run))
			runs = append(runs, run)
		}
	}
	return runs
}

func (r *Runner) describe(scenario string) string {
	o := &r.opts
	if scenario == "idle" {
		return fmt.Sprintf("n=%d hold=%v", o.Idle, o.Hold)
	}
	return fmt.Sprintf("c=%d k=%d s=%d d=%v warmup=%v", o.Conns, o.InFlight, o.Size, o.Duration, o.Warmup)
}

func summary(run *Run) string {
	if run.Error != "" {
		return "FAILED: " + run.Error
	}
	l := run.Load
	switch run.Scenario {
	case "throughput":
		s := fmt.Sprintf("%.0f msg/s", l.MsgsPerSec)
		if l.LatencyUS != nil {
			s += fmt.Sprintf(", p50 %.0fµs p99 %.0fµs", l.LatencyUS.P50, l.LatencyUS.P99)
		}
		s += fmt.Sprintf(", target CPU %.2f µs/msg (%.0f%% of a core), generator+backend %.0f%% of a core",
			run.TargetCPUPerMsgUS, run.TargetCPUPct, run.LoadSideCPUPct)
		if run.Pinned && run.LoadSideCPUPct > 90 && run.Target != "direct" {
			s += " (load side saturated: the target is not the limit)"
		}
		if run.OtherCPUPct > 10 {
			s += fmt.Sprintf("; WARNING: other processes used %.0f%% of a core during the window", run.OtherCPUPct)
		}
		return s
	default:
		return fmt.Sprintf("%d/%d sessions, %d echo failures, target %.1f KB/session (RSS %d → %d kB)",
			l.Established, l.Sessions, l.EchoFailed+l.DialFailures, run.TargetKBPerSession, run.TargetRSSBeforeKB, run.TargetRSSHoldKB)
	}
}

// runOne starts fresh processes for one run, so that one scenario's memory
// does not carry over into the next.
func (r *Runner) runOne(ctx context.Context, target, scenario string) (run Run) {
	run = Run{Target: target, Scenario: scenario, Pinned: r.Pinned()}
	fail := func(err error) Run {
		run.Error = err.Error()
		return run
	}
	tag := target + "-" + scenario
	for _, a := range r.addrs(target) {
		if err := checkFree(a); err != nil {
			return fail(err)
		}
	}

	backend, err := r.start(tag+"-wsecho", 0, r.opts.Wsecho, []string{"-listen", r.opts.Backend, "-log", "info"}, nil)
	if err != nil {
		return fail(err)
	}
	defer backend.stop()
	if err := waitHTTP(ctx, "http://"+r.opts.Backend+"/", 5*time.Second, backend); err != nil {
		return fail(fmt.Errorf("wsecho: %w", err))
	}
	measured := backend
	url := "ws://" + r.opts.Backend + "/"

	if target == "wsgate" {
		cfgPath := filepath.Join(r.opts.WorkDir, tag+".toml")
		if err := os.WriteFile(cfgPath, []byte(WsgateConfig(r.opts.Listen, r.opts.Admin, r.opts.Backend)), 0o644); err != nil {
			return fail(err)
		}
		args := strings.Fields(strings.ReplaceAll(r.opts.WsgateArgs, "{config}", cfgPath))
		proxy, err := r.start(tag+"-wsgate", 1, r.opts.Wsgate, args, nil)
		if err != nil {
			return fail(err)
		}
		defer proxy.stop()
		if err := waitHTTP(ctx, "http://"+r.opts.Admin+"/readyz", 15*time.Second, proxy); err != nil {
			return fail(fmt.Errorf("wsgate: %w (log: %s)", err, proxy.logPath))
		}
		measured = proxy
		url = "ws://" + r.opts.Listen + "/"
	}

	// Let start-up work settle before the baseline.
	select {
	case <-time.After(500 * time.Millisecond):
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	if err := r.drive(ctx, &run, scenario, url, measured, backend); err != nil {
		return fail(err)
	}
	if !measured.alive() {
		return fail(fmt.Errorf("%s exited during the run (log: %s)", measured.name, measured.logPath))
	}
	return run
}

func (r *Runner) addrs(target string) []string {
	if target == "wsgate" {
		return []string{r.opts.Backend, r.opts.Listen, r.opts.Admin}
	}
	return []string{r.opts.Backend}
}

// drive runs wsload against url, sampling the measured process (and the
// backend, when it is another process) at wsload's markers.
func (r *Runner) drive(ctx context.Context, run *Run, scenario, url string, measured, backend *proc) error {
	o := &r.opts
	args := []string{"-scenario", scenario, "-url", url, "-json"}
	var limit time.Duration
	switch scenario {
	case "throughput":
		args = append(args, "-c", strconv.Itoa(o.Conns), "-k", strconv.Itoa(o.InFlight), "-s", strconv.Itoa(o.Size),
			"-d", o.Duration.String(), "-warmup", o.Warmup.String())
		limit = o.Warmup + o.Duration + 60*time.Second
	case "idle":
		args = append(args, "-n", strconv.Itoa(o.Idle), "-hold", o.Hold.String())
		limit = o.Hold + 90*time.Second
	}
	separate := measured != backend

	before, err := Take(measured.pid())
	if err != nil {
		return err
	}
	beforeBackend, _ := Take(backend.pid())

	pr, pw := io.Pipe()
	gen, err := r.start("wsload-"+run.Target+"-"+scenario, 0, o.Wsload, args, pw)
	if err != nil {
		return err
	}
	defer gen.stop()
	go func() {
		<-gen.done
		pw.Close()
	}()
	timer := time.AfterFunc(limit, func() { gen.kill() })
	defer timer.Stop()
	stopCtx := context.AfterFunc(ctx, func() { gen.signal(syscall.SIGINT) })
	defer stopCtx()

	var (
		mStart, mEnd       Sample
		mStartB, mEndB     Sample
		gotStart, gotEnd   bool
		busyStart, busyEnd time.Duration
		holdMax, holdMaxB  int64
		samples            int
		sampling           sync.WaitGroup
		stopSampling       chan struct{}
		resultLine         []byte
		markerErr          error
		sampleMu           sync.Mutex
		targetProcsSampled int
	)
	sampleOnce := func() {
		s, err1 := Take(measured.pid())
		b, _ := Take(backend.pid())
		sampleMu.Lock()
		defer sampleMu.Unlock()
		if err1 != nil {
			markerErr = err1
			return
		}
		samples++
		holdMax = max(holdMax, s.RSSKB)
		holdMaxB = max(holdMaxB, b.RSSKB)
		targetProcsSampled = max(targetProcsSampled, len(s.PIDs))
	}
	sc := bufio.NewScanner(pr)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case string(line) == "WSLOAD MEASURE-START":
			mStart, err = Take(measured.pid())
			mStartB, _ = Take(backend.pid())
			busyStart, _ = machineBusy()
			gotStart = err == nil
		case string(line) == "WSLOAD MEASURE-END":
			mEnd, err = Take(measured.pid())
			mEndB, _ = Take(backend.pid())
			busyEnd, _ = machineBusy()
			gotEnd = err == nil
		case strings.HasPrefix(string(line), "WSLOAD READY"):
			stopSampling = make(chan struct{})
			sampling.Add(1)
			go func(stop chan struct{}) {
				defer sampling.Done()
				t := time.NewTicker(200 * time.Millisecond)
				defer t.Stop()
				for {
					sampleOnce()
					select {
					case <-stop:
						return
					case <-t.C:
					}
				}
			}(stopSampling)
		case string(line) == "WSLOAD HOLD-END":
			if stopSampling != nil {
				close(stopSampling)
				sampling.Wait()
				stopSampling = nil
			}
			sampleOnce()
		case len(line) > 0 && line[0] == '{':
			resultLine = append([]byte(nil), line...)
		}
	}
	if stopSampling != nil {
		close(stopSampling)
		sampling.Wait()
	}
	<-gen.done
	if resultLine == nil {
		return fmt.Errorf("wsload printed no result (exit: %v, log: %s)", gen.err, gen.logPath)
	}
	var out struct {
		load.Result
		Error string `json:"error"`
	}
	if err := json.Unmarshal(resultLine, &out); err != nil {
		return fmt.Errorf("wsload result: %w", err)
	}
	run.Load = &out.Result
	if out.Error != "" {
		return fmt.Errorf("wsload: %s", out.Error)
	}

	switch scenario {
	case "throughput":
		if !gotStart || !gotEnd {
			return errors.New("wsload did not mark the measurement window")
		}
		window := mEnd.At.Sub(mStart.At).Seconds()
		run.WindowSec = window
		run.TargetCPUSec = (mEnd.CPU - mStart.CPU).Seconds()
		run.TargetCPUPct = 100 * run.TargetCPUSec / window
		run.BackendCPUSec = (mEndB.CPU - mStartB.CPU).Seconds()
		run.LoadSideCPUPct = 100 * (run.BackendCPUSec + out.GenCPUSec) / window
		ours := run.TargetCPUSec + out.GenCPUSec
		if separate {
			ours += run.BackendCPUSec
		}
		if busyStart > 0 && busyEnd > 0 {
			run.OtherCPUPct = max(0, 100*((busyEnd-busyStart).Seconds()-ours)/window)
		}
		if n := float64(out.Messages); n > 0 {
			run.TargetCPUPerMsgUS = run.TargetCPUSec * 1e6 / n
			run.BackendCPUPerMsgUS = run.BackendCPUSec * 1e6 / n
		}
	case "idle":
		if markerErr != nil {
			return markerErr
		}
		if samples == 0 {
			return errors.New("no RSS sample during the hold")
		}
		n := float64(out.Established)
		run.IdleSamples = samples
		run.TargetProcessesSampled = targetProcsSampled
		run.TargetRSSBeforeKB = before.RSSKB
		run.TargetRSSHoldKB = holdMax
		run.BackendRSSBeforeKB = beforeBackend.RSSKB
		run.BackendRSSHoldKB = holdMaxB
		if n > 0 {
			run.TargetKBPerSession = float64(holdMax-before.RSSKB) / n
			run.BackendKBPerSession = float64(holdMaxB-beforeBackend.RSSKB) / n
		}
		if !separate {
			run.BackendRSSBeforeKB, run.BackendRSSHoldKB = run.TargetRSSBeforeKB, run.TargetRSSHoldKB
			run.BackendKBPerSession = run.TargetKBPerSession
		}
	}
	return nil
}

// waitQuiet waits until the machine was less than 15% of a core busy over
// one second, or up to limit. It returns the last reading (in % of a core)
// and whether it was quiet.
func waitQuiet(ctx context.Context, limit time.Duration) (float64, bool) {
	deadline := time.Now().Add(limit)
	busy := 0.0
	for {
		b0, err := machineBusy()
		if err != nil {
			return 0, true
		}
		t0 := time.Now()
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
			return busy, false
		}
		b1, _ := machineBusy()
		busy = 100 * (b1 - b0).Seconds() / time.Since(t0).Seconds()
		if busy < 15 {
			return busy, true
		}
		if time.Now().After(deadline) {
			return busy, false
		}
	}
}

// WsgateConfig renders the wsgate configuration used by the wsgate target.
func WsgateConfig(listen, admin, backend string) string {
	return fmt.Sprintf(`# Written by wsbench.
[server]
listen = %q
admin_listen = %q
idle_timeout = "600s"

[[route]]
host = "*"
path_prefix = "/"
pool = "echo"

[[pool]]
name = "echo"
preconnect = 2
dial_timeout = "2s"
  [[pool.backend]]
  address = %q
`, listen, admin, backend)
}

// proc is a child process started by the runner.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error
}

// start runs bin with args, pinned to cpu when pinning is on. Its stderr
// (and stdout, unless given) goes to a log file in the work directory.
func (r *Runner) start(name string, cpu int, bin string, args []string, stdout io.Writer) (*proc, error) {
	logPath := filepath.Join(r.opts.WorkDir, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	argv := append([]string{bin}, args...)
	if r.taskset != "" {
		// taskset execs the program: the PID is the program's.
		argv = append([]string{r.taskset, "-c", strconv.Itoa(cpu)}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stderr = logf
	cmd.Stdout = logf
	if stdout != nil {
		cmd.Stdout = stdout
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

func (p *proc) signal(sig os.Signal) {
	if p.alive() {
		p.cmd.Process.Signal(sig)
	}
}

func (p *proc) kill() { p.signal(syscall.SIGKILL) }

// stop sends SIGTERM to the process (by its PID) and SIGKILL if it has not
// exited 10 seconds later.
func (p *proc) stop() {
	p.signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.kill()
		<-p.done
	}
}

// waitHTTP polls url until it answers 200, the process exits or timeout.
func waitHTTP(ctx context.Context, url string, timeout time.Duration, p *proc) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if !p.alive() {
			return fmt.Errorf("exited before it was ready (%v)", p.err)
		}
		resp, err := client.Get(url)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		last = err
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return fmt.Errorf("not ready after %v: %v", timeout, last)
}

// checkFree fails if something already listens on addr.
func checkFree(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("address %s is not free: %w", addr, err)
	}
	return ln.Close()
}
