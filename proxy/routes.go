package proxy

import (
	"sort"
	"strings"

	"github.com/wsgate/wsgate/proxy/config"
)

// router maps a request's host and path to a pool. Routes are matched by
// exact host first, then "*", and within a host by the longest path prefix.
type router struct {
	byHost map[string][]route // lower-case host without port
	any    []route
}

type route struct {
	prefix string
	pool   *pool
}

func newRouter(routes []config.Route, pools map[string]*pool) *router {
	r := &router{byHost: make(map[string][]route)}
	for _, rt := range routes {
		e := route{prefix: rt.PathPrefix, pool: pools[rt.Pool]}
		if rt.Host == "*" || rt.Host == "" {
			r.any = append(r.any, e)
		} else {
			h := strings.ToLower(rt.Host)
			r.byHost[h] = append(r.byHost[h], e)
		}
	}
	longestFirst := func(rs []route) {
		sort.SliceStable(rs, func(i, j int) bool { return len(rs[i].prefix) > len(rs[j].prefix) })
	}
	for _, rs := range r.byHost {
		longestFirst(rs)
	}
	longestFirst(r.any)
	return r
}

// match returns the pool for host (the Host header without port, any case)
// and path, or nil.
func (r *router) match(host, path []byte) *pool {
	if len(r.byHost) > 0 {
		var buf [256]byte
		if len(host) <= len(buf) {
			h := buf[:len(host)]
			for i, c := range host {
				if 'A' <= c && c <= 'Z' {
					c += 'a' - 'A'
				}
				h[i] = c
			}
			if p := matchPrefix(r.byHost[string(h)], path); p != nil {
				return p
			}
		}
	}
	return matchPrefix(r.any, path)
}

func matchPrefix(rs []route, path []byte) *pool {
	for _, rt := range rs {
		if strings.HasPrefix(string(path), rt.prefix) {
			return rt.pool
		}
	}
	return nil
}
