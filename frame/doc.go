// Package frame is wsgate's view of RFC 6455 framing: it finds where each
// frame begins and ends, decides whether the peer broke the protocol, and
// builds the few frames wsgate speaks itself (Close and Ping).
//
// A relay only needs to know a frame's header to forward it, so frame parses
// headers in place from bytes peeked in the connection's input buffer and
// never copies or touches payloads: the caller forwards header and payload
// verbatim, still masked with the client's key. Copying or unmasking would
// cost memory bandwidth proportional to the traffic for no benefit, and
// rewriting frames would make wsgate an endpoint instead of a relay. The one
// exception is a Close payload, which wsgate reads to learn the close code;
// ParseClose unmasks it into caller-provided scratch space, never into the
// input buffer that is about to be forwarded.
//
// Validation happens per header, before the payload arrives, so a frame that
// declares an oversized or illegal payload is refused without waiting for
// (or buffering) its bytes. Every error a peer can cause is a *Violation
// carrying the close code wsgate should send back.
//
// ParseHeader and Validator.Check run once per frame on every connection and
// allocate nothing; tests enforce this with testing.AllocsPerRun.
package frame
