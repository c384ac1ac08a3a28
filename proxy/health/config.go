package health

import (
	"fmt"
	"strings"
	"time"
)

// Kind selects what a check exercises on the backend.
type Kind int

const (
	// TCP succeeds when a connection is established within the timeout.
	TCP Kind = iota
	// HTTP succeeds when GET Path answers with a 2xx status.
	HTTP
	// WebSocket succeeds when an upgrade to Path completes and a Ping is
	// answered by a Pong.
	WebSocket
)

// String returns the configuration spelling of k.
func (k Kind) String() string {
	switch k {
	case TCP:
		return "tcp"
	case HTTP:
		return "http"
	case WebSocket:
		return "websocket"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// ParseKind parses the `type` setting of [pool.health]. Case is ignored
// because operators write "HTTP" as often as "http".
func ParseKind(s string) (Kind, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "tcp":
		return TCP, nil
	case "http":
		return HTTP, nil
	case "websocket":
		return WebSocket, nil
	}
	return 0, fmt.Errorf("health: unknown check type %q (want tcp, http or websocket)", s)
}

// Defaults used when a Config field is left at its zero value. They match
// the values suggested for [pool.health].
const (
	DefaultInterval           = 5 * time.Second
	DefaultTimeout            = 2 * time.Second
	DefaultHealthyThreshold   = 2
	DefaultUnhealthyThreshold = 3
	DefaultPath               = "/"
	DefaultMaxConcurrent      = 8
)

// Config is one pool's health-check settings.
type Config struct {
	Kind Kind
	// Path is requested by HTTP and WebSocket checks; TCP ignores it.
	Path string
	// Interval is the mean delay between the starts of two checks of the
	// same target.
	Interval time.Duration
	// Timeout bounds one whole check, connect and close included.
	Timeout time.Duration
	// HealthyThreshold is the number of consecutive successes that turn an
	// unhealthy target healthy.
	HealthyThreshold int
	// UnhealthyThreshold is the number of consecutive failures that turn a
	// healthy target unhealthy.
	UnhealthyThreshold int
	// InitiallyHealthy is the state of a target before its thresholds are
	// reached. The zero value (false) keeps new targets out of rotation
	// until proven healthy; DefaultConfig sets true, see the package doc.
	InitiallyHealthy bool
}

// DefaultConfig returns the settings used when a pool has no [pool.health]
// overrides: TCP checks, healthy until proven otherwise.
func DefaultConfig() Config {
	return Config{
		Kind:               TCP,
		Path:               DefaultPath,
		Interval:           DefaultInterval,
		Timeout:            DefaultTimeout,
		HealthyThreshold:   DefaultHealthyThreshold,
		UnhealthyThreshold: DefaultUnhealthyThreshold,
		InitiallyHealthy:   true,
	}
}

// Validate reports settings that cannot be meant. Zero values are not
// errors: withDefaults fills them in.
func (c Config) Validate() error {
	switch {
	case c.Kind < TCP || c.Kind > WebSocket:
		return fmt.Errorf("health: invalid kind %d", int(c.Kind))
	case c.Interval < 0:
		return fmt.Errorf("health: negative interval %v", c.Interval)
	case c.Timeout < 0:
		return fmt.Errorf("health: negative timeout %v", c.Timeout)
	case c.HealthyThreshold < 0:
		return fmt.Errorf("health: negative healthy_threshold %d", c.HealthyThreshold)
	case c.UnhealthyThreshold < 0:
		return fmt.Errorf("health: negative unhealthy_threshold %d", c.UnhealthyThreshold)
	}
	if c.Kind != TCP && c.Path != "" {
		if err := validatePath(c.Path); err != nil {
			return fmt.Errorf("health: %w", err)
		}
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Interval <= 0 {
		c.Interval = DefaultInterval
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.HealthyThreshold <= 0 {
		c.HealthyThreshold = DefaultHealthyThreshold
	}
	if c.UnhealthyThreshold <= 0 {
		c.UnhealthyThreshold = DefaultUnhealthyThreshold
	}
	if c.Path == "" {
		c.Path = DefaultPath
	}
	return c
}

// validatePath keeps the request line well formed: the path is written
// verbatim after "GET ", so a space or CR/LF would let a config value
// inject headers into every check.
func validatePath(p string) error {
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("path %q must start with /", p)
	}
	for i := 0; i < len(p); i++ {
		if b := p[i]; b <= ' ' || b == 0x7f {
			return fmt.Errorf("path %q contains a space or control character", p)
		}
	}
	return nil
}
