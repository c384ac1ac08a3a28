package e2e

import (
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// Hot reload (SIGHUP, POST /reload), slow start of a backend added by a
// reload, and rebalancing after a scale-out.

// TestReloadLive: 1,000 live sessions across reloads that add a backend,
// change weights, refuse an invalid file and remove a backend.
func TestReloadLive(t *testing.T) {
	const n = 1000
	a := newMCBackend(t, "a", false)
	b := newMCBackend(t, "b", false)
	c := newMCBackend(t, "c", false)
	pool := func(bes ...mcBE) []mcPool {
		return []mcPool{{name: "live", keys: []string{`balance = "round_robin"`, "preconnect = 0", `drain_period = "2s"`}, backends: bes}}
	}
	v1 := pool(mcBE{addr: a.addr}, mcBE{addr: b.addr})
	v2 := pool(mcBE{a.addr, []string{"weight = 200"}}, mcBE{addr: b.addr}, mcBE{addr: c.addr})
	v3 := pool(mcBE{a.addr, []string{"weight = 200"}}, mcBE{addr: c.addr})
	cfg := func(pools []mcPool) func(l, ad string) string {
		return func(l, ad string) string { return mcConfig(l, ad, nil, nil, pools) }
	}
	p := startMC(t, cfg(v1))
	url := "ws://" + p.addr + "/live"
	sess := openSessions(t, n, 50, url)
	count := map[string]int{}
	for _, m := range sess {
		count[m.backend]++
	}
	t.Logf("%d sessions: %s", n, fmtCounts(count))

	// 1. SIGHUP: add c, change a's weight.
	p.writeConfig(t, cfg(v2))
	p.sighup(t)
	p.waitState(t, "live", c.addr, "healthy", 5*time.Second)
	if ba, _ := p.pools(t).backend("live", a.addr); ba.Weight != 200 {
		t.Errorf("after SIGHUP: a weight %d, want 200", ba.Weight)
	}
	if errs := echoAll(sess, 50, "after SIGHUP"); len(errs) > 0 {
		t.Errorf("%d of %d sessions broke across the SIGHUP reload; first: %v", len(errs), n, errs[0])
	}
	m := landings(40, 4, func(int) string { return url }, nil)
	t.Logf("40 new sessions after the reload (weights a 200, b 100, c 100): %s", fmtCounts(m))
	if m["c"] < 5 || m["a"] <= m["b"] || errorsIn(m) > 0 {
		t.Errorf("after the reload: %s; want c to take new sessions and a about twice b", fmtCounts(m))
	}

	// 2. An invalid file: SIGHUP and POST /reload refuse it.
	before := p.pools(t)
	bad := p.writeConfig(t, cfg(pool(mcBE{a.addr, []string{"weight = 0"}}, mcBE{addr: b.addr}, mcBE{addr: c.addr})))
	badLine := 0
	for i, l := range strings.Split(bad, "\n") {
		if strings.TrimSpace(l) == "weight = 0" {
			badLine = i + 1
		}
	}
	p.sighup(t)
	time.Sleep(500 * time.Millisecond)
	if p.exited() {
		t.Fatalf("wsgate exited on SIGHUP with an invalid file (code %d)", p.exitCode)
	}
	samePools := func(what string) {
		t.Helper()
		after := p.pools(t)
		for _, pd := range before.Pools {
			for _, bd := range pd.Backends {
				ad, ok := after.backend(pd.Name, bd.Address)
				if !ok || ad.State != bd.State || ad.Weight != bd.Weight || ad.Tier != bd.Tier {
					t.Errorf("%s: /pools %s/%s changed: %+v -> %+v (present %v)", what, pd.Name, bd.Address, bd, ad, ok)
				}
			}
		}
		if len(after.Pools) != len(before.Pools) || len(after.Pools[0].Backends) != len(before.Pools[0].Backends) {
			t.Errorf("%s: /pools changed shape: %+v -> %+v", what, before, after)
		}
	}
	samePools("SIGHUP with an invalid file")
	if errs := echoAll(sess, 50, "after bad SIGHUP"); len(errs) > 0 {
		t.Errorf("%d sessions broke after an invalid SIGHUP; first: %v", len(errs), errs[0])
	}
	code, rr := p.postReload(t)
	t.Logf("POST /reload with an invalid file: %d %+v", code, rr)
	if code != 422 || rr.Reloaded {
		t.Errorf("POST /reload with an invalid file: status %d reloaded %v, want 422 false", code, rr.Reloaded)
	}
	want := fmt.Sprintf("%s:%d:", filepath.Base(p.cfgPath), badLine)
	found := false
	for _, e := range rr.Errors {
		if strings.Contains(e, want) && strings.Contains(e, "weight") {
			found = true
		}
	}
	if !found {
		t.Errorf("POST /reload errors %q: none names %s (the weight = 0 line)", rr.Errors, want)
	}
	samePools("POST /reload with an invalid file")
	if errs := echoAll(sess, 50, "after bad POST"); len(errs) > 0 {
		t.Errorf("%d sessions broke after an invalid POST /reload; first: %v", len(errs), errs[0])
	}

	// 3. POST /reload removing b: its sessions get 1001 over drain_period.
	var onB, rest []*mcConn
	for _, m := range sess {
		if m.backend == "b" {
			onB = append(onB, m)
		} else {
			rest = append(rest, m)
		}
	}
	type got struct {
		code int
		at   time.Time
	}
	res := make(chan got, len(onB))
	for _, m := range onB {
		go func() {
			code, at := m.awaitClose(15 * time.Second)
			res <- got{code, at}
		}()
	}
	p.writeConfig(t, cfg(v3))
	start := time.Now()
	code, rr = p.postReload(t)
	if code != 200 || !rr.Reloaded {
		t.Fatalf("POST /reload removing b: %d %+v", code, rr)
	}
	// [server] is the same in both files (reactors left to the default).
	for _, n := range rr.Notes {
		if strings.Contains(n, "[server]") {
			t.Errorf("POST /reload removing b: note %q, but [server] did not change", n)
		}
	}
	if bd, ok := p.pools(t).backend("live", b.addr); ok && bd.State != "removed" {
		t.Errorf("/pools after removing b: b is %q, want removed or absent", bd.State)
	}
	m = landings(20, 4, func(int) string { return url }, nil)
	if m["b"] != 0 || errorsIn(m) > 0 {
		t.Errorf("after removing b: %s; want none on b", fmtCounts(m))
	}
	var times []time.Time
	codes := map[int]int{}
	for range onB {
		r := <-res
		codes[r.code]++
		times = append(times, r.at)
	}
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	if len(times) > 0 {
		first, last := times[0].Sub(start), times[len(times)-1].Sub(start)
		t.Logf("%d sessions of the removed backend: codes %v, closed between %v and %v", len(onB), codes, first, last)
		if codes[1001] != len(onB) {
			t.Errorf("removed backend's sessions: close codes %v, want all %d 1001", codes, len(onB))
		}
		if last-first < 1200*time.Millisecond || last > 4*time.Second {
			t.Errorf("removed backend's sessions closed between %v and %v, want spread over drain_period 2s", first, last)
		}
	}
	if errs := echoAll(rest, 50, "after removal"); len(errs) > 0 {
		t.Errorf("%d sessions on kept backends broke when b was removed; first: %v", len(errs), errs[0])
	}
}

// TestReloadSlowStart: a backend added by a reload ramps up over slow_start.
func TestReloadSlowStart(t *testing.T) {
	a := newMCBackend(t, "a", false)
	b := newMCBackend(t, "b", false)
	c := newMCBackend(t, "c", false)
	keys := []string{`balance = "round_robin"`, "preconnect = 0", `slow_start = "3s"`}
	v1 := []mcPool{{name: "ss", keys: keys, backends: []mcBE{{addr: a.addr}, {addr: b.addr}}}}
	v2 := []mcPool{{name: "ss", keys: keys, backends: []mcBE{{addr: a.addr}, {addr: b.addr}, {addr: c.addr}}}}
	p := startMC(t, func(l, ad string) string { return mcConfig(l, ad, nil, nil, v1) })
	url := "ws://" + p.addr + "/ss"
	p.writeConfig(t, func(l, ad string) string { return mcConfig(l, ad, nil, nil, v2) })
	code, rr := p.postReload(t)
	t0 := time.Now()
	if code != 200 || !rr.Reloaded {
		t.Fatalf("POST /reload: %d %+v", code, rr)
	}
	// Sessions back to back for the first second.
	var mu sync.Mutex
	first := map[string]int{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000 && time.Since(t0) < time.Second; i++ {
				m, _, err := mcDial(url, nil, "")
				k := "error"
				if err == nil {
					k = m.backend
					m.close()
				}
				mu.Lock()
				first[k]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	total := first["a"] + first["b"] + first["c"]
	share := float64(first["c"]) / float64(max(total, 1))
	t.Logf("first second after the reload: %s (c's share %.3f; its weight share is 0.333)", fmtCounts(first), share)
	if total < 30 {
		t.Fatalf("only %d sessions in the first second; too few to judge", total)
	}
	if share > 0.5/3 {
		t.Errorf("slow_start 3s: the new backend took %.0f%% of new sessions in its first second, want well below its weight share of 33%%", share*100)
	}
	time.Sleep(time.Until(t0.Add(3300 * time.Millisecond)))
	later := landings(300, 4, func(int) string { return url }, nil)
	share = float64(later["c"]) / 300
	t.Logf("after 3.3s: %s (c's share %.3f)", fmtCounts(later), share)
	if share < 0.27 || share > 0.40 {
		t.Errorf("after slow_start: the new backend's share is %.0f%%, want its weight share 33%%", share*100)
	}
}

// TestReloadRebalance: 300 sessions on two backends, a third added by a
// reload; wsgate moves the excess with 1012 at ≤ rebalance_rate per second
// until the skew is under rebalance_threshold.
func TestReloadRebalance(t *testing.T) {
	const n, rate = 300, 50
	a := newMCBackend(t, "a", false)
	b := newMCBackend(t, "b", false)
	c := newMCBackend(t, "c", false)
	keys := []string{`balance = "round_robin"`, "preconnect = 0", "rebalance = true", "rebalance_threshold = 1.25", fmt.Sprintf("rebalance_rate = %d", rate)}
	v1 := []mcPool{{name: "rb", keys: keys, backends: []mcBE{{addr: a.addr}, {addr: b.addr}}}}
	v2 := []mcPool{{name: "rb", keys: keys, backends: []mcBE{{addr: a.addr}, {addr: b.addr}, {addr: c.addr}}}}
	p := startMC(t, func(l, ad string) string { return mcConfig(l, ad, nil, nil, v1) })
	f := startFleet(t, n, "ws://"+p.addr+"/rb")
	if _, ok := f.waitAll(30*time.Second, nil); !ok {
		in, by := f.counts()
		t.Fatalf("only %d of %d in session: %s", in, n, fmtCounts(by))
	}
	time.Sleep(time.Second)
	if ev := f.closeEvents(); len(ev) != 0 {
		t.Errorf("%d sessions closed while the pool was balanced", len(ev))
	}
	_, by := f.counts()
	t.Logf("before the reload: %s", fmtCounts(by))
	m0 := p.metrics(t)

	p.writeConfig(t, func(l, ad string) string { return mcConfig(l, ad, nil, nil, v2) })
	code, rr := p.postReload(t)
	t0 := time.Now()
	if code != 200 || !rr.Reloaded {
		t.Fatalf("POST /reload: %d %+v", code, rr)
	}
	balanced := func() (bool, string) {
		d := p.pools(t)
		var counts []int64
		var total int64
		desc := ""
		for _, pd := range d.Pools {
			for _, bd := range pd.Backends {
				counts = append(counts, bd.Sessions)
				total += bd.Sessions
				desc += fmt.Sprintf("%s=%d ", bd.Address, bd.Sessions)
			}
		}
		if len(counts) != 3 || total == 0 {
			return false, desc
		}
		exp := float64(total) / 3
		for _, x := range counts {
			if float64(x)/exp > 1.25 {
				return false, desc
			}
		}
		return true, desc
	}
	var when time.Duration
	var desc string
	ok := false
	for time.Since(t0) < 20*time.Second {
		var bal bool
		bal, desc = balanced()
		if in, _ := f.counts(); bal && in == n {
			when, ok = time.Since(t0), true
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	ev := f.closeEvents()
	_, by = f.counts()
	t.Logf("rebalance: %d sessions closed; balanced=%v after %v (/pools %s; clients %s)", len(ev), ok, when, desc, fmtCounts(by))
	if !ok {
		t.Errorf("20s after adding c the pool is not under the 1.25 skew threshold: /pools %s, clients %s", desc, fmtCounts(by))
	}
	if len(ev) == 0 {
		t.Fatalf("no session was moved: rebalance = true did nothing")
	}
	if by["c"] == 0 {
		t.Errorf("no reconnecting client landed on the new backend c")
	}
	codes := map[int]int{}
	var times []time.Time
	for _, e := range ev {
		codes[e.code]++
		times = append(times, e.at)
		if e.backend == "c" {
			t.Errorf("a session on the new backend c was closed")
		}
	}
	if codes[1012] != len(ev) {
		t.Errorf("rebalance closes: codes %v, want all 1012", codes)
	}
	// The pace is judged on wsgate's own record of when it decided each
	// close: the clients' receipt times add the delivery jitter of a busy
	// machine, which can bunch closes sent 100 ms apart.
	decided := logTimes(t, p.logBytes(), `msg="rebalance close"`)
	if len(decided) != len(ev) {
		t.Errorf("wsgate logged %d rebalance closes; clients saw %d", len(decided), len(ev))
	}
	worst, worstSeen := maxInWindow(decided, time.Second), maxInWindow(times, time.Second)
	early := 0
	for _, at := range times {
		if at.Sub(t0) < 200*time.Millisecond {
			early++
		}
	}
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	t.Logf("most closes in any 1s window: %d decided, %d received (rebalance_rate %d); %d received within 200ms of the reload; first at %v, last at %v",
		worst, worstSeen, rate, early, times[0].Sub(t0), times[len(times)-1].Sub(t0))
	// A token bucket of rate per second with a tenth of a second's burst.
	if limit := rate + rate/10; worst > limit {
		t.Errorf("rebalance_rate %d: %d sessions closed within one second (at most %d)", rate, worst, limit)
	}
	// Once under the threshold, it stops.
	settled := len(ev)
	time.Sleep(1500 * time.Millisecond)
	if more := len(f.closeEvents()) - settled; more > 0 && ok {
		t.Errorf("%d more sessions closed after the skew was under the threshold", more)
	}
	m1 := p.metrics(t)
	if d := m1.sum("wsgate_backend_rebalance_closes_total") - m0.sum("wsgate_backend_rebalance_closes_total"); int(d) != len(f.closeEvents()) {
		t.Errorf("wsgate_backend_rebalance_closes_total grew by %v; clients saw %d closes", d, len(f.closeEvents()))
	}
	f.stop()
}

// logTimes returns the times of wsgate's log lines that contain match,
// sorted.
func logTimes(t *testing.T, log []byte, match string) []time.Time {
	t.Helper()
	var out []time.Time
	for line := range strings.SplitSeq(string(log), "\n") {
		if !strings.Contains(line, match) {
			continue
		}
		f, _, _ := strings.Cut(line, " ")
		at, err := time.Parse(time.RFC3339Nano, strings.TrimPrefix(f, "time="))
		if err != nil {
			t.Fatalf("log line without a time: %q: %v", line, err)
		}
		out = append(out, at)
	}
	slices.SortFunc(out, func(a, b time.Time) int { return a.Compare(b) })
	return out
}

// maxInWindow returns the most of times that fall in any window of length w.
func maxInWindow(times []time.Time, w time.Duration) int {
	s := slices.Clone(times)
	slices.SortFunc(s, func(a, b time.Time) int { return a.Compare(b) })
	most := 0
	for i := range s {
		j := sort.Search(len(s), func(k int) bool { return s[k].Sub(s[i]) >= w })
		most = max(most, j-i)
	}
	return most
}
