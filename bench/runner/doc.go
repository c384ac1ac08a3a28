// Package runner drives wsgate's benchmarks (cmd/wsbench is its command).
//
// For each round, scenario and target (targets alternating) it starts
// fresh processes: wsecho as the backend (pushing, for fanout) and, for a
// proxy target, the proxy with a configuration written by the runner
// (WsgateConfig, HaproxyConfig, NginxConfig, CaddyConfig) once it is ready
// (wsgate's admin /readyz, or GET / through the proxy answering 200). It
// then runs wsload with -json and samples the measured process from /proc
// while wsload runs:
//
//   - throughput, latency, handshake, fanout: CPU time (utime+stime from
//     /proc/PID/stat, summed over the process tree) at wsload's
//     MEASURE-START and MEASURE-END markers, giving CPU µs per echoed or
//     delivered message, or per upgrade, and the share of one core used;
//   - idle: VmRSS (from /proc/PID/status, summed over the process tree, so
//     NGINX's master and worker both count) before wsload starts and every
//     200 ms between its READY and HOLD-END markers; (highest reading −
//     before) / established sessions is the memory per session, and the CPU
//     time between the two markers the cost of idling.
//
// The measured process is wsecho for target direct and the proxy otherwise
// (whose backend is sampled as well). With Options.Pin and taskset
// installed, the load generator and wsecho run on CPU 0 and the proxy on
// CPU 1; with Options.CapPct the proxy also runs in a CPU cgroup with that
// quota. Every process is stopped by its PID with SIGTERM (SIGKILL after
// 10 s) when its run ends. Summarize reduces the runs to medians with
// min–max, FiguresOfMerit picks from them the figures of issue 3's target
// table (set against the targets for wsgate), Markdown renders
// both and Charts draws them as SVG.
package runner
