package runner

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// Report is what wsbench writes to -out DIR/results.json.
type Report struct {
	Started  time.Time `json:"started"`
	Host     Host      `json:"host"`
	Options  Options   `json:"options"`
	Runs     []Run     `json:"runs"`
	Markdown string    `json:"markdown"`
}

// Host describes the machine the benchmark ran on.
type Host struct {
	CPUs      int    `json:"cpus"`
	Kernel    string `json:"kernel"`
	GoVersion string `json:"go_version"`
	CPUModel  string `json:"cpu_model,omitempty"`
}

// ThisHost describes the current machine.
func ThisHost() Host {
	h := Host{CPUs: runtime.NumCPU(), GoVersion: runtime.Version()}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		h.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				h.CPUModel = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	return h
}

// WriteJSON writes the report to dir/results.json.
func (rep *Report) WriteJSON(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "results.json")
	return path, os.WriteFile(path, append(b, '\n'), 0o644)
}

// Markdown renders the runs as Markdown tables: one for throughput, one for
// idle sessions.
func Markdown(w io.Writer, opts Options, host Host, pinned bool, runs []Run) {
	pin := "not pinned"
	if pinned {
		pin = "load generator + wsecho on CPU 0, proxy on CPU 1 (taskset)"
	}
	fmt.Fprintf(w, "Host: %d CPUs (%s), Linux %s, %s; %s.\n\n", host.CPUs, host.CPUModel, host.Kernel, host.GoVersion, pin)

	var tp, idle []Run
	for _, r := range runs {
		if r.Scenario == "throughput" {
			tp = append(tp, r)
		} else {
			idle = append(idle, r)
		}
	}
	if len(tp) > 0 {
		fmt.Fprintf(w, "Throughput: %d sessions × %d in flight × %d B, %v measured after %v warm-up.\n\n",
			opts.Conns, opts.InFlight, opts.Size, opts.Duration, opts.Warmup)
		fmt.Fprintln(w, "| target | msg/s | MB/s | p50 µs | p90 µs | p99 µs | p99.9 µs | max µs | target CPU µs/msg | target CPU % core | backend CPU µs/msg | generator CPU µs/msg | gen+backend CPU % core | other CPU % core | errors |")
		fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
		for _, r := range tp {
			if r.Error != "" || r.Load == nil || r.Load.LatencyUS == nil {
				fmt.Fprintf(w, "| %s | failed: %s |||||||||||||| |\n", r.Target, mdEscape(r.Error))
				continue
			}
			l, lat := r.Load, r.Load.LatencyUS
			fmt.Fprintf(w, "| %s | %.0f | %.2f | %.0f | %.0f | %.0f | %.0f | %.0f | %.2f | %.0f | %.2f | %.2f | %.0f | %.0f | %d |\n",
				r.Target, l.MsgsPerSec, l.MBPerSec, lat.P50, lat.P90, lat.P99, lat.P999, lat.Max,
				r.TargetCPUPerMsgUS, r.TargetCPUPct, r.BackendCPUPerMsgUS, l.GenCPUPerMsgUS, r.LoadSideCPUPct, r.OtherCPUPct,
				l.SessionErrors+l.DialFailures)
		}
		fmt.Fprintln(w)
	}
	if len(idle) > 0 {
		fmt.Fprintf(w, "Idle sessions: %d sessions held %v, then one echo each.\n\n", opts.Idle, opts.Hold)
		fmt.Fprintln(w, "| target | established | dial failures | dropped in hold | echo failures | target RSS before kB | target RSS in hold kB | target kB/session | backend kB/session |")
		fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|--:|--:|")
		for _, r := range idle {
			if r.Error != "" || r.Load == nil {
				fmt.Fprintf(w, "| %s | failed: %s |||||||| |\n", r.Target, mdEscape(r.Error))
				continue
			}
			l := r.Load
			fmt.Fprintf(w, "| %s | %d | %d | %d | %d | %d | %d | %.1f | %.1f |\n",
				r.Target, l.Established, l.DialFailures, l.DroppedDuringHold, l.EchoFailed,
				r.TargetRSSBeforeKB, r.TargetRSSHoldKB, r.TargetKBPerSession, r.BackendKBPerSession)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "target = the measured process: wsecho for direct, the proxy for wsgate. CPU is user+system time from /proc/PID/stat over the measured window; RSS is VmRSS summed over the target's process tree, the highest reading during the hold.")
}

func mdEscape(s string) string {
	return strings.NewReplacer("|", "\\|", "\n", " ").Replace(s)
}
