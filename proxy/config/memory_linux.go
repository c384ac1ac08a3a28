package config

import (
	"os"
	"strconv"
	"strings"
	"syscall"
)

// memoryLimit is the memory this process can use: the machine's RAM, or
// the cgroup's limit when it is lower, since in a container a default
// taken from the host's RAM would get wsgate OOM-killed. 0 if unknown.
func memoryLimit() int64 {
	var info syscall.Sysinfo_t
	if err := syscall.Sysinfo(&info); err != nil {
		return 0
	}
	total := int64(info.Totalram) * int64(info.Unit)
	for _, f := range []string{
		"/sys/fs/cgroup/memory.max",                   // cgroup v2
		"/sys/fs/cgroup/memory/memory.limit_in_bytes", // cgroup v1
	} {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// "max" (v2) or a huge number (v1) means no limit; both fail one
		// of the tests below.
		n, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
		if err == nil && n > 0 && n < total {
			total = n
		}
		break
	}
	return total
}
