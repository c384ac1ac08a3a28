package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	suiteTmp   string
	wsgateBin  string
	buildErr   error
	directMode = os.Getenv("WSGATE_E2E_DIRECT") == "1"
	raceBinary = os.Getenv("WSGATE_E2E_RACE") == "1"
)

func TestMain(m *testing.M) {
	var err error
	suiteTmp, err = os.MkdirTemp("", "wsgate-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: temp dir:", err)
		os.Exit(2)
	}
	if !directMode {
		buildErr = buildWsgate()
		if buildErr != nil {
			fmt.Fprintln(os.Stderr, "e2e: building wsgate failed; every test that needs it will fail:\n", buildErr)
		}
	}
	code := m.Run()
	if code2 := stopShared(); code == 0 {
		code = code2
	}
	if code == 0 {
		os.RemoveAll(suiteTmp)
	} else {
		fmt.Fprintln(os.Stderr, "e2e: logs kept in", suiteTmp)
	}
	os.Exit(code)
}

// buildWsgate builds ./cmd/wsgate once, from the module root found with
// `go env GOMOD`.
func buildWsgate() error {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("go env GOMOD: %v", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return fmt.Errorf("go env GOMOD: not in a module")
	}
	root := filepath.Dir(gomod)
	bin := filepath.Join(suiteTmp, "wsgate")
	args := []string{"build"}
	if raceBinary {
		args = append(args, "-race")
	}
	args = append(args, "-o", bin, "./cmd/wsgate")
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	b, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go %s (in %s): %v\n%s", strings.Join(args, " "), root, err, b)
	}
	wsgateBin = bin
	return nil
}

func needBinary(t testing.TB) {
	t.Helper()
	if directMode {
		t.Skip("WSGATE_E2E_DIRECT=1: this test needs wsgate")
	}
	if buildErr != nil {
		t.Fatalf("wsgate binary not available: %v", buildErr)
	}
}

// bindClosed binds a TCP socket to ip and an ephemeral port without
// SO_REUSEADDR and never listens on it: connects to the address are
// refused for as long as fd stays open, and no listener or outgoing
// connection can take the port meanwhile. A "closed" port found by
// listening and closing was once taken by a parallel test's HTTP server,
// which then answered for a dead backend.
func bindClosed(ip [4]byte) (fd int, addr string, err error) {
	fd, err = syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, "", fmt.Errorf("socket: %w", err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: ip}); err != nil {
		syscall.Close(fd)
		return -1, "", fmt.Errorf("bind: %w", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		syscall.Close(fd)
		return -1, "", fmt.Errorf("getsockname: %w", err)
	}
	return fd, net.JoinHostPort(net.IP(ip[:]).String(), strconv.Itoa(sa.(*syscall.SockaddrInet4).Port)), nil
}

// freePort picks a free loopback port.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// ---------------------------------------------------------------- config

type routeCfg struct{ host, prefix, pool string }

type poolCfg struct {
	name       string
	preconnect int
	backends   []string
}

// serverDefaults are the [server] keys in the spec's order, as TOML literals.
var serverKeys = []string{
	"handshake_timeout", "idle_timeout", "ping_interval", "ping_timeout",
	"close_timeout", "drain_timeout", "max_header_bytes", "max_message_bytes",
	"max_buffered_bytes", "max_buffered_total", "log_level",
}

var serverDefaults = map[string]string{
	"handshake_timeout":  `"5s"`,
	"idle_timeout":       `"300s"`,
	"ping_interval":      `"0s"`,
	"ping_timeout":       `"10s"`,
	"close_timeout":      `"5s"`,
	"drain_timeout":      `"5s"`,
	"max_header_bytes":   `8192`,
	"max_message_bytes":  `"16MiB"`,
	"max_buffered_bytes": `"1MiB"`,
	"max_buffered_total": `"6GiB"`,
	"log_level":          `"debug"`,
}

func buildConfig(listen, admin string, over map[string]string, routes []routeCfg, pools []poolCfg) string {
	var b strings.Builder
	b.WriteString("[server]\n")
	fmt.Fprintf(&b, "listen = %q\nadmin_listen = %q\n", listen, admin)
	for _, k := range serverKeys {
		v := serverDefaults[k]
		if o, ok := over[k]; ok {
			v = o
		}
		fmt.Fprintf(&b, "%s = %s\n", k, v)
	}
	for _, r := range routes {
		fmt.Fprintf(&b, "\n[[route]]\nhost = %q\npath_prefix = %q\npool = %q\n", r.host, r.prefix, r.pool)
	}
	for _, p := range pools {
		fmt.Fprintf(&b, "\n[[pool]]\nname = %q\nbalance = \"round_robin\"\npreconnect = %d\ndial_timeout = \"2s\"\n", p.name, p.preconnect)
		for _, a := range p.backends {
			fmt.Fprintf(&b, "  [[pool.backend]]\n  address = %q\n", a)
		}
	}
	return b.String()
}

// ---------------------------------------------------------------- process

type proxyProc struct {
	cmd     *exec.Cmd
	addr    string // client listener host:port
	admin   string // admin listener host:port
	cfgPath string
	logPath string
	logFile *os.File
	drain   time.Duration

	done     chan struct{} // closed when the process has exited
	exitErr  error
	exitCode int
	exitAt   time.Time
}

// launchProxy starts `wsgate run --config` with the given config (the
// listen/admin placeholders are filled with free ports) and waits for /readyz.
func launchProxy(t testing.TB, dir string, drain time.Duration, mk func(listen, admin string) string) (*proxyProc, error) {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		listen := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		admin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		p := &proxyProc{addr: listen, admin: admin, drain: drain, done: make(chan struct{})}
		p.cfgPath = filepath.Join(dir, fmt.Sprintf("wsgate-%d.toml", attempt))
		p.logPath = filepath.Join(dir, fmt.Sprintf("wsgate-%d.log", attempt))
		if err := os.WriteFile(p.cfgPath, []byte(mk(listen, admin)), 0o644); err != nil {
			return nil, err
		}
		f, err := os.Create(p.logPath)
		if err != nil {
			return nil, err
		}
		p.logFile = f
		p.cmd = exec.Command(wsgateBin, "run", "--config", p.cfgPath)
		p.cmd.Stdout = f
		p.cmd.Stderr = f
		if err := p.cmd.Start(); err != nil {
			f.Close()
			return nil, fmt.Errorf("start wsgate: %v", err)
		}
		go func() {
			p.exitErr = p.cmd.Wait()
			p.exitCode = p.cmd.ProcessState.ExitCode()
			p.exitAt = time.Now()
			p.logFile.Close()
			close(p.done)
		}()
		err = p.waitReady(20 * time.Second)
		if err == nil {
			return p, nil
		}
		lastErr = err
		p.kill()
		if !strings.Contains(p.logTail(4096), "address already in use") {
			break
		}
	}
	return nil, lastErr
}

func (p *proxyProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

var adminClient = &http.Client{
	Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
	Timeout:   5 * time.Second,
}

func (p *proxyProc) adminGet(path string) (int, []byte, error) {
	req, _ := http.NewRequest("GET", "http://"+p.admin+path, nil)
	req.Header.Set("Accept", "text/plain")
	req.Close = true
	resp, err := adminClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func (p *proxyProc) waitReady(d time.Duration) error {
	deadline := time.Now().Add(d)
	var last string
	for time.Now().Before(deadline) {
		if p.exited() {
			return fmt.Errorf("wsgate exited before /readyz (code %d): %v\n%s", p.exitCode, p.exitErr, p.logTail(4096))
		}
		code, _, err := p.adminGet("/readyz")
		if err == nil && code == 200 {
			return nil
		}
		last = fmt.Sprintf("status %d err %v", code, err)
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("wsgate /readyz not 200 within %v (last: %s)\n%s", d, last, p.logTail(4096))
}

// kill ends the process with SIGKILL (by PID) if it is still running.
func (p *proxyProc) kill() {
	if !p.exited() {
		p.cmd.Process.Kill()
	}
	<-p.done
}

// stop sends SIGTERM and waits up to the drain timeout plus slack; it
// returns an error unless the process exits 0 in time (SIGKILL then).
func (p *proxyProc) stop() error {
	if p.exited() {
		return fmt.Errorf("wsgate had already exited (code %d, %v)", p.exitCode, p.exitErr)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(p.drain + 5*time.Second):
		p.kill()
		return fmt.Errorf("wsgate did not exit within %v of SIGTERM; killed", p.drain+5*time.Second)
	}
	if p.exitCode != 0 {
		return fmt.Errorf("wsgate exited with code %d (%v) after SIGTERM", p.exitCode, p.exitErr)
	}
	return nil
}

func (p *proxyProc) logBytes() []byte {
	b, _ := os.ReadFile(p.logPath)
	return b
}

func (p *proxyProc) logTail(n int) string {
	b := p.logBytes()
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// logProblems reports panics and data races in the proxy's log.
func logProblems(b []byte) string {
	for _, m := range []string{"WARNING: DATA RACE", "panic:", "fatal error:"} {
		if i := bytes.Index(b, []byte(m)); i >= 0 {
			end := min(len(b), i+6000)
			return string(b[i:end])
		}
	}
	return ""
}

// rssKiB returns VmRSS from /proc/PID/status.
func (p *proxyProc) rssKiB() (int64, error) { return p.procStatus("VmRSS:") }

// peakRSSKiB returns VmHWM, the peak resident set size so far.
func (p *proxyProc) peakRSSKiB() (int64, error) { return p.procStatus("VmHWM:") }

func (p *proxyProc) procStatus(field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				return strconv.ParseInt(f[0], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, p.cmd.Process.Pid)
}

// startProxy starts a wsgate dedicated to the test t, with the shared
// backends available for its pools. Cleanups, in order: baseline check, then
// SIGTERM with exit status 0 required, then a scan of its log for races and
// panics.
func startProxy(t *testing.T, over map[string]string, routes []routeCfg, pools []poolCfg) *proxyProc {
	t.Helper()
	return startProxyOpts(t, over, routes, pools, true)
}

// startProxyOpts is startProxy; withBaseline=false is for tests that end the
// process themselves.
func startProxyOpts(t *testing.T, over map[string]string, routes []routeCfg, pools []poolCfg, withBaseline bool) *proxyProc {
	t.Helper()
	needBinary(t)
	drain := 5 * time.Second
	if v, ok := over["drain_timeout"]; ok {
		d, err := time.ParseDuration(strings.Trim(v, `"`))
		if err != nil {
			t.Fatalf("bad drain_timeout override %s", v)
		}
		drain = d
	}
	dir := t.TempDir()
	p, err := launchProxy(t, dir, drain, func(listen, admin string) string {
		return buildConfig(listen, admin, over, routes, pools)
	})
	if err != nil {
		t.Fatal(err)
	}
	p.stopAtCleanup(t)
	if withBaseline {
		p.trackBaseline(t, 0)
	}
	return p
}

// ---------------------------------------------------------------- metrics

type metricSet map[string]float64 // `name{k="v",...}` with sorted labels -> value

func parseMetrics(text string) (metricSet, error) {
	ms := metricSet{}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		name, labels, rest, err := splitSample(line)
		if err != nil {
			return nil, fmt.Errorf("%v in %q", err, line)
		}
		fields := strings.Fields(rest)
		if len(fields) < 1 {
			return nil, fmt.Errorf("no value in %q", line)
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return nil, fmt.Errorf("bad value in %q", line)
		}
		ms[metricKey(name, labels)] = v
	}
	return ms, nil
}

func splitSample(line string) (string, map[string]string, string, error) {
	i := strings.IndexAny(line, "{ ")
	if i < 0 {
		return "", nil, "", fmt.Errorf("no value")
	}
	name := line[:i]
	labels := map[string]string{}
	if line[i] == ' ' {
		return name, labels, line[i:], nil
	}
	s := line[i+1:]
	for {
		s = strings.TrimLeft(s, " ,")
		if strings.HasPrefix(s, "}") {
			return name, labels, s[1:], nil
		}
		eq := strings.IndexByte(s, '=')
		if eq < 0 || eq+1 >= len(s) || s[eq+1] != '"' {
			return "", nil, "", fmt.Errorf("bad labels")
		}
		k := strings.TrimSpace(s[:eq])
		s = s[eq+2:]
		var v strings.Builder
		j := 0
		for ; j < len(s); j++ {
			if s[j] == '\\' && j+1 < len(s) {
				j++
				switch s[j] {
				case 'n':
					v.WriteByte('\n')
				default:
					v.WriteByte(s[j])
				}
				continue
			}
			if s[j] == '"' {
				break
			}
			v.WriteByte(s[j])
		}
		if j >= len(s) {
			return "", nil, "", fmt.Errorf("unterminated label value")
		}
		labels[k] = v.String()
		s = s[j+1:]
	}
}

func metricKey(name string, labels map[string]string) string {
	if len(labels) == 0 {
		return name
	}
	ks := make([]string, 0, len(labels))
	for k := range labels {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	var b strings.Builder
	b.WriteString(name)
	b.WriteByte('{')
	for i, k := range ks {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%q", k, labels[k])
	}
	b.WriteByte('}')
	return b.String()
}

// get returns the sample name{labels...} (labels as k, v pairs) and whether
// it exists.
func (ms metricSet) get(name string, kv ...string) (float64, bool) {
	labels := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		labels[kv[i]] = kv[i+1]
	}
	v, ok := ms[metricKey(name, labels)]
	return v, ok
}

// sum adds every sample of name whose labels include kv.
func (ms metricSet) sum(name string, kv ...string) float64 {
	total := 0.0
	for key, v := range ms {
		n, labels := splitKey(key)
		if n != name {
			continue
		}
		match := true
		for i := 0; i+1 < len(kv); i += 2 {
			if labels[kv[i]] != kv[i+1] {
				match = false
			}
		}
		if match {
			total += v
		}
	}
	return total
}

// series lists the label sets of name.
func (ms metricSet) series(name string) []map[string]string {
	var out []map[string]string
	for key := range ms {
		if n, labels := splitKey(key); n == name {
			out = append(out, labels)
		}
	}
	return out
}

func splitKey(key string) (string, map[string]string) {
	i := strings.IndexByte(key, '{')
	if i < 0 {
		return key, map[string]string{}
	}
	name, labels, _, err := splitSample(key + " 0")
	if err != nil {
		return key[:i], map[string]string{}
	}
	return name, labels
}

func (p *proxyProc) scrape() (metricSet, error) {
	code, b, err := p.adminGet("/metrics")
	if err != nil {
		return nil, err
	}
	if code != 200 {
		return nil, fmt.Errorf("/metrics status %d", code)
	}
	return parseMetrics(string(b))
}

func (p *proxyProc) metrics(t testing.TB) metricSet {
	t.Helper()
	ms, err := p.scrape()
	if err != nil {
		t.Fatalf("scrape /metrics: %v", err)
	}
	return ms
}

// waitMetric polls until cond holds for the scraped metrics or d passes; it
// returns the last scrape.
func (p *proxyProc) waitMetric(t testing.TB, d time.Duration, what string, cond func(metricSet) bool) metricSet {
	t.Helper()
	deadline := time.Now().Add(d)
	var ms metricSet
	for {
		ms = p.metrics(t)
		if cond(ms) {
			return ms
		}
		if time.Now().After(deadline) {
			t.Errorf("metrics: %s: not true within %v", what, d)
			return ms
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ---------------------------------------------------------------- baseline

type baseline struct{ goroutines, fds float64 }

func (b baseline) String() string {
	return fmt.Sprintf("go_goroutines=%v process_open_fds=%v", b.goroutines, b.fds)
}

func (p *proxyProc) sample() (baseline, error) {
	ms, err := p.scrape()
	if err != nil {
		return baseline{}, err
	}
	g, ok1 := ms.get("go_goroutines")
	f, ok2 := ms.get("process_open_fds")
	if !ok1 || !ok2 {
		return baseline{}, fmt.Errorf("/metrics lacks go_goroutines (%v) or process_open_fds (%v)", ok1, ok2)
	}
	return baseline{g, f}, nil
}

// settle samples until three consecutive samples 100ms apart agree (at most
// 4s) and returns the value.
func (p *proxyProc) settle(t testing.TB) baseline {
	t.Helper()
	deadline := time.Now().Add(4 * time.Second)
	prev, err := p.sample()
	if err != nil {
		t.Fatalf("baseline: %v", err)
	}
	same := 0
	for time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		cur, err := p.sample()
		if err != nil {
			t.Fatalf("baseline: %v", err)
		}
		if cur == prev {
			same++
			if same >= 2 {
				return cur
			}
		} else {
			same = 0
		}
		prev = cur
	}
	t.Logf("baseline did not settle within 4s; using %v", prev)
	return prev
}

// trackBaseline records the proxy's goroutines and open fds now and
// registers a cleanup that polls (up to settle, default 5s) until both are
// back to exactly these values. Cleanups registered later (clients, probes)
// run before it.
func (p *proxyProc) trackBaseline(t *testing.T, settle time.Duration) {
	t.Helper()
	if settle == 0 {
		settle = 5 * time.Second
	}
	b := p.settle(t)
	t.Logf("wsgate baseline: %v", b)
	t.Cleanup(func() { p.expectBaseline(t, b, settle) })
}

func (p *proxyProc) expectBaseline(t testing.TB, b baseline, d time.Duration) {
	t.Helper()
	if p.exited() {
		t.Errorf("baseline check: wsgate exited during the test (code %d, %v)", p.exitCode, p.exitErr)
		return
	}
	deadline := time.Now().Add(d)
	var cur baseline
	var err error
	for {
		cur, err = p.sample()
		if err == nil && cur == b {
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Errorf("baseline check: %v", err)
		return
	}
	t.Errorf("wsgate did not return to its baseline within %v: before %v, after %v (%s)", d, b, cur, p.fdSummary())
}

// fdSummary describes the proxy's open fds from /proc, to help diagnose a leak.
func (p *proxyProc) fdSummary() string {
	dir := fmt.Sprintf("/proc/%d/fd", p.cmd.Process.Pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err.Error()
	}
	kinds := map[string]int{}
	for _, e := range ents {
		l, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		k := l
		if i := strings.IndexByte(l, ':'); i >= 0 {
			k = l[:i]
		}
		kinds[k]++
	}
	return fmt.Sprintf("fds by kind now: %v", kinds)
}

// ---------------------------------------------------------------- shared env

// env is what a test talks to: a running wsgate in front of the shared
// backends, or (WSGATE_E2E_DIRECT=1) the backends themselves.
type env struct {
	proxy *proxyProc // nil in direct mode
	be    *backends
}

// addrFor returns the address a client dials for path: the proxy, or in
// direct mode the backend the proxy's route table would pick.
func (e *env) addrFor(path string) string {
	if e.proxy != nil {
		return e.proxy.addr
	}
	switch {
	case strings.HasPrefix(path, "/g/deep/"), strings.HasPrefix(path, "/c/"):
		return e.be.coder.addr
	case strings.HasPrefix(path, "/raw/"):
		return e.be.raw.addr
	default:
		return e.be.gorilla.addr
	}
}

func (e *env) url(path string) string { return "ws://" + e.addrFor(path) + path }

var shared struct {
	mu    sync.Mutex
	be    *backends
	proxy *proxyProc
	dead  [2]string
}

// sharedProxyConfig is the config of the suite's long-lived wsgate.
func sharedProxyConfig(be *backends, dead [2]string) func(listen, admin string) string {
	return func(listen, admin string) string {
		return buildConfig(listen, admin, nil,
			[]routeCfg{
				{"*", "/g/", "gorilla"},
				{"*", "/g/deep/", "coder"},
				{"*", "/c/", "coder"},
				{"*", "/raw/", "raw"},
				{"ONLY.test", "/hostonly/", "gorilla"},
				{"*", "/down/", "down"},
				{"*", "/alldown/", "alldown"},
				{"*", "/empty/", "empty"},
			},
			[]poolCfg{
				{"gorilla", 2, []string{be.gorilla.addr}},
				{"coder", 2, []string{be.coder.addr}},
				{"raw", 1, []string{be.raw.addr}},
				{"down", 0, []string{dead[0], be.gorilla.addr}},
				{"alldown", 0, []string{dead[0], dead[1]}},
				{"empty", 0, nil},
			})
	}
}

// sharedEnv returns the suite's shared wsgate (started on first use, and
// again if it died) with a baseline check registered for t.
func sharedEnv(t *testing.T) *env {
	t.Helper()
	be := sharedBackends(t)
	if directMode {
		return &env{be: be}
	}
	needBinary(t)
	shared.mu.Lock()
	if shared.proxy != nil && shared.proxy.exited() {
		t.Logf("shared wsgate had exited (code %d); starting a new one", shared.proxy.exitCode)
		shared.proxy = nil
	}
	if shared.proxy == nil {
		// The shared proxy outlives the test that starts it: its dead
		// backends' ports stay reserved for the whole run (the
		// descriptors are left open on purpose).
		for i := range shared.dead {
			_, addr, err := bindClosed([4]byte{127, 0, 0, 1})
			if err != nil {
				t.Fatal(err)
			}
			shared.dead[i] = addr
		}
		p, err := launchProxy(t, suiteTmp, 5*time.Second, sharedProxyConfig(be, shared.dead))
		if err != nil {
			shared.mu.Unlock()
			t.Fatalf("starting shared wsgate: %v", err)
		}
		shared.proxy = p
	}
	p := shared.proxy
	shared.mu.Unlock()
	off := int64(len(p.logBytes()))
	t.Cleanup(func() {
		b := p.logBytes()
		if int64(len(b)) < off {
			off = 0
		}
		if prob := logProblems(b[off:]); prob != "" {
			t.Errorf("shared wsgate log shows a problem during this test:\n%s", prob)
		}
		if t.Failed() {
			tail := b[off:]
			if len(tail) > 12000 {
				tail = tail[len(tail)-12000:]
			}
			t.Logf("shared wsgate log during this test (tail, %s):\n%s", p.logPath, tail)
		}
	})
	p.trackBaseline(t, 0)
	return &env{proxy: p, be: be}
}

// stopShared stops the shared wsgate and backends; non-zero if wsgate did
// not exit cleanly.
func stopShared() int {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	code := 0
	if p := shared.proxy; p != nil {
		if !p.exited() {
			if err := p.stop(); err != nil {
				fmt.Fprintln(os.Stderr, "e2e: shared wsgate:", err)
				code = 1
			}
		}
		if prob := logProblems(p.logBytes()); prob != "" {
			fmt.Fprintln(os.Stderr, "e2e: shared wsgate log shows a problem:\n", prob)
			code = 1
		}
	}
	if shared.be != nil {
		shared.be.close()
	}
	return code
}

// within runs f and fails t if it takes longer than d (f keeps running in
// the background; its own deadlines bound it).
func within(t testing.TB, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s: not done within %v", what, d)
	}
}

// stopAtCleanup stops the proxy when t ends, requires a clean log (no
// panic, no data race), and shows the log's tail if t failed.
func (p *proxyProc) stopAtCleanup(t *testing.T) {
	t.Cleanup(func() {
		if !p.exited() {
			if err := p.stop(); err != nil {
				t.Errorf("stopping wsgate: %v", err)
			}
		}
		<-p.done
		if prob := logProblems(p.logBytes()); prob != "" {
			t.Errorf("wsgate log shows a problem:\n%s", prob)
		}
		if t.Failed() {
			t.Logf("wsgate log tail (%s):\n%s", p.logPath, p.logTail(12000))
		}
	})
}
