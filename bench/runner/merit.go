package runner

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// Figure is one row of the figures of merit: one figure of one scenario,
// the median of each target, and issue 3's target for wsgate with the
// peers' figures the issue reports.
type Figure struct {
	Key      string `json:"key"`
	Label    string `json:"label"` // with the parameters of this run
	Scenario string `json:"scenario"`
	Metric   string `json:"metric"` // key in Summary.Metrics
	Unit     string `json:"unit"`

	// Medians of the targets with at least one successful run.
	Medians map[string]float64 `json:"medians"`
	// Lowest holds the proxy target(s) with the lowest median (direct, the
	// backend alone, only when no proxy was measured).
	Lowest []string `json:"lowest,omitempty"`

	// Issue 3's row, when there is one: its parameters, wsgate's target
	// (at most Goal), and HAProxy 2.6's, NGINX 1.22's and Caddy 2.6's
	// figures there.
	IssueParams string             `json:"issue_params,omitempty"`
	Goal        float64            `json:"wsgate_goal,omitempty"`
	IssuePeers  map[string]float64 `json:"issue_peers,omitempty"`
	// Comparable: this run used the issue's parameters. GoalMet is set
	// when it did and wsgate was measured.
	Comparable bool  `json:"comparable"`
	GoalMet    *bool `json:"wsgate_goal_met,omitempty"`
}

// meritRow defines a figure of merit.
type meritRow struct {
	key, scenario, metric, unit, format string
	label                               func(o Options) string
	// issue 3's row (goal 0: none)
	issueParams string
	goal        float64
	peers       [3]float64 // haproxy, nginx, caddy
	comparable  func(o Options) bool
}

// meritRows are issue 3's target table, in its order, then fan-out and
// idle CPU (no target in the issue).
var meritRows = []meritRow{
	{
		key: "throughput_cpu_per_msg_us", scenario: "throughput", metric: "target_cpu_per_msg_us", unit: "µs", format: "%.2f",
		label: func(o Options) string {
			return fmt.Sprintf("throughput C=%d K=%d S=%d: CPU µs per echoed message", o.Conns, o.InFlight, o.Size)
		},
		issueParams: "C=100 K=8 S=64", goal: 10, peers: [3]float64{12.4, 12.2, 12.2},
		comparable: func(o Options) bool { return o.Conns == 100 && o.InFlight == 8 && o.Size == 64 },
	},
	{
		key: "throughput_1k_cpu_per_msg_us", scenario: "throughput-1k", metric: "target_cpu_per_msg_us", unit: "µs", format: "%.2f",
		label: func(o Options) string {
			return fmt.Sprintf("throughput C=%d K=%d S=%d: CPU µs per echoed message", o.Conns1k, o.InFlight1k, o.Size1k)
		},
		issueParams: "C=1000 K=1 S=1024", goal: 18, peers: [3]float64{23.7, 21.3, 23.7},
		comparable: func(o Options) bool { return o.Conns1k == 1000 && o.InFlight1k == 1 && o.Size1k == 1024 },
	},
	{
		key: "latency_cpu_per_msg_us", scenario: "latency", metric: "target_cpu_per_msg_us", unit: "µs", format: "%.2f",
		label: func(o Options) string {
			return fmt.Sprintf("latency C=%d R=%s/s: CPU µs per echoed message", o.LatConns, thousands(o.Rate))
		},
		issueParams: "C=1000 R=20,000/s", goal: 22, peers: [3]float64{28.1, 26.1, 34.0},
		comparable: func(o Options) bool { return o.LatConns == 1000 && o.Rate == 20000 },
	},
	{
		key: "handshake_cpu_per_upgrade_us", scenario: "handshake", metric: "target_cpu_per_upgrade_us", unit: "µs", format: "%.1f",
		label: func(o Options) string {
			return fmt.Sprintf("handshake C=%d: CPU µs per upgrade", o.HSConns)
		},
		issueParams: "C=50", goal: 80, peers: [3]float64{125, 97, 290},
		comparable: func(o Options) bool { return o.HSConns == 50 },
	},
	{
		key: "idle_kb_per_session", scenario: "idle", metric: "target_kb_per_session", unit: "kB", format: "%.1f",
		label: func(o Options) string {
			return fmt.Sprintf("idle N=%s: memory per proxied session, kB", thousands(float64(o.Idle)))
		},
		issueParams: "N=9,000", goal: 4, peers: [3]float64{4.7, 18.1, 73},
		comparable: func(o Options) bool { return o.Idle == 9000 },
	},
	{
		key: "fanout_cpu_per_msg_us", scenario: "fanout", metric: "target_cpu_per_msg_us", unit: "µs", format: "%.2f",
		label: func(o Options) string {
			return fmt.Sprintf("fan-out C=%d every %v: CPU µs per delivered message", o.FanConns, o.FanInterval)
		},
	},
	{
		key: "idle_cpu_pct", scenario: "idle", metric: "idle_cpu_pct", unit: "% core", format: "%.2f",
		label: func(o Options) string {
			return fmt.Sprintf("idle N=%s hold %v: CPU %% of a core while idle", thousands(float64(o.Idle)), o.Hold)
		},
	},
}

var issuePeers = []string{"haproxy", "nginx", "caddy"}

// FiguresOfMerit picks from the summaries the figures of issue 3's target
// table (CPU per echoed message in both throughput scenarios and in the
// latency one, CPU per upgrade, memory per idle session), then fan-out CPU
// per delivered message and idle CPU, for the scenarios that were run.
func FiguresOfMerit(opts Options, sums []Summary) []Figure {
	var figs []Figure
	for _, row := range meritRows {
		if !slices.Contains(opts.Scenarios, row.scenario) {
			continue
		}
		f := Figure{
			Key: row.key, Label: row.label(opts), Scenario: row.scenario, Metric: row.metric, Unit: row.unit,
			Medians: map[string]float64{},
		}
		for _, s := range sums {
			if s.Scenario != row.scenario {
				continue
			}
			if st, ok := s.Metrics[row.metric]; ok && st.N > 0 {
				f.Medians[s.Target] = st.Median
			}
		}
		f.Lowest = lowest(opts.Targets, f.Medians)
		if row.goal > 0 {
			f.IssueParams, f.Goal = row.issueParams, row.goal
			f.IssuePeers = map[string]float64{}
			for i, p := range issuePeers {
				f.IssuePeers[p] = row.peers[i]
			}
			f.Comparable = row.comparable(opts)
			if v, ok := f.Medians["wsgate"]; ok && f.Comparable {
				met := v <= row.goal
				f.GoalMet = &met
			}
		}
		figs = append(figs, f)
	}
	return figs
}

// lowest returns the proxy targets (the references, direct and floor, only
// when no proxy has a value) with the lowest median, in the order of
// targets.
func lowest(targets []string, medians map[string]float64) []string {
	pick := func(proxies bool) []string {
		var best []string
		var min float64
		for _, t := range targets {
			v, ok := medians[t]
			if !ok || isReference(t) == proxies {
				continue
			}
			switch {
			case best == nil || v < min:
				best, min = []string{t}, v
			case v == min:
				best = append(best, t)
			}
		}
		return best
	}
	if l := pick(true); l != nil {
		return l
	}
	return pick(false)
}

// meritMarkdown writes the figures of merit as one table: a row per
// figure, a column per target (medians, the lowest in bold), the lowest
// target, issue 3's target for wsgate and the peers' figures in the issue.
func meritMarkdown(w io.Writer, opts Options, figs []Figure) {
	if len(figs) == 0 {
		return
	}
	fmt.Fprintf(w, "Figures of merit (issue 3): the proxy's CPU per echoed message, per upgrade and per delivered push, and its memory and CPU per idle session; medians of %d run(s), lower is better. **Bold**: the lowest proxy (direct, the backend alone, and floor, a bare byte relay, are for reference). The last column gives issue 3's figures for HAProxy 2.6 / NGINX 1.22 / Caddy 2.6, measured on another machine: compare wsgate with the peers measured here, in the same run.\n\n", opts.Runs)
	fmt.Fprint(w, "| figure |")
	for _, t := range opts.Targets {
		fmt.Fprintf(w, " %s |", t)
	}
	fmt.Fprint(w, " lowest | wsgate must reach | issue 3: HAProxy / NGINX / Caddy |\n|---|")
	for range opts.Targets {
		fmt.Fprint(w, "--:|")
	}
	fmt.Fprintln(w, "---|---|---|")
	for _, f := range figs {
		row := meritRowOf(f.Key)
		fmt.Fprintf(w, "| %s |", mdEscape(f.Label))
		for _, t := range opts.Targets {
			v, ok := f.Medians[t]
			switch {
			case !ok:
				fmt.Fprint(w, " – |")
			case slices.Contains(f.Lowest, t):
				fmt.Fprintf(w, " **"+row.format+"** |", v)
			default:
				fmt.Fprintf(w, " "+row.format+" |", v)
			}
		}
		low := "–"
		if len(f.Lowest) > 0 {
			low = strings.Join(f.Lowest, ", ")
		}
		goal, peers := "–", "–"
		if f.Goal > 0 {
			goal = "≤ " + strconv.FormatFloat(f.Goal, 'f', -1, 64)
			switch {
			case !f.Comparable:
				goal += " (at " + f.IssueParams + "; not comparable)"
			case f.GoalMet == nil:
			case *f.GoalMet:
				goal += ": met"
			default:
				goal += ": **not met**"
			}
			var ps []string
			for _, p := range issuePeers {
				ps = append(ps, strconv.FormatFloat(f.IssuePeers[p], 'f', -1, 64))
			}
			peers = strings.Join(ps, " / ")
		}
		fmt.Fprintf(w, " %s | %s | %s |\n", low, goal, peers)
	}
	fmt.Fprintln(w)
}

func meritRowOf(key string) meritRow {
	for _, r := range meritRows {
		if r.key == key {
			return r
		}
	}
	return meritRow{format: "%.2f"}
}

// thousands formats v without decimals, with a comma every three digits.
func thousands(v float64) string {
	s := strconv.FormatFloat(v, 'f', 0, 64)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// isReference reports whether target is a reference rather than a proxy:
// direct (the backend alone) or floor (a byte relay that does nothing but
// relay, bench/floor).
func isReference(target string) bool {
	return target == "direct" || target == "floor"
}
