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
	DrainTimeout     time.Duration `toml:"drain_timeout"`
	MaxHeaderBytes   int           `toml:"max_header_bytes"`
	MaxMessageBytes  int64         `toml:"max_message_bytes"` // 0: unlimited
	// MaxBufferedBytes bounds each session in each direction.
	MaxBufferedBytes int64 `toml:"max_buffered_bytes"`
	// MaxBufferedTotal bounds all sessions together.
	MaxBufferedTotal int64  `toml:"max_buffered_total"`
	LogLevel         string `toml:"log_level"`  // debug, info, warn or error
	LogFormat        string `toml:"log_format"` // text or json
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
	Name        string        `toml:"name"`
	Balance     string        `toml:"balance"`    // round_robin
	Preconnect  int           `toml:"preconnect"` // 0: no warm connections
	DialTimeout time.Duration `toml:"dial_timeout"`
	// Backends may be empty: wsgate then answers 503 for the pool's routes.
	Backends []Backend `toml:"backend"`
}

// Backend is one upstream server of a pool.
type Backend struct {
	Address string `toml:"address"` // host:port
	Weight  int    `toml:"weight"`  // 1..10000
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
