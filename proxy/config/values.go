package config

import (
	"fmt"
	"math"
	"math/big"
	"strings"
	"time"

	toml "github.com/pelletier/go-toml/v2"
)

// The conversions below return the default after reporting an error, so
// that one bad value does not cause further errors in the checks that
// compare it with other keys.

// typeName describes a decoded TOML value for error messages.
func typeName(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	case time.Time, toml.LocalDateTime:
		return "a date-time"
	case toml.LocalDate:
		return "a date"
	case toml.LocalTime:
		return "a time of day"
	}
	return fmt.Sprintf("%T", v)
}

func (c *checker) str(key string, v any, def string) string {
	switch v := v.(type) {
	case nil:
		return def
	case string:
		return v
	}
	c.errorf(key, "must be a string, not %s", typeName(v))
	return def
}

// oneOf accepts a string from a fixed set.
func (c *checker) oneOf(key string, v any, def string, valid ...string) string {
	s := c.str(key, v, def)
	for _, ok := range valid {
		if s == ok {
			return s
		}
	}
	c.errorf(key, "unknown value %q; valid values: %s", s, strings.Join(valid, ", "))
	return def
}

// integer accepts a TOML integer in [lo, hi].
func (c *checker) integer(key string, v any, def, lo, hi int64) int64 {
	switch n := v.(type) {
	case nil:
		return def
	case int64:
		if n < lo || n > hi {
			c.errorf(key, "%d is out of range: must be %d to %d", n, lo, hi)
			return def
		}
		return n
	}
	c.errorf(key, "must be an integer, not %s", typeName(v))
	return def
}

// atLeast accepts a TOML integer of at least lo, without an upper bound.
func (c *checker) atLeast(key string, v any, def, lo int64) int64 {
	switch n := v.(type) {
	case nil:
		return def
	case int64:
		if n < lo {
			c.errorf(key, "%d is out of range: must be %d or more", n, lo)
			return def
		}
		return n
	}
	c.errorf(key, "must be an integer, not %s", typeName(v))
	return def
}

// boolean accepts true or false.
func (c *checker) boolean(key string, v any, def bool) bool {
	switch b := v.(type) {
	case nil:
		return def
	case bool:
		return b
	}
	c.errorf(key, "must be true or false, not %s", typeName(v))
	return def
}

// number accepts a finite TOML float or integer.
func (c *checker) number(key string, v any, def float64) float64 {
	switch n := v.(type) {
	case nil:
		return def
	case int64:
		return float64(n)
	case float64:
		if math.IsNaN(n) || math.IsInf(n, 0) {
			c.errorf(key, "must be a finite number, not %v", n)
			return def
		}
		return n
	}
	c.errorf(key, "must be a number, not %s", typeName(v))
	return def
}

// duration accepts a Go duration string. Durations are never negative.
func (c *checker) duration(key string, v any, def time.Duration) time.Duration {
	switch v := v.(type) {
	case nil:
		return def
	case string:
		d, err := time.ParseDuration(v)
		if err != nil {
			c.errorf(key, "invalid duration %q: write a number with a unit, such as \"300ms\", \"5s\" or \"2m\"", v)
			return def
		}
		if d < 0 {
			c.errorf(key, "must not be negative")
			return def
		}
		return d
	case int64:
		// A bare number could mean seconds or milliseconds; guessing wrong
		// is a silent outage, so the unit must be written.
		c.errorf(key, "a bare number is ambiguous: write a duration string with a unit, such as \"%ds\"", v)
		return def
	}
	c.errorf(key, "must be a duration string such as \"5s\", not %s", typeName(v))
	return def
}

// size accepts a byte count: an integer, or a string such as "16MiB".
// Sizes are never negative.
func (c *checker) size(key string, v any, def int64) int64 {
	switch v := v.(type) {
	case nil:
		return def
	case int64:
		if v < 0 {
			c.errorf(key, "must not be negative")
			return def
		}
		return v
	case string:
		n, err := parseSize(v)
		if err != nil {
			c.errorf(key, "%v", err)
			return def
		}
		return n
	}
	c.errorf(key, "must be a number of bytes or a string such as \"16MiB\", not %s", typeName(v))
	return def
}

// unitBytes is the multiplier of a size unit, 0 if unknown. Units are
// binary only: "MB" and the like are refused rather than guessed, since
// some readers take them as 10^6 and others as 2^20.
func unitBytes(unit string) int64 {
	switch unit {
	case "", "B":
		return 1
	case "KiB":
		return 1 << 10
	case "MiB":
		return 1 << 20
	case "GiB":
		return 1 << 30
	case "TiB":
		return 1 << 40
	}
	return 0
}

// parseSize parses "<number>[ ]<unit>", where number may have a decimal
// fraction ("1.5MiB") as long as the result is a whole number of bytes.
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && ('0' <= t[i] && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.TrimSpace(t[i:])
	if !isDecimal(num) {
		return 0, fmt.Errorf("invalid size %q: write a number of bytes with an optional unit B, KiB, MiB, GiB or TiB, such as \"16MiB\"", s)
	}
	mult := unitBytes(unit)
	if mult == 0 {
		switch bin := binaryUnit(unit); {
		case strings.EqualFold(bin, unit):
			return 0, fmt.Errorf("invalid size %q: write the unit as %q", s, bin)
		case bin != "":
			return 0, fmt.Errorf("invalid size %q: unit %q is ambiguous, write %q (powers of 1024) or a number of bytes", s, unit, bin)
		}
		return 0, fmt.Errorf("invalid size %q: unknown unit %q; valid units: B, KiB, MiB, GiB, TiB", s, unit)
	}
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	r.Mul(r, new(big.Rat).SetInt64(mult))
	if !r.IsInt() {
		return 0, fmt.Errorf("invalid size %q: not a whole number of bytes", s)
	}
	if !r.Num().IsInt64() {
		return 0, fmt.Errorf("invalid size %q: too large", s)
	}
	return r.Num().Int64(), nil
}

// isDecimal reports whether s is digits with an optional fraction.
func isDecimal(s string) bool {
	whole, frac, hasFrac := strings.Cut(s, ".")
	return allDigits(whole) && (!hasFrac || allDigits(frac))
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// binaryUnit maps decimal-looking units to the binary unit they are most
// likely meant as, for the error message.
func binaryUnit(unit string) string {
	switch strings.ToUpper(strings.TrimSuffix(strings.TrimSuffix(unit, "B"), "b")) {
	case "K", "KI":
		return "KiB"
	case "M", "MI":
		return "MiB"
	case "G", "GI":
		return "GiB"
	case "T", "TI":
		return "TiB"
	}
	return ""
}
