package config

import (
	"sort"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// positions tells where each key of a document is written. The decoder
// only reports positions for its own errors; semantic errors found after
// decoding need the line of the key they are about, so the document is
// walked once more with go-toml's parser to record them.
//
// Keys are named the way errors show them: dotted, with the 0-based index
// of each array element, e.g. "pool[1].backend[0].address".
type positions struct {
	lineStarts []int
	// line maps a key to the line where it is first written. For a table
	// or array element that is the line of its header or first key.
	line map[string]int
	// keyAt maps the offset of a key's first byte to the key's name, so
	// that errors the decoder reports by position can be named with array
	// indices, which the decoder's own key paths lack.
	keyAt map[int]string
	// firstKey maps a line to the first key written on it, for decoder
	// errors that point at a value rather than at a key.
	firstKey map[int]string
	// tables lists the keys written as a single table, by a [header], a
	// dotted key or an inline table, in the order they appear. go-toml quietly takes a
	// single table where an array of tables is expected; wsgate does not,
	// so that [pool] and [[pool]] cannot be confused.
	tables  []string
	isTable map[string]bool
}

func scanPositions(data []byte) *positions {
	ps := &positions{
		lineStarts: []int{0},
		line:       map[string]int{},
		keyAt:      map[int]string{},
		firstKey:   map[int]string{},
		isTable:    map[string]bool{},
	}
	for i, c := range data {
		if c == '\n' {
			ps.lineStarts = append(ps.lineStarts, i+1)
		}
	}

	var p unstable.Parser
	p.Reset(data)
	// arrays counts the elements of each array of tables seen so far, by
	// its name without the last index ("pool", "pool[1].backend"), because
	// a later [[pool]] header adds an element and a [pool.x] header refers
	// to the last one.
	arrays := map[string]int{}
	table := ""
	for p.NextExpression() {
		expr := p.Expression()
		switch expr.Kind {
		case unstable.Table, unstable.ArrayTable:
			table = ""
			var first unstable.Range
			name := ""
			it := expr.Key()
			for it.Next() {
				k := it.Node()
				if name == "" {
					first = k.Raw
				}
				name = joinKey(table, string(k.Data))
				if expr.Kind == unstable.ArrayTable && it.IsLast() {
					n := arrays[name]
					arrays[name] = n + 1
					ps.define(name, k.Raw)
					table = name + "[" + strconv.Itoa(n) + "]"
				} else if n, ok := arrays[name]; ok {
					table = name + "[" + strconv.Itoa(n-1) + "]"
				} else {
					table = name
					ps.defineTable(table)
				}
				ps.define(table, k.Raw)
			}
			// An unknown [[x]] is better named "x" than "x[0]".
			ps.nameKey(first, name)
		case unstable.KeyValue:
			ps.walkKeyValue(table, expr)
		}
	}
	return ps
}

func (ps *positions) walkKeyValue(table string, kv *unstable.Node) {
	name := table
	var first, last unstable.Range
	it := kv.Key()
	for it.Next() {
		k := it.Node()
		if name == table {
			first = k.Raw
		}
		last = k.Raw
		name = joinKey(name, string(k.Data))
		if !it.IsLast() {
			// Each part of a dotted key but the last names a table.
			ps.defineTable(name)
		}
		ps.define(name, k.Raw)
	}
	ps.nameKey(first, name)
	ps.walkValue(name, kv.Value(), last)
}

// walkValue records the elements of arrays and the keys of inline tables.
// at is where the value's key is written, the fallback for nodes that
// carry no position of their own (go-toml leaves Raw unset on arrays).
func (ps *positions) walkValue(name string, v *unstable.Node, at unstable.Range) {
	switch v.Kind {
	case unstable.Array:
		i := 0
		it := v.Children()
		for it.Next() {
			elem := it.Node()
			elemName := name + "[" + strconv.Itoa(i) + "]"
			i++
			where := at
			if elem.Kind != unstable.Array && elem.Kind != unstable.InlineTable && elem.Raw.Length > 0 {
				where = elem.Raw
			} else if elem.Kind == unstable.InlineTable {
				if kv := elem.Child(); kv != nil && kv.Kind == unstable.KeyValue {
					if k := kv.Key(); k.Next() {
						where = k.Node().Raw
					}
				}
			}
			ps.define(elemName, where)
			ps.walkValue(elemName, elem, where)
		}
	case unstable.InlineTable:
		if !strings.HasSuffix(name, "]") {
			ps.defineTable(name)
		}
		it := v.Children()
		for it.Next() {
			if kv := it.Node(); kv.Kind == unstable.KeyValue {
				ps.walkKeyValue(name, kv)
			}
		}
	}
}

func (ps *positions) define(name string, r unstable.Range) {
	if _, ok := ps.line[name]; !ok {
		ps.line[name] = ps.lineOf(int(r.Offset))
	}
}

// defineTable notes a table that is not an array element, once: a table
// may be extended by several headers or dotted keys.
func (ps *positions) defineTable(name string) {
	if !ps.isTable[name] {
		ps.isTable[name] = true
		ps.tables = append(ps.tables, name)
	}
}

func (ps *positions) nameKey(r unstable.Range, name string) {
	off := int(r.Offset)
	ps.keyAt[off] = name
	line := ps.lineOf(off)
	if _, ok := ps.firstKey[line]; !ok {
		ps.firstKey[line] = name
	}
}

func (ps *positions) lineOf(offset int) int {
	return sort.SearchInts(ps.lineStarts, offset+1)
}

// lineFor returns the line of key, or, for a key the file does not write
// (a missing required key), the line of the closest enclosing table that
// it does; 0 if there is none.
func (ps *positions) lineFor(key string) int {
	for key != "" {
		if l, ok := ps.line[key]; ok {
			return l
		}
		key = parentKey(key)
	}
	return 0
}

// nameAt names the key written at a 1-based line and column, as go-toml
// reports positions.
func (ps *positions) nameAt(line, col int) string {
	if line < 1 || line > len(ps.lineStarts) {
		return ""
	}
	if name, ok := ps.keyAt[ps.lineStarts[line-1]+col-1]; ok {
		return name
	}
	return ps.firstKey[line]
}

// parentKey strips the last part of a key: "a.b[1].c" -> "a.b[1]" ->
// "a.b" -> "a" -> "". Only keys wsgate itself builds, whose parts are all
// bare, are passed to it, so quoted parts need no care.
func parentKey(key string) string {
	if i := strings.LastIndexAny(key, ".["); i >= 0 {
		return key[:i]
	}
	return ""
}

func joinKey(parent, part string) string {
	if !isBareKey(part) {
		part = strconv.Quote(part)
	}
	if parent == "" {
		return part
	}
	return parent + "." + part
}

func isBareKey(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
