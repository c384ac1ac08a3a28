package runner

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// cgroup is a CPU cgroup made for the proxy's processes, with a quota of
// a share of one core: cgroup v2 (cpu.max) when /sys/fs/cgroup is a v2
// hierarchy with the cpu controller, else the v1 cpu controller
// (cpu.cfs_quota_us).
type cgroup struct {
	dir string
	v2  bool
}

const cgroupPeriodUS = 100000

func newCgroup(pct float64) (*cgroup, error) {
	quota := int(pct / 100 * cgroupPeriodUS)
	if quota < 1000 {
		return nil, fmt.Errorf("cap %.1f%%: below 1%% of a core", pct)
	}
	name := "wsbench-" + strconv.Itoa(os.Getpid())
	if b, err := os.ReadFile("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		if !strings.Contains(" "+strings.TrimSpace(string(b))+" ", " cpu ") {
			return nil, errors.New("cgroup v2 without the cpu controller")
		}
		// Let children of the root use the cpu controller (already so on
		// most systems); an error here shows up when cpu.max is written.
		os.WriteFile("/sys/fs/cgroup/cgroup.subtree_control", []byte("+cpu"), 0o644)
		cg := &cgroup{dir: filepath.Join("/sys/fs/cgroup", name), v2: true}
		if err := os.Mkdir(cg.dir, 0o755); err != nil {
			return nil, fmt.Errorf("cgroup v2: %w", err)
		}
		if err := os.WriteFile(filepath.Join(cg.dir, "cpu.max"), fmt.Appendf(nil, "%d %d", quota, cgroupPeriodUS), 0o644); err != nil {
			cg.remove()
			return nil, fmt.Errorf("cgroup v2 cpu.max: %w", err)
		}
		return cg, nil
	}
	v1 := "/sys/fs/cgroup/cpu"
	if _, err := os.Stat(filepath.Join(v1, "cpu.cfs_quota_us")); err != nil {
		return nil, errors.New("no cgroup v2 (/sys/fs/cgroup/cgroup.controllers) and no v1 cpu controller")
	}
	cg := &cgroup{dir: filepath.Join(v1, name)}
	if err := os.Mkdir(cg.dir, 0o755); err != nil {
		return nil, fmt.Errorf("cgroup v1: %w", err)
	}
	if err := os.WriteFile(filepath.Join(cg.dir, "cpu.cfs_period_us"), []byte(strconv.Itoa(cgroupPeriodUS)), 0o644); err != nil {
		cg.remove()
		return nil, fmt.Errorf("cgroup v1 cpu.cfs_period_us: %w", err)
	}
	if err := os.WriteFile(filepath.Join(cg.dir, "cpu.cfs_quota_us"), []byte(strconv.Itoa(quota)), 0o644); err != nil {
		cg.remove()
		return nil, fmt.Errorf("cgroup v1 cpu.cfs_quota_us: %w", err)
	}
	return cg, nil
}

func (cg *cgroup) String() string {
	if cg.v2 {
		return "cgroup v2 " + cg.dir + " (cpu.max)"
	}
	return "cgroup v1 " + cg.dir + " (cpu.cfs_quota_us; no cgroup v2 here)"
}

// procsFile is where a process writes its PID to join the cgroup.
func (cg *cgroup) procsFile() string { return filepath.Join(cg.dir, "cgroup.procs") }

// remove deletes the cgroup; it must be empty (every proxy stopped).
func (cg *cgroup) remove() error { return os.Remove(cg.dir) }
