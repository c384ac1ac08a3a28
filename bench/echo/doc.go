// Package echo is the WebSocket echo backend used by wsgate's benchmarks and
// demo (cmd/wsecho is its command).
//
// Behaviour, per connection:
//
//   - An HTTP request without "Upgrade: websocket" gets 200 "wsecho\n" for GET
//     and HEAD (a health check), 405 otherwise, and the connection is closed.
//   - The opening handshake is answered by github.com/gobwas/ws's Upgrader. The
//     first subprotocol the client offers in Sec-WebSocket-Protocol is echoed
//     back, whatever it is, so a proxy's subprotocol pass-through can be
//     checked. No extension is accepted.
//   - Every data frame (text, binary, continuation) is echoed as one frame with
//     the same opcode and FIN bit and the unmasked payload: fragmented messages
//     come back fragmented the same way. Text payloads are not checked for
//     UTF-8.
//   - Ping is answered with Pong carrying the same payload; Pong is ignored.
//   - Close is answered with a Close frame carrying the received payload (status
//     code and reason), then the TCP connection is closed. A malformed close
//     payload or any protocol violation (unmasked frame, non-zero RSV bits,
//     reserved opcode, bad fragmentation, oversized control frame) is
//     answered with Close 1002 and the connection is closed.
//   - With Config.PushInterval > 0 every upgraded connection also receives an
//     unsolicited binary message of Config.PushSize bytes at that interval,
//     whose first 8 bytes are the big-endian Unix time in nanoseconds at which
//     it was written to that connection.
//
// Implementation: one goroutine per connection, but no buffer while the
// connection is idle. The goroutine waits for readability through
// syscall.RawConn, takes a 32 KiB read buffer from a pool only when bytes are
// there, and gives it back whenever the socket has been drained and no partial
// frame is pending. Echoed frames are built in place in the read buffer: the
// unmasked header (4 bytes shorter than the client's masked one) is written
// right before the payload, small frames are moved together, and everything
// parsed from one read goes out in one write (writev for several segments).
// An idle connection thus costs a parked goroutine and the net.Conn.
package echo
