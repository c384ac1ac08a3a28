// Command wsbench runs wsgate's benchmarks and prints Markdown tables.
//
// Usage:
//
//	go run ./bench/cmd/wsbench [-wsgate bin/wsgate] [-targets direct,wsgate,haproxy,nginx,caddy] [-runs 3] [-cap 25] [-out bench/results/NAME]
//
// Scenarios (-scenarios): throughput (-c sessions × -k in flight × -s bytes,
// closed loop), throughput-1k (the same with -tp1k-c × -tp1k-k × -tp1k-s,
// by default 1000 sessions × 1 × 1024 B), latency (-lat-c sessions at -rate messages/s in total, open
// loop), handshake (-hs-c workers opening sessions back to back), fanout
// (wsecho pushes -fan-s bytes to -fan-c sessions every -fan-interval), each
// measured for -d after -warmup, and idle (-n sessions held for -hold).
//
// Targets: "direct" (wsload → wsecho, no proxy), "wsgate" (needs -wsgate),
// and the peers "haproxy", "nginx" and "caddy" (binaries from -haproxy,
// -nginx, -caddy or PATH, /usr/sbin, /usr/bin; skipped with a message when
// not installed — `make bench-peers` installs them). wsbench writes each
// proxy's configuration itself (one worker or thread, long tunnel
// timeouts, the same backend), starts it, and stops it by PID. For each
// run it starts fresh processes, pinned with taskset when present (wsload
// and wsecho on CPU 0, the proxy on CPU 1; -pin=false to disable). -cap P
// limits the proxy to P% of one core with a CPU cgroup (v2 cpu.max, else
// v1 cfs quota), when one is writable.
//
// Each scenario runs -runs times against each target, the targets
// alternating; the tables give medians with the min–max range.
//
// The wsecho and wsload binaries are taken from -wsecho/-wsload, else from
// the directory of wsbench's own executable, else built with `go build`
// into a temporary directory (which needs the wsgate module as the working
// directory).
//
// The defaults are the scenarios of issue 3's target table (throughput
// C=100 K=8 S=64, throughput-1k C=1000 K=1 S=1024, latency C=1000 at
// 20,000 msg/s, handshake C=50, idle N=9000 with -n 9000), plus fanout.
// The Markdown starts with a "figures of merit" table: per figure of that
// table (and fan-out CPU per message, idle CPU), the median of each
// target, the lowest proxy, and the target for wsgate.
//
// It prints a progress line per run on stderr and the Markdown tables on
// stdout; with -out DIR it also writes DIR/results.json, DIR/results.md and
// SVG charts (cpu_per_message.svg, cpu_per_upgrade.svg,
// latency_percentiles.svg, memory_per_idle_session.svg), and keeps the
// processes' logs and the generated configurations in DIR/logs. It exits 1
// if any run failed.
//
// See bench/README.md for what each number means.
package main
