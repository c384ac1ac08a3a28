// Package handshake parses and writes the HTTP/1.1 heads of a WebSocket
// handshake that wsgate passes through rather than terminates.
//
// It owns the bytes of the handshake and nothing else: it finds where a head
// ends (HeadEnd), validates a client's upgrade request (ParseRequest), writes
// the request head sent to the backend (AppendUpstreamRequest), validates the
// backend's answer (ParseResponse), tells how long a non-101 answer's body is
// so it can be relayed exactly (BodyFramer), and writes the error answers
// wsgate itself sends (AppendErrorResponse). It does no I/O, keeps no state
// between calls and reads its input in place: a Request or Response holds
// sub-slices of the head it parsed, valid only while that buffer is (with
// netpoll, until the input is released).
//
// Parsing is deliberately stricter than RFC 9112 allows, because wsgate is an
// ingress: whatever it accepts it forwards to a backend whose parser may read
// the same bytes differently (request smuggling), and whatever it writes from
// client bytes could inject headers. So every line must end in CRLF (bare LF and
// stray CR are rejected, not repaired), obs-fold and whitespace before a colon
// are rejected, a body (Content-Length other than 0, or any Transfer-Encoding)
// is refused on the upgrade GET, Host must appear exactly once and be a plain
// host[:port], and the request-target must be origin-form with no dot-segments,
// so routing by Host and path sees what the backend will see. Headers are
// copied to the backend byte for byte; only hop-by-hop headers and the
// X-Forwarded-* headers wsgate owns are dropped or rewritten. A backend's answer
// is held to the same syntax, and a 101 must really be a WebSocket accept for
// the client's key: a relay that switched to frames on anything else would
// splice two protocols together.
//
// Errors are *Reject values carrying the HTTP status to answer with: 400, 426
// (version) or 431 for a client request, 502 for a backend answer.
package handshake
