package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// tail makes a document valid once appended after the part under test,
// without moving the lines above it.
const tail = `
[[route]]
pool = "p"

[[pool]]
name = "p"
`

func mustParse(t *testing.T, doc string) *Config {
	t.Helper()
	cfg, err := Parse("t.toml", []byte(doc))
	if err != nil {
		t.Fatalf("Parse: unexpected error:\n%v", err)
	}
	return cfg
}

// errLines parses doc and returns its errors, one string each.
func errLines(t *testing.T, doc string) []string {
	t.Helper()
	cfg, err := Parse("t.toml", []byte(doc))
	if err == nil {
		t.Fatalf("Parse succeeded, want errors; config: %+v", cfg)
	}
	if cfg != nil {
		t.Errorf("Parse returned a config with its errors")
	}
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error is %T, want Errors", err)
	}
	var out []string
	for _, e := range errs {
		out = append(out, e.Error())
	}
	return out
}

func TestDefaults(t *testing.T) {
	cfg := mustParse(t, tail)
	want := &Config{
		Server: Server{
			Listen:           "0.0.0.0:8080",
			AdminListen:      "127.0.0.1:9090",
			HandshakeTimeout: 5 * time.Second,
			IdleTimeout:      300 * time.Second,
			PingInterval:     0,
			PingTimeout:      10 * time.Second,
			DrainTimeout:     30 * time.Second,
			MaxHeaderBytes:   8192,
			MaxMessageBytes:  16 << 20,
			MaxBufferedBytes: 1 << 20,
			MaxBufferedTotal: defaultBufferedTotal(),
			LogLevel:         "info",
			LogFormat:        "text",
		},
		Routes: []Route{{Host: "*", PathPrefix: "/", Pool: "p"}},
		Pools: []Pool{{
			Name:        "p",
			Balance:     "round_robin",
			Preconnect:  2,
			DialTimeout: 2 * time.Second,
		}},
		Path: "t.toml",
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", cfg, want)
	}
	if cfg.Server.MaxBufferedTotal <= 0 {
		t.Errorf("MaxBufferedTotal = %d, want > 0", cfg.Server.MaxBufferedTotal)
	}
	if m := memoryLimit(); m > 0 && cfg.Server.MaxBufferedTotal != m/4 {
		t.Errorf("MaxBufferedTotal = %d, want a quarter of %d", cfg.Server.MaxBufferedTotal, m)
	}
}

func TestBackendDefaults(t *testing.T) {
	cfg := mustParse(t, `
[[route]]
pool = "p"
[[pool]]
name = "p"
[[pool.backend]]
address = "10.0.0.1:80"
[[pool.backend]]
address = "b.internal:80"
weight = 7
`)
	want := []Backend{{"10.0.0.1:80", 100}, {"b.internal:80", 7}}
	if got := cfg.Pools[0].Backends; !reflect.DeepEqual(got, want) {
		t.Errorf("backends = %+v, want %+v", got, want)
	}
}

func TestExamples(t *testing.T) {
	files, err := filepath.Glob("../../examples/*.toml")
	if err != nil || len(files) < 2 {
		t.Fatalf("examples: %v %v", files, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cfg, err := Load(f)
			if err != nil {
				t.Fatalf("%v", err)
			}
			if cfg.Path != f {
				t.Errorf("Path = %q, want %q", cfg.Path, f)
			}
		})
	}

	cfg, err := Load("../../examples/local.toml")
	if err != nil {
		t.Fatal(err)
	}
	want := Pool{
		Name: "echo", Balance: "round_robin", Preconnect: 2, DialTimeout: 2 * time.Second,
		Backends: []Backend{{"127.0.0.1:9001", 100}, {"127.0.0.1:9002", 100}},
	}
	if cfg.Server.Listen != "127.0.0.1:8080" || cfg.Server.AdminListen != "127.0.0.1:9090" ||
		!reflect.DeepEqual(cfg.Routes, []Route{{"*", "/", "echo"}}) ||
		!reflect.DeepEqual(cfg.Pools, []Pool{want}) {
		t.Errorf("local.toml: %+v", cfg)
	}
}

// TestExampleSetsEveryKey keeps wsgate.toml a complete example: every key
// the decoder knows must appear in it.
func TestExampleSetsEveryKey(t *testing.T) {
	data, err := os.ReadFile("../../examples/wsgate.toml")
	if err != nil {
		t.Fatal(err)
	}
	ps := scanPositions(data)
	var walk func(prefix string, typ reflect.Type)
	walk = func(prefix string, typ reflect.Type) {
		typ = structOf(typ)
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			key := joinKey(prefix, f.Tag.Get("toml"))
			if f.Type.Kind() == reflect.Slice {
				key += "[0]"
			}
			if _, ok := ps.line[key]; !ok {
				t.Errorf("examples/wsgate.toml does not set %s", key)
			}
			if structOf(f.Type) != nil {
				walk(key, f.Type)
			}
		}
	}
	walk("", reflect.TypeFor[rawConfig]())
}

func TestValues(t *testing.T) {
	cfg := mustParse(t, `
[server]
listen = "[::]:80"
admin_listen = "off"
handshake_timeout = "300ms"
idle_timeout = "0s"
ping_interval = "1h30m"
ping_timeout = "1s"
drain_timeout = "0s"
max_header_bytes = 1024
max_message_bytes = 0
max_buffered_bytes = "1.5MiB"
max_buffered_total = "2 GiB"
log_level = "debug"
log_format = "json"

[[route]]
host = "Chat.Example.COM"
path_prefix = "/ws/"
pool = "p"

[[route]]
host = "[::1]"
pool = "p"

[[route]]
host = "10.1.2.3"
pool = "p"

[[pool]]
name = "p"
preconnect = 0
dial_timeout = "250ms"
backend = [{ address = "[::1]:9000", weight = 1 }, { address = "h:1", weight = 10000 }]
`)
	s := cfg.Server
	if s.Listen != "[::]:80" || s.AdminListen != "" || s.HandshakeTimeout != 300*time.Millisecond ||
		s.IdleTimeout != 0 || s.PingInterval != 90*time.Minute || s.PingTimeout != time.Second ||
		s.DrainTimeout != 0 || s.MaxHeaderBytes != 1024 || s.MaxMessageBytes != 0 ||
		s.MaxBufferedBytes != 1572864 || s.MaxBufferedTotal != 2<<30 ||
		s.LogLevel != "debug" || s.LogFormat != "json" {
		t.Errorf("server: %+v", s)
	}
	wantRoutes := []Route{{"chat.example.com", "/ws/", "p"}, {"[::1]", "/", "p"}, {"10.1.2.3", "/", "p"}}
	if !reflect.DeepEqual(cfg.Routes, wantRoutes) {
		t.Errorf("routes = %+v, want %+v", cfg.Routes, wantRoutes)
	}
	p := cfg.Pools[0]
	if p.Preconnect != 0 || p.DialTimeout != 250*time.Millisecond ||
		!reflect.DeepEqual(p.Backends, []Backend{{"[::1]:9000", 1}, {"h:1", 10000}}) {
		t.Errorf("pool: %+v", p)
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  string
	}{
		{in: "0", want: 0},
		{in: "1024", want: 1024},
		{in: "10B", want: 10},
		{in: "1KiB", want: 1024},
		{in: "1MiB", want: 1 << 20},
		{in: "16MiB", want: 16 << 20},
		{in: "1.5MiB", want: 1572864},
		{in: "0.5KiB", want: 512},
		{in: " 512 KiB ", want: 512 << 10},
		{in: "2GiB", want: 2 << 30},
		{in: "8TiB", want: 8 << 40},
		{in: "1.1B", err: `invalid size "1.1B": not a whole number of bytes`},
		{in: "1.0000001KiB", err: "not a whole number of bytes"},
		{in: "9999999TiB", err: `invalid size "9999999TiB": too large`},
		{in: "1MB", err: `invalid size "1MB": unit "MB" is ambiguous, write "MiB" (powers of 1024) or a number of bytes`},
		{in: "1k", err: `unit "k" is ambiguous, write "KiB"`},
		{in: "1 kib", err: `invalid size "1 kib": write the unit as "KiB"`},
		{in: "1PiB", err: `invalid size "1PiB": unknown unit "PiB"; valid units: B, KiB, MiB, GiB, TiB`},
		{in: "MiB", err: `invalid size "MiB": write a number of bytes with an optional unit`},
		{in: "-1MiB", err: "write a number of bytes"},
		{in: ".5MiB", err: "write a number of bytes"},
		{in: "1.MiB", err: "write a number of bytes"},
		{in: "1.5.2MiB", err: "write a number of bytes"},
		{in: "1e3", err: `unknown unit "e3"`},
		{in: "", err: "write a number of bytes"},
	}
	for _, tt := range tests {
		got, err := parseSize(tt.in)
		switch {
		case tt.err == "" && (err != nil || got != tt.want):
			t.Errorf("parseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("parseSize(%q) = %d, %v; want error containing %q", tt.in, got, err, tt.err)
		}
	}
}

// TestErrors checks each kind of error with its full text, line included.
func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{"syntax error", "[server]\nlisten = \"a:1\"\nidle_timeout = \n" + tail,
			[]string{"t.toml:3: unexpected character U+000A at start of value"}},
		{"unterminated table header", "[server]\n[pool\n",
			[]string{"t.toml:2: expected ']' to close table name"}},
		{"duplicate key", "[server]\nlisten = \"a:1\"\nlisten = \"b:1\"\n" + tail,
			[]string{"t.toml:3: server.listen: key listen is already defined"}},
		{"unknown top-level key", "lisen = 1\n" + tail,
			[]string{"t.toml:1: lisen: unknown key"}},
		{"unknown table", "[servr]\nlisten = \"a:1\"\n" + tail,
			[]string{`t.toml:1: servr: unknown key (did you mean "server"?)`}},
		{"unknown server key", "[server]\nlisten = \"a:1\"\nidle_timeot = \"1s\"\n" + tail,
			[]string{`t.toml:3: server.idle_timeot: unknown key (did you mean "idle_timeout"?)`}},
		{"unknown dotted key", "server.max_header = 1\n" + tail,
			[]string{`t.toml:1: server.max_header: unknown key`}},
		{"unknown key in second backend", "[[route]]\npool = \"p\"\n[[pool]]\nname = \"p\"\n[[pool.backend]]\naddress = \"a:1\"\n[[pool.backend]]\naddress = \"b:1\"\nadress = \"c:1\"\n",
			[]string{`t.toml:9: pool[0].backend[1].adress: unknown key (did you mean "address"?)`}},
		{"unknown key in inline backend", "[[route]]\npool = \"p\"\n[[pool]]\nname = \"p\"\nbackend = [\n  { address = \"a:1\" },\n  { address = \"b:1\", wieght = 2 },\n]\n",
			[]string{`t.toml:7: pool[0].backend[1].wieght: unknown key (did you mean "weight"?)`}},
		{"unknown array table", "[[route]]\npool = \"p\"\n[[pool]]\nname = \"p\"\n[[pool.backends]]\naddress = \"a:1\"\n",
			[]string{`t.toml:5: pool[0].backends: unknown key (did you mean "backend"?)`}},
		{"quoted unknown key", "[server]\n\"log level\" = \"info\"\n" + tail,
			[]string{`t.toml:2: server."log level": unknown key`}},
		{"value instead of table", "server = 5\n" + tail,
			[]string{"t.toml:1: server: must be a table ([server]), not an integer"}},
		{"array of tables instead of table", "[[server]]\n" + tail,
			[]string{"t.toml:1: server: must be a table ([server]), not an array of tables"}},
		{"table instead of array of tables", "[pool]\nname = \"p\"\n[[route]]\npool = \"p\"\n",
			[]string{"t.toml:1: pool: must be an array of tables ([[pool]]), not a table"}},
		{"dotted key instead of array", "pool.name = \"p\"\n[[route]]\npool = \"p\"\n",
			[]string{"t.toml:1: pool: must be an array of tables ([[pool]]), not a table"}},
		{"dotted key in a pool instead of array", "[[route]]\npool = \"p\"\n[[pool]]\nname = \"p\"\nbackend.address = \"h:1\"\nbackend.weight = 1\n",
			[]string{"t.toml:5: pool[0].backend: must be an array of tables ([[pool.backend]]), not a table"}},
		{"header through a plain table", "[pool.x]\n[[route]]\npool = \"p\"\n",
			[]string{
				"t.toml:1: pool.x: unknown key",
				"t.toml:1: pool: must be an array of tables ([[pool]]), not a table",
				"t.toml:1: pool[0].name: required",
				`t.toml:3: route[0].pool: no [[pool]] named "p"`,
			}},
		{"inline table instead of array", "[[route]]\npool = \"p\"\n[[pool]]\nname = \"p\"\nbackend = { address = \"a:1\" }\n",
			[]string{"t.toml:5: pool[0].backend: must be an array of tables ([[pool.backend]]), not an inline table"}},
		{"bare integer duration", "[server]\nidle_timeout = 300\n" + tail,
			[]string{`t.toml:2: server.idle_timeout: a bare number is ambiguous: write a duration string with a unit, such as "300s"`}},
		{"bad duration", "[server]\ndrain_timeout = \"5 seconds\"\n" + tail,
			[]string{`t.toml:2: server.drain_timeout: invalid duration "5 seconds": write a number with a unit, such as "300ms", "5s" or "2m"`}},
		{"negative duration", "[server]\nping_interval = \"-1s\"\n" + tail,
			[]string{"t.toml:2: server.ping_interval: must not be negative"}},
		{"float duration", "[server]\nping_timeout = 1.5\n" + tail,
			[]string{`t.toml:2: server.ping_timeout: must be a duration string such as "5s", not a float`}},
		{"local time as duration", "[server]\nhandshake_timeout = 00:00:05\n" + tail,
			[]string{`t.toml:2: server.handshake_timeout: must be a duration string such as "5s", not a time of day`}},
		{"zero handshake timeout", "[server]\nhandshake_timeout = \"0s\"\n" + tail,
			[]string{"t.toml:2: server.handshake_timeout: must be greater than 0"}},
		{"ping without timeout", "[server]\nping_interval = \"30s\"\nping_timeout = \"0s\"\n" + tail,
			[]string{"t.toml:3: server.ping_timeout: must be greater than 0 when ping_interval is set"}},
		{"listen without port", "[server]\nlisten = \"0.0.0.0\"\n" + tail,
			[]string{`t.toml:2: server.listen: invalid address "0.0.0.0": want host:port, such as "127.0.0.1:8080" or "[::1]:8080"`}},
		{"listen service name", "[server]\nlisten = \":http\"\n" + tail,
			[]string{`t.toml:2: server.listen: invalid port in ":http": must be a number`}},
		{"listen port too big", "[server]\nlisten = \":65536\"\n" + tail,
			[]string{`t.toml:2: server.listen: invalid port in ":65536": must be 0 to 65535`}},
		{"listen bad host", "[server]\nlisten = \"bad host:80\"\n" + tail,
			[]string{`t.toml:2: server.listen: invalid host "bad host" in "bad host:80"`}},
		{"empty admin_listen", "[server]\nadmin_listen = \"\"\n" + tail,
			[]string{`t.toml:2: server.admin_listen: must not be empty; write "off" to disable the admin listener`}},
		{"admin_listen on the listen port", "[server]\nlisten = \":8080\"\nadmin_listen = \"127.0.0.1:8080\"\n" + tail,
			[]string{`t.toml:3: server.admin_listen: "127.0.0.1:8080" conflicts with server.listen ":8080"`}},
		{"listen not a string", "[server]\nlisten = 8080\n" + tail,
			[]string{"t.toml:2: server.listen: must be a string, not an integer"}},
		{"ambiguous size unit", "[server]\nmax_message_bytes = \"16MB\"\n" + tail,
			[]string{`t.toml:2: server.max_message_bytes: invalid size "16MB": unit "MB" is ambiguous, write "MiB" (powers of 1024) or a number of bytes`}},
		{"negative size", "[server]\nmax_message_bytes = -1\n" + tail,
			[]string{"t.toml:2: server.max_message_bytes: must not be negative"}},
		{"float size", "[server]\nmax_message_bytes = 1e6\n" + tail,
			[]string{`t.toml:2: server.max_message_bytes: must be a number of bytes or a string such as "16MiB", not a float`}},
		{"header limit too small", "[server]\nmax_header_bytes = 100\n" + tail,
			[]string{"t.toml:2: server.max_header_bytes: 100 bytes is out of range: must be 1KiB to 1MiB"}},
		{"header limit too large", "[server]\nmax_header_bytes = \"2MiB\"\n" + tail,
			[]string{"t.toml:2: server.max_header_bytes: 2MiB is out of range: must be 1KiB to 1MiB"}},
		{"buffer too small", "[server]\nmax_buffered_bytes = \"32KiB\"\n" + tail,
			[]string{"t.toml:2: server.max_buffered_bytes: 32KiB is too small: must be at least 64KiB"}},
		{"total below per-session", "[server]\nmax_buffered_bytes = \"4MiB\"\nmax_buffered_total = \"1MiB\"\n" + tail,
			[]string{"t.toml:3: server.max_buffered_total: 1MiB is less than max_buffered_bytes 4MiB"}},
		{"zero total", "[server]\nmax_buffered_total = 0\n" + tail,
			[]string{"t.toml:2: server.max_buffered_total: must be greater than 0"}},
		{"log level", "[server]\nlog_level = \"verbose\"\n" + tail,
			[]string{`t.toml:2: server.log_level: unknown value "verbose"; valid values: debug, info, warn, error`}},
		{"log format", "[server]\nlog_format = \"JSON\"\n" + tail,
			[]string{`t.toml:2: server.log_format: unknown value "JSON"; valid values: text, json`}},
		{"no routes", "[[pool]]\nname = \"p\"\n",
			[]string{"t.toml: route: at least one [[route]] is required"}},
		{"route without pool", "[[route]]\nhost = \"a\"\n[[pool]]\nname = \"p\"\n",
			[]string{"t.toml:1: route[0].pool: required"}},
		{"route naming a missing pool", "[[route]]\npool = \"p\"\n[[route]]\npath_prefix = \"/x\"\npool = \"q\"\n[[pool]]\nname = \"p\"\n",
			[]string{`t.toml:5: route[1].pool: no [[pool]] named "q"`}},
		{"route host with port", "[[route]]\nhost = \"example.com:443\"\npool = \"p\"\n[[pool]]\nname = \"p\"\n",
			[]string{`t.toml:2: route[0].host: "example.com:443" must not include a port: host is matched against the Host header without its port`}},
		{"route host IPv6 without brackets", "[[route]]\nhost = \"::1\"\npool = \"p\"\n[[pool]]\nname = \"p\"\n",
			[]string{`t.toml:2: route[0].host: write an IPv6 address in brackets, as in a Host header: "[::1]"`}},
		{"route host bad label", "[[route]]\nhost = \"-a.com\"\npool = \"p\"\n[[pool]]\nname = \"p\"\n",
			[]string{`t.toml:2: route[0].host: invalid host name "-a.com": a label starts or ends with '-'`}},
		{"route empty host", "[[route]]\nhost = \"\"\npool = \"p\"\n[[pool]]\nname = \"p\"\n",
			[]string{`t.toml:2: route[0].host: invalid host name ""`}},
		{"path prefix without slash", "[[route]]\npath_prefix = \"ws\"\npool = \"p\"\n[[pool]]\nname = \"p\"\n",
			[]string{`t.toml:2: route[0].path_prefix: "ws" must start with "/"`}},
		{"path prefix with query", "[[route]]\npath_prefix = \"/ws?x\"\npool = \"p\"\n[[pool]]\nname = \"p\"\n",
			[]string{`t.toml:2: route[0].path_prefix: "/ws?x" contains '?': a path prefix cannot match a query or fragment`}},
		{"duplicate route", "[[route]]\npool = \"p\"\n\n[[route]]\nhost = \"*\"\npath_prefix = \"/\"\npool = \"p\"\n[[pool]]\nname = \"p\"\n",
			[]string{`t.toml:4: route[1]: same host "*" and path_prefix "/" as route[0] (line 1)`}},
		{"duplicate route after lower-casing", "[[route]]\nhost = \"a.com\"\npool = \"p\"\n[[route]]\nhost = \"A.COM\"\npool = \"p\"\n[[pool]]\nname = \"p\"\n",
			[]string{`t.toml:4: route[1]: same host "a.com" and path_prefix "/" as route[0] (line 1)`}},
		{"pool without name", "[[route]]\npool = \"p\"\n[[pool]]\nname = \"p\"\n[[pool]]\npreconnect = 1\n",
			[]string{"t.toml:5: pool[1].name: required"}},
		{"pool name with space", "[[route]]\npool = \"p q\"\n[[pool]]\nname = \"p q\"\n",
			[]string{`t.toml:4: pool[0].name: "p q" may contain only letters, digits, '-', '_' and '.'`}},
		{"duplicate pool name", "[[route]]\npool = \"p\"\n[[pool]]\nname = \"p\"\n[[pool]]\nname = \"p\"\n",
			[]string{`t.toml:6: pool[1].name: duplicate pool name "p": also pool[0] (line 4)`}},
		{"unknown balance", "[[route]]\npool = \"p\"\n[[pool]]\nname = \"p\"\nbalance = \"least_sessions\"\n",
			[]string{`t.toml:5: pool[0].balance: unknown value "least_sessions"; valid values: round_robin`}},
		{"negative preconnect", "[[route]]\npool = \"p\"\n[[pool]]\nname = \"p\"\npreconnect = -1\n",
			[]string{"t.toml:5: pool[0].preconnect: -1 is out of range: must be 0 to 1000"}},
		{"preconnect too large", "[[route]]\npool = \"p\"\n[[pool]]\nname = \"p\"\npreconnect = 1001\n",
			[]string{"t.toml:5: pool[0].preconnect: 1001 is out of range: must be 0 to 1000"}},
		{"preconnect as string", "[[route]]\npool = \"p\"\n[[pool]]\nname = \"p\"\npreconnect = \"2\"\n",
			[]string{"t.toml:5: pool[0].preconnect: must be an integer, not a string"}},
		{"zero dial timeout", "[[route]]\npool = \"p\"\n[[pool]]\nname = \"p\"\ndial_timeout = \"0s\"\n",
			[]string{"t.toml:5: pool[0].dial_timeout: must be greater than 0"}},
		{"backend without address", "[[route]]\npool = \"p\"\n[[pool]]\nname = \"p\"\n[[pool.backend]]\nweight = 5\n",
			[]string{"t.toml:5: pool[0].backend[0].address: required"}},
		{"backend without port", "[[route]]\npool = \"p\"\n[[pool]]\nname = \"p\"\n[[pool.backend]]\naddress = \"10.0.0.1\"\n",
			[]string{`t.toml:6: pool[0].backend[0].address: invalid address "10.0.0.1": want host:port, such as "127.0.0.1:8080" or "[::1]:8080"`}},
		{"backend port 0", "[[route]]\npool = \"p\"\n[[pool]]\nname = \"p\"\n[[pool.backend]]\naddress = \"h:0\"\n",
			[]string{`t.toml:6: pool[0].backend[0].address: invalid port in "h:0": must be 1 to 65535`}},
		{"backend without host", "[[route]]\npool = \"p\"\n[[pool]]\nname = \"p\"\n[[pool.backend]]\naddress = \":80\"\n",
			[]string{`t.toml:6: pool[0].backend[0].address: missing host in ":80"`}},
		{"duplicate backend", "[[route]]\npool = \"p\"\n[[pool]]\nname = \"p\"\n[[pool.backend]]\naddress = \"h:1\"\n[[pool.backend]]\naddress = \"H:1\"\n",
			[]string{`t.toml:8: pool[0].backend[1].address: duplicate address "H:1": also pool[0].backend[0] (line 5)`}},
		{"duplicate inline backend", "[[route]]\npool = \"p\"\n[[pool]]\nname = \"p\"\nbackend = [\n  { address = \"h:1\" },\n  { address = \"h:1\" },\n]\n",
			[]string{`t.toml:7: pool[0].backend[1].address: duplicate address "h:1": also pool[0].backend[0] (line 6)`}},
		{"weight out of range", "[[route]]\npool = \"p\"\n[[pool]]\nname = \"p\"\n[[pool.backend]]\naddress = \"h:1\"\nweight = 0\n",
			[]string{"t.toml:7: pool[0].backend[0].weight: 0 is out of range: must be 1 to 10000"}},
		{"error in second pool", "[[route]]\npool = \"p\"\n[[pool]]\nname = \"p\"\n[[pool.backend]]\naddress = \"h:1\"\n[[pool]]\nname = \"q\"\n[[pool.backend]]\naddress = \"h:1\"\n[[pool.backend]]\naddress = \"h:x\"\n",
			[]string{`t.toml:12: pool[1].backend[1].address: invalid port in "h:x": must be a number`}},
		{"sub-table of the last pool", "[[route]]\npool = \"p\"\n[[pool]]\nname = \"p\"\n[[pool]]\nname = \"q\"\n[pool.x]\n",
			[]string{"t.toml:7: pool[1].x: unknown key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := errLines(t, tt.doc)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestAllErrorsCollected(t *testing.T) {
	doc := `# every problem below is reported in one run
[server]
listen = "localhost"
idle_timeout = 30
max_buffered_bytes = "1KiB"
colour = "blue"

[[route]]
host = "a.com:80"
pool = "missing"

[[route]]
path_prefix = "x"
pool = "p"

[[pool]]
name = "p"
preconnect = -5

[[pool.backend]]
address = "h:1"
weight = 0

[[pool.backend]]
address = "h:1"
`
	want := []string{
		`t.toml:3: server.listen: invalid address "localhost": want host:port, such as "127.0.0.1:8080" or "[::1]:8080"`,
		`t.toml:4: server.idle_timeout: a bare number is ambiguous: write a duration string with a unit, such as "30s"`,
		`t.toml:5: server.max_buffered_bytes: 1KiB is too small: must be at least 64KiB`,
		`t.toml:6: server.colour: unknown key`,
		`t.toml:9: route[0].host: "a.com:80" must not include a port: host is matched against the Host header without its port`,
		`t.toml:10: route[0].pool: no [[pool]] named "missing"`,
		`t.toml:13: route[1].path_prefix: "x" must start with "/"`,
		`t.toml:18: pool[0].preconnect: -5 is out of range: must be 0 to 1000`,
		`t.toml:22: pool[0].backend[0].weight: 0 is out of range: must be 1 to 10000`,
		`t.toml:25: pool[0].backend[1].address: duplicate address "h:1": also pool[0].backend[0] (line 20)`,
	}
	got := errLines(t, doc)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("errors:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}

	_, err := Parse("t.toml", []byte(doc))
	if err.Error() != strings.Join(want, "\n") {
		t.Errorf("Errors.Error() =\n%s", err)
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		err  Error
		want string
	}{
		{Error{"f.toml", 3, "server.listen", "bad"}, "f.toml:3: server.listen: bad"},
		{Error{"f.toml", 0, "route", "missing"}, "f.toml: route: missing"},
		{Error{"f.toml", 7, "", "syntax"}, "f.toml:7: syntax"},
		{Error{"", 2, "k", "m"}, ":2: k: m"},
		{Error{"", 0, "", "m"}, "m"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("%#v.Error() = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.toml")
	cfg, err := Load(path)
	if cfg != nil {
		t.Errorf("Load returned a config")
	}
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error is %T, want Errors", err)
	}
	if want := path + ": no such file or directory"; err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
}

func TestPositions(t *testing.T) {
	doc := `top = 1
server.listen = "a:1"   # dotted key at the root

[server]
idle_timeout = "1s"

[[pool]]
name = "a"

[[pool]]
name = "b"
[[pool.backend]]
address = "x:1"

[pool.extra]
k = 1

[[pool.backend]]
address = "y:1"
backend2 = [
  1,
  { address = "z:1", nested = { deep = [2, 3] } },
]
`
	ps := scanPositions([]byte(doc))
	want := map[string]int{
		"top":                         1,
		"server":                      2,
		"server.listen":               2,
		"server.idle_timeout":         5,
		"pool":                        7,
		"pool[0]":                     7,
		"pool[0].name":                8,
		"pool[1]":                     10,
		"pool[1].name":                11,
		"pool[1].backend":             12,
		"pool[1].backend[0]":          12,
		"pool[1].backend[0].address":  13,
		"pool[1].extra":               15,
		"pool[1].extra.k":             16,
		"pool[1].backend[1]":          18,
		"pool[1].backend[1].address":  19,
		"pool[1].backend[1].backend2": 20,
		// Scalars in arrays carry their own position.
		"pool[1].backend[1].backend2[0]": 21,
		// An inline table in an array is where its first key is.
		"pool[1].backend[1].backend2[1]":                    22,
		"pool[1].backend[1].backend2[1].nested.deep[1]":     22,
		"pool[1].backend[1].backend2[1].address":            22,
		"pool[1].backend[1].backend2[1].nested":             22,
		"pool[1].backend[1].backend2[1].nested.deep":        22,
		"pool[1].backend[1].backend2[1].nested.deep[0]":     22,
		"pool[1].backend[1].backend2[1].nested.nonexistent": 0,
	}
	for key, line := range want {
		if line == 0 {
			if _, ok := ps.line[key]; ok {
				t.Errorf("%s should not be recorded", key)
			}
			continue
		}
		if got := ps.lineFor(key); got != line {
			t.Errorf("lineFor(%q) = %d, want %d", key, got, line)
		}
	}
	// A key the file does not write is placed on its table.
	if got := ps.lineFor("pool[1].backend[0].weight"); got != 12 {
		t.Errorf("lineFor(missing key) = %d, want 12", got)
	}
	if got := ps.lineFor("route[0]"); got != 0 {
		t.Errorf("lineFor(absent table) = %d, want 0", got)
	}
}
