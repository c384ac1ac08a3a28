// Command wsecho is a WebSocket echo backend for wsgate's benchmarks, tests
// and demo (`make run` points wsgate at 127.0.0.1:9001 and 127.0.0.1:9002,
// wsecho's default listeners).
//
// Usage:
//
//	wsecho [-listen 127.0.0.1:9001,127.0.0.1:9002] [-log info]
//	       [-push-interval 0] [-push-size 64] [-handshake-timeout 10s]
//
// One process serves every address in -listen (comma-separated), each a
// separate backend as far as a proxy can tell. It echoes every data frame
// with the same opcode and FIN bit, answers Ping with Pong and Close with
// the same close code, echoes back the first offered subprotocol, and
// answers a plain HTTP GET with 200 "wsecho". With -push-interval > 0 it also
// sends each connection a binary message of -push-size bytes at that
// interval, starting with the big-endian Unix time in nanoseconds.
// See package github.com/wsgate/wsgate/bench/echo for details.
//
// -log is one of off, info (one line per listener, accept errors) or debug
// (one line per connection event). SIGINT or SIGTERM closes the listeners
// and every connection, then exits 0.
package main
