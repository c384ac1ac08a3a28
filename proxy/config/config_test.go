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
			CloseTimeout:     5 * time.Second,
			DrainTimeout:     30 * time.Second,
			MaxHeaderBytes:   8192,
			MaxMessageBytes:  16 << 20,
			MaxBufferedBytes: 1 << 20,
			MaxBufferedTotal: defaultBufferedTotal(),
			LogLevel:         "info",
			LogFormat:        "text",
		},
		Node:   Node{Name: hostname()},
		Routes: []Route{{Host: "*", PathPrefix: "/", Pool: "p"}},
		Pools:  []Pool{defaultPool("p")},
		Path:   "t.toml",
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

// defaultPool is a pool named name with every default and no backends.
func defaultPool(name string) Pool {
	return Pool{
		Name:               name,
		Balance:            "round_robin",
		Locality:           "prefer",
		Preconnect:         2,
		DialTimeout:        2 * time.Second,
		DrainPeriod:        30 * time.Second,
		RebalanceThreshold: 1.25,
		RebalanceRate:      10,
		Outlier: Outlier{
			ConsecutiveFailures: 5,
			EjectionTime:        30 * time.Second,
			MaxEjectionTime:     300 * time.Second,
			MaxEjectedPercent:   50,
		},
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
	want := []Backend{{Address: "10.0.0.1:80", Weight: 100}, {Address: "b.internal:80", Weight: 7}}
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
	want := defaultPool("echo")
	want.Backends = []Backend{{Address: "127.0.0.1:9001", Weight: 100}, {Address: "127.0.0.1:9002", Weight: 100}}
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
close_timeout = "750ms"
drain_timeout = "0s"
max_header_bytes = 1024
max_message_bytes = 0
max_buffered_bytes = "1.5MiB"
max_buffered_total = "2 GiB"
log_level = "debug"
log_format = "json"
reactors = 3

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
		s.CloseTimeout != 750*time.Millisecond ||
		s.DrainTimeout != 0 || s.MaxHeaderBytes != 1024 || s.MaxMessageBytes != 0 ||
		s.MaxBufferedBytes != 1572864 || s.MaxBufferedTotal != 2<<30 ||
		s.LogLevel != "debug" || s.LogFormat != "json" || s.Reactors != 3 {
		t.Errorf("server: %+v", s)
	}
	wantRoutes := []Route{{"chat.example.com", "/ws/", "p"}, {"[::1]", "/", "p"}, {"10.1.2.3", "/", "p"}}
	if !reflect.DeepEqual(cfg.Routes, wantRoutes) {
		t.Errorf("routes = %+v, want %+v", cfg.Routes, wantRoutes)
	}
	p := cfg.Pools[0]
	if p.Preconnect != 0 || p.DialTimeout != 250*time.Millisecond ||
		!reflect.DeepEqual(p.Backends, []Backend{{Address: "[::1]:9000", Weight: 1}, {Address: "h:1", Weight: 10000}}) {
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

// poolHead starts a valid document that ends inside pool[0], at line 5.
const poolHead = "[[route]]\npool = \"p\"\n[[pool]]\nname = \"p\"\n"

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
		{"duplicate quoted key with a newline", "\"\\n\" = 1\n\"\\n\" = 2\n" + tail,
			[]string{`t.toml:2: "\n": key \n is already defined`}},
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
		{"zero close timeout", "[server]\nclose_timeout = \"0s\"\n" + tail,
			[]string{"t.toml:2: server.close_timeout: must be greater than 0"}},
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
		{"reactors out of range", "[server]\nreactors = -1\n" + tail,
			[]string{"t.toml:2: server.reactors: -1 is out of range: must be 0 to 1024"}},
		{"reactors not an integer", "[server]\nreactors = \"2\"\n" + tail,
			[]string{"t.toml:2: server.reactors: must be an integer, not a string"}},
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
		{"unknown balance", "[[route]]\npool = \"p\"\n[[pool]]\nname = \"p\"\nbalance = \"random\"\n",
			[]string{`t.toml:5: pool[0].balance: unknown value "random"; valid values: round_robin, least_sessions, p2c, hash`}},
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

		// [node], the multi-cloud pool keys, [pool.health], [pool.outlier]
		{"node not a table", "node = 1\n" + tail,
			[]string{"t.toml:1: node: must be a table ([node]), not an integer"}},
		{"node array of tables", "[[node]]\n" + tail,
			[]string{"t.toml:1: node: must be a table ([node]), not an array of tables"}},
		{"empty node name", "[node]\nname = \"\"\n" + tail,
			[]string{"t.toml:2: node.name: must not be empty; leave it out to use the host name"}},
		{"node name with space", "[node]\nname = \"a b\"\n" + tail,
			[]string{`t.toml:2: node.name: "a b" may contain only letters, digits, '-', '_' and '.'`}},
		{"node zone without region", "[node]\nzone = \"z\"\n" + tail,
			[]string{`t.toml:2: node.zone: zone "z" needs a region: a zone is only compared within its region`}},
		{"node region without cloud", "[node]\nregion = \"r\"\n" + tail,
			[]string{`t.toml:2: node.region: region "r" needs a cloud: a region is only compared within its cloud`}},
		{"node cloud with slash", "[node]\ncloud = \"a/b\"\n" + tail,
			[]string{`t.toml:2: node.cloud: "a/b" may contain only letters, digits, '-', '_' and '.'`}},
		{"node cloud not a string", "[node]\ncloud = 1\n" + tail,
			[]string{"t.toml:2: node.cloud: must be a string, not an integer"}},
		{"unknown node key", "[node]\nclod = \"aws\"\n" + tail,
			[]string{`t.toml:2: node.clod: unknown key (did you mean "cloud"?)`}},
		{"health not a table", poolHead + "health = 5\n",
			[]string{"t.toml:5: pool[0].health: must be a table ([pool.health]), not an integer"}},
		{"health array of tables", poolHead + "[[pool.health]]\ntype = \"tcp\"\n",
			[]string{"t.toml:5: pool[0].health: must be a table ([pool.health]), not an array of tables"}},
		{"health without type", poolHead + "[pool.health]\n",
			[]string{"t.toml:5: pool[0].health.type: required in [pool.health]: tcp, http or websocket"}},
		{"inline health without type", poolHead + "health = {}\n",
			[]string{"t.toml:5: pool[0].health.type: required in [pool.health]: tcp, http or websocket"}},
		{"health type case", poolHead + "[pool.health]\ntype = \"TCP\"\n",
			[]string{`t.toml:6: pool[0].health.type: unknown value "TCP"; valid values: tcp, http, websocket`}},
		{"health path with tcp", poolHead + "[pool.health]\ntype = \"tcp\"\npath = \"/x\"\n",
			[]string{`t.toml:7: pool[0].health.path: not used by tcp checks: remove it or set type = "http" or "websocket"`}},
		{"health path without slash", poolHead + "[pool.health]\ntype = \"http\"\npath = \"x\"\n",
			[]string{`t.toml:7: pool[0].health.path: "x" must start with "/"`}},
		{"health path with space", poolHead + "[pool.health]\ntype = \"websocket\"\npath = \"/a b\"\n",
			[]string{`t.toml:7: pool[0].health.path: "/a b" contains a space or control character`}},
		{"default health timeout over interval", poolHead + "[pool.health]\ntype = \"http\"\ninterval = \"1s\"\n",
			[]string{"t.toml:5: pool[0].health.timeout: the default, 2s, is not less than interval 1s: set timeout"}},
		{"health timeout equals interval", poolHead + "[pool.health]\ntype = \"http\"\ninterval = \"1s\"\ntimeout = \"1s\"\n",
			[]string{"t.toml:8: pool[0].health.timeout: 1s must be less than interval 1s"}},
		{"zero health interval", poolHead + "[pool.health]\ntype = \"http\"\ninterval = \"0s\"\n",
			[]string{"t.toml:7: pool[0].health.interval: must be greater than 0"}},
		{"zero health timeout", poolHead + "[pool.health]\ntype = \"http\"\ntimeout = \"0s\"\n",
			[]string{"t.toml:7: pool[0].health.timeout: must be greater than 0"}},
		{"health thresholds", poolHead + "[pool.health]\ntype = \"http\"\nhealthy_threshold = 0\nunhealthy_threshold = 101\n",
			[]string{"t.toml:7: pool[0].health.healthy_threshold: 0 is out of range: must be 1 to 100", "t.toml:8: pool[0].health.unhealthy_threshold: 101 is out of range: must be 1 to 100"}},
		{"unknown health key", poolHead + "[pool.health]\ntype = \"http\"\nintervall = \"1s\"\n",
			[]string{`t.toml:7: pool[0].health.intervall: unknown key (did you mean "interval"?)`}},
		{"outlier ranges", poolHead + "[pool.outlier]\nconsecutive_failures = -1\nmax_ejected_percent = 101\n",
			[]string{"t.toml:6: pool[0].outlier.consecutive_failures: -1 is out of range: must be 0 to 1000", "t.toml:7: pool[0].outlier.max_ejected_percent: 101 is out of range: must be 0 to 100"}},
		{"zero ejection time", poolHead + "[pool.outlier]\nejection_time = \"0s\"\n",
			[]string{"t.toml:6: pool[0].outlier.ejection_time: must be greater than 0"}},
		{"ejection time over default max", poolHead + "[pool.outlier]\nejection_time = \"10m\"\n",
			[]string{"t.toml:5: pool[0].outlier.max_ejection_time: the default, 5m0s, is less than ejection_time 10m0s: set max_ejection_time"}},
		{"max ejection below ejection", poolHead + "[pool.outlier]\nejection_time = \"1m\"\nmax_ejection_time = \"30s\"\n",
			[]string{"t.toml:7: pool[0].outlier.max_ejection_time: 30s is less than ejection_time 1m0s"}},
		{"outlier array", poolHead + "outlier = []\n",
			[]string{"t.toml:5: pool[0].outlier: must be a table ([pool.outlier]), not an array"}},
		{"hash without hash_key", poolHead + "balance = \"hash\"\n",
			[]string{`t.toml:5: pool[0].hash_key: required when balance = "hash": write "header:NAME", "cookie:NAME", "query:NAME", "path" or "ip"`}},
		{"hash_key with default balance", poolHead + "hash_key = \"ip\"\n",
			[]string{`t.toml:5: pool[0].hash_key: only used with balance = "hash", not "round_robin": remove it or set balance = "hash"`}},
		{"hash_key with p2c", poolHead + "balance = \"p2c\"\nhash_key = \"ip\"\n",
			[]string{`t.toml:6: pool[0].hash_key: only used with balance = "hash", not "p2c": remove it or set balance = "hash"`}},
		{"hash_key with bad balance", poolHead + "balance = \"hsah\"\nhash_key = \"ip\"\n",
			[]string{`t.toml:5: pool[0].balance: unknown value "hsah"; valid values: round_robin, least_sessions, p2c, hash`}},
		{"hash_key ip with name", poolHead + "balance = \"hash\"\nhash_key = \"ip:x\"\n",
			[]string{`t.toml:6: pool[0].hash_key: "ip:x": ip takes no name; write "ip"`}},
		{"hash_key empty header", poolHead + "balance = \"hash\"\nhash_key = \"header:\"\n",
			[]string{`t.toml:6: pool[0].hash_key: "header:": missing the header name, as in "header:X-Session-Id"`}},
		{"hash_key bad header", poolHead + "balance = \"hash\"\nhash_key = \"header:X Y\"\n",
			[]string{`t.toml:6: pool[0].hash_key: "header:X Y": "X Y" is not a valid header name`}},
		{"hash_key bad cookie", poolHead + "balance = \"hash\"\nhash_key = \"cookie:a=b\"\n",
			[]string{`t.toml:6: pool[0].hash_key: "cookie:a=b": a cookie name must not contain spaces, control characters, ';' or '='`}},
		{"hash_key query without name", poolHead + "balance = \"hash\"\nhash_key = \"query\"\n",
			[]string{`t.toml:6: pool[0].hash_key: "query": missing the query name, as in "query:room"`}},
		{"hash_key unknown source", poolHead + "balance = \"hash\"\nhash_key = \"body:x\"\n",
			[]string{`t.toml:6: pool[0].hash_key: "body:x": unknown source "body"; write "header:NAME", "cookie:NAME", "query:NAME", "path" or "ip"`}},
		{"hash_key not a string", poolHead + "balance = \"hash\"\nhash_key = 5\n",
			[]string{"t.toml:6: pool[0].hash_key: must be a string, not an integer"}},
		{"unknown locality", poolHead + "locality = \"near\"\n",
			[]string{`t.toml:5: pool[0].locality: unknown value "near"; valid values: prefer, strict, off`}},
		{"strict without node location", poolHead + "locality = \"strict\"\n",
			[]string{`t.toml:5: pool[0].locality: "strict" needs [node] cloud and region: it sends sessions only to backends in the proxy's region`}},
		{"strict without a backend in the region", "[node]\ncloud = \"aws\"\nregion = \"r1\"\n" + poolHead + "locality = \"strict\"\n[[pool.backend]]\naddress = \"h:1\"\ncloud = \"aws\"\nregion = \"r2\"\n",
			[]string{`t.toml:8: pool[0].locality: "strict" but no backend is in the proxy's region (cloud "aws", region "r1"): every session would be refused`}},
		{"bad slow_start and drain_period", poolHead + "slow_start = 5\ndrain_period = \"-1s\"\n",
			[]string{`t.toml:5: pool[0].slow_start: a bare number is ambiguous: write a duration string with a unit, such as "5s"`, "t.toml:6: pool[0].drain_period: must not be negative"}},
		{"rebalance not a boolean", poolHead + "rebalance = \"yes\"\n",
			[]string{"t.toml:5: pool[0].rebalance: must be true or false, not a string"}},
		{"rebalance_threshold 1.0", poolHead + "rebalance_threshold = 1.0\n",
			[]string{"t.toml:5: pool[0].rebalance_threshold: 1 is out of range: must be greater than 1, such as 1.25"}},
		{"rebalance_threshold nan", poolHead + "rebalance_threshold = nan\n",
			[]string{"t.toml:5: pool[0].rebalance_threshold: must be a finite number, not NaN"}},
		{"rebalance_threshold inf", poolHead + "rebalance_threshold = inf\n",
			[]string{"t.toml:5: pool[0].rebalance_threshold: must be a finite number, not +Inf"}},
		{"rebalance_threshold string", poolHead + "rebalance_threshold = \"1.5\"\n",
			[]string{"t.toml:5: pool[0].rebalance_threshold: must be a number, not a string"}},
		{"zero rebalance_rate", poolHead + "rebalance_rate = 0\n",
			[]string{"t.toml:5: pool[0].rebalance_rate: 0 is out of range: must be 1 to 1000000"}},
		{"float rebalance_rate", poolHead + "rebalance_rate = 1.5\n",
			[]string{"t.toml:5: pool[0].rebalance_rate: must be an integer, not a float"}},
		{"backend max_sessions and drain", poolHead + "[[pool.backend]]\naddress = \"h:1\"\nmax_sessions = -1\ndrain = 1\n",
			[]string{"t.toml:7: pool[0].backend[0].max_sessions: -1 is out of range: must be 0 or more", "t.toml:8: pool[0].backend[0].drain: must be true or false, not an integer"}},
		{"backend zone without region", poolHead + "[[pool.backend]]\naddress = \"h:1\"\nzone = \"z\"\n",
			[]string{`t.toml:7: pool[0].backend[0].zone: zone "z" needs a region: a zone is only compared within its region`}},
		{"backend region without cloud", poolHead + "[[pool.backend]]\naddress = \"h:1\"\nregion = \"r\"\nzone = \"z\"\n",
			[]string{`t.toml:7: pool[0].backend[0].region: region "r" needs a cloud: a region is only compared within its cloud`}},
		{"inline backend region without cloud", poolHead + "backend = [{ address = \"h:1\", region = \"r\" }]\n",
			[]string{`t.toml:5: pool[0].backend[0].region: region "r" needs a cloud: a region is only compared within its cloud`}},
		{"unknown backend key", poolHead + "[[pool.backend]]\naddress = \"h:1\"\nzon = \"z\"\n",
			[]string{`t.toml:7: pool[0].backend[0].zon: unknown key (did you mean "zone"?)`}},
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

func TestMultiCloudValues(t *testing.T) {
	cfg := mustParse(t, `
[node]
name = "edge-1"
cloud = "aws"
region = "eu-west-1"

[[route]]
pool = "a"

[[pool]]
name = "a"
balance = "hash"
hash_key = "header:X-Session-Id"
locality = "strict"
slow_start = "1m"
drain_period = "0s"
rebalance = true
rebalance_threshold = 2
rebalance_rate = 1
health = { type = "http", path = "/up?deep=1", interval = "10s", timeout = "9s", healthy_threshold = 1, unhealthy_threshold = 100 }
outlier = { consecutive_failures = 0, ejection_time = "1s", max_ejection_time = "1s", max_ejected_percent = 0 }
backend = [
  { address = "h:1", cloud = "aws", region = "eu-west-1", zone = "eu-west-1c", max_sessions = 9223372036854775807, drain = true },
  { address = "h:2", cloud = "gcp" },
]

[[pool]]
name = "b"
balance = "least_sessions"
locality = "off"
  [pool.health]
  type = "tcp"

[[pool]]
name = "c"
balance = "p2c"
  [pool.outlier]
  max_ejected_percent = 100
`)
	if want := (Node{Name: "edge-1", Cloud: "aws", Region: "eu-west-1"}); cfg.Node != want {
		t.Errorf("node = %+v, want %+v", cfg.Node, want)
	}
	a := defaultPool("a")
	a.Balance, a.HashKey, a.HashKeySource, a.HashKeyName = "hash", "header:X-Session-Id", "header", "X-Session-Id"
	a.Locality, a.SlowStart, a.DrainPeriod = "strict", time.Minute, 0
	a.Rebalance, a.RebalanceThreshold, a.RebalanceRate = true, 2, 1
	a.Health = &Health{Type: "http", Path: "/up?deep=1", Interval: 10 * time.Second, Timeout: 9 * time.Second,
		HealthyThreshold: 1, UnhealthyThreshold: 100}
	a.Outlier = Outlier{ConsecutiveFailures: 0, EjectionTime: time.Second, MaxEjectionTime: time.Second, MaxEjectedPercent: 0}
	a.Backends = []Backend{
		{Address: "h:1", Weight: 100, Cloud: "aws", Region: "eu-west-1", Zone: "eu-west-1c", MaxSessions: 1<<63 - 1, Drain: true},
		{Address: "h:2", Weight: 100, Cloud: "gcp"},
	}
	b := defaultPool("b")
	b.Balance, b.Locality = "least_sessions", "off"
	b.Health = &Health{Type: "tcp", Path: "/", Interval: 5 * time.Second, Timeout: 2 * time.Second,
		HealthyThreshold: 2, UnhealthyThreshold: 3}
	c := defaultPool("c")
	c.Balance = "p2c"
	c.Outlier.MaxEjectedPercent = 100
	want := []Pool{a, b, c}
	for i := range want {
		if i >= len(cfg.Pools) || !reflect.DeepEqual(cfg.Pools[i], want[i]) {
			t.Errorf("pool[%d]:\n got %+v\nwant %+v", i, cfg.Pools[min(i, len(cfg.Pools)-1)], want[i])
		}
	}
	if cfg.Pools[0].Health == nil || cfg.Pools[2].Health != nil {
		t.Errorf("Health should be set only when [pool.health] is present")
	}
}

func TestParseHashKey(t *testing.T) {
	tests := []struct {
		in, src, name, err string
	}{
		{in: "header:X-Session-Id", src: "header", name: "X-Session-Id"},
		{in: "header:x_tenant~1", src: "header", name: "x_tenant~1"},
		{in: "cookie:session", src: "cookie", name: "session"},
		{in: "cookie:__Host-sid", src: "cookie", name: "__Host-sid"},
		{in: "query:room", src: "query", name: "room"},
		{in: "query:a:b", src: "query", name: "a:b"},
		{in: "path", src: "path"},
		{in: "ip", src: "ip"},
		{in: "", err: `"": unknown source ""`},
		{in: "Header:X", err: `unknown source "Header"`},
		{in: "path:/x", err: `"path:/x": path takes no name; write "path"`},
		{in: "ip:", err: "ip takes no name"},
		{in: "header:X:Y", err: `"X:Y" is not a valid header name`},
		{in: "header:Ünïcode", err: "is not a valid header name"},
		{in: "cookie:", err: `missing the cookie name, as in "cookie:session"`},
		{in: "cookie:a b", err: "a cookie name must not contain"},
		{in: "cookie:a;b", err: "a cookie name must not contain"},
		{in: "query:a\tb", err: "a query name must not contain"},
		{in: "query:a=b", err: "a query name must not contain"},
	}
	for _, tt := range tests {
		src, name, err := parseHashKey(tt.in)
		switch {
		case tt.err == "" && (err != nil || src != tt.src || name != tt.name):
			t.Errorf("parseHashKey(%q) = %q, %q, %v; want %q, %q", tt.in, src, name, err, tt.src, tt.name)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("parseHashKey(%q) = %q, %q, %v; want error containing %q", tt.in, src, name, err, tt.err)
		}
	}
}

func TestMultiCloudExample(t *testing.T) {
	cfg, err := Load("../../examples/multicloud.toml")
	if err != nil {
		t.Fatal(err)
	}
	if want := (Node{Name: "edge-eu-west-1a", Cloud: "aws", Region: "eu-west-1", Zone: "eu-west-1a"}); cfg.Node != want {
		t.Errorf("node = %+v, want %+v", cfg.Node, want)
	}
	if len(cfg.Pools) != 1 {
		t.Fatalf("pools: %+v", cfg.Pools)
	}
	p := cfg.Pools[0]
	if p.Balance != "hash" || p.HashKeySource != "cookie" || p.HashKeyName != "session" || p.Locality != "prefer" {
		t.Errorf("pool: %+v", p)
	}
	if p.Health == nil || p.Health.Type != "websocket" || p.Health.Path != "/healthz" {
		t.Errorf("health: %+v", p.Health)
	}
	if p.Outlier != defaultPool("").Outlier {
		t.Errorf("outlier = %+v, want the defaults", p.Outlier)
	}
	clouds, regions := map[string]bool{}, map[string]bool{}
	for _, b := range p.Backends {
		clouds[b.Cloud] = true
		regions[b.Cloud+"/"+b.Region] = true
	}
	wantRegions := map[string]bool{"aws/eu-west-1": true, "aws/eu-central-1": true, "gcp/europe-west1": true}
	if len(clouds) != 2 || !reflect.DeepEqual(regions, wantRegions) {
		t.Errorf("backends span %v, want %v", regions, wantRegions)
	}
}
