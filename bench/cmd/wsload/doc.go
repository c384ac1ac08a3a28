// Command wsload is wsgate's WebSocket load generator.
//
// Usage:
//
//	wsload -scenario throughput -url ws://127.0.0.1:8080/ [-c 100] [-k 8] [-s 64] [-d 10s] [-warmup 1s] [-json]
//	wsload -scenario latency -url ws://127.0.0.1:8080/ [-c 100] [-rate 1000] [-s 64] [-d 10s] [-warmup 1s] [-drain 5s] [-json]
//	wsload -scenario handshake -url ws://127.0.0.1:8080/ [-c 16] [-s 64] [-d 10s] [-warmup 1s] [-max-sessions N] [-json]
//	wsload -scenario fanout -url ws://127.0.0.1:8080/ [-c 1000] [-d 10s] [-warmup 1s] [-json]   (server pushing: wsecho -push-interval)
//	wsload -scenario idle -url ws://127.0.0.1:8080/ [-n 1000] [-hold 10s] [-ready-file PATH] [-json]
//
// throughput keeps -k messages of -s bytes in flight on each of -c sessions
// through an echo server and reports messages/s, MB/s (payload bytes one
// way) and latency percentiles; idle opens -n sessions (-dial-concurrency at
// a time, no retry), holds them for -hold, then checks one echo on each.
// See package github.com/wsgate/wsgate/bench/load for the details.
//
// Marker lines starting with "WSLOAD " are printed on stdout as they happen
// (MEASURE-START/MEASURE-END around the throughput window, READY and
// HOLD-END around the idle hold) so that a runner can sample the target
// process at those moments. With -json the result is printed as one JSON
// line on stdout after the markers; without it, as text. SIGUSR1 ends an
// idle hold early; SIGINT or SIGTERM stops the run.
//
// wsload raises its soft limit on open files to the hard limit at start.
// It exits 1 when the run failed as a whole, 3 when it completed with
// failed dials, session errors, failed or lost echoes, 0 otherwise.
package main
