// Package load is wsgate's WebSocket load generator (cmd/wsload is its
// command). It is a client built on github.com/gobwas/ws: the handshake goes
// through ws.Dialer, then each session writes masked frames and parses the
// echoes straight from its own buffers, with no allocation per message.
//
// Scenarios (Config.Scenario), each a func(context.Context, Config)
// (*Result, error) in a registry:
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
//   - latency (OpenLoop): Conns sessions send Rate messages/s in total on a
//     fixed schedule (each session every Conns/Rate s, staggered), whether or
//     not echoes come back. Each payload carries its intended send time, and
//     latency is measured from it, so a late send (a blocked write, a slow
//     wake-up) counts as waiting: coordinated omission is corrected. A session
//     behind schedule sends its overdue messages at once, up to 64 per write.
//     Messages scheduled in the window are counted; after it, echoes are
//     awaited for Drain and the missing ones reported as Lost. SendLagUS is
//     how late the generator itself was.
//   - handshake: Conns workers open sessions back to back (connect, upgrade,
//     one echo, closing handshake, then wait for the server's FIN so that
//     TIME_WAIT stays on the server side) for Warmup + Duration, at most
//     MaxSessions in all; sessions that complete in the window give
//     UpgradesPerS, the handshake time (connect + upgrade) in LatencyUS and the
//     first echo's in EchoLatencyUS.
//   - fanout: Conns sessions are held and count the messages the server pushes
//     (wsecho -push-interval): the first 8 payload bytes are the server's
//     send time (Unix nanoseconds, same machine), so LatencyUS is push to
//     receipt; MsgsPerSec counts messages received in the window.
//
// throughput, latency, handshake and fanout all emit the MEASURE markers at
// their window's edges.
//
// Markers are lines passed to Config.Marker (cmd/wsload prints them on
// stdout as they happen).
package load
