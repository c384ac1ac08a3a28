package balance

import "fmt"

// Policy chooses a backend within a locality tier.
type Policy int

const (
	// RoundRobin is NGINX's smooth weighted round robin.
	RoundRobin Policy = iota
	// LeastSessions takes the backend with the fewest active sessions per
	// unit of weight.
	LeastSessions
	// P2C draws two backends at random in proportion to weight and keeps
	// the less loaded one.
	P2C
	// Hash is sticky: weighted rendezvous hashing of the caller's key,
	// P2C for requests without a key.
	Hash
)

// String returns the configuration spelling of p.
func (p Policy) String() string {
	switch p {
	case RoundRobin:
		return "round_robin"
	case LeastSessions:
		return "least_sessions"
	case P2C:
		return "p2c"
	case Hash:
		return "hash"
	}
	return fmt.Sprintf("Policy(%d)", int(p))
}

// ParsePolicy maps a configuration value to a Policy. The empty string is
// round_robin, the default.
func ParsePolicy(s string) (Policy, error) {
	if s == "" {
		return RoundRobin, nil
	}
	for p := RoundRobin; p <= Hash; p++ {
		if s == p.String() {
			return p, nil
		}
	}
	return 0, fmt.Errorf("balance: unknown policy %q (want round_robin, least_sessions, p2c or hash)", s)
}

// LocalityMode says how far from the proxy a session may be sent.
type LocalityMode int

const (
	// Prefer serves from the nearest tier with healthy capacity and spills
	// to farther tiers as its healthy fraction falls.
	Prefer LocalityMode = iota
	// Strict is Prefer limited to the proxy's own region (tiers 0 and 1).
	Strict
	// Off ignores location: every backend is in one tier.
	Off
)

// String returns the configuration spelling of m.
func (m LocalityMode) String() string {
	switch m {
	case Prefer:
		return "prefer"
	case Strict:
		return "strict"
	case Off:
		return "off"
	}
	return fmt.Sprintf("LocalityMode(%d)", int(m))
}

// ParseLocalityMode maps a configuration value to a LocalityMode. The empty
// string is prefer, the default.
func ParseLocalityMode(s string) (LocalityMode, error) {
	if s == "" {
		return Prefer, nil
	}
	for m := Prefer; m <= Off; m++ {
		if s == m.String() {
			return m, nil
		}
	}
	return 0, fmt.Errorf("balance: unknown locality mode %q (want prefer, strict or off)", s)
}
