// Package load is wsgate's WebSocket load generator (cmd/wsload is its
// command). It is a client built on github.com/gobwas/ws: the handshake goes
// through ws.Dialer, then each session writes masked frames and parses the
// echoes straight from its own buffers, with no allocation per message.
//
// Scenarios (Config.Scenario), each a func(context.Context, Config)
// (*Result, error) in a registry so that latency, handshake and fanout can be
// added later:
//
//   - throughput: Conns sessions each keep InFlight messages of Size bytes in
//     flight through an echo server. Whenever echoes arrive the session sends
//     as many new messages, in one write. Each payload starts with its send
//     time (8 bytes, big-endian nanoseconds on a process-local monotonic
//     clock) and a per-session sequence number (8 bytes, when Size >= 16);
//     every echo is checked for type, length, order and last byte, and its
//     latency goes into an HdrHistogram. Only echoes received in the window
//     [Warmup, Warmup+Duration) after all sessions are connected are
//     counted. Markers "WSLOAD MEASURE-START" and "WSLOAD MEASURE-END" are
//     emitted at the window's edges so a runner can sample the target's CPU
//     time there; the generator's own CPU time over the window is reported.
//   - idle: Idle sessions are dialled, DialConcurrency at a time, with no
//     retry; failures are counted. When all attempts are done the marker
//     "WSLOAD READY established=N failed=F" is emitted (and ReadyFile
//     created); the sessions are held for Hold (or until HoldEnd fires),
//     answering pings, and "WSLOAD HOLD-END" is emitted. Then every session
//     sends one message and checks its echo, and closes with a closing
//     handshake. Sessions the server closed during the hold are reported.
//
// Markers are lines passed to Config.Marker (cmd/wsload prints them on
// stdout as they happen).
package load
