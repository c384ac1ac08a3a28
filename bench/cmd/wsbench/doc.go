// Command wsbench runs wsgate's benchmarks and prints a Markdown table.
//
// Usage:
//
//	go run ./bench/cmd/wsbench [-wsgate bin/wsgate] [-out bench/results/NAME]
//
// By default it measures, against each target, (a) throughput with 100
// sessions × 8 messages in flight × 64 bytes for 10 s and (b) 1000 idle
// sessions held for 10 s (see -c, -k, -s, -d, -warmup, -n, -hold). Targets:
// "direct" (wsload → wsecho, no proxy) and, when -wsgate is given, "wsgate"
// (wsload → wsgate → wsecho, with a generated configuration; -wsgate-args
// sets its command line, {config} standing for the configuration path).
// For each run it starts fresh processes, pinned with taskset when present
// (wsload and wsecho on CPU 0, the proxy on CPU 1; -pin=false to disable),
// and stops them by PID afterwards.
//
// The wsecho and wsload binaries are taken from -wsecho/-wsload, else from
// the directory of wsbench's own executable, else built with `go build`
// into a temporary directory (which needs the wsgate module as the working
// directory).
//
// It prints a progress line per run on stderr and the Markdown tables on
// stdout; with -out DIR it also writes DIR/results.json and keeps the
// processes' logs and the generated configurations in DIR/logs. It exits 1
// if any run failed.
//
// See bench/README.md for what each number means.
package main
