// Package loop is wsgate's reactor: it owns every socket on the data path,
// their lifecycle, the relay of WebSocket frames between a client and its
// backend, the bounds on memory that relaying may hold, and the timers that
// close idle, silent or stalled sessions.
//
// # Threads of control
//
// Sockets are github.com/cloudwego/netpoll connections. netpoll reads every
// readable socket on its epoll goroutine and runs a connection's OnRequest on
// a pooled goroutine, one at a time per connection. wsgate therefore has no
// goroutine per connection while a session is idle: a session costs two
// netpoll connections, one Session struct and one registry slot.
//
// A client connection starts in the handshake phase: its first OnRequest runs
// the Handshaker (package proxy), which may block on that goroutine until the
// handshake deadline while it reads the request, dials or takes a warm
// upstream, and relays the answer. A 101 ends in ClientConn.Upgrade, which
// turns both connections into the two directions of a Session. From then on
// each connection's OnRequest pumps its input to the other connection
// (relay.go).
//
// # Relay without copies
//
// A direction peeks at its input in place, walks the frame headers
// (frame.ParseHeader, frame.Validator) and hands whole runs of frames —
// headers and still-masked payloads — to the other connection's writer with
// Next + WriteBinary, flushes, and only then releases the input: netpoll
// writes chunks over 4 KiB by reference, so input memory must outlive the
// flush that sends it. A frame larger than what has arrived is forwarded in
// pieces as its bytes arrive. Bytes are copied only when a frame header or a
// control frame is split across reads (into a small carry buffer) and where
// netpoll itself copies (chunks under 4 KiB, chunks spanning two of its
// buffer nodes).
//
// # Memory bounds
//
// netpoll cannot stop reading a socket, so a peer that does not read lets
// the other side's input grow without limit. A direction publishes, while it
// is blocked in a Flush, when the flush started and how many bytes it holds;
// the sweeper (sweeper.go) adds the bytes still queued on the input. A
// backlog over MaxBufferedBytes whose receiver acknowledges nothing (TCP
// bytes_acked) for stallGrace, or any backlog over floodFactor times it, is
// a slow consumer: Close 1008 to the side that does not keep up, 1001 to the
// sender, after which the sender's socket is shut for reading (shutdown(2)
// SHUT_RD: netpoll then sees end of input and detaches it), so memory stops
// growing. When the sum of backlogs passes MaxBufferedTotal the largest go
// first. Real TCP backpressure would need netpoll to stop polling a socket
// for input, which its public API cannot do.
//
// # Closing at frame boundaries
//
// Every frame wsgate writes on its own (Close, Ping) goes through
// peer.inject, which writes it at once when the connection's outgoing stream
// is between frames, or leaves it for the relay to append after the frame in
// progress completes.
//
// # TLS (planned)
//
// netpoll has no TLS. TLS listeners and upstreams will be served by a second
// implementation of the same two roles — a connection that yields peeked
// input and takes whole runs of frames — built on crypto/tls over Go's net
// package, with a goroutine per TLS connection reading records into a
// bytebufferpool buffer. Session, the close state machine, the validator and
// the sweeper do not care which kind of connection a peer is; only the
// peer's reader/writer pair (peer.go) and the listener/dialer differ. Plain
// TCP stays on netpoll, where the zero-copy path is.
package loop
