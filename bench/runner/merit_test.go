package runner

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

// The default scenarios are issue 3's (plus fanout), at its parameters.
func TestDefaultsAreIssueScenarios(t *testing.T) {
	o := DefaultOptions()
	if !slices.Equal(o.Scenarios, KnownScenarios) || !slices.Contains(o.Scenarios, "throughput-1k") {
		t.Fatalf("scenarios %v", o.Scenarios)
	}
	if o.Conns != 100 || o.InFlight != 8 || o.Size != 64 ||
		o.Conns1k != 1000 || o.InFlight1k != 1 || o.Size1k != 1024 ||
		o.LatConns != 1000 || o.Rate != 20000 || o.HSConns != 50 {
		t.Fatalf("defaults %+v", o)
	}
	if wsloadScenario("throughput-1k") != "throughput" || wsloadScenario("latency") != "latency" {
		t.Fatal("wsload scenario")
	}
	o.Idle = 9000 // make bench
	figs := FiguresOfMerit(o, nil)
	if len(figs) != len(meritRows) {
		t.Fatalf("%d figures", len(figs))
	}
	for _, f := range figs[:5] {
		if !f.Comparable || f.Goal == 0 || len(f.IssuePeers) != 3 {
			t.Fatalf("figure %+v", f)
		}
	}
}

func TestFiguresOfMerit(t *testing.T) {
	o := DefaultOptions()
	o.Targets = []string{"direct", "wsgate", "haproxy", "nginx"}
	o.Runs = 1
	// Medians per target: direct is lowest everywhere but is not a proxy.
	vals := map[string]float64{"direct": 1, "wsgate": 9, "haproxy": 12, "nginx": 11}
	var runs []Run
	for _, sc := range o.Scenarios {
		for _, tg := range o.Targets {
			v := vals[tg]
			if sc == "throughput-1k" && tg == "wsgate" {
				v = 30 // over its target (18); nginx lowest
			}
			r := Run{Target: tg, Scenario: sc, TargetCPUPerMsgUS: v, TargetCPUPerUpgradeUS: 10 * v, TargetKBPerSession: v / 2}
			if sc == "idle" && tg != "wsgate" {
				r.IdleCPUPct = 0 // a tie among haproxy and nginx
			} else {
				r.IdleCPUPct = 1
			}
			r.Load = &loadResult{MsgsPerSec: 1000}
			runs = append(runs, r)
		}
	}
	runs = append(runs, Run{Target: "haproxy", Scenario: "fanout", Error: "boom"})
	// haproxy has no successful handshake run.
	for i := range runs {
		if runs[i].Target == "haproxy" && runs[i].Scenario == "handshake" {
			runs[i].Error, runs[i].Load = "failed", nil
		}
	}
	figs := FiguresOfMerit(o, Summarize(o, runs))
	byKey := map[string]Figure{}
	var keys []string
	for _, f := range figs {
		byKey[f.Key] = f
		keys = append(keys, f.Key)
	}
	want := []string{"throughput_cpu_per_msg_us", "throughput_1k_cpu_per_msg_us", "latency_cpu_per_msg_us",
		"handshake_cpu_per_upgrade_us", "idle_kb_per_session", "fanout_cpu_per_msg_us", "idle_cpu_pct"}
	if !slices.Equal(keys, want) {
		t.Fatalf("figures %v", keys)
	}
	tp := byKey["throughput_cpu_per_msg_us"]
	if !slices.Equal(tp.Lowest, []string{"wsgate"}) || tp.GoalMet == nil || !*tp.GoalMet || tp.Goal != 10 ||
		tp.Medians["direct"] != 1 || tp.IssuePeers["haproxy"] != 12.4 {
		t.Fatalf("throughput %+v", tp)
	}
	tp1k := byKey["throughput_1k_cpu_per_msg_us"]
	if !slices.Equal(tp1k.Lowest, []string{"nginx"}) || tp1k.GoalMet == nil || *tp1k.GoalMet {
		t.Fatalf("throughput-1k %+v", tp1k)
	}
	hs := byKey["handshake_cpu_per_upgrade_us"]
	if _, ok := hs.Medians["haproxy"]; ok || hs.Medians["wsgate"] != 90 || *hs.GoalMet {
		t.Fatalf("handshake %+v", hs)
	}
	idle := byKey["idle_kb_per_session"]
	if idle.Comparable || idle.GoalMet != nil || idle.Medians["wsgate"] != 4.5 { // N=1000, not the issue's 9,000
		t.Fatalf("idle %+v", idle)
	}
	if ic := byKey["idle_cpu_pct"]; !slices.Equal(ic.Lowest, []string{"haproxy", "nginx"}) || ic.Goal != 0 {
		t.Fatalf("idle CPU %+v", ic)
	}

	var md bytes.Buffer
	Markdown(&md, o, Host{CPUs: 2}, true, runs)
	text := md.String()
	if !strings.HasPrefix(text, "Figures of merit") {
		t.Fatalf("markdown does not start with the figures of merit:\n%s", text)
	}
	for _, line := range []string{
		"| figure | direct | wsgate | haproxy | nginx | lowest | wsgate must reach | issue 3: HAProxy / NGINX / Caddy |",
		"| throughput C=100 K=8 S=64: CPU µs per echoed message | 1.00 | **9.00** | 12.00 | 11.00 | wsgate | ≤ 10: met | 12.4 / 12.2 / 12.2 |",
		"| throughput C=1000 K=1 S=1024: CPU µs per echoed message | 1.00 | 30.00 | 12.00 | **11.00** | nginx | ≤ 18: **not met** | 23.7 / 21.3 / 23.7 |",
		"| latency C=1000 R=20,000/s: CPU µs per echoed message | 1.00 | **9.00** | 12.00 | 11.00 | wsgate | ≤ 22: met | 28.1 / 26.1 / 34 |",
		"| handshake C=50: CPU µs per upgrade | 10.0 | **90.0** | – | 110.0 | wsgate | ≤ 80: **not met** | 125 / 97 / 290 |",
		"| idle N=1,000: memory per proxied session, kB | 0.5 | **4.5** | 6.0 | 5.5 | wsgate | ≤ 4 (at N=9,000; not comparable) | 4.7 / 18.1 / 73 |",
		"| fan-out C=1000 every 100ms: CPU µs per delivered message | 1.00 | **9.00** | 12.00 | 11.00 | wsgate | – | – |",
		"| idle N=1,000 hold 10s: CPU % of a core while idle | 0.00 | 1.00 | **0.00** | **0.00** | haproxy, nginx | – | – |",
	} {
		if !strings.Contains(text, line+"\n") {
			t.Fatalf("markdown lacks\n%s\nin\n%s", line, text)
		}
	}
	// The per-scenario tables follow.
	if i, j := strings.Index(text, "Figures of merit"), strings.Index(text, "Throughput, many sessions"); i < 0 || j < i {
		t.Fatalf("order:\n%s", text)
	}
}

func TestLowestOnlyDirect(t *testing.T) {
	if l := lowest([]string{"direct"}, map[string]float64{"direct": 3}); !slices.Equal(l, []string{"direct"}) {
		t.Fatal(l)
	}
	if l := lowest([]string{"direct", "wsgate"}, map[string]float64{}); l != nil {
		t.Fatal(l)
	}
}

func TestThousands(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 20000: "20,000", 1234567: "1,234,567", -9000: "-9,000"} {
		if got := thousands(v); got != want {
			t.Errorf("thousands(%v) = %q, want %q", v, got, want)
		}
	}
}
