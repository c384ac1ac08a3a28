package runner

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// Stat is the median, minimum and maximum of one figure over the
// successful runs of a target and scenario.
type Stat struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	N      int     `json:"n"`
}

func statOf(v []float64) Stat {
	if len(v) == 0 {
		return Stat{}
	}
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return Stat{Median: med, Min: s[0], Max: s[n-1], N: n}
}

// Summary aggregates the runs of one scenario against one target.
type Summary struct {
	Scenario string          `json:"scenario"`
	Target   string          `json:"target"`
	Runs     int             `json:"runs"`
	Failed   int             `json:"failed"`
	Errors   []string        `json:"errors,omitempty"`
	Metrics  map[string]Stat `json:"metrics"`
}

// metric is one column of a scenario's table.
type metric struct {
	key, header, format string
	get                 func(r *Run) float64
}

func lat(f func(*Run) *float64) func(*Run) float64 {
	return func(r *Run) float64 {
		if p := f(r); p != nil {
			return *p
		}
		return 0
	}
}

var (
	mP50     = metric{"p50_us", "p50 µs", "%.0f", lat(func(r *Run) *float64 { return latp(r, 50) })}
	mP90     = metric{"p90_us", "p90 µs", "%.0f", lat(func(r *Run) *float64 { return latp(r, 90) })}
	mP99     = metric{"p99_us", "p99 µs", "%.0f", lat(func(r *Run) *float64 { return latp(r, 99) })}
	mP999    = metric{"p99_9_us", "p99.9 µs", "%.0f", lat(func(r *Run) *float64 { return latp(r, 999) })}
	mMax     = metric{"max_us", "max µs", "%.0f", lat(func(r *Run) *float64 { return latp(r, 100) })}
	mCPUMsg  = metric{"target_cpu_per_msg_us", "target CPU µs/msg", "%.2f", func(r *Run) float64 { return r.TargetCPUPerMsgUS }}
	mCPUPct  = metric{"target_cpu_pct", "target CPU % core", "%.0f", func(r *Run) float64 { return r.TargetCPUPct }}
	mLoadPct = metric{"load_side_cpu_pct", "gen+backend CPU % core", "%.0f", func(r *Run) float64 { return r.LoadSideCPUPct }}
	mOther   = metric{"other_cpu_pct", "other CPU % core", "%.0f", func(r *Run) float64 { return r.OtherCPUPct }}
	mErrors  = metric{"errors", "errors", "%.0f", func(r *Run) float64 {
		return float64(r.Load.DialFailures + r.Load.SessionErrors + r.Load.EchoFailed)
	}}
)

func latp(r *Run, q int) *float64 {
	l := r.Load.LatencyUS
	if l == nil {
		return nil
	}
	switch q {
	case 50:
		return &l.P50
	case 90:
		return &l.P90
	case 99:
		return &l.P99
	case 999:
		return &l.P999
	}
	return &l.Max
}

// throughputMetrics are the columns of both throughput scenarios.
var throughputMetrics = []metric{
	{"msgs_per_sec", "msg/s", "%.0f", func(r *Run) float64 { return r.Load.MsgsPerSec }},
	mP50, mP99, mP999, mCPUMsg, mCPUPct, mLoadPct, mOther, mErrors,
}

// scenarioMetrics are the figures summarised (and tabulated) per scenario.
var scenarioMetrics = map[string][]metric{
	"throughput":    throughputMetrics,
	"throughput-1k": throughputMetrics,
	"latency": {
		{"msgs_per_sec", "echoed msg/s", "%.0f", func(r *Run) float64 { return r.Load.MsgsPerSec }},
		{"lost", "lost", "%.0f", func(r *Run) float64 { return float64(r.Load.Lost) }},
		mP50, mP90, mP99, mP999, mMax,
		{"send_lag_p99_us", "send lag p99 µs", "%.0f", func(r *Run) float64 {
			if r.Load.SendLagUS == nil {
				return 0
			}
			return r.Load.SendLagUS.P99
		}},
		mCPUMsg, mCPUPct, mLoadPct, mOther, mErrors,
	},
	"handshake": {
		{"upgrades_per_sec", "upgrades/s", "%.0f", func(r *Run) float64 { return r.Load.UpgradesPerS }},
		mP50, mP99, mP999,
		{"echo_p50_us", "first echo p50 µs", "%.0f", func(r *Run) float64 {
			if r.Load.EchoLatencyUS == nil {
				return 0
			}
			return r.Load.EchoLatencyUS.P50
		}},
		{"target_cpu_per_upgrade_us", "target CPU µs/upgrade", "%.1f", func(r *Run) float64 { return r.TargetCPUPerUpgradeUS }},
		mCPUPct, mLoadPct, mOther, mErrors,
	},
	"fanout": {
		{"msgs_per_sec", "delivered msg/s", "%.0f", func(r *Run) float64 { return r.Load.MsgsPerSec }},
		mP50, mP99, mP999, mMax, mCPUMsg, mCPUPct, mOther, mErrors,
	},
	"idle": {
		{"established", "established", "%.0f", func(r *Run) float64 { return float64(r.Load.Established) }},
		{"target_kb_per_session", "target kB/session", "%.1f", func(r *Run) float64 { return r.TargetKBPerSession }},
		{"target_rss_hold_kb", "target RSS in hold kB", "%.0f", func(r *Run) float64 { return float64(r.TargetRSSHoldKB) }},
		{"idle_cpu_pct", "target CPU % core while idle", "%.2f", func(r *Run) float64 { return r.IdleCPUPct }},
		{"backend_kb_per_session", "backend kB/session", "%.1f", func(r *Run) float64 { return r.BackendKBPerSession }},
		{"dropped", "dropped in hold", "%.0f", func(r *Run) float64 { return float64(r.Load.DroppedDuringHold) }},
		mErrors,
	},
}

// Summarize aggregates runs per scenario and target, in the order of
// opts.Scenarios and opts.Targets.
func Summarize(opts Options, runs []Run) []Summary {
	var out []Summary
	for _, sc := range opts.Scenarios {
		for _, tg := range opts.Targets {
			s := Summary{Scenario: sc, Target: tg, Metrics: map[string]Stat{}}
			vals := map[string][]float64{}
			for i := range runs {
				r := &runs[i]
				if r.Scenario != sc || r.Target != tg {
					continue
				}
				s.Runs++
				if r.Error != "" || r.Load == nil {
					s.Failed++
					if r.Error != "" && len(s.Errors) < 3 {
						s.Errors = append(s.Errors, r.Error)
					}
					continue
				}
				for _, m := range scenarioMetrics[sc] {
					vals[m.key] = append(vals[m.key], m.get(r))
				}
			}
			if s.Runs == 0 {
				continue
			}
			for k, v := range vals {
				s.Metrics[k] = statOf(v)
			}
			out = append(out, s)
		}
	}
	return out
}

func cell(format string, st Stat) string {
	if st.N == 0 {
		return "–"
	}
	if st.N == 1 || st.Min == st.Max {
		return fmt.Sprintf(format, st.Median)
	}
	return fmt.Sprintf(format+" (%s–%s)", st.Median, fmt.Sprintf(format, st.Min), fmt.Sprintf(format, st.Max))
}

// scenarioTitle describes a scenario's parameters.
func scenarioTitle(o Options, sc string) string {
	switch sc {
	case "throughput":
		return fmt.Sprintf("Throughput (closed loop): %d sessions × %d in flight × %d B, %v measured after %v warm-up.", o.Conns, o.InFlight, o.Size, o.Duration, o.Warmup)
	case "throughput-1k":
		return fmt.Sprintf("Throughput, many sessions (throughput-1k, closed loop): %d sessions × %d in flight × %d B, %v measured after %v warm-up.", o.Conns1k, o.InFlight1k, o.Size1k, o.Duration, o.Warmup)
	case "latency":
		return fmt.Sprintf("Latency (open loop): %d sessions at %.0f msg/s in total, %d B, %v measured after %v warm-up; latency from each message's intended send time (coordinated omission corrected).", o.LatConns, o.Rate, o.Size, o.Duration, o.Warmup)
	case "handshake":
		return fmt.Sprintf("Handshakes: %d workers opening sessions (upgrade, one %d B echo, close) back to back, %v measured after %v warm-up; latency = TCP connect + upgrade.", o.HSConns, o.Size, o.Duration, o.Warmup)
	case "fanout":
		return fmt.Sprintf("Fan-out: wsecho pushes %d B to each of %d sessions every %v (%.0f msg/s asked), %v measured after %v warm-up; latency = push to receipt.", o.FanSize, o.FanConns, o.FanInterval, float64(o.FanConns)/o.FanInterval.Seconds(), o.Duration, o.Warmup)
	case "idle":
		return fmt.Sprintf("Idle sessions: %d sessions held %v, then one echo each; CPU while idle from READY to HOLD-END.", o.Idle, o.Hold)
	}
	return sc
}

// Markdown renders the summaries: first the figures of merit against
// issue 3's targets (FiguresOfMerit), then one table per scenario, one row
// per target, each cell the median over the runs with the range in
// brackets.
func Markdown(w io.Writer, opts Options, host Host, pinned bool, runs []Run) {
	sums := Summarize(opts, runs)
	meritMarkdown(w, opts, FiguresOfMerit(opts, sums))
	pin := "not pinned"
	if pinned {
		pin = "load generator + wsecho on CPU 0, proxy on CPU 1 (taskset)"
	}
	fmt.Fprintf(w, "Host: %d CPUs (%s), Linux %s, %s; %s.", host.CPUs, host.CPUModel, host.Kernel, host.GoVersion, pin)
	if opts.CapPct > 0 {
		fmt.Fprintf(w, " Proxies capped at %.0f%% of a core (CPU cgroup).", opts.CapPct)
	}
	fmt.Fprintln(w)
	if len(host.Peers) > 0 {
		var ps []string
		for _, t := range opts.Targets {
			if v, ok := host.Peers[t]; ok {
				ps = append(ps, t+": "+v)
			}
		}
		fmt.Fprintf(w, "Peers: %s.\n", strings.Join(ps, "; "))
	}
	fmt.Fprintf(w, "Medians of %d run(s) per cell, range (min–max) in brackets.\n\n", opts.Runs)
	for _, sc := range opts.Scenarios {
		var rows []Summary
		for _, s := range sums {
			if s.Scenario == sc {
				rows = append(rows, s)
			}
		}
		if len(rows) == 0 {
			continue
		}
		ms := scenarioMetrics[sc]
		fmt.Fprintf(w, "%s\n\n| target | runs ok |", scenarioTitle(opts, sc))
		for _, m := range ms {
			fmt.Fprintf(w, " %s |", m.header)
		}
		fmt.Fprint(w, "\n|---|--:|")
		for range ms {
			fmt.Fprint(w, "--:|")
		}
		fmt.Fprintln(w)
		for _, s := range rows {
			fmt.Fprintf(w, "| %s | %d/%d |", s.Target, s.Runs-s.Failed, s.Runs)
			for _, m := range ms {
				fmt.Fprintf(w, " %s |", cell(m.format, s.Metrics[m.key]))
			}
			fmt.Fprintln(w)
		}
		for _, s := range rows {
			for _, e := range s.Errors {
				fmt.Fprintf(w, "\n%s failed: %s\n", s.Target, mdEscape(e))
			}
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "target = the measured process: wsecho for direct, the proxy otherwise. CPU is user+system time from /proc/PID/stat summed over the target's process tree over the measured window; RSS is VmRSS summed over the target's process tree (all of nginx's processes), the highest reading during the hold.")
}
