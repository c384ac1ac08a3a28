package config

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"unicode"

	toml "github.com/pelletier/go-toml/v2"
)

// The raw types mirror the file's layout with every value left as whatever
// TOML type the file wrote. Decoding into typed fields would make go-toml
// stop at the first value of the wrong type; decoding into `any` lets it
// finish, so that every bad value is reported in one run, while its strict
// mode still reports every unknown key.
type rawConfig struct {
	Server rawServer  `toml:"server"`
	Node   rawNode    `toml:"node"`
	Route  []rawRoute `toml:"route"`
	Pool   []rawPool  `toml:"pool"`
}

type rawServer struct {
	Listen           any `toml:"listen"`
	AdminListen      any `toml:"admin_listen"`
	HandshakeTimeout any `toml:"handshake_timeout"`
	IdleTimeout      any `toml:"idle_timeout"`
	PingInterval     any `toml:"ping_interval"`
	PingTimeout      any `toml:"ping_timeout"`
	CloseTimeout     any `toml:"close_timeout"`
	DrainTimeout     any `toml:"drain_timeout"`
	MaxHeaderBytes   any `toml:"max_header_bytes"`
	MaxMessageBytes  any `toml:"max_message_bytes"`
	MaxBufferedBytes any `toml:"max_buffered_bytes"`
	MaxBufferedTotal any `toml:"max_buffered_total"`
	LogLevel         any `toml:"log_level"`
	LogFormat        any `toml:"log_format"`
	Reactors         any `toml:"reactors"`
}

type rawRoute struct {
	Host       any `toml:"host"`
	PathPrefix any `toml:"path_prefix"`
	Pool       any `toml:"pool"`
}

type rawNode struct {
	Name   any `toml:"name"`
	Cloud  any `toml:"cloud"`
	Region any `toml:"region"`
	Zone   any `toml:"zone"`
}

type rawPool struct {
	Name               any          `toml:"name"`
	Balance            any          `toml:"balance"`
	HashKey            any          `toml:"hash_key"`
	Locality           any          `toml:"locality"`
	Preconnect         any          `toml:"preconnect"`
	DialTimeout        any          `toml:"dial_timeout"`
	SlowStart          any          `toml:"slow_start"`
	DrainPeriod        any          `toml:"drain_period"`
	Rebalance          any          `toml:"rebalance"`
	RebalanceThreshold any          `toml:"rebalance_threshold"`
	RebalanceRate      any          `toml:"rebalance_rate"`
	Health             *rawHealth   `toml:"health"` // nil when absent
	Outlier            *rawOutlier  `toml:"outlier"`
	Backend            []rawBackend `toml:"backend"`
}

type rawHealth struct {
	Type               any `toml:"type"`
	Path               any `toml:"path"`
	Interval           any `toml:"interval"`
	Timeout            any `toml:"timeout"`
	HealthyThreshold   any `toml:"healthy_threshold"`
	UnhealthyThreshold any `toml:"unhealthy_threshold"`
}

type rawOutlier struct {
	ConsecutiveFailures any `toml:"consecutive_failures"`
	EjectionTime        any `toml:"ejection_time"`
	MaxEjectionTime     any `toml:"max_ejection_time"`
	MaxEjectedPercent   any `toml:"max_ejected_percent"`
}

type rawBackend struct {
	Address     any `toml:"address"`
	Weight      any `toml:"weight"`
	Cloud       any `toml:"cloud"`
	Region      any `toml:"region"`
	Zone        any `toml:"zone"`
	MaxSessions any `toml:"max_sessions"`
	Drain       any `toml:"drain"`
}

// checker accumulates the errors of one file.
type checker struct {
	file string
	pos  *positions
	errs Errors
	// nodeInvalid is set when [node]'s location was reported as wrong, so
	// that checks against it add no noise.
	nodeInvalid bool
}

func (c *checker) errorf(key, format string, args ...any) {
	c.errs = append(c.errs, Error{
		File: c.file,
		Line: c.pos.lineFor(key),
		Key:  key,
		Msg:  fmt.Sprintf(format, args...),
	})
}

func parse(name string, data []byte) (*Config, Errors) {
	c := &checker{file: name, pos: scanPositions(data)}
	var raw rawConfig
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		var strict *toml.StrictMissingError
		if !errors.As(err, &strict) {
			// Syntax errors, duplicate keys and tables where values belong
			// leave raw partly filled: checking it would only add noise.
			c.decodeError(err)
			return nil, c.errs
		}
		for i := range strict.Errors {
			c.unknownKey(&strict.Errors[i])
		}
	}
	for _, key := range c.pos.tables {
		if t := fieldType(key); t != nil && t.Kind() == reflect.Slice {
			c.errorf(key, "must be an array of tables ([[%s]]), not a table", headerName(key))
		}
	}
	cfg := c.build(&raw)
	sort.SliceStable(c.errs, func(i, j int) bool {
		// Errors without a line concern the file as a whole; they go last.
		li, lj := c.errs[i].Line, c.errs[j].Line
		return li != 0 && (lj == 0 || li < lj)
	})
	return cfg, c.errs
}

func (c *checker) unknownKey(de *toml.DecodeError) {
	line, col := de.Position()
	key := c.pos.nameAt(line, col)
	if key == "" {
		key = keyName(de.Key())
	}
	msg := "unknown key"
	if s := suggest(key); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	c.errs = append(c.errs, Error{File: c.file, Line: line, Key: key, Msg: msg})
}

func (c *checker) decodeError(err error) {
	var de *toml.DecodeError
	if !errors.As(err, &de) {
		c.errs = append(c.errs, Error{File: c.file, Msg: oneLine(err.Error())})
		return
	}
	line, col := de.Position()
	key := c.pos.nameAt(line, col)
	if key == "" {
		key = keyName(de.Key())
	}
	msg := oneLine(strings.TrimPrefix(de.Error(), "toml: "))
	if m := shapeMessage(key, msg); m != "" {
		msg = m
	}
	c.errs = append(c.errs, Error{File: c.file, Line: line, Key: key, Msg: msg})
}

// oneLine escapes the control characters that go-toml copies from the file
// into its messages (a quoted key may contain a newline), so that every
// error stays on one line.
func oneLine(s string) string {
	if strings.IndexFunc(s, unicode.IsControl) < 0 {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unicode.IsControl(r) {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// shapeMessage rewrites go-toml's complaints about a value standing where
// a table or an array of tables belongs, which name wsgate's internal Go
// types, into what the file should contain. "" if msg is not one of them.
func shapeMessage(key, msg string) string {
	t := fieldType(key)
	if t == nil {
		return ""
	}
	var got string
	if rest, ok := strings.CutPrefix(msg, "cannot decode TOML "); ok {
		typ, _, _ := strings.Cut(rest, " into ")
		if typ == "" {
			return ""
		}
		got = article(typ)
	} else if strings.Contains(msg, "array table") {
		got = "an array of tables"
	} else {
		return ""
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		return fmt.Sprintf("must be a table ([%s]), not %s", headerName(key), got)
	case reflect.Slice:
		return fmt.Sprintf("must be an array of tables ([[%s]]), not %s", headerName(key), got)
	}
	return ""
}

// keyName writes a go-toml key the way positions names keys.
func keyName(parts toml.Key) string {
	name := ""
	for _, p := range parts {
		name = joinKey(name, p)
	}
	return name
}

func article(typ string) string {
	if strings.IndexByte("aeiou", typ[0]) >= 0 {
		return "an " + typ
	}
	return "a " + typ
}

// headerName is how a table header writes key: without array indices.
func headerName(key string) string {
	var b strings.Builder
	skip := false
	for i := 0; i < len(key); i++ {
		switch ch := key[i]; {
		case ch == '[':
			skip = true
		case ch == ']':
			skip = false
		case !skip:
			b.WriteByte(ch)
		}
	}
	return b.String()
}

func lastPart(key string) string {
	return key[strings.LastIndexByte(key, '.')+1:]
}

// fieldType returns the Go type that the raw types decode key into (the
// root for ""), or nil if key is not one of theirs. It reads the struct
// tags so that they stay the only list of valid keys.
func fieldType(key string) reflect.Type {
	t := reflect.TypeFor[rawConfig]()
	if key == "" {
		return t
	}
	for _, part := range strings.Split(key, ".") {
		if i := strings.IndexByte(part, '['); i >= 0 {
			part = part[:i]
		}
		t = structOf(t)
		if t == nil {
			return nil
		}
		f, ok := fieldByTag(t, part)
		if !ok {
			return nil
		}
		t = f.Type
	}
	return t
}

// structOf unwraps arrays of tables and optional tables.
func structOf(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Slice || t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	return t
}

func fieldByTag(t reflect.Type, tag string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		if f := t.Field(i); f.Tag.Get("toml") == tag {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// suggest returns the valid key closest to an unknown one, if it is close
// enough to be a typo.
func suggest(key string) string {
	t := fieldType(parentKey(key))
	if t == nil {
		return ""
	}
	t = structOf(t)
	if t == nil {
		return ""
	}
	typo := lastPart(key)
	best, bestDist := "", 3
	for i := 0; i < t.NumField(); i++ {
		name := t.Field(i).Tag.Get("toml")
		if d := editDistance(typo, name); d < bestDist {
			best, bestDist = name, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance, for short keys only.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
