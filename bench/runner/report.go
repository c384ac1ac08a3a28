package runner

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// Report is what wsbench writes to -out DIR/results.json.
type Report struct {
	Started time.Time `json:"started"`
	Host    Host      `json:"host"`
	Options Options   `json:"options"`
	Notes   []string  `json:"notes,omitempty"`
	Summary []Summary `json:"summary"`
	// Figures are the figures of merit against issue 3's targets
	// (FiguresOfMerit of Summary).
	Figures  []Figure `json:"figures_of_merit"`
	Runs     []Run    `json:"runs"`
	Markdown string   `json:"markdown"`
}

// Host describes the machine the benchmark ran on.
type Host struct {
	CPUs      int    `json:"cpus"`
	Kernel    string `json:"kernel"`
	GoVersion string `json:"go_version"`
	CPUModel  string `json:"cpu_model,omitempty"`
	MemTotal  string `json:"mem_total,omitempty"`
	Hostname  string `json:"hostname,omitempty"`
	// Peers holds each proxy target's version line.
	Peers map[string]string `json:"peers,omitempty"`
}

// ThisHost describes the current machine.
func ThisHost() Host {
	h := Host{CPUs: runtime.NumCPU(), GoVersion: runtime.Version()}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		h.Kernel = strings.TrimSpace(string(b))
	}
	h.Hostname, _ = os.Hostname()
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			h.MemTotal = strings.TrimSpace(v)
		}
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

func mdEscape(s string) string {
	return strings.NewReplacer("|", "\\|", "\n", " ").Replace(s)
}
