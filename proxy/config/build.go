package config

import (
	"fmt"
	"net"
	"net/netip"
	"os"
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
	defaultCloseTimeout     = 5 * time.Second
	defaultDrainTimeout     = 30 * time.Second

	defaultMaxHeaderBytes = 8 << 10
	// A WebSocket upgrade request with a few cookies does not fit in less;
	// more than 1 MiB only lets a client pin memory before the handshake.
	minMaxHeaderBytes     = 1 << 10
	maxMaxHeaderBytes     = 1 << 20
	maxReactors           = 1024
	defaultMaxMessage     = 16 << 20
	defaultMaxBuffered    = 1 << 20
	minMaxBuffered        = 64 << 10
	bufferedShareOfMemory = 4 // default max_buffered_total is memory / 4
	// Used when the memory of the machine cannot be read.
	fallbackBufferedTotal = 1 << 30

	defaultLogLevel  = "info"
	defaultLogFormat = "text"

	defaultBalance     = "round_robin"
	balanceHash        = "hash"
	defaultLocality    = "prefer"
	localityStrict     = "strict"
	defaultPreconnect  = 2
	maxPreconnect      = 1000
	defaultDialTimeout = 2 * time.Second
	defaultDrainPeriod = 30 * time.Second

	defaultRebalanceThreshold = 1.25
	defaultRebalanceRate      = 10
	maxRebalanceRate          = 1000000

	defaultHealthPath         = "/"
	defaultHealthInterval     = 5 * time.Second
	defaultHealthTimeout      = 2 * time.Second
	defaultHealthyThreshold   = 2
	defaultUnhealthyThreshold = 3
	maxHealthThreshold        = 100

	defaultConsecutiveFailures = 5
	maxConsecutiveFailures     = 1000
	defaultEjectionTime        = 30 * time.Second
	defaultMaxEjectionTime     = 300 * time.Second
	defaultMaxEjectedPercent   = 50

	defaultWeight = 100
	maxWeight     = 10000

	defaultHost       = "*"
	defaultPathPrefix = "/"
)

func (c *checker) build(raw *rawConfig) *Config {
	cfg := &Config{Server: c.server(&raw.Server), Node: c.node(&raw.Node)}
	for i := range raw.Pool {
		cfg.Pools = append(cfg.Pools, c.pool(fmt.Sprintf("pool[%d]", i), &raw.Pool[i], &cfg.Node))
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
		CloseTimeout:     c.duration("server.close_timeout", r.CloseTimeout, defaultCloseTimeout),
		DrainTimeout:     c.duration("server.drain_timeout", r.DrainTimeout, defaultDrainTimeout),
		MaxMessageBytes:  c.size("server.max_message_bytes", r.MaxMessageBytes, defaultMaxMessage),
		MaxBufferedBytes: c.size("server.max_buffered_bytes", r.MaxBufferedBytes, defaultMaxBuffered),
		LogLevel:         c.oneOf("server.log_level", r.LogLevel, defaultLogLevel, "debug", "info", "warn", "error"),
		LogFormat:        c.oneOf("server.log_format", r.LogFormat, defaultLogFormat, "text", "json"),
		Reactors:         int(c.integer("server.reactors", r.Reactors, 0, 0, maxReactors)),
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
	if s.CloseTimeout == 0 {
		// A closing handshake needs a round trip to each side; with no
		// time for it every Close would end in a cut.
		c.errorf("server.close_timeout", "must be greater than 0")
		s.CloseTimeout = defaultCloseTimeout
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

// errorAt reports a problem with key on the line of another key, for a
// missing key that another one makes required.
func (c *checker) errorAt(lineKey, key, format string, args ...any) {
	c.errs = append(c.errs, Error{
		File: c.file,
		Line: c.pos.lineFor(lineKey),
		Key:  key,
		Msg:  fmt.Sprintf(format, args...),
	})
}

// hostname is the default node name.
func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return ""
	}
	return h
}

func (c *checker) node(r *rawNode) Node {
	n := Node{Name: hostname()}
	if r.Name != nil {
		if name := c.str("node.name", r.Name, ""); isString(r.Name) {
			if name == "" {
				c.errorf("node.name", "must not be empty; leave it out to use the host name")
			} else if err := checkPoolName(name); err != nil {
				c.errorf("node.name", "%v", err)
			} else {
				n.Name = name
			}
		}
	}
	var ok bool
	n.Cloud, n.Region, n.Zone, ok = c.location("node", r.Cloud, r.Region, r.Zone)
	c.nodeInvalid = !ok
	return n
}

// location reads the cloud, region and zone of the node or a backend. A
// zone name means nothing outside its region, nor a region outside its
// cloud (the balancer compares them nested), so each needs the one above.
// ok is false if any error was reported.
func (c *checker) location(key string, cloud, region, zone any) (string, string, string, bool) {
	n := len(c.errs)
	field := func(name string, v any) string {
		s := c.str(key+"."+name, v, "")
		if s == "" {
			return ""
		}
		if err := checkPoolName(s); err != nil {
			c.errorf(key+"."+name, "%v", err)
			return ""
		}
		return s
	}
	cl, rg, zn := field("cloud", cloud), field("region", region), field("zone", zone)
	if len(c.errs) == n {
		if zn != "" && rg == "" {
			c.errorf(key+".zone", "zone %q needs a region: a zone is only compared within its region", zn)
		}
		if rg != "" && cl == "" {
			c.errorf(key+".region", "region %q needs a cloud: a region is only compared within its cloud", rg)
		}
	}
	return cl, rg, zn, len(c.errs) == n
}

func (c *checker) pool(key string, r *rawPool, node *Node) Pool {
	p := Pool{
		Name:          c.str(key+".name", r.Name, ""),
		Balance:       c.oneOf(key+".balance", r.Balance, defaultBalance, "round_robin", "least_sessions", "p2c", "hash"),
		Locality:      c.oneOf(key+".locality", r.Locality, defaultLocality, "prefer", "strict", "off"),
		Preconnect:    int(c.integer(key+".preconnect", r.Preconnect, defaultPreconnect, 0, maxPreconnect)),
		DialTimeout:   c.duration(key+".dial_timeout", r.DialTimeout, defaultDialTimeout),
		SlowStart:     c.duration(key+".slow_start", r.SlowStart, 0),
		DrainPeriod:   c.duration(key+".drain_period", r.DrainPeriod, defaultDrainPeriod),
		Rebalance:     c.boolean(key+".rebalance", r.Rebalance, false),
		RebalanceRate: int(c.integer(key+".rebalance_rate", r.RebalanceRate, defaultRebalanceRate, 1, maxRebalanceRate)),
		Health:        c.health(key+".health", r.Health),
		Outlier:       c.outlier(key+".outlier", r.Outlier),
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
	p.RebalanceThreshold = c.number(key+".rebalance_threshold", r.RebalanceThreshold, defaultRebalanceThreshold)
	if p.RebalanceThreshold <= 1 {
		c.errorf(key+".rebalance_threshold", "%s is out of range: must be greater than 1, such as 1.25",
			strconv.FormatFloat(p.RebalanceThreshold, 'g', -1, 64))
		p.RebalanceThreshold = defaultRebalanceThreshold
	}
	balanceValid := r.Balance == nil || r.Balance == any(p.Balance)
	c.hashKey(key, r, &p, balanceValid)

	seen := map[string]int{}
	locationsValid := true
	for j := range r.Backend {
		bkey := fmt.Sprintf("%s.backend[%d]", key, j)
		rb := &r.Backend[j]
		b := Backend{
			Address:     c.str(bkey+".address", rb.Address, ""),
			Weight:      int(c.integer(bkey+".weight", rb.Weight, defaultWeight, 1, maxWeight)),
			MaxSessions: c.atLeast(bkey+".max_sessions", rb.MaxSessions, 0, 0),
			Drain:       c.boolean(bkey+".drain", rb.Drain, false),
		}
		var ok bool
		b.Cloud, b.Region, b.Zone, ok = c.location(bkey, rb.Cloud, rb.Region, rb.Zone)
		locationsValid = locationsValid && ok
		p.Backends = append(p.Backends, b)
		if rb.Address == nil {
			c.errorf(bkey+".address", "required")
			continue
		}
		if !isString(rb.Address) {
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

	// strict only ever uses the proxy's own region, so without one, or
	// without a backend in it, every session of the pool would be refused.
	if p.Locality == localityStrict && !c.nodeInvalid && locationsValid {
		if node.Cloud == "" || node.Region == "" {
			c.errorf(key+".locality", `"strict" needs [node] cloud and region: it sends sessions only to backends in the proxy's region`)
		} else if len(p.Backends) > 0 && !inRegion(p.Backends, node) {
			c.errorf(key+".locality", `"strict" but no backend is in the proxy's region (cloud %q, region %q): every session would be refused`,
				node.Cloud, node.Region)
		}
	}
	return p
}

func inRegion(backends []Backend, node *Node) bool {
	for _, b := range backends {
		if b.Cloud == node.Cloud && b.Region == node.Region {
			return true
		}
	}
	return false
}

// hashKey checks hash_key against balance and splits it into p's
// HashKeySource and HashKeyName. balanceValid is false when balance was
// reported as wrong, so that hash_key is not judged against its default.
func (c *checker) hashKey(key string, r *rawPool, p *Pool, balanceValid bool) {
	hk := key + ".hash_key"
	s := c.str(hk, r.HashKey, "")
	switch {
	case r.HashKey == nil:
		if p.Balance == balanceHash {
			c.errorAt(key+".balance", hk, `required when balance = "hash": write "header:NAME", "cookie:NAME", "query:NAME", "path" or "ip"`)
		}
		return
	case !isString(r.HashKey) || !balanceValid:
		return
	case p.Balance != balanceHash:
		c.errorf(hk, `only used with balance = "hash", not %q: remove it or set balance = "hash"`, p.Balance)
		return
	}
	src, name, err := parseHashKey(s)
	if err != nil {
		c.errorf(hk, "%v", err)
		return
	}
	p.HashKey, p.HashKeySource, p.HashKeyName = s, src, name
}

// parseHashKey splits "SOURCE:NAME", "path" or "ip".
func parseHashKey(s string) (src, name string, err error) {
	src, name, hasName := strings.Cut(s, ":")
	switch src {
	case "path", "ip":
		if hasName {
			return "", "", fmt.Errorf("%q: %s takes no name; write %q", s, src, src)
		}
		return src, "", nil
	case "header", "cookie", "query":
		example := map[string]string{"header": "header:X-Session-Id", "cookie": "cookie:session", "query": "query:room"}[src]
		if name == "" {
			return "", "", fmt.Errorf("%q: missing the %s name, as in %q", s, src, example)
		}
		if src == "header" {
			if !isToken(name) {
				return "", "", fmt.Errorf("%q: %q is not a valid header name", s, name)
			}
			return src, name, nil
		}
		for i := 0; i < len(name); i++ {
			if ch := name[i]; ch <= ' ' || ch == 0x7f || ch == ';' || ch == '=' {
				return "", "", fmt.Errorf("%q: a %s name must not contain spaces, control characters, ';' or '='", s, src)
			}
		}
		return src, name, nil
	}
	return "", "", fmt.Errorf(`%q: unknown source %q; write "header:NAME", "cookie:NAME", "query:NAME", "path" or "ip"`, s, src)
}

// isToken reports whether s is an HTTP token (RFC 9110), as header names
// must be.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if !('a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' || '0' <= ch && ch <= '9' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", ch) >= 0) {
			return false
		}
	}
	return true
}

// health reads a [pool.health] table; nil when the pool has none.
func (c *checker) health(key string, r *rawHealth) *Health {
	if r == nil {
		return nil
	}
	h := &Health{
		Path:               defaultHealthPath,
		HealthyThreshold:   int(c.integer(key+".healthy_threshold", r.HealthyThreshold, defaultHealthyThreshold, 1, maxHealthThreshold)),
		UnhealthyThreshold: int(c.integer(key+".unhealthy_threshold", r.UnhealthyThreshold, defaultUnhealthyThreshold, 1, maxHealthThreshold)),
	}
	typeValid := false
	if r.Type == nil {
		c.errorf(key+".type", "required in [pool.health]: tcp, http or websocket")
		h.Type = "tcp"
	} else {
		n := len(c.errs)
		h.Type = c.oneOf(key+".type", r.Type, "tcp", "tcp", "http", "websocket")
		typeValid = len(c.errs) == n
	}

	if path := c.str(key+".path", r.Path, defaultHealthPath); isString(r.Path) {
		switch {
		case typeValid && h.Type == "tcp":
			c.errorf(key+".path", `not used by tcp checks: remove it or set type = "http" or "websocket"`)
		case !strings.HasPrefix(path, "/"):
			c.errorf(key+".path", "%q must start with \"/\"", path)
		case strings.IndexFunc(path, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0:
			c.errorf(key+".path", "%q contains a space or control character", path)
		default:
			h.Path = path
		}
	}

	n := len(c.errs)
	h.Interval = c.duration(key+".interval", r.Interval, defaultHealthInterval)
	if h.Interval == 0 {
		c.errorf(key+".interval", "must be greater than 0")
		h.Interval = defaultHealthInterval
	}
	h.Timeout = c.duration(key+".timeout", r.Timeout, defaultHealthTimeout)
	if h.Timeout == 0 {
		c.errorf(key+".timeout", "must be greater than 0")
		h.Timeout = defaultHealthTimeout
	}
	if len(c.errs) == n && h.Timeout >= h.Interval {
		if r.Timeout == nil {
			c.errorf(key+".timeout", "the default, %v, is not less than interval %v: set timeout", h.Timeout, h.Interval)
		} else {
			c.errorf(key+".timeout", "%v must be less than interval %v", h.Timeout, h.Interval)
		}
	}
	return h
}

// outlier reads a [pool.outlier] table, all defaults when there is none.
func (c *checker) outlier(key string, r *rawOutlier) Outlier {
	if r == nil {
		r = &rawOutlier{}
	}
	o := Outlier{
		ConsecutiveFailures: int(c.integer(key+".consecutive_failures", r.ConsecutiveFailures, defaultConsecutiveFailures, 0, maxConsecutiveFailures)),
		MaxEjectedPercent:   int(c.integer(key+".max_ejected_percent", r.MaxEjectedPercent, defaultMaxEjectedPercent, 0, 100)),
	}
	n := len(c.errs)
	o.EjectionTime = c.duration(key+".ejection_time", r.EjectionTime, defaultEjectionTime)
	if o.EjectionTime == 0 {
		c.errorf(key+".ejection_time", "must be greater than 0")
		o.EjectionTime = defaultEjectionTime
	}
	o.MaxEjectionTime = c.duration(key+".max_ejection_time", r.MaxEjectionTime, defaultMaxEjectionTime)
	if o.MaxEjectionTime == 0 {
		c.errorf(key+".max_ejection_time", "must be greater than 0")
		o.MaxEjectionTime = defaultMaxEjectionTime
	}
	if len(c.errs) == n && o.MaxEjectionTime < o.EjectionTime {
		if r.MaxEjectionTime == nil {
			c.errorf(key+".max_ejection_time", "the default, %v, is less than ejection_time %v: set max_ejection_time", o.MaxEjectionTime, o.EjectionTime)
		} else {
			c.errorf(key+".max_ejection_time", "%v is less than ejection_time %v", o.MaxEjectionTime, o.EjectionTime)
		}
	}
	return o
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
