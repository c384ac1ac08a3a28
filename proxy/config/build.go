package config

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Defaults and limits. REFERENCE.md explains them; keep the two in step.
const (
	defaultListen      = "0.0.0.0:8080"
	defaultAdminListen = "127.0.0.1:9090"
	adminOff           = "off"

	defaultHandshakeTimeout = 5 * time.Second
	defaultIdleTimeout      = 300 * time.Second
	defaultPingTimeout      = 10 * time.Second
	defaultDrainTimeout     = 30 * time.Second

	defaultMaxHeaderBytes = 8 << 10
	// A WebSocket upgrade request with a few cookies does not fit in less;
	// more than 1 MiB only lets a client pin memory before the handshake.
	minMaxHeaderBytes     = 1 << 10
	maxMaxHeaderBytes     = 1 << 20
	defaultMaxMessage     = 16 << 20
	defaultMaxBuffered    = 1 << 20
	minMaxBuffered        = 64 << 10
	bufferedShareOfMemory = 4 // default max_buffered_total is memory / 4
	// Used when the memory of the machine cannot be read.
	fallbackBufferedTotal = 1 << 30

	defaultLogLevel  = "info"
	defaultLogFormat = "text"

	defaultBalance     = "round_robin"
	defaultPreconnect  = 2
	maxPreconnect      = 1000
	defaultDialTimeout = 2 * time.Second

	defaultWeight = 100
	maxWeight     = 10000

	defaultHost       = "*"
	defaultPathPrefix = "/"
)

func (c *checker) build(raw *rawConfig) *Config {
	cfg := &Config{Server: c.server(&raw.Server)}
	for i := range raw.Pool {
		cfg.Pools = append(cfg.Pools, c.pool(fmt.Sprintf("pool[%d]", i), &raw.Pool[i]))
	}
	c.uniquePools(cfg.Pools)
	for i := range raw.Route {
		cfg.Routes = append(cfg.Routes, c.route(fmt.Sprintf("route[%d]", i), &raw.Route[i], cfg.Pools))
	}
	if len(cfg.Routes) == 0 {
		c.errorf("route", "at least one [[route]] is required")
	}
	c.uniqueRoutes(cfg.Routes)
	return cfg
}

func (c *checker) server(r *rawServer) Server {
	s := Server{
		Listen:           c.str("server.listen", r.Listen, defaultListen),
		AdminListen:      c.str("server.admin_listen", r.AdminListen, defaultAdminListen),
		HandshakeTimeout: c.duration("server.handshake_timeout", r.HandshakeTimeout, defaultHandshakeTimeout),
		IdleTimeout:      c.duration("server.idle_timeout", r.IdleTimeout, defaultIdleTimeout),
		PingInterval:     c.duration("server.ping_interval", r.PingInterval, 0),
		PingTimeout:      c.duration("server.ping_timeout", r.PingTimeout, defaultPingTimeout),
		DrainTimeout:     c.duration("server.drain_timeout", r.DrainTimeout, defaultDrainTimeout),
		MaxMessageBytes:  c.size("server.max_message_bytes", r.MaxMessageBytes, defaultMaxMessage),
		MaxBufferedBytes: c.size("server.max_buffered_bytes", r.MaxBufferedBytes, defaultMaxBuffered),
		LogLevel:         c.oneOf("server.log_level", r.LogLevel, defaultLogLevel, "debug", "info", "warn", "error"),
		LogFormat:        c.oneOf("server.log_format", r.LogFormat, defaultLogFormat, "text", "json"),
	}

	listenErr := checkListen(s.Listen)
	if listenErr != nil {
		c.errorf("server.listen", "%v", listenErr)
	}
	switch s.AdminListen {
	case adminOff:
		s.AdminListen = ""
	case "":
		c.errorf("server.admin_listen", "must not be empty; write %q to disable the admin listener", adminOff)
		s.AdminListen = defaultAdminListen
	default:
		if err := checkListen(s.AdminListen); err != nil {
			c.errorf("server.admin_listen", "%v", err)
		} else if listenErr == nil && samePort(s.Listen, s.AdminListen) {
			c.errorf("server.admin_listen", "%q conflicts with server.listen %q", s.AdminListen, s.Listen)
		}
	}

	if s.HandshakeTimeout == 0 {
		c.errorf("server.handshake_timeout", "must be greater than 0")
		s.HandshakeTimeout = defaultHandshakeTimeout
	}
	if s.PingInterval > 0 && s.PingTimeout == 0 {
		c.errorf("server.ping_timeout", "must be greater than 0 when ping_interval is set")
	}

	hdr := c.size("server.max_header_bytes", r.MaxHeaderBytes, defaultMaxHeaderBytes)
	if hdr < minMaxHeaderBytes || hdr > maxMaxHeaderBytes {
		c.errorf("server.max_header_bytes", "%s is out of range: must be %s to %s",
			formatSize(hdr), formatSize(minMaxHeaderBytes), formatSize(maxMaxHeaderBytes))
		hdr = defaultMaxHeaderBytes
	}
	s.MaxHeaderBytes = int(hdr)

	if s.MaxBufferedBytes < minMaxBuffered {
		c.errorf("server.max_buffered_bytes", "%s is too small: must be at least %s",
			formatSize(s.MaxBufferedBytes), formatSize(minMaxBuffered))
		s.MaxBufferedBytes = defaultMaxBuffered
	}
	// 0 would mean no bound at all, which netpoll's unbounded reads make
	// unsafe, so there is no value that disables it.
	const reported = -1
	switch total := c.size("server.max_buffered_total", r.MaxBufferedTotal, reported); {
	case r.MaxBufferedTotal == nil:
		s.MaxBufferedTotal = defaultBufferedTotal()
		if s.MaxBufferedTotal < s.MaxBufferedBytes {
			c.errorf("server.max_buffered_total", "the default, a quarter of this machine's memory (%s), is less than max_buffered_bytes %s: set max_buffered_total",
				formatSize(s.MaxBufferedTotal), formatSize(s.MaxBufferedBytes))
		}
	case total == reported:
		s.MaxBufferedTotal = defaultBufferedTotal()
	case total == 0:
		c.errorf("server.max_buffered_total", "must be greater than 0")
		s.MaxBufferedTotal = defaultBufferedTotal()
	default:
		s.MaxBufferedTotal = total
		if total < s.MaxBufferedBytes {
			c.errorf("server.max_buffered_total", "%s is less than max_buffered_bytes %s",
				formatSize(total), formatSize(s.MaxBufferedBytes))
		}
	}
	return s
}

// defaultBufferedTotal leaves most memory to the kernel's socket buffers
// and the rest of the process.
func defaultBufferedTotal() int64 {
	if m := memoryLimit(); m > 0 {
		return m / bufferedShareOfMemory
	}
	return fallbackBufferedTotal
}

func (c *checker) pool(key string, r *rawPool) Pool {
	p := Pool{
		Name:        c.str(key+".name", r.Name, ""),
		Balance:     c.oneOf(key+".balance", r.Balance, defaultBalance, "round_robin"),
		Preconnect:  int(c.integer(key+".preconnect", r.Preconnect, defaultPreconnect, 0, maxPreconnect)),
		DialTimeout: c.duration(key+".dial_timeout", r.DialTimeout, defaultDialTimeout),
	}
	if r.Name == nil {
		c.errorf(key+".name", "required")
	} else if isString(r.Name) {
		if err := checkPoolName(p.Name); err != nil {
			c.errorf(key+".name", "%v", err)
		}
	}
	if p.DialTimeout == 0 {
		c.errorf(key+".dial_timeout", "must be greater than 0")
		p.DialTimeout = defaultDialTimeout
	}

	seen := map[string]int{}
	for j := range r.Backend {
		bkey := fmt.Sprintf("%s.backend[%d]", key, j)
		b := Backend{
			Address: c.str(bkey+".address", r.Backend[j].Address, ""),
			Weight:  int(c.integer(bkey+".weight", r.Backend[j].Weight, defaultWeight, 1, maxWeight)),
		}
		p.Backends = append(p.Backends, b)
		if r.Backend[j].Address == nil {
			c.errorf(bkey+".address", "required")
			continue
		}
		if !isString(r.Backend[j].Address) {
			continue
		}
		if err := checkBackendAddress(b.Address); err != nil {
			c.errorf(bkey+".address", "%v", err)
			continue
		}
		id := strings.ToLower(b.Address)
		if first, dup := seen[id]; dup {
			c.errorf(bkey+".address", "duplicate address %q: also %s.backend[%d]%s",
				b.Address, key, first, c.atLine(fmt.Sprintf("%s.backend[%d]", key, first)))
			continue
		}
		seen[id] = j
	}
	return p
}

func isString(v any) bool {
	_, ok := v.(string)
	return ok
}

// atLine points a message at the other half of a conflict.
func (c *checker) atLine(key string) string {
	if l := c.pos.lineFor(key); l > 0 {
		return fmt.Sprintf(" (line %d)", l)
	}
	return ""
}

func (c *checker) uniquePools(pools []Pool) {
	seen := map[string]int{}
	for i, p := range pools {
		if p.Name == "" {
			continue
		}
		if first, dup := seen[p.Name]; dup {
			c.errorf(fmt.Sprintf("pool[%d].name", i), "duplicate pool name %q: also pool[%d]%s",
				p.Name, first, c.atLine(fmt.Sprintf("pool[%d].name", first)))
			continue
		}
		seen[p.Name] = i
	}
}

func (c *checker) route(key string, r *rawRoute, pools []Pool) Route {
	rt := Route{
		Host:       c.str(key+".host", r.Host, defaultHost),
		PathPrefix: c.str(key+".path_prefix", r.PathPrefix, defaultPathPrefix),
		Pool:       c.str(key+".pool", r.Pool, ""),
	}
	if err := checkRouteHost(rt.Host); err != nil {
		c.errorf(key+".host", "%v", err)
	}
	rt.Host = strings.ToLower(rt.Host)
	if err := checkPathPrefix(rt.PathPrefix); err != nil {
		c.errorf(key+".path_prefix", "%v", err)
	}
	switch {
	case r.Pool == nil:
		c.errorf(key+".pool", "required")
	case !isString(r.Pool):
	case !hasPool(pools, rt.Pool):
		c.errorf(key+".pool", "no [[pool]] named %q", rt.Pool)
	}
	return rt
}

func hasPool(pools []Pool, name string) bool {
	for _, p := range pools {
		if p.Name == name {
			return true
		}
	}
	return false
}

func (c *checker) uniqueRoutes(routes []Route) {
	type match struct{ host, prefix string }
	seen := map[match]int{}
	for i, r := range routes {
		m := match{r.Host, r.PathPrefix}
		if first, dup := seen[m]; dup {
			c.errorf(fmt.Sprintf("route[%d]", i), "same host %q and path_prefix %q as route[%d]%s",
				r.Host, r.PathPrefix, first, c.atLine(fmt.Sprintf("route[%d]", first)))
			continue
		}
		seen[m] = i
	}
}

// checkListen accepts what net.Listen("tcp", s) accepts, except service
// names as ports: "http" resolving differently on another machine is not
// worth the convenience. Port 0 (any free port) is allowed for tests.
func checkListen(s string) error {
	host, port, err := splitHostPort(s)
	if err != nil {
		return err
	}
	if host != "" && !isIP(host) && checkHostname(host) != nil {
		return fmt.Errorf("invalid host %q in %q", host, s)
	}
	if port > 65535 {
		return fmt.Errorf("invalid port in %q: must be 0 to 65535", s)
	}
	return nil
}

func checkBackendAddress(s string) error {
	host, port, err := splitHostPort(s)
	if err != nil {
		return err
	}
	if host == "" {
		return fmt.Errorf("missing host in %q", s)
	}
	if !isIP(host) && checkHostname(host) != nil {
		return fmt.Errorf("invalid host %q in %q", host, s)
	}
	if port < 1 || port > 65535 {
		return fmt.Errorf("invalid port in %q: must be 1 to 65535", s)
	}
	return nil
}

func splitHostPort(s string) (string, int, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, fmt.Errorf("invalid address %q: want host:port, such as \"127.0.0.1:8080\" or \"[::1]:8080\"", s)
	}
	if !allDigits(port) || len(port) > 5 {
		return "", 0, fmt.Errorf("invalid port in %q: must be a number", s)
	}
	n, _ := strconv.Atoi(port)
	return host, n, nil
}

func isIP(host string) bool {
	_, err := netip.ParseAddr(host)
	return err == nil
}

// samePort reports whether two valid listen addresses would collide: same
// port, and the same host or a wildcard on either side.
func samePort(a, b string) bool {
	ha, pa, _ := net.SplitHostPort(a)
	hb, pb, _ := net.SplitHostPort(b)
	if pa != pb || pa == "0" {
		return false
	}
	return ha == hb || isWildcard(ha) || isWildcard(hb)
}

func isWildcard(host string) bool {
	if host == "" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsUnspecified()
}

// checkHostname accepts RFC 1123 names, plus "_", which shows up in
// internal DNS names and is harmless in a Host header.
func checkHostname(h string) error {
	if len(h) > 253 {
		return fmt.Errorf("host name %q is longer than 253 bytes", h)
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("invalid host name %q", h)
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("invalid host name %q: a label starts or ends with '-'", h)
		}
		for _, ch := range label {
			if !('a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' || '0' <= ch && ch <= '9' || ch == '-' || ch == '_') {
				return fmt.Errorf("invalid host name %q: %q is not allowed (write international names in their xn-- form)", h, ch)
			}
		}
	}
	return nil
}

// checkRouteHost accepts what the router compares with the Host header
// once its port is removed: "*", a host name, an IPv4 address or a
// bracketed IPv6 address.
func checkRouteHost(h string) error {
	if h == "*" {
		return nil
	}
	if inner, ok := strings.CutPrefix(h, "["); ok {
		inner, ok = strings.CutSuffix(inner, "]")
		if ip, err := netip.ParseAddr(inner); !ok || err != nil || !ip.Is6() || ip.Zone() != "" {
			return fmt.Errorf("invalid IPv6 address %q", h)
		}
		return nil
	}
	if ip, err := netip.ParseAddr(h); err == nil {
		if ip.Is6() {
			return fmt.Errorf("write an IPv6 address in brackets, as in a Host header: \"[%s]\"", h)
		}
		return nil
	}
	if strings.Contains(h, ":") {
		return fmt.Errorf("%q must not include a port: host is matched against the Host header without its port", h)
	}
	return checkHostname(h)
}

func checkPathPrefix(p string) error {
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("%q must start with \"/\"", p)
	}
	for i := 0; i < len(p); i++ {
		switch ch := p[i]; {
		case ch <= ' ' || ch == 0x7f:
			return fmt.Errorf("%q contains a space or control character", p)
		case ch == '?' || ch == '#':
			return fmt.Errorf("%q contains %q: a path prefix cannot match a query or fragment", p, rune(ch))
		}
	}
	return nil
}

// checkPoolName keeps names usable unquoted in logs and metric labels.
func checkPoolName(name string) error {
	if name == "" {
		return fmt.Errorf("must not be empty")
	}
	for i := 0; i < len(name); i++ {
		ch := name[i]
		if !('a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' || '0' <= ch && ch <= '9' || ch == '-' || ch == '_' || ch == '.') {
			return fmt.Errorf("%q may contain only letters, digits, '-', '_' and '.'", name)
		}
	}
	return nil
}

// formatSize writes n in the largest binary unit that divides it.
func formatSize(n int64) string {
	for _, u := range []struct {
		name string
		size int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10) + " bytes"
}
