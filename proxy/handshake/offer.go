package handshake

// Offer is what a client's request offered that a backend's 101 may
// select: its subprotocols and whether it offered permessage-deflate. It
// keeps its own copy of the protocols, since the request head is released
// before the backend answers. A reused Offer holds protocols of up to
// len(buf) bytes without allocating.
//
// A client must fail the connection when a 101 selects a subprotocol or an
// extension it did not offer (RFC 6455 4.1; RFC 7692 5): a browser then
// reports a bare error, and the backend's mistake is invisible. Checking
// it here gives the client a 502 and the operator a log line naming the
// backend instead.
type Offer struct {
	Deflate   bool
	protocols []byte // each offered protocol followed by a comma
	buf       [96]byte
}

// Offer fills o with what r offers.
func (r *Request) Offer(o *Offer) {
	o.Deflate = false
	o.protocols = o.buf[:0]
	for i := range r.fields {
		f := &r.fields[i]
		v := r.Head[f.v0:f.v1]
		switch f.kind {
		case kSecProtocol:
			for j := 0; j >= 0; {
				var p []byte
				if p, j = nextElem(v, j); len(p) > 0 {
					o.protocols = append(append(o.protocols, p...), ',')
				}
			}
		case kSecExtensions:
			// A malformed list reaches the backend as it is; whatever
			// deflate offer it holds counts.
			if d, _, _ := countExtensions(v); d > 0 {
				o.Deflate = true
			}
		}
	}
}

// offers reports whether protocol is one the client offered. Subprotocol
// names are compared exactly, as browsers compare them.
func (o *Offer) offers(protocol []byte) bool {
	for rest := o.protocols; len(rest) > 0; {
		i := 0
		for rest[i] != ',' {
			i++
		}
		if string(rest[:i]) == string(protocol) {
			return true
		}
		rest = rest[i+1:]
	}
	return false
}

// Allows checks that a 101 selects only what o offered. Errors are
// *Reject with status 502.
func (o *Offer) Allows(r *Response) error {
	if r.Status != 101 {
		return nil
	}
	if r.Protocol != nil && !o.offers(r.Protocol) {
		return badGateway("101 selects a subprotocol the client did not offer")
	}
	if r.Deflate && !o.Deflate {
		return badGateway("101 selects permessage-deflate, which the client did not offer")
	}
	return nil
}
