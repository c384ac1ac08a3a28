package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/wsgate/wsgate/bench/runner"
)

func main() {
	os.Exit(run())
}

func run() int {
	o := runner.DefaultOptions()
	targets := flag.String("targets", "", `comma-separated targets: direct, floor, wsgate, haproxy, nginx, caddy (default "direct", plus "wsgate" when -wsgate is set); a peer that is not installed is skipped`)
	scenarios := flag.String("scenarios", strings.Join(o.Scenarios, ","), "comma-separated scenarios: "+strings.Join(runner.KnownScenarios, ", "))
	flag.StringVar(&o.Haproxy, "haproxy", "", "path of haproxy (default: from PATH, /usr/sbin)")
	flag.StringVar(&o.Nginx, "nginx", "", "path of nginx (default: from PATH, /usr/sbin)")
	flag.StringVar(&o.Caddy, "caddy", "", "path of caddy (default: from PATH, /usr/bin)")
	flag.IntVar(&o.Runs, "runs", o.Runs, "runs of each scenario against each target (targets alternate)")
	flag.Float64Var(&o.CapPct, "cap", 0, "limit each proxy to this % of one core with a CPU cgroup (0: no cap)")
	flag.IntVar(&o.LatConns, "lat-c", o.LatConns, "latency: sessions")
	flag.Float64Var(&o.Rate, "rate", o.Rate, "latency: total messages/s (open loop)")
	flag.IntVar(&o.HSConns, "hs-c", o.HSConns, "handshake: concurrent workers")
	flag.IntVar(&o.FanConns, "fan-c", o.FanConns, "fanout: sessions")
	flag.DurationVar(&o.FanInterval, "fan-interval", o.FanInterval, "fanout: wsecho pushes to every session at this interval")
	flag.IntVar(&o.FanSize, "fan-s", o.FanSize, "fanout: pushed message size in bytes (>= 8)")
	flag.StringVar(&o.Wsgate, "wsgate", "", "path of the wsgate binary (enables target wsgate)")
	flag.StringVar(&o.Floor, "wsfloor", "", "path of wsfloor, the minimal byte relay of target floor (default: next to wsbench)")
	flag.StringVar(&o.WsgateArgs, "wsgate-args", o.WsgateArgs, "wsgate's arguments; {config} is replaced by the generated config's path")
	flag.StringVar(&o.Wsecho, "wsecho", "", "path of the wsecho binary (default: next to wsbench, else built)")
	flag.StringVar(&o.Wsload, "wsload", "", "path of the wsload binary (default: next to wsbench, else built)")
	flag.StringVar(&o.Backend, "backend", o.Backend, "wsecho's listen address")
	flag.StringVar(&o.Listen, "listen", o.Listen, "the proxy's WebSocket listen address (every proxy target)")
	flag.StringVar(&o.Admin, "admin", o.Admin, "wsgate's admin address")
	flag.IntVar(&o.Conns, "c", o.Conns, "throughput: sessions")
	flag.IntVar(&o.InFlight, "k", o.InFlight, "throughput: messages in flight per session")
	flag.IntVar(&o.Size, "s", o.Size, "throughput: message size in bytes (also latency's and handshake's)")
	flag.IntVar(&o.Conns1k, "tp1k-c", o.Conns1k, "throughput-1k: sessions")
	flag.IntVar(&o.InFlight1k, "tp1k-k", o.InFlight1k, "throughput-1k: messages in flight per session")
	flag.IntVar(&o.Size1k, "tp1k-s", o.Size1k, "throughput-1k: message size in bytes")
	flag.DurationVar(&o.Duration, "d", o.Duration, "throughput, latency, handshake, fanout: measured duration")
	flag.DurationVar(&o.Warmup, "warmup", o.Warmup, "throughput, latency, handshake, fanout: warm-up before the measured window")
	flag.IntVar(&o.Idle, "n", o.Idle, "idle: sessions")
	flag.DurationVar(&o.Hold, "hold", o.Hold, "idle: hold time")
	flag.BoolVar(&o.Pin, "pin", o.Pin, "pin processes to CPUs with taskset when available")
	flag.DurationVar(&o.QuietWait, "quiet-wait", 0, "before each run, wait up to this long for the machine to be idle (shared machines)")
	out := flag.String("out", "", "directory for results.json and the processes' logs")
	flag.Parse()
	if *out != "" {
		// Peers resolve relative paths against their own prefix (nginx -p),
		// so every path handed to them is absolute.
		abs, err := filepath.Abs(*out)
		if err != nil {
			fmt.Fprintln(os.Stderr, "wsbench:", err)
			os.Exit(2)
		}
		*out = abs
	}

	if *targets == "" {
		*targets = "direct"
		if o.Wsgate != "" {
			*targets += ",wsgate"
		}
	}
	o.Targets = splitList(*targets)
	o.Scenarios = splitList(*scenarios)
	o.Progress = os.Stderr

	var err error
	if *out != "" {
		o.WorkDir = filepath.Join(*out, "logs")
		err = os.MkdirAll(o.WorkDir, 0o755)
	} else {
		o.WorkDir, err = os.MkdirTemp("", "wsbench-")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "wsbench:", err)
		return 1
	}
	if err := findBinaries(&o); err != nil {
		fmt.Fprintln(os.Stderr, "wsbench:", err)
		return 1
	}
	r, err := runner.New(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "wsbench:", err)
		return 1
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	started := time.Now()
	o = r.Options()
	host := runner.ThisHost()
	host.Peers = r.Versions()
	if o.Wsgate != "" && slices.Contains(o.Targets, "wsgate") {
		host.Peers["wsgate"] = wsgateVersion(o.Wsgate)
	}
	runs := r.Execute(ctx)
	if err := r.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "wsbench: removing the CPU cgroup:", err)
	}

	var md bytes.Buffer
	runner.Markdown(&md, o, host, r.Pinned(), runs)
	os.Stdout.Write(md.Bytes())

	failed := ctx.Err() != nil
	for _, run := range runs {
		if run.Error != "" {
			failed = true
		}
	}
	if *out != "" {
		sums := runner.Summarize(o, runs)
		rep := runner.Report{Started: started, Host: host, Options: o, Notes: r.Notes(), Summary: sums,
			Figures: runner.FiguresOfMerit(o, sums), Runs: runs, Markdown: md.String()}
		path, err := rep.WriteJSON(*out)
		if err != nil {
			fmt.Fprintln(os.Stderr, "wsbench:", err)
			return 1
		}
		mdPath := filepath.Join(*out, "results.md")
		if err := os.WriteFile(mdPath, md.Bytes(), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "wsbench:", err)
			return 1
		}
		charts, err := runner.WriteCharts(*out, o, sums)
		if err != nil {
			fmt.Fprintln(os.Stderr, "wsbench:", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "wsbench: wrote %s, %s and %d charts in %s (logs in %s)\n", path, mdPath, len(charts), *out, o.WorkDir)
	} else if failed {
		fmt.Fprintf(os.Stderr, "wsbench: logs kept in %s\n", o.WorkDir)
	} else {
		os.RemoveAll(o.WorkDir)
	}
	if failed {
		return 1
	}
	return 0
}

// wsgateVersion asks wsgate for its version, if it has a way to say it.
func wsgateVersion(bin string) string {
	for _, arg := range []string{"version", "--version"} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		out, err := exec.CommandContext(ctx, bin, arg).CombinedOutput()
		cancel()
		if err == nil {
			line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
			return line
		}
	}
	if st, err := os.Stat(bin); err == nil {
		return "built " + st.ModTime().UTC().Format(time.RFC3339)
	}
	return "unknown"
}

func splitList(s string) []string {
	var list []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			list = append(list, v)
		}
	}
	return list
}

// findBinaries fills in wsecho and wsload: next to this executable, else
// built with go build; and wsfloor if it is next to this executable (make
// build compiles it with cc).
func findBinaries(o *runner.Options) error {
	if o.Wsecho != "" && o.Wsload != "" && o.Floor != "" {
		return nil
	}
	if exe, err := os.Executable(); err == nil {
		dir := filepath.Dir(exe)
		for _, b := range []struct {
			path *string
			name string
		}{{&o.Wsecho, "wsecho"}, {&o.Wsload, "wsload"}, {&o.Floor, "wsfloor"}} {
			if p := filepath.Join(dir, b.name); *b.path == "" && isFile(p) {
				*b.path = p
			}
		}
	}
	if o.Wsecho != "" && o.Wsload != "" {
		return nil
	}
	bin := filepath.Join(o.WorkDir, "bin")
	fmt.Fprintf(os.Stderr, "wsbench: building wsecho and wsload into %s\n", bin)
	cmd := exec.Command("go", "build", "-o", bin+string(filepath.Separator),
		"github.com/wsgate/wsgate/bench/cmd/wsecho", "github.com/wsgate/wsgate/bench/cmd/wsload")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("building wsecho and wsload (run from the wsgate module, or pass -wsecho and -wsload): %w", err)
	}
	if o.Wsecho == "" {
		o.Wsecho = filepath.Join(bin, "wsecho")
	}
	if o.Wsload == "" {
		o.Wsload = filepath.Join(bin, "wsload")
	}
	return nil
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}
