package runner

import (
	"fmt"
	"html"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// chartSeries is one bar per category (target).
type chartSeries struct {
	name  string
	stats []Stat // per category; N == 0: no bar
}

var palette = []string{"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948"}

// barChart renders a grouped bar chart as SVG: one group per category, one
// bar per series at the median, with a whisker from min to max. With log,
// the value axis is logarithmic.
func barChart(title, unit string, cats []string, series []chartSeries, log bool) string {
	const (
		W, H                 = 760, 420
		left, right, top, bt = 80, 20, 50, 70
	)
	pw, ph := float64(W-left-right), float64(H-top-bt)
	hi, lo := 0.0, math.Inf(1)
	for _, s := range series {
		for _, st := range s.stats {
			if st.N > 0 {
				hi = math.Max(hi, st.Max)
				if st.Min > 0 {
					lo = math.Min(lo, st.Min)
				}
			}
		}
	}
	if hi <= 0 {
		hi = 1
	}
	var ticks []float64
	var y func(v float64) float64
	if log {
		if math.IsInf(lo, 1) {
			lo = hi / 10
		}
		lmin, lmax := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
		if lmax <= lmin {
			lmax = lmin + 1
		}
		y = func(v float64) float64 {
			if v <= 0 {
				return float64(top) + ph
			}
			f := (math.Log10(v) - lmin) / (lmax - lmin)
			return float64(top) + ph*(1-math.Max(0, math.Min(1, f)))
		}
		for e := lmin; e <= lmax; e++ {
			ticks = append(ticks, math.Pow(10, e))
		}
	} else {
		step := niceStep(hi / 5)
		top2 := math.Ceil(hi/step) * step
		y = func(v float64) float64 { return float64(top) + ph*(1-v/top2) }
		for v := 0.0; v <= top2+step/2; v += step {
			ticks = append(ticks, v)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", W, H, W, H)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", W, H)
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="15" font-weight="bold">%s</text>`+"\n", left, html.EscapeString(title))
	for _, t := range ticks {
		yy := y(t)
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", left, W-right, yy, yy)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, yy+4, fmtTick(t))
	}
	fmt.Fprintf(&b, `<text transform="translate(16 %d) rotate(-90)" text-anchor="middle">%s</text>`+"\n", top+int(ph/2), html.EscapeString(unit))
	fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#333"/>`+"\n", left, W-right, float64(top)+ph, float64(top)+ph)
	if len(cats) > 0 && len(series) > 0 {
		gw := pw / float64(len(cats))
		bw := math.Min(60, gw*0.8/float64(len(series)))
		for ci, c := range cats {
			gx := float64(left) + gw*float64(ci) + (gw-bw*float64(len(series)))/2
			for si, s := range series {
				st := s.stats[ci]
				if st.N == 0 {
					continue
				}
				x := gx + bw*float64(si)
				ym := y(st.Median)
				fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s: %s (%s–%s, %d runs)</title></rect>`+"\n",
					x+1, ym, bw-2, float64(top)+ph-ym, palette[si%len(palette)], html.EscapeString(c), html.EscapeString(s.name),
					fmtTick(st.Median), fmtTick(st.Min), fmtTick(st.Max), st.N)
				if st.N > 1 {
					cx := x + bw/2
					fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#222"/>`+"\n", cx, cx, y(st.Min), y(st.Max))
					fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#222"/><line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#222"/>`+"\n",
						cx-4, cx+4, y(st.Min), y(st.Min), cx-4, cx+4, y(st.Max), y(st.Max))
				}
				fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="10">%s</text>`+"\n", x+bw/2, math.Min(ym, y(st.Max))-4, fmtTick(st.Median))
			}
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", float64(left)+gw*(float64(ci)+0.5), float64(top)+ph+18, html.EscapeString(c))
		}
	}
	if len(series) > 1 {
		for si, s := range series {
			x := left + 110*si
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n",
				x, H-24, palette[si%len(palette)], x+16, H-14, html.EscapeString(s.name))
		}
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func fmtTick(v float64) string {
	switch {
	case v == 0:
		return "0"
	case math.Abs(v) >= 1e6:
		return fmt.Sprintf("%.3gM", v/1e6)
	case math.Abs(v) >= 1e4:
		return fmt.Sprintf("%.3gk", v/1e3)
	case math.Abs(v) >= 10:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 1:
		return fmt.Sprintf("%.2g", v)
	}
	return fmt.Sprintf("%.2g", v)
}

// Charts renders the report's charts, by file name: CPU per message per
// target (both throughputs, latency and fan-out), CPU per upgrade (handshake),
// latency percentiles per target (latency scenario, log scale) and memory
// per idle session per target. Scenarios that were not run give no chart.
func Charts(opts Options, sums []Summary) map[string]string {
	get := func(sc, tg, key string) Stat {
		for _, s := range sums {
			if s.Scenario == sc && s.Target == tg {
				return s.Metrics[key]
			}
		}
		return Stat{}
	}
	has := func(sc string) bool {
		for _, s := range sums {
			if s.Scenario == sc && len(s.Metrics) > 0 {
				return true
			}
		}
		return false
	}
	col := func(sc, key string) []Stat {
		st := make([]Stat, len(opts.Targets))
		for i, t := range opts.Targets {
			st[i] = get(sc, t, key)
		}
		return st
	}
	cats := opts.Targets
	out := map[string]string{}
	var cpu []chartSeries
	for _, sc := range []string{"throughput", "throughput-1k", "latency", "fanout"} {
		if has(sc) {
			cpu = append(cpu, chartSeries{sc, col(sc, "target_cpu_per_msg_us")})
		}
	}
	if len(cpu) > 0 {
		out["cpu_per_message.svg"] = barChart("Target CPU per message (median, min–max)", "CPU µs per message", cats, cpu, false)
	}
	if has("handshake") {
		out["cpu_per_upgrade.svg"] = barChart("Target CPU per session (upgrade + echo + close)", "CPU µs per upgrade", cats,
			[]chartSeries{{"handshake", col("handshake", "target_cpu_per_upgrade_us")}}, false)
	}
	if has("latency") {
		var ls []chartSeries
		for _, p := range []struct{ name, key string }{{"p50", "p50_us"}, {"p90", "p90_us"}, {"p99", "p99_us"}, {"p99.9", "p99_9_us"}} {
			ls = append(ls, chartSeries{p.name, col("latency", p.key)})
		}
		out["latency_percentiles.svg"] = barChart(fmt.Sprintf("Open-loop latency at %.0f msg/s (log scale)", opts.Rate), "µs from intended send time", cats, ls, true)
	}
	if has("idle") {
		out["memory_per_idle_session.svg"] = barChart(fmt.Sprintf("Target RSS per idle session (%d sessions)", opts.Idle), "kB per session", cats,
			[]chartSeries{{"idle", col("idle", "target_kb_per_session")}}, false)
	}
	return out
}

// WriteCharts writes Charts to dir and returns the paths written.
func WriteCharts(dir string, opts Options, sums []Summary) ([]string, error) {
	var paths []string
	for name, svg := range Charts(opts, sums) {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(svg), 0o644); err != nil {
			return paths, err
		}
		paths = append(paths, p)
	}
	return paths, nil
}
