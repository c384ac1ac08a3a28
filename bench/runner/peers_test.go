package runner

import (
	"bytes"
	"context"
	"encoding/xml"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/bench/load"
)

func TestPeerConfigs(t *testing.T) {
	listen, backend := "127.0.0.1:18080", "127.0.0.1:19001"
	dir := t.TempDir()
	cases := []struct {
		name, text string
		want       []string
		check      func(bin, path string) *exec.Cmd // validates the file with the installed peer
	}{
		{"haproxy", HaproxyConfig(listen, backend),
			[]string{"nbthread 1", "timeout tunnel 1h", "bind " + listen, "balance roundrobin", "server echo1 " + backend},
			func(bin, path string) *exec.Cmd { return exec.Command(bin, "-c", "-f", path) }},
		{"nginx", NginxConfig(listen, backend, dir),
			[]string{"worker_processes 1;", "worker_connections 20000;", "proxy_http_version 1.1;",
				"proxy_set_header Upgrade $http_upgrade;", `proxy_set_header Connection "upgrade";`,
				"proxy_read_timeout 1h;", "listen " + listen + ";", "server " + backend + ";"},
			func(bin, path string) *exec.Cmd { return exec.Command(bin, "-t", "-c", path, "-p", dir) }},
		{"caddy", CaddyConfig(listen, backend),
			[]string{"http://" + listen, "reverse_proxy " + backend, "admin off"},
			func(bin, path string) *exec.Cmd {
				c := exec.Command(bin, "adapt", "--config", path, "--adapter", "caddyfile")
				c.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
				return c
			}},
	}
	for _, c := range cases {
		for _, w := range c.want {
			if !strings.Contains(c.text, w) {
				t.Errorf("%s config lacks %q:\n%s", c.name, w, c.text)
			}
		}
		bin := findPeer(c.name, "")
		if bin == "" {
			t.Logf("%s not installed: config not validated by it", c.name)
			continue
		}
		path := filepath.Join(dir, c.name+".conf")
		if err := os.WriteFile(path, []byte(c.text), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := c.check(bin, path).CombinedOutput(); err != nil {
			t.Errorf("%s rejects its config: %v\n%s\n%s", c.name, err, out, c.text)
		}
		if v := peerVersion(c.name, bin); v == "" || strings.HasPrefix(v, "unknown") {
			t.Errorf("%s version %q", c.name, v)
		}
	}
}

func TestNewSkipsMissingPeers(t *testing.T) {
	o := DefaultOptions()
	o.Targets = []string{"direct", "haproxy", "nginx", "caddy"}
	o.Haproxy = "/nonexistent/haproxy"
	o.Nginx = "/nonexistent/nginx"
	o.Caddy = "/nonexistent/caddy"
	o.Wsecho, o.Wsload = os.Args[0], os.Args[0]
	o.WorkDir = t.TempDir()
	var progress bytes.Buffer
	o.Progress = &progress
	r, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Options().Targets; len(got) != 1 || got[0] != "direct" {
		t.Fatalf("targets %v", got)
	}
	for _, p := range []string{"haproxy", "nginx", "caddy"} {
		if !strings.Contains(progress.String(), "skipping target "+p+": not installed") {
			t.Fatalf("no skip line for %s:\n%s", p, progress.String())
		}
	}
	o.Targets = []string{"apache"}
	if _, err := New(o); err == nil {
		t.Fatal("unknown target accepted")
	}
	o.Targets, o.Scenarios = []string{"direct"}, []string{"nope"}
	if _, err := New(o); err == nil {
		t.Fatal("unknown scenario accepted")
	}
}

// Execute alternates the targets from round to round.
func TestExecuteOrder(t *testing.T) {
	o := DefaultOptions()
	o.Targets = []string{"direct", "wsgate"}
	o.Wsgate = os.Args[0]
	o.Scenarios = []string{"throughput"}
	o.Runs = 2
	o.Wsecho, o.Wsload = "/bin/false", "/bin/false"
	o.Backend = "256.0.0.1:1" // checkFree fails at once: nothing starts
	o.WorkDir = t.TempDir()
	r, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	runs := r.Execute(context.Background())
	var order []string
	for _, run := range runs {
		order = append(order, run.Target)
		if run.Error == "" {
			t.Fatalf("run %+v did not fail", run)
		}
	}
	if strings.Join(order, ",") != "direct,wsgate,wsgate,direct" {
		t.Fatalf("order %v", order)
	}
	if runs[2].Round != 2 {
		t.Fatalf("round %d", runs[2].Round)
	}
}

func TestSummarizeAndCharts(t *testing.T) {
	o := DefaultOptions()
	o.Targets = []string{"direct", "nginx"}
	o.Scenarios = []string{"throughput", "latency", "handshake", "idle", "throughput-1k"}
	mk := func(target, sc string, v float64) Run {
		r := Run{Target: target, Scenario: sc, TargetCPUPerMsgUS: v, TargetCPUPerUpgradeUS: 10 * v, TargetKBPerSession: v}
		r.Load = &loadResult{MsgsPerSec: 1000 * v, LatencyUS: &latency{P50: v, P90: 2 * v, P99: 3 * v, P999: 4 * v, Max: 5 * v}}
		return r
	}
	var runs []Run
	for _, v := range []float64{3, 1, 2} {
		for _, sc := range o.Scenarios {
			runs = append(runs, mk("direct", sc, v), mk("nginx", sc, 2*v))
		}
	}
	runs = append(runs, Run{Target: "nginx", Scenario: "idle", Error: "boom"})
	sums := Summarize(o, runs)
	if len(sums) != 10 {
		t.Fatalf("%d summaries", len(sums))
	}
	st := sums[0].Metrics["target_cpu_per_msg_us"]
	if sums[0].Target != "direct" || sums[0].Scenario != "throughput" || st != (Stat{Median: 2, Min: 1, Max: 3, N: 3}) {
		t.Fatalf("%+v %+v", sums[0], st)
	}
	last := sums[7]
	if tp1k := sums[9]; tp1k.Scenario != "throughput-1k" || tp1k.Target != "nginx" || tp1k.Metrics["target_cpu_per_msg_us"].Median != 4 {
		t.Fatalf("%+v", tp1k)
	}
	if last.Target != "nginx" || last.Runs != 4 || last.Failed != 1 || last.Metrics["target_kb_per_session"].Median != 4 {
		t.Fatalf("%+v", last)
	}
	if s := statOf([]float64{4, 1, 3, 2}); s.Median != 2.5 {
		t.Fatalf("even median %+v", s)
	}
	var md bytes.Buffer
	Markdown(&md, o, Host{CPUs: 2, Peers: map[string]string{"nginx": "nginx/1.22"}}, true, runs)
	for _, want := range []string{"| nginx | 3/4 |", "| direct | 3/3 | 2000 (1000–3000) |", "Peers: nginx: nginx/1.22", "nginx failed: boom",
		"Throughput, many sessions (throughput-1k, closed loop): 1000 sessions × 1 in flight × 1024 B"} {
		if !strings.Contains(md.String(), want) {
			t.Fatalf("markdown lacks %q:\n%s", want, md.String())
		}
	}
	charts := Charts(o, sums)
	for _, name := range []string{"cpu_per_message.svg", "cpu_per_upgrade.svg", "latency_percentiles.svg", "memory_per_idle_session.svg"} {
		svg, ok := charts[name]
		if !ok {
			t.Fatalf("no %s (have %d charts)", name, len(charts))
		}
		// Well-formed XML with one bar per target and series.
		dec := xml.NewDecoder(strings.NewReader(svg))
		rects := 0
		for {
			tok, err := dec.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v\n%s", name, err, svg)
			}
			if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "rect" {
				rects++
			}
		}
		if rects < 3 {
			t.Fatalf("%s: %d rects", name, rects)
		}
	}
	if _, err := WriteCharts(t.TempDir(), o, sums); err != nil {
		t.Fatal(err)
	}
	_ = time.Second
}

type (
	loadResult = load.Result
	latency    = load.Latency
)
