package runner

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTick is the unit of utime and stime in /proc/PID/stat (USER_HZ,
// 100 on every Linux architecture Go supports).
const clockTick = 10 * time.Millisecond

// Sample is a reading of a process tree's resource use.
type Sample struct {
	At    time.Time
	PIDs  []int
	CPU   time.Duration // utime+stime summed over the processes
	RSSKB int64         // VmRSS summed over the processes
}

// procTree returns pid and all its live descendants.
func procTree(pid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return []int{pid}
	}
	children := map[int][]int{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readStat(p)
		if err != nil {
			continue
		}
		children[st.ppid] = append(children[st.ppid], p)
	}
	tree := []int{pid}
	for i := 0; i < len(tree); i++ {
		tree = append(tree, children[tree[i]]...)
	}
	return tree
}

type stat struct {
	ppid         int
	utime, stime int64 // clock ticks
}

// readStat parses /proc/PID/stat. The command name (field 2) may hold
// spaces and parentheses, so fields are counted after the last ')'.
func readStat(pid int) (stat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return stat{}, err
	}
	return parseStat(b)
}

func parseStat(b []byte) (stat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return stat{}, fmt.Errorf("malformed stat %q", b)
	}
	// After ") ": field 3 (state) is f[0], so field n is f[n-3].
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return stat{}, fmt.Errorf("short stat %q", b)
	}
	var st stat
	var err error
	if st.ppid, err = strconv.Atoi(f[4-3]); err != nil {
		return st, err
	}
	if st.utime, err = strconv.ParseInt(f[14-3], 10, 64); err != nil {
		return st, err
	}
	if st.stime, err = strconv.ParseInt(f[15-3], 10, 64); err != nil {
		return st, err
	}
	return st, nil
}

// readRSSKB returns VmRSS from /proc/PID/status, in kB.
func readRSSKB(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return parseRSSKB(b)
}

func parseRSSKB(b []byte) (int64, error) {
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			v = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB"))
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmRSS line")
}

// Take samples the process tree rooted at pid. Processes that vanish while
// it reads are skipped; it fails only if pid itself cannot be read.
func Take(pid int) (Sample, error) {
	s := Sample{At: time.Now(), PIDs: procTree(pid)}
	for i, p := range s.PIDs {
		st, err := readStat(p)
		if err == nil {
			var rss int64
			rss, err = readRSSKB(p)
			s.RSSKB += rss
			s.CPU += time.Duration(st.utime+st.stime) * clockTick
		}
		if err != nil && i == 0 {
			return s, err
		}
	}
	return s, nil
}

// machineBusy returns the CPU time all CPUs spent busy (not idle or
// waiting for I/O) since boot, from the first line of /proc/stat.
func machineBusy() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	return parseMachineBusy(b)
}

func parseMachineBusy(b []byte) (time.Duration, error) {
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, fmt.Errorf("unexpected /proc/stat line %q", line)
	}
	var busy int64
	// user nice system idle iowait irq softirq steal: all but idle, iowait.
	for i, v := range f[1:min(len(f), 9)] {
		if i == 3 || i == 4 {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, err
		}
		busy += n
	}
	return time.Duration(busy) * clockTick, nil
}
