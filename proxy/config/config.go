package config

import (
	"errors"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config is a validated configuration with every default filled in.
//
// The toml tags name the keys of the file for readers; build a Config with
// Load or Parse, not by decoding into it directly, because durations and
// sizes have their own syntax (see REFERENCE.md).
type Config struct {
	Server Server  `toml:"server"`
	Node   Node    `toml:"node"`
	Routes []Route `toml:"route"`
	Pools  []Pool  `toml:"pool"`
	Path   string  `toml:"-"` // file it was loaded from
}

// Server holds the [server] table.
type Server struct {
	Listen string `toml:"listen"`
	// AdminListen is "" when the file sets admin_listen = "off".
	AdminListen      string        `toml:"admin_listen"`
	HandshakeTimeout time.Duration `toml:"handshake_timeout"`
	IdleTimeout      time.Duration `toml:"idle_timeout"`  // 0: never
	PingInterval     time.Duration `toml:"ping_interval"` // 0: no pings
	PingTimeout      time.Duration `toml:"ping_timeout"`
	// CloseTimeout bounds a closing handshake: from the first Close of a
	// session until both sides have answered and the backend has closed
	// TCP, after which wsgate closes both connections itself.
	CloseTimeout    time.Duration `toml:"close_timeout"`
	DrainTimeout    time.Duration `toml:"drain_timeout"`
	MaxHeaderBytes  int           `toml:"max_header_bytes"`
	MaxMessageBytes int64         `toml:"max_message_bytes"` // 0: unlimited
	// MaxBufferedBytes bounds each session in each direction.
	MaxBufferedBytes int64 `toml:"max_buffered_bytes"`
	// MaxBufferedTotal bounds all sessions together.
	MaxBufferedTotal int64  `toml:"max_buffered_total"`
	LogLevel         string `toml:"log_level"`  // debug, info, warn or error
	LogFormat        string `toml:"log_format"` // text or json
	// Reactors is the number of relay threads; 0: one per core wsgate
	// may use.
	Reactors int `toml:"reactors"`
}

// Node holds the [node] table: where this proxy runs. Empty location
// fields are unknown, and an unknown field never equals anything, so
// locality then treats every backend as "anywhere". A zone is only
// meaningful within its region and a region within its cloud: Parse
// refuses a zone without a region and a region without a cloud.
type Node struct {
	Name   string `toml:"name"` // default: os.Hostname(), "" if that fails
	Cloud  string `toml:"cloud"`
	Region string `toml:"region"`
	Zone   string `toml:"zone"`
}

// Route sends upgrade requests to a pool.
type Route struct {
	// Host is "*" or a lower-case host name, compared with the Host header
	// stripped of its port, case-insensitively.
	Host       string `toml:"host"`
	PathPrefix string `toml:"path_prefix"` // starts with "/"
	Pool       string `toml:"pool"`        // names an existing Pool
}

// Pool is a named group of backends.
type Pool struct {
	Name string `toml:"name"`
	// Balance is round_robin, least_sessions, p2c or hash.
	Balance string `toml:"balance"`
	// HashKey is the hash_key as written, "" unless Balance is "hash", in
	// which case it is always set. HashKeySource and HashKeyName are its
	// parts: source "header", "cookie" or "query" with a non-empty name,
	// or "path" or "ip" with Name "". Header names are kept as written;
	// compare them case-insensitively.
	HashKey       string `toml:"hash_key"`
	HashKeySource string `toml:"-"`
	HashKeyName   string `toml:"-"`
	// Locality is prefer, strict or off. Strict implies that Config.Node
	// has a cloud and a region and that some backend shares them.
	Locality    string        `toml:"locality"`
	Preconnect  int           `toml:"preconnect"` // 0: no warm connections
	DialTimeout time.Duration `toml:"dial_timeout"`
	SlowStart   time.Duration `toml:"slow_start"`   // 0: off
	DrainPeriod time.Duration `toml:"drain_period"` // 0: close at once
	Rebalance   bool          `toml:"rebalance"`
	// RebalanceThreshold (> 1, finite) and RebalanceRate (>= 1 sessions
	// per second) are set, defaulted, even when Rebalance is false.
	RebalanceThreshold float64 `toml:"rebalance_threshold"`
	RebalanceRate      int     `toml:"rebalance_rate"`
	// Health is nil when the pool has no [pool.health]: no active checks.
	Health *Health `toml:"health"`
	// Outlier is always filled in; ConsecutiveFailures 0 disables it.
	Outlier Outlier `toml:"outlier"`
	// Backends may be empty: wsgate then answers 503 for the pool's routes.
	Backends []Backend `toml:"backend"`
}

// Health holds a [pool.health] table: active health checks.
type Health struct {
	Type string `toml:"type"` // tcp, http or websocket
	// Path starts with "/" and has no spaces or control characters; it is
	// "/" for tcp checks, which do not use it.
	Path               string        `toml:"path"`
	Interval           time.Duration `toml:"interval"` // > 0
	Timeout            time.Duration `toml:"timeout"`  // > 0 and < Interval
	HealthyThreshold   int           `toml:"healthy_threshold"`
	UnhealthyThreshold int           `toml:"unhealthy_threshold"`
}

// Outlier holds a [pool.outlier] table: passive health checking, which
// ejects a backend after consecutive failed sessions or dials.
type Outlier struct {
	ConsecutiveFailures int           `toml:"consecutive_failures"` // 0: off
	EjectionTime        time.Duration `toml:"ejection_time"`        // > 0
	// MaxEjectionTime caps the doubling of EjectionTime; >= EjectionTime.
	MaxEjectionTime   time.Duration `toml:"max_ejection_time"`
	MaxEjectedPercent int           `toml:"max_ejected_percent"` // 0..100
}

// Backend is one upstream server of a pool.
type Backend struct {
	Address string `toml:"address"` // host:port
	Weight  int    `toml:"weight"`  // 1..10000
	// Location, nested like Node's: a zone implies a region, a region a
	// cloud.
	Cloud       string `toml:"cloud"`
	Region      string `toml:"region"`
	Zone        string `toml:"zone"`
	MaxSessions int64  `toml:"max_sessions"` // 0: unlimited
	// Drain: no new sessions; existing ones are closed over the pool's
	// DrainPeriod.
	Drain bool `toml:"drain"`
}

// Error is one problem in a configuration file.
type Error struct {
	File string
	Line int    // 1-based; 0 when the problem has no single place
	Key  string // e.g. "pool[1].backend[0].address"; "" for syntax errors
	Msg  string
}

// Error formats e as "FILE:LINE: key: msg", leaving out the parts it lacks.
func (e Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.Line))
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in one file, ordered by line.
type Errors []Error

// Error puts one problem on each line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Load reads and parses the file at path. A non-nil error is always Errors.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		// The PathError's own text repeats the path, which Error already
		// starts with.
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, Errors{{File: path, Msg: err.Error()}}
	}
	return Parse(path, data)
}

// Parse parses and validates a configuration; name is used in error
// messages and as Config.Path. A non-nil error is always Errors.
func Parse(name string, data []byte) (*Config, error) {
	cfg, errs := parse(name, data)
	if len(errs) > 0 {
		return nil, errs
	}
	cfg.Path = name
	return cfg, nil
}
