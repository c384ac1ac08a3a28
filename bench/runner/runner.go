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
	KnownTargets   = []string{"direct", "floor", "wsgate", "haproxy", "nginx", "caddy"}
	KnownScenarios = []string{"throughput", "throughput-1k", "latency", "handshake", "fanout", "idle"}
)

// wsloadScenario is the wsload scenario that runs a runner scenario:
// throughput-1k is wsload's throughput with its own parameters.
func wsloadScenario(scenario string) string {
	if scenario == "throughput-1k" {
		return "throughput"
	}
	return scenario
}

// Options configure a benchmark session.
type Options struct {
	Targets   []string `json:"targets"`
	Scenarios []string `json:"scenarios"`

	Wsecho     string `json:"wsecho"`      // path of the wsecho binary
	Wsload     string `json:"wsload"`      // path of the wsload binary
	Wsgate     string `json:"wsgate"`      // path of the wsgate binary (target wsgate)
	WsgateArgs string `json:"wsgate_args"` // arguments; {config} is replaced by the config path
	// Floor is the path of wsfloor (bench/floor/relay.c), the minimal byte
	// relay of target floor; empty: that target is skipped.
	Floor string `json:"floor,omitempty"`

	// Peer proxies' binaries (targets haproxy, nginx, caddy); empty: looked
	// up in PATH, /usr/sbin and /usr/bin. A peer that is not found is
	// skipped with a message.
	Haproxy string `json:"haproxy,omitempty"`
	Nginx   string `json:"nginx,omitempty"`
	Caddy   string `json:"caddy,omitempty"`

	Backend string `json:"backend"` // wsecho's address
	Listen  string `json:"listen"`  // the proxy's WebSocket address (every proxy target)
	Admin   string `json:"admin"`   // wsgate's admin address (GET /readyz)

	// throughput: Conns sessions × InFlight messages × Size bytes, closed
	// loop, Warmup + Duration (Size also sizes latency and handshake
	// messages).
	Conns    int           `json:"conns"`
	InFlight int           `json:"in_flight"`
	Size     int           `json:"size"`
	Duration time.Duration `json:"duration_ns"`
	Warmup   time.Duration `json:"warmup_ns"`
	Idle     int           `json:"idle"`
	Hold     time.Duration `json:"hold_ns"`

	// throughput-1k: the second throughput scenario, many sessions with
	// one larger message in flight each: Conns1k × InFlight1k × Size1k.
	Conns1k    int `json:"tp1k_conns"`
	InFlight1k int `json:"tp1k_in_flight"`
	Size1k     int `json:"tp1k_size"`

	// latency: LatConns sessions at Rate messages/s in total, open loop,
	// Size bytes, Warmup + Duration.
	LatConns int     `json:"lat_conns"`
	Rate     float64 `json:"rate"`
	// handshake: HSConns concurrent workers for Warmup + Duration.
	HSConns int `json:"hs_conns"`
	// fanout: FanConns sessions; wsecho pushes FanSize bytes to each every
	// FanInterval.
	FanConns    int           `json:"fan_conns"`
	FanInterval time.Duration `json:"fan_interval_ns"`
	FanSize     int           `json:"fan_size"`

	// Runs is how many times each scenario runs against each target;
	// targets alternate within each round.
	Runs int `json:"runs"`

	// CapPct, if > 0, limits the proxy's processes to this share of one
	// core with a CPU cgroup (cgroup v2 cpu.max, else v1 cfs quota) when
	// one is writable; target direct is never capped.
	CapPct float64 `json:"cap_pct,omitempty"`

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

// DefaultOptions returns the standard benchmark, the scenarios of issue 3's
// target table: throughput C=100 K=8 S=64, throughput-1k C=1000 K=1
// S=1024, latency C=1000 at 20,000 msg/s, handshake with 50 workers, plus
// fanout to 1000 sessions every 100 ms, each for 10 s, and idle N=1000
// for 10 s (make bench: N=9000); three runs of each against direct and
// wsgate.
func DefaultOptions() Options {
	return Options{
		Targets:     []string{"direct", "wsgate"},
		Scenarios:   slices.Clone(KnownScenarios),
		WsgateArgs:  "run --config {config}",
		Backend:     "127.0.0.1:19001",
		Listen:      "127.0.0.1:18080",
		Admin:       "127.0.0.1:19090",
		Conns:       100,
		InFlight:    8,
		Size:        64,
		Conns1k:     1000,
		InFlight1k:  1,
		Size1k:      1024,
		Duration:    10 * time.Second,
		Warmup:      time.Second,
		Idle:        1000,
		Hold:        10 * time.Second,
		LatConns:    1000,
		Rate:        20000,
		HSConns:     50,
		FanConns:    1000,
		FanInterval: 100 * time.Millisecond,
		FanSize:     64,
		Runs:        3,
		Pin:         true,
	}
}

// Run is the outcome of one scenario against one target. The "target" is
// the process whose cost is measured: wsecho itself for direct, the proxy
// for the others (the backend is then measured too).
type Run struct {
	Target   string       `json:"target"`
	Scenario string       `json:"scenario"`
	Round    int          `json:"round"` // 1..Options.Runs
	Pinned   bool         `json:"pinned"`
	CapPct   float64      `json:"cap_pct,omitempty"` // the proxy's CPU cap, when applied
	Load     *load.Result `json:"load,omitempty"`
	Error    string       `json:"error,omitempty"`

	// throughput, latency, handshake, fanout: CPU time (user+system) over
	// the measured window.
	WindowSec          float64 `json:"window_sec,omitempty"`
	TargetCPUSec       float64 `json:"target_cpu_sec,omitempty"`
	TargetCPUPct       float64 `json:"target_cpu_pct_of_core,omitempty"`
	TargetCPUPerMsgUS  float64 `json:"target_cpu_per_msg_us,omitempty"`
	BackendCPUSec      float64 `json:"backend_cpu_sec,omitempty"`
	BackendCPUPerMsgUS float64 `json:"backend_cpu_per_msg_us,omitempty"`
	// handshake: the target's CPU time per completed session (upgrade, one
	// echo, close).
	TargetCPUPerUpgradeUS float64 `json:"target_cpu_per_upgrade_us,omitempty"`
	// fanout: messages/s wsecho was asked to push (sessions / interval).
	ExpectedPerSec float64 `json:"expected_per_sec,omitempty"`
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
	// idle: the target's CPU time from READY to HOLD-END (all sessions
	// open, nothing sent), in % of one core.
	IdleHoldSec float64 `json:"idle_hold_sec,omitempty"`
	IdleCPUPct  float64 `json:"idle_cpu_pct_of_core"`
	IdleCPUSec  float64 `json:"idle_cpu_sec"`
}

// Runner runs benchmarks with fixed options.
type Runner struct {
	opts     Options
	taskset  string
	peers    map[string]string // target → binary
	versions map[string]string // target → version line
	cg       *cgroup           // CPU cap for the proxy, nil if none
	notes    []string
}

// New checks opts and returns a Runner. Peer targets whose binary is not
// installed are dropped, with a note on opts.Progress.
func New(opts Options) (*Runner, error) {
	if opts.Progress == nil {
		opts.Progress = io.Discard
	}
	r := &Runner{peers: map[string]string{}, versions: map[string]string{}}
	var targets []string
	for _, t := range opts.Targets {
		if !slices.Contains(KnownTargets, t) {
			return nil, fmt.Errorf("unknown target %q (have %v)", t, KnownTargets)
		}
		switch t {
		case "wsgate":
			if opts.Wsgate == "" {
				return nil, errors.New("target wsgate needs the wsgate binary (-wsgate PATH)")
			}
			r.peers[t] = opts.Wsgate
		case "floor":
			if opts.Floor == "" {
				r.note(opts.Progress, "skipping target floor: no wsfloor binary (make build compiles bench/floor/relay.c when cc is installed)")
				continue
			}
			r.peers[t] = opts.Floor
		case "haproxy", "nginx", "caddy":
			bin := findPeer(t, map[string]string{"haproxy": opts.Haproxy, "nginx": opts.Nginx, "caddy": opts.Caddy}[t])
			if bin == "" {
				r.note(opts.Progress, fmt.Sprintf("skipping target %s: not installed (make bench-peers installs it)", t))
				continue
			}
			r.peers[t] = bin
			r.versions[t] = peerVersion(t, bin)
		}
		targets = append(targets, t)
	}
	if len(targets) == 0 {
		return nil, errors.New("no target left to run")
	}
	opts.Targets = targets
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
	if opts.Runs <= 0 {
		opts.Runs = 1
	}
	if opts.Pin {
		if p, err := exec.LookPath("taskset"); err == nil {
			r.taskset = p
		}
	}
	if opts.CapPct > 0 {
		cg, err := newCgroup(opts.CapPct)
		if err != nil {
			r.note(opts.Progress, fmt.Sprintf("no CPU cap: %v; running uncapped", err))
			opts.CapPct = 0
		} else {
			r.cg = cg
			r.note(opts.Progress, fmt.Sprintf("proxies capped at %.0f%% of a core with %s", opts.CapPct, cg))
		}
	}
	r.opts = opts
	return r, nil
}

func (r *Runner) note(w io.Writer, s string) {
	r.notes = append(r.notes, s)
	fmt.Fprintln(w, "wsbench: "+s)
}

// Close removes the CPU cgroup, if one was made. Call it once every run
// is over.
func (r *Runner) Close() error {
	if r.cg != nil {
		return r.cg.remove()
	}
	return nil
}

// Pinned reports whether processes are pinned to CPUs.
func (r *Runner) Pinned() bool { return r.taskset != "" }

// Options returns the options in force (targets not installed dropped, the
// cap cleared when it cannot be applied).
func (r *Runner) Options() Options { return r.opts }

// Versions returns the version line of each peer proxy.
func (r *Runner) Versions() map[string]string { return r.versions }

// Notes returns the notes printed while setting up (skipped targets, cap).
func (r *Runner) Notes() []string { return r.notes }

// Execute runs every scenario against every target Options.Runs times. In
// each round the scenarios run in order and, for each, every target in
// turn, the first target rotating from round to round, so that slow drifts
// of the machine spread over all targets. A failed run is recorded in its
// Run.Error and the others go on.
func (r *Runner) Execute(ctx context.Context) []Run {
	o := &r.opts
	total := o.Runs * len(o.Targets) * len(o.Scenarios)
	var runs []Run
	i := 0
	for round := 1; round <= o.Runs; round++ {
		for _, scenario := range o.Scenarios {
			for k := range o.Targets {
				target := o.Targets[(k+round-1)%len(o.Targets)]
				i++
				if ctx.Err() != nil {
					return runs
				}
				if o.QuietWait > 0 {
					if busy, ok := waitQuiet(ctx, o.QuietWait); !ok {
						fmt.Fprintf(o.Progress, "[%d/%d] machine still %.0f%% busy after %v; running anyway\n", i, total, busy, o.QuietWait)
					}
				}
				fmt.Fprintf(o.Progress, "[%d/%d] round %d: %s %s: %s ...\n", i, total, round, target, scenario, r.describe(scenario))
				run := r.runOne(ctx, target, scenario)
				run.Round = round
				capped := ""
				if run.CapPct > 0 {
					capped = fmt.Sprintf(" (capped at %.0f%% of a core)", run.CapPct)
				}
				fmt.Fprintf(o.Progress, "[%d/%d] round %d: %s %s%s: %s\n", i, total, round, target, scenario, capped, summary(&run))
				runs = append(runs, run)
			}
		}
	}
	return runs
}

func (r *Runner) describe(scenario string) string {
	o := &r.opts
	switch scenario {
	case "idle":
		return fmt.Sprintf("n=%d hold=%v", o.Idle, o.Hold)
	case "latency":
		return fmt.Sprintf("c=%d rate=%.0f/s s=%d d=%v warmup=%v", o.LatConns, o.Rate, o.Size, o.Duration, o.Warmup)
	case "handshake":
		return fmt.Sprintf("c=%d s=%d d=%v warmup=%v", o.HSConns, o.Size, o.Duration, o.Warmup)
	case "fanout":
		return fmt.Sprintf("c=%d push every %v × %d B d=%v warmup=%v", o.FanConns, o.FanInterval, o.FanSize, o.Duration, o.Warmup)
	case "throughput-1k":
		return fmt.Sprintf("c=%d k=%d s=%d d=%v warmup=%v", o.Conns1k, o.InFlight1k, o.Size1k, o.Duration, o.Warmup)
	}
	return fmt.Sprintf("c=%d k=%d s=%d d=%v warmup=%v", o.Conns, o.InFlight, o.Size, o.Duration, o.Warmup)
}

func summary(run *Run) string {
	if run.Error != "" {
		return "FAILED: " + run.Error
	}
	l := run.Load
	var s string
	switch run.Scenario {
	case "throughput", "throughput-1k":
		s = fmt.Sprintf("%.0f msg/s", l.MsgsPerSec)
		if l.LatencyUS != nil {
			s += fmt.Sprintf(", p50 %.0fµs p99 %.0fµs", l.LatencyUS.P50, l.LatencyUS.P99)
		}
		s += fmt.Sprintf(", target CPU %.2f µs/msg (%.0f%% of a core), generator+backend %.0f%% of a core",
			run.TargetCPUPerMsgUS, run.TargetCPUPct, run.LoadSideCPUPct)
		if run.Pinned && run.LoadSideCPUPct > 90 && run.Target != "direct" {
			s += " (load side saturated: the target is not the limit)"
		}
	case "latency":
		s = fmt.Sprintf("%.0f of %.0f msg/s echoed, lost %d", l.MsgsPerSec, l.TargetRate, l.Lost)
		if lat := l.LatencyUS; lat != nil {
			s += fmt.Sprintf(", p50 %.0fµs p99 %.0fµs p99.9 %.0fµs", lat.P50, lat.P99, lat.P999)
		}
		if lag := l.SendLagUS; lag != nil {
			s += fmt.Sprintf(", send lag p99 %.0fµs", lag.P99)
		}
		s += fmt.Sprintf(", target CPU %.2f µs/msg (%.0f%% of a core), generator+backend %.0f%% of a core",
			run.TargetCPUPerMsgUS, run.TargetCPUPct, run.LoadSideCPUPct)
		if run.Pinned && run.LoadSideCPUPct > 90 {
			s += " (load side saturated: sends run late, see send lag)"
		}
	case "handshake":
		s = fmt.Sprintf("%.0f upgrades/s", l.UpgradesPerS)
		if lat := l.LatencyUS; lat != nil {
			s += fmt.Sprintf(", handshake p50 %.0fµs p99 %.0fµs", lat.P50, lat.P99)
		}
		s += fmt.Sprintf(", target CPU %.1f µs/upgrade (%.0f%% of a core), %d errors", run.TargetCPUPerUpgradeUS, run.TargetCPUPct, l.DialFailures+l.SessionErrors)
	case "fanout":
		s = fmt.Sprintf("%.0f of %.0f msg/s delivered", l.MsgsPerSec, run.ExpectedPerSec)
		if lat := l.LatencyUS; lat != nil {
			s += fmt.Sprintf(", push-to-receipt p50 %.0fµs p99 %.0fµs", lat.P50, lat.P99)
		}
		s += fmt.Sprintf(", target CPU %.2f µs/msg (%.0f%% of a core)", run.TargetCPUPerMsgUS, run.TargetCPUPct)
	default:
		return fmt.Sprintf("%d/%d sessions, %d echo failures, target %.1f KB/session (RSS %d → %d kB), %.2f%% of a core while idle",
			l.Established, l.Sessions, l.EchoFailed+l.DialFailures, run.TargetKBPerSession, run.TargetRSSBeforeKB, run.TargetRSSHoldKB, run.IdleCPUPct)
	}
	if run.OtherCPUPct > 10 {
		s += fmt.Sprintf("; WARNING: other processes used %.0f%% of a core during the window", run.OtherCPUPct)
	}
	return s
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

	echoArgs := []string{"-listen", r.opts.Backend, "-log", "info"}
	if scenario == "fanout" {
		echoArgs = append(echoArgs, "-push-interval", r.opts.FanInterval.String(), "-push-size", strconv.Itoa(r.opts.FanSize))
		run.ExpectedPerSec = float64(r.opts.FanConns) / r.opts.FanInterval.Seconds()
	}
	backend, err := r.start(tag+"-wsecho", 0, r.opts.Wsecho, echoArgs, nil, nil, false)
	if err != nil {
		return fail(err)
	}
	defer backend.stop()
	if err := waitHTTP(ctx, "http://"+r.opts.Backend+"/", 5*time.Second, backend); err != nil {
		return fail(fmt.Errorf("wsecho: %w", err))
	}
	measured := backend
	url := "ws://" + r.opts.Backend + "/"

	if target != "direct" {
		proxy, ready, err := r.startProxy(target, tag)
		if err != nil {
			return fail(err)
		}
		defer proxy.stop()
		if err := waitHTTP(ctx, ready, 15*time.Second, proxy); err != nil {
			return fail(fmt.Errorf("%s: %w (log: %s)", target, err, proxy.logPath))
		}
		if r.cg != nil {
			run.CapPct = r.opts.CapPct
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

// startProxy writes the target's configuration and starts it on CPU 1
// (in the CPU cgroup when capped). It returns the URL that answers 200
// once the proxy is ready.
func (r *Runner) startProxy(target, tag string) (*proc, string, error) {
	o := &r.opts
	bin := r.peers[target]
	var text, ext string
	var env []string
	ready := "http://" + o.Listen + "/" // proxied to wsecho's GET /
	switch target {
	case "wsgate":
		text, ext = WsgateConfig(o.Listen, o.Admin, o.Backend), ".toml"
		ready = "http://" + o.Admin + "/readyz"
	case "haproxy":
		text, ext = HaproxyConfig(o.Listen, o.Backend), ".cfg"
	case "nginx":
		text, ext = NginxConfig(o.Listen, o.Backend, filepath.Join(o.WorkDir, tag+"-nginx")), ".conf"
	case "floor":
		// A byte relay: no configuration, and wsecho's GET / answers
		// through it.
		p, err := r.start(tag+"-"+target, 1, bin, []string{o.Listen, o.Backend}, nil, nil, true)
		return p, ready, err
	case "caddy":
		text, ext = CaddyConfig(o.Listen, o.Backend), ".Caddyfile"
		dir := filepath.Join(o.WorkDir, tag+"-caddy")
		env = []string{"GOMAXPROCS=1", "XDG_DATA_HOME=" + dir, "XDG_CONFIG_HOME=" + dir, "HOME=" + dir}
	}
	cfgPath := filepath.Join(o.WorkDir, tag+ext)
	if err := os.WriteFile(cfgPath, []byte(text), 0o644); err != nil {
		return nil, "", err
	}
	var args []string
	switch target {
	case "wsgate":
		args = strings.Fields(strings.ReplaceAll(o.WsgateArgs, "{config}", cfgPath))
	case "haproxy":
		args = []string{"-db", "-f", cfgPath}
	case "nginx":
		if err := os.MkdirAll(filepath.Join(o.WorkDir, tag+"-nginx"), 0o755); err != nil {
			return nil, "", err
		}
		args = []string{"-c", cfgPath, "-p", filepath.Join(o.WorkDir, tag+"-nginx")}
	case "caddy":
		args = []string{"run", "--config", cfgPath, "--adapter", "caddyfile"}
	}
	p, err := r.start(tag+"-"+target, 1, bin, args, nil, env, true)
	return p, ready, err
}

func (r *Runner) addrs(target string) []string {
	switch target {
	case "direct":
		return []string{r.opts.Backend}
	case "wsgate":
		return []string{r.opts.Backend, r.opts.Listen, r.opts.Admin}
	}
	return []string{r.opts.Backend, r.opts.Listen}
}

// drive runs wsload against url, sampling the measured process (and the
// backend, when it is another process) at wsload's markers.
func (r *Runner) drive(ctx context.Context, run *Run, scenario, url string, measured, backend *proc) error {
	o := &r.opts
	args := []string{"-scenario", wsloadScenario(scenario), "-url", url, "-json"}
	window := []string{"-d", o.Duration.String(), "-warmup", o.Warmup.String()}
	limit := o.Warmup + o.Duration + 60*time.Second
	switch scenario {
	case "throughput":
		args = append(args, "-c", strconv.Itoa(o.Conns), "-k", strconv.Itoa(o.InFlight), "-s", strconv.Itoa(o.Size))
		args = append(args, window...)
	case "throughput-1k":
		args = append(args, "-c", strconv.Itoa(o.Conns1k), "-k", strconv.Itoa(o.InFlight1k), "-s", strconv.Itoa(o.Size1k))
		args = append(args, window...)
	case "latency":
		args = append(args, "-c", strconv.Itoa(o.LatConns), "-rate", strconv.FormatFloat(o.Rate, 'f', -1, 64), "-s", strconv.Itoa(o.Size))
		args = append(args, window...)
	case "handshake":
		args = append(args, "-c", strconv.Itoa(o.HSConns), "-s", strconv.Itoa(o.Size))
		args = append(args, window...)
	case "fanout":
		args = append(args, "-c", strconv.Itoa(o.FanConns))
		args = append(args, window...)
	case "idle":
		args = append(args, "-n", strconv.Itoa(o.Idle), "-hold", o.Hold.String())
		limit = o.Hold + 120*time.Second
	}
	separate := measured != backend

	before, err := Take(measured.pid())
	if err != nil {
		return err
	}
	beforeBackend, _ := Take(backend.pid())

	pr, pw := io.Pipe()
	gen, err := r.start("wsload-"+run.Target+"-"+scenario, 0, o.Wsload, args, pw, nil, false)
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
		idleStart, idleEnd Sample
		idleOK             int
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
			if s, err := Take(measured.pid()); err == nil {
				idleStart = s
				idleOK++
			}
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
			if s, err := Take(measured.pid()); err == nil {
				idleEnd = s
				idleOK++
			}
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
	case "throughput", "throughput-1k", "latency", "handshake", "fanout":
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
		if n := float64(out.Upgrades); n > 0 {
			run.TargetCPUPerUpgradeUS = run.TargetCPUSec * 1e6 / n
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
		if idleOK == 2 {
			run.IdleHoldSec = idleEnd.At.Sub(idleStart.At).Seconds()
			run.IdleCPUSec = (idleEnd.CPU - idleStart.CPU).Seconds()
			if run.IdleHoldSec > 0 {
				run.IdleCPUPct = 100 * run.IdleCPUSec / run.IdleHoldSec
			}
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

// start runs bin with args, pinned to cpu when pinning is on, with env
// added to the environment. A proxy (inCap) goes into the CPU cgroup, when
// there is one, before it execs, so that every process it forks is in it
// too. Its stderr (and stdout, unless given) goes to a log file in the work
// directory.
func (r *Runner) start(name string, cpu int, bin string, args []string, stdout io.Writer, env []string, inCap bool) (*proc, error) {
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
	if inCap && r.cg != nil {
		// sh writes its own PID into the cgroup and execs: same PID.
		argv = append([]string{"/bin/sh", "-c", `echo $$ > "$0" && exec "$@"`, r.cg.procsFile()}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
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
