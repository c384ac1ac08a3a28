package runner

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pelletier/go-toml/v2"
)

func TestParseStat(t *testing.T) {
	// A command name with spaces and parentheses.
	line := "4242 (we ird) (x) S 17 4242 4242 0 -1 4194560 100 0 0 0 250 31 0 0 20 0 3 0 1000 100000 200 18446744073709551615\n"
	st, err := parseStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if st.ppid != 17 || st.utime != 250 || st.stime != 31 {
		t.Fatalf("%+v", st)
	}
	if _, err := parseStat([]byte("1 (x) S 1")); err == nil {
		t.Fatal("short line accepted")
	}
}

func TestParseRSS(t *testing.T) {
	kb, err := parseRSSKB([]byte("Name:\tx\nVmPeak:\t  9999 kB\nVmRSS:\t   12456 kB\nRssAnon:\t 1 kB\n"))
	if err != nil || kb != 12456 {
		t.Fatal(kb, err)
	}
	if _, err := parseRSSKB([]byte("Name:\tx\n")); err == nil {
		t.Fatal("missing VmRSS accepted")
	}
}

func TestParseMachineBusy(t *testing.T) {
	d, err := parseMachineBusy([]byte("cpu  100 5 50 1000 7 3 2 1 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := 161 * clockTick; d != want {
		t.Fatalf("busy %v, want %v", d, want)
	}
	if _, err := machineBusy(); err != nil {
		t.Fatal(err)
	}
}

func TestTakeProcessTree(t *testing.T) {
	// A shell with a child: both are in the tree and sampled.
	cmd := exec.Command("sh", "-c", "sleep 5 & wait")
	if err := cmd.Start(); err != nil {
		t.Skip("no sh:", err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	var s Sample
	for range 100 {
		var err error
		if s, err = Take(cmd.Process.Pid); err != nil {
			t.Fatal(err)
		}
		if len(s.PIDs) >= 2 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(s.PIDs) < 2 || s.PIDs[0] != cmd.Process.Pid || s.RSSKB <= 0 {
		t.Fatalf("sample %+v", s)
	}
	// Our own CPU time is visible.
	self, err := Take(os.Getpid())
	if err != nil || self.RSSKB <= 0 {
		t.Fatal(self, err)
	}
	if _, err := Take(1 << 30); err == nil {
		t.Fatal("sampling a missing process succeeded")
	}
}

func TestWsgateConfig(t *testing.T) {
	var cfg struct {
		Server struct {
			Listen      string `toml:"listen"`
			AdminListen string `toml:"admin_listen"`
			IdleTimeout string `toml:"idle_timeout"`
		} `toml:"server"`
		Route []struct {
			Host       string `toml:"host"`
			PathPrefix string `toml:"path_prefix"`
			Pool       string `toml:"pool"`
		} `toml:"route"`
		Pool []struct {
			Name        string `toml:"name"`
			Preconnect  int    `toml:"preconnect"`
			DialTimeout string `toml:"dial_timeout"`
			Backend     []struct {
				Address string `toml:"address"`
			} `toml:"backend"`
		} `toml:"pool"`
	}
	text := WsgateConfig("127.0.0.1:18080", "127.0.0.1:19090", "127.0.0.1:19001")
	dec := toml.NewDecoder(strings.NewReader(text))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		t.Fatal(err, text)
	}
	if cfg.Server.Listen != "127.0.0.1:18080" || cfg.Server.AdminListen != "127.0.0.1:19090" ||
		len(cfg.Route) != 1 || cfg.Route[0].Pool != "echo" ||
		len(cfg.Pool) != 1 || len(cfg.Pool[0].Backend) != 1 || cfg.Pool[0].Backend[0].Address != "127.0.0.1:19001" {
		t.Fatalf("%+v", cfg)
	}
}

// TestDirect runs the real commands, built here, through a tiny benchmark
// against target direct.
func TestDirect(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the commands")
	}
	o := smallOptions(t, "direct")
	o.Conns1k, o.InFlight1k, o.Size1k = 20, 1, 1024
	o.Scenarios = []string{"throughput", "idle", "latency", "handshake", "fanout", "throughput-1k"}
	o.FanConns, o.FanInterval = 20, 50*time.Millisecond
	r, runs, progress := executeAll(t, o)
	tp, idle, lat, hs, fan, tp1k := runs[0], runs[1], runs[2], runs[3], runs[4], runs[5]
	if tp1k.Load.Messages == 0 || tp1k.Load.Sessions != 20 || tp1k.Load.InFlight != 1 || tp1k.Load.Size != 1024 ||
		tp1k.Load.SessionErrors != 0 || tp1k.TargetCPUSec <= 0 || tp1k.TargetCPUPerMsgUS <= 0 {
		t.Fatalf("throughput-1k run %+v / %+v", tp1k, tp1k.Load)
	}
	if lat.Load.Messages == 0 || lat.Load.Lost != 0 || lat.TargetCPUSec < 0 || lat.Load.LatencyUS == nil {
		t.Fatalf("latency run %+v / %+v", lat, lat.Load)
	}
	if hs.Load.Upgrades == 0 || hs.TargetCPUPerUpgradeUS <= 0 {
		t.Fatalf("handshake run %+v / %+v", hs, hs.Load)
	}
	if fan.Load.Messages == 0 || fan.ExpectedPerSec != 400 {
		t.Fatalf("fanout run %+v / %+v", fan, fan.Load)
	}
	if tp.Load.Messages == 0 || tp.Load.SessionErrors != 0 || tp.WindowSec <= 0 || tp.TargetCPUSec <= 0 {
		t.Fatalf("throughput run %+v / %+v", tp, tp.Load)
	}
	if idle.Load.Established != 100 || idle.Load.EchoOK != 100 || idle.TargetRSSBeforeKB <= 0 ||
		idle.TargetRSSHoldKB < idle.TargetRSSBeforeKB || idle.IdleSamples == 0 {
		t.Fatalf("idle run %+v / %+v", idle, idle.Load)
	}
	var md bytes.Buffer
	Markdown(&md, o, ThisHost(), r.Pinned(), runs)
	for _, want := range []string{"| direct | 1/1 |", "target kB/session", "p99.9 µs", "upgrades/s", "delivered msg/s", "echoed msg/s",
		"Figures of merit", "| throughput C=20 K=1 S=1024: CPU µs per echoed message | **", "20 sessions × 1 in flight × 1024 B"} {
		if !strings.Contains(md.String(), want) {
			t.Fatalf("markdown lacks %q:\n%s", want, md.String())
		}
	}
	rep := Report{Options: o, Runs: runs, Markdown: md.String()}
	if _, err := rep.WriteJSON(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(progress.String(), "\n"); n != 12 {
		t.Fatalf("progress lines: %d\n%s", n, progress.String())
	}
}

// smallOptions runs target with freshly built commands, on free ports, one
// short run of each scenario at a few sessions.
func smallOptions(t *testing.T, target string) Options {
	t.Helper()
	bin := buildCommands(t)
	o := DefaultOptions()
	o.Targets = []string{target}
	o.Wsecho = filepath.Join(bin, "wsecho")
	o.Wsload = filepath.Join(bin, "wsload")
	o.Backend, o.Listen = freeAddr(t), freeAddr(t)
	o.Conns, o.InFlight, o.Duration, o.Warmup = 10, 4, 500*time.Millisecond, 100*time.Millisecond
	o.Idle, o.Hold = 100, 500*time.Millisecond
	o.Runs = 1
	o.LatConns, o.Rate = 5, 1000
	o.HSConns = 2
	o.WorkDir = t.TempDir()
	return o
}

// executeAll runs o and fails the test unless every run succeeded.
func executeAll(t *testing.T, o Options) (*Runner, []Run, *bytes.Buffer) {
	t.Helper()
	progress := new(bytes.Buffer)
	o.Progress = progress
	r, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	runs := r.Execute(ctx)
	if len(runs) != len(o.Scenarios) {
		t.Fatalf("%d runs of %d scenarios\n%s", len(runs), len(o.Scenarios), progress.String())
	}
	for _, run := range runs {
		if run.Error != "" {
			t.Fatalf("%s: %s\n%s", run.Scenario, run.Error, progress.String())
		}
	}
	return r, runs, progress
}

// buildCommands builds wsecho and wsload into a temporary directory and
// returns it.
func buildCommands(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	bin := t.TempDir()
	build := exec.Command(goBin, "build", "-o", bin+string(filepath.Separator),
		"github.com/wsgate/wsgate/bench/cmd/wsecho", "github.com/wsgate/wsgate/bench/cmd/wsload")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
