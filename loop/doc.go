// Package loop is wsgate's reactor: it owns every socket on the data path,
// their lifecycle, the relay of WebSocket frames between a client and its
// backend, the bounds on memory that relaying may hold, and the timers that
// close idle, silent or stalled sessions.
//
// # Threads of control
//
// The reactors do all the polling. Each listening socket is in every
// reactor's epoll set (EPOLLEXCLUSIVE when there are several); the reactor
// that wakes accepts the client and watches its socket, edge-triggered,
// until its handshake is done (listener.go). A client that connects and
// says nothing costs a place in that reactor's fresh list, which its tick
// closes at the handshake deadline. The first input starts the Handshaker
// (package proxy) on a goroutine of its own, which may block until the
// handshake deadline while it reads the request (ClientConn.Fill), dials
// or takes a warm upstream and relays the answer; it reads and writes the
// sockets itself, and the reactor only passes each edge on to it.
// A ReactorHandshaker (the proxy is one) takes the first steps on the
// reactor instead (StartHandshake): with the request whole in the first
// read and a warm upstream on the same reactor that takes the request at
// once, the reactor awaits the backend's answer itself
// (ClientConn.AwaitAnswer) and starts the session from it, so that an
// upgrade on loopback or in a data centre costs no goroutine, no channel
// and no timer; the reactor's tick keeps the deadline. Anything else goes
// on on a goroutine from where it stands (ClientConn.Go).
// Backend connections are dialed by wsgate itself (dial_linux.go) into one
// of the reactors, which watches them the same way until their session
// and, for an idle warm connection, notices the backend's hang-up
// (upstream.go). A 101 ends in ClientConn.Upgrade: the session starts on
// the reactor that has the backend's socket, with the same registration,
// and the client's socket joins it there (from the same set, or moved
// from the accepting reactor's), with any input read past the request.
// Session sockets are watched edge-triggered, as handshakes are: a socket
// whose last read took everything joins its session with no epoll_ctl
// (hsSocket.quiet), and a socket read once is not polled again by the
// next wait. Input an edge reported and the relay did not take (a read
// that filled the scratch buffer, a sender paused for its receiver, the
// FIN behind data) is read again without one (reactor.rereads).
//
// Until November 2026 github.com/cloudwego/netpoll accepted the clients
// and served the handshakes, and handed each upgraded client's socket to a
// reactor. That cost an upgrade about a fifth of its CPU: netpoll's poller
// woke for the accept and again for the request, its fcntl calls, the
// duplicate of the socket, netpoll's epoll delete and close of its own
// descriptor and the reactor's add, and the wake-ups of a third thread of
// control (bench/RESULTS.md).
//
// A reactor is an epoll set and one goroutine. A session belongs to one
// reactor for its life, and only that goroutine touches its state: the relay,
// the close handshake, the timers (timers.go) and the stall rule need no
// locks. Other goroutines (drains, rebalancing, Shutdown) post work to it.
// Level-triggered epoll and one read per readiness keep sessions fair.
//
// A reactor waits for readiness in one of two ways, chosen at start
// (reactor.run). When GOMAXPROCS leaves a P for the rest of the process
// besides the reactors — cmd/wsgate raises it by the reactors and one more
// (ReactorThreads) — each reactor waits in epoll_wait itself, as an event
// loop in C does: while busy as a raw system call, so the runtime believes
// it is running and leaves it its P (no sysmon hand-off, no reacquiring a P
// per wake-up); after quietAfter without events as an ordinary system
// call, so that an idle proxy lets sysmon and its threads sleep. Otherwise
// it parks in Go's own poller, on its epoll descriptor (which every new
// readiness in its set makes readable), after taking ready events with a
// zero-timeout epoll_wait for as long as there may be more. Waiting in
// epoll_wait on its own P took about a tenth off the CPU per relayed
// message at 20,000 messages/s; throughput and handshakes stayed within
// the host's noise; server push in bursts (fan-out) cost about a tenth
// more, because a reactor that sleeps the moment its set is empty sleeps
// and wakes more often inside a burst than one that passes through Go's
// scheduler first (bench/RESULTS.md). Holding the P through pauses of up
// to quietAfter (250 ms, 20 ms before 2026-12-07) took a tenth off
// fan-out's CPU again: every pause that ended the held waits woke sysmon
// some 60 times.
// (One P more than cores without the reactors on their own P cost every
// relayed message 5–25% more, 35–50% under a CPU quota: the parked reactor
// and the spare P's spinning thread then woke each other.)
//
// The reactor's reads, writes and non-blocking epoll calls skip the
// runtime's syscall bookkeeping (sys_linux.go). Reactors are one per core.
//
// netpoll never relayed, because what it does per connection costs more
// than the relay needs: a pooled goroutine per read event, an input and an
// output buffer and a write barrier per connection (about 9 kB per idle
// session with two connections), and no way to stop reading a socket. A
// reactor session costs its Session struct, and nothing per idle socket.
//
// # Relay
//
// A readable socket is read once into the reactor's scratch buffer (64 KiB,
// or max_buffered_bytes if smaller). The direction walks the frame headers
// in place (frame.ParseHeader, frame.Validator) and writes the whole run of
// frames — headers and still-masked payloads — to the other socket with one
// send(2). A frame larger than what has arrived is forwarded in pieces as
// its bytes arrive. Bytes are copied only when a frame header or a control
// frame is split across reads (into a small carry buffer) and when the other
// socket does not take a whole write (below).
//
// # Memory bounds and backpressure
//
// When a write is short, the rest is parked on the receiving peer (from
// bytebufferpool), its socket is watched for EPOLLOUT, and the sending
// socket is taken out of EPOLLIN until the parked bytes are written: the
// kernel's buffers fill and TCP flow control slows the sender. wsgate so
// holds at most one read per blocked direction. A receiver that stays
// blocked and acknowledges nothing (TCP_INFO bytes_acked) for stallGrace is
// a slow consumer: Close 1008 to it and 1001 to the sender. When what all
// reactors hold for blocked receivers passes MaxBufferedTotal, the largest
// holders are closed first.
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
// The reactors do not do TLS. TLS listeners and upstreams will
// be served by a second implementation of the peer's two roles — a source of
// input bytes and a sink for whole runs of frames — built on crypto/tls over
// Go's net package, with a goroutine per TLS connection. Session, the close
// state machine, the validator and the timers do not care which kind of
// connection a peer is.
package loop
