// Package runner drives wsgate's benchmarks (cmd/wsbench is its command).
//
// For each target and scenario it starts fresh processes: wsecho as the
// backend and, for target wsgate, the proxy with a generated configuration
// (WsgateConfig) once its admin /readyz answers 200. It then runs wsload with
// -json and samples the measured process from /proc while wsload runs:
//
//   - throughput: CPU time (utime+stime from /proc/PID/stat, summed over the
//     process tree) at wsload's MEASURE-START and MEASURE-END markers, giving
//     CPU µs per echoed message and the share of one core used;
//   - idle: VmRSS (from /proc/PID/status, summed over the process tree)
//     before wsload starts and every 200 ms between its READY and HOLD-END
//     markers; (highest reading − before) / established sessions is the
//     memory per session.
//
// The measured process is wsecho for target direct and the proxy for target
// wsgate (whose backend is sampled as well). With Options.Pin and taskset
// installed, the load generator and wsecho run on CPU 0 and the proxy on
// CPU 1. Every process is stopped by its PID with SIGTERM (SIGKILL after
// 10 s) when its run ends.
package runner
