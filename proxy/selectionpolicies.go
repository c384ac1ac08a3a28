package proxy

import (
	"bytes"
	"net/netip"

	"github.com/wsgate/wsgate/proxy/balance"
	"github.com/wsgate/wsgate/proxy/config"
	"github.com/wsgate/wsgate/proxy/handshake"
)

// newBalancer builds the pool's balancer over its backends. The policies
// and locality tiers themselves are package balance.
func newBalancer(node config.Node, pc config.Pool, bs []*backend) *balance.Balancer {
	policy, err := balance.ParsePolicy(pc.Balance)
	if err != nil {
		policy = balance.RoundRobin // config has validated it
	}
	mode, err := balance.ParseLocalityMode(pc.Locality)
	if err != nil {
		mode = balance.Prefer
	}
	bbs := make([]*balance.Backend, len(bs))
	for i, b := range bs {
		bbs[i] = b.bb.Load()
	}
	self := balance.Locality{Cloud: node.Cloud, Region: node.Region, Zone: node.Zone}
	return balance.New(self, mode, policy, bbs)
}

// stickyKey extracts the hash key of a request, as hash_key says, into
// dst. It returns nil when the request has none (the balancer then falls
// back to p2c).
func stickyKey(dst []byte, p *pool, req *handshake.Request, client netip.AddrPort) []byte {
	switch p.hashSource {
	case "header":
		if v := req.Header(p.hashName); len(v) > 0 {
			return append(dst, v...)
		}
	case "cookie":
		if v := cookieValue(req.Header("Cookie"), p.hashName); len(v) > 0 {
			return append(dst, v...)
		}
	case "query":
		if v := queryValue(req.Query, p.hashName); len(v) > 0 {
			return append(dst, v...)
		}
	case "path":
		return append(dst, req.Path...)
	case "ip":
		// The address's own bytes: 4 for an IPv4 client whichever
		// socket family accepted it, so that every instance of a cluster
		// hashes it alike.
		if ip := client.Addr().Unmap(); ip.Is4() {
			b := ip.As4()
			return append(dst, b[:]...)
		} else if ip.IsValid() {
			b := ip.As16()
			return append(dst, b[:]...)
		}
	}
	return nil
}

// cookieValue finds name in a Cookie header ("a=1; b=2").
func cookieValue(h []byte, name string) []byte {
	for len(h) > 0 {
		var part []byte
		if i := bytes.IndexByte(h, ';'); i >= 0 {
			part, h = h[:i], h[i+1:]
		} else {
			part, h = h, nil
		}
		part = bytes.TrimSpace(part)
		if eq := bytes.IndexByte(part, '='); eq > 0 && string(part[:eq]) == name {
			return bytes.Trim(part[eq+1:], `"`)
		}
	}
	return nil
}

// queryValue finds name in a raw query ("a=1&b=2"); the value is compared
// and hashed still percent-encoded, which is stable for a given client.
func queryValue(q []byte, name string) []byte {
	for len(q) > 0 {
		var part []byte
		if i := bytes.IndexByte(q, '&'); i >= 0 {
			part, q = q[:i], q[i+1:]
		} else {
			part, q = q, nil
		}
		if eq := bytes.IndexByte(part, '='); eq > 0 && string(part[:eq]) == name {
			return part[eq+1:]
		}
	}
	return nil
}
