package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// Multi-cloud pool features against the real binary: locality tiers,
// sticky keys, active health checks, passive ejection, drains, a backend
// killed under 1,000 reconnecting clients, and the admin API. Reload,
// slow start and rebalancing are in reload_test.go.

var mcNodeAWS = &mcNode{"aws", "eu-west-1", "eu-west-1a"}

func tcpHealth(kind string) []string {
	h := []string{fmt.Sprintf("type = %q", kind), `interval = "200ms"`, `timeout = "150ms"`,
		"healthy_threshold = 2", "unhealthy_threshold = 3"}
	switch kind {
	case "http":
		h = append(h, `path = "/healthz"`)
	case "websocket":
		h = append(h, `path = "/wshealth"`)
	}
	return h
}

// ---------------------------------------------------------------- 1. locality

// TestMultiCloudLocality: a proxy in aws/eu-west-1/eu-west-1a with two
// backends in its zone, two in another zone of its region and two in
// another cloud.
func TestMultiCloudLocality(t *testing.T) {
	type world struct {
		p    *proxyProc
		bs   map[string]*mcBackend
		tier map[string]int // by backend id
	}
	setup := func(t *testing.T, locality string) world {
		w := world{bs: map[string]*mcBackend{}, tier: map[string]int{}}
		var bes []mcBE
		for _, s := range []struct {
			id                  string
			cloud, region, zone string
			tier                int
		}{
			{"z1", "aws", "eu-west-1", "eu-west-1a", 0},
			{"z2", "aws", "eu-west-1", "eu-west-1a", 0},
			{"r1", "aws", "eu-west-1", "eu-west-1b", 1},
			{"r2", "aws", "eu-west-1", "eu-west-1b", 1},
			{"o1", "gcp", "europe-west1", "europe-west1-b", 3},
			{"o2", "gcp", "europe-west1", "europe-west1-b", 3},
		} {
			b := newMCBackend(t, s.id, false)
			w.bs[s.id] = b
			w.tier[s.id] = s.tier
			bes = append(bes, mcBE{b.addr, loc(s.cloud, s.region, s.zone)})
		}
		pools := []mcPool{{
			name:     "geo",
			keys:     []string{`balance = "round_robin"`, fmt.Sprintf("locality = %q", locality), "preconnect = 0", `drain_period = "1s"`},
			health:   tcpHealth("tcp"),
			backends: bes,
		}}
		w.p = startMC(t, func(l, a string) string { return mcConfig(l, a, mcNodeAWS, nil, pools) })
		return w
	}
	url := func(w world) func(int) string {
		return func(int) string { return "ws://" + w.p.addr + "/geo" }
	}
	byTier := func(w world, m map[string]int) (tiers [4]int, errs int) {
		for k, v := range m {
			if tr, ok := w.tier[k]; ok {
				tiers[tr] += v
			} else {
				errs += v
			}
		}
		return
	}

	t.Run("prefer", func(t *testing.T) {
		w := setup(t, "prefer")
		d := w.p.pools(t)
		for id, b := range w.bs {
			bd, ok := d.backend("geo", b.addr)
			if !ok {
				t.Fatalf("/pools lacks backend %s (%s)", id, b.addr)
			}
			if bd.Tier != w.tier[id] {
				t.Errorf("/pools: %s locality_tier %d, want %d", id, bd.Tier, w.tier[id])
			}
		}

		m := landings(200, 8, url(w), nil)
		tiers, errs := byTier(w, m)
		t.Logf("all healthy, 200 sessions: %s", fmtCounts(m))
		if errs != 0 || tiers[0] != 200 {
			t.Errorf("all healthy: %d of 200 sessions in the proxy's zone (tiers %v, %d failed), want all 200", tiers[0], tiers, errs)
		}

		check70 := func(what string, m map[string]int) {
			t.Helper()
			tiers, errs := byTier(w, m)
			share := float64(tiers[0]) / 400
			t.Logf("%s, 400 sessions: %s (tier 0 share %.2f)", what, fmtCounts(m), share)
			if errs != 0 {
				t.Errorf("%s: %d sessions failed", what, errs)
			}
			if share < 0.60 || share > 0.80 {
				t.Errorf("%s: tier 0 got %.0f%% of new sessions, want 70%% ± 10 (min(1, 1.4×0.5))", what, share*100)
			}
			if tiers[1] == 0 {
				t.Errorf("%s: no session spilled to the region (tier 1)", what)
			}
			if tiers[3] != 0 {
				t.Errorf("%s: %d sessions went to another cloud though the region has room", what, tiers[3])
			}
		}

		// Drain one of the two zone backends: the zone is 50% available.
		w.p.drainBackend(t, "geo", w.bs["z1"].addr, true)
		w.p.waitState(t, "geo", w.bs["z1"].addr, "draining", 2*time.Second)
		m = landings(400, 8, url(w), nil)
		if m["z1"] != 0 {
			t.Errorf("drained z1 got %d new sessions", m["z1"])
		}
		check70("z1 drained", m)
		w.p.drainBackend(t, "geo", w.bs["z1"].addr, false)
		w.p.waitState(t, "geo", w.bs["z1"].addr, "healthy", 2*time.Second)

		// Kill the other one instead: health checks take it out.
		w.bs["z2"].kill()
		took := w.p.waitState(t, "geo", w.bs["z2"].addr, "unhealthy", 5*time.Second)
		t.Logf("killed z2 seen unhealthy after %v", took)
		m = landings(400, 8, url(w), nil)
		check70("z2 killed", m)
		w.bs["z2"].restart(t)
		w.p.waitState(t, "geo", w.bs["z2"].addr, "healthy", 5*time.Second)
	})

	t.Run("strict", func(t *testing.T) {
		w := setup(t, "strict")
		m := landings(100, 8, url(w), nil)
		tiers, errs := byTier(w, m)
		if errs != 0 || tiers[0] != 100 {
			t.Errorf("strict, all healthy: %s; want all 100 in the zone", fmtCounts(m))
		}
		// The zone dies: the region takes over.
		for _, id := range []string{"z1", "z2"} {
			w.bs[id].kill()
		}
		for _, id := range []string{"z1", "z2"} {
			w.p.waitState(t, "geo", w.bs[id].addr, "unhealthy", 5*time.Second)
		}
		m = landings(100, 8, url(w), nil)
		tiers, errs = byTier(w, m)
		t.Logf("strict, zone down: %s", fmtCounts(m))
		if errs != 0 || tiers[1] != 100 {
			t.Errorf("strict, zone down: %s; want all 100 in the region (r1, r2)", fmtCounts(m))
		}
		// The whole region dies: sessions are refused, never sent abroad.
		for _, id := range []string{"r1", "r2"} {
			w.bs[id].kill()
		}
		for _, id := range []string{"r1", "r2"} {
			w.p.waitState(t, "geo", w.bs[id].addr, "unhealthy", 5*time.Second)
		}
		o0 := w.bs["o1"].upgrades.Load() + w.bs["o2"].upgrades.Load()
		for i := range 20 {
			m, resp, err := mcDial("ws://"+w.p.addr+"/geo", nil, "")
			if err == nil {
				t.Errorf("strict, region down: session %d opened on %s; want it refused", i, m.backend)
				m.close()
				continue
			}
			if resp == nil || (resp.StatusCode != 503 && resp.StatusCode != 502) {
				st := 0
				if resp != nil {
					st = resp.StatusCode
				}
				t.Errorf("strict, region down: session %d: status %d (%v), want 503 or 502", i, st, err)
			}
		}
		if o := w.bs["o1"].upgrades.Load() + w.bs["o2"].upgrades.Load() - o0; o != 0 {
			t.Errorf("strict: %d sessions reached another cloud", o)
		}
		for _, id := range []string{"z1", "z2", "r1", "r2"} {
			w.bs[id].restart(t)
		}
		for _, id := range []string{"z1", "z2", "r1", "r2"} {
			w.p.waitState(t, "geo", w.bs[id].addr, "healthy", 5*time.Second)
		}
	})

	t.Run("off", func(t *testing.T) {
		w := setup(t, "off")
		m := landings(300, 8, url(w), nil)
		t.Logf("off, 300 sessions: %s", fmtCounts(m))
		if e := errorsIn(m); e != 0 {
			t.Errorf("off: %d sessions failed", e)
		}
		for id := range w.bs {
			if m[id] < 25 {
				t.Errorf("off: %s got %d of 300 sessions; want them spread over all six (about 50 each)", id, m[id])
			}
		}
	})
}

// ---------------------------------------------------------------- 2. sticky keys

func TestMultiCloudSticky(t *testing.T) {
	var bes []mcBE
	ids := map[string]bool{}
	for i := range 4 {
		b := newMCBackend(t, fmt.Sprintf("s%d", i+1), false)
		ids[b.id] = true
		bes = append(bes, mcBE{addr: b.addr})
	}
	sources := []struct{ name, prefix, key string }{
		{"header", "/h/", "header:X-Session-Id"},
		{"cookie", "/c/", "cookie:sid"},
		{"query", "/q/", "query:room"},
		{"path", "/p/", "path"},
		{"ip", "/ip/", "ip"},
	}
	var pools []mcPool
	for _, s := range sources {
		pools = append(pools, mcPool{
			name: "sticky-" + s.name, prefix: s.prefix,
			keys:     []string{`balance = "hash"`, fmt.Sprintf("hash_key = %q", s.key), "preconnect = 0"},
			backends: bes,
		})
	}
	mk := func(l, a string) string { return mcConfig(l, a, nil, nil, pools) }
	p1 := startMC(t, mk)
	p2 := startMC(t, mk)

	// req builds the request of key k (an int, so that ip can use it).
	req := func(p *proxyProc, src string, k int) (string, http.Header, string) {
		key := fmt.Sprintf("key-%03d", k)
		base := "ws://" + p.addr
		switch src {
		case "header":
			return base + "/h/room", http.Header{"X-Session-Id": {key}}, ""
		case "cookie":
			return base + "/c/room", http.Header{"Cookie": {"theme=dark; sid=" + key + "; lang=en"}}, ""
		case "query":
			return base + "/q/room?user=u" + fmt.Sprint(k%7) + "&room=" + key, nil, ""
		case "path":
			return base + "/p/" + key, nil, ""
		default:
			return base + "/ip/room", nil, fmt.Sprintf("127.0.1.%d", 10+k)
		}
	}
	mapKeys := func(t *testing.T, p *proxyProc, src string, keys []int) map[int]string {
		out := make(map[int]string, len(keys))
		var mu sync.Mutex
		var wg sync.WaitGroup
		sem := make(chan struct{}, 8)
		for _, k := range keys {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				u, h, local := req(p, src, k)
				m, resp, err := mcDial(u, h, local)
				got := ""
				if err != nil {
					st := 0
					if resp != nil {
						st = resp.StatusCode
					}
					got = fmt.Sprintf("error %d: %v", st, err)
				} else {
					got = m.backend
					m.close()
				}
				mu.Lock()
				out[k] = got
				mu.Unlock()
			}()
		}
		wg.Wait()
		return out
	}

	for _, s := range sources {
		t.Run(s.name, func(t *testing.T) {
			// The same key, 20 times in a row.
			var first string
			for i := range 20 {
				u, h, local := req(p1, s.name, 7)
				m, _, err := mcDial(u, h, local)
				if err != nil {
					t.Fatalf("session %d of key 7: %v", i, err)
				}
				m.close()
				if i == 0 {
					first = m.backend
				} else if m.backend != first {
					t.Errorf("key 7, session %d landed on %s, sessions before on %s", i, m.backend, first)
				}
			}
			keys := make([]int, 50)
			for i := range keys {
				keys[i] = i
			}
			m1 := mapKeys(t, p1, s.name, keys)
			count := map[string]int{}
			for _, b := range m1 {
				count[b]++
			}
			t.Logf("50 keys on proxy 1: %s", fmtCounts(count))
			for b := range count {
				if !ids[b] {
					t.Errorf("a key did not land: %s", b)
				}
			}
			if len(count) < 3 {
				t.Errorf("50 different keys used only %d of 4 backends: %s", len(count), fmtCounts(count))
			}
			for b, n := range count {
				if n > 30 {
					t.Errorf("backend %s took %d of 50 keys; want them spread", b, n)
				}
			}
			m2 := mapKeys(t, p2, s.name, keys)
			diff := 0
			for _, k := range keys {
				if m1[k] != m2[k] {
					diff++
					if diff <= 5 {
						t.Errorf("key %d: proxy 1 sent it to %s, proxy 2 to %s", k, m1[k], m2[k])
					}
				}
			}
			if diff > 0 {
				t.Errorf("%d of 50 keys map differently on two proxies with the same config", diff)
			}
		})
	}
}

// ---------------------------------------------------------------- 3. health checks

func TestMultiCloudHealth(t *testing.T) {
	for _, kind := range []string{"tcp", "http", "websocket"} {
		t.Run(kind, func(t *testing.T) {
			a := newMCBackend(t, "a", false)
			b := newMCBackend(t, "b", false)
			// s answers normally while the baseline is taken, then stalls.
			s := newMCBackend(t, "s", false)
			g := newMCBackend(t, "g", false)
			pools := []mcPool{
				{name: "k", prefix: "/k/", keys: []string{"preconnect = 0"}, health: tcpHealth(kind),
					backends: []mcBE{{addr: a.addr}, {addr: b.addr}}},
				{name: "s", prefix: "/s/", keys: []string{"preconnect = 0"}, health: tcpHealth(kind),
					backends: []mcBE{{addr: s.addr}, {addr: g.addr}}},
			}
			p := startMC(t, func(l, ad string) string { return mcConfig(l, ad, nil, nil, pools) })
			kURL := func(int) string { return "ws://" + p.addr + "/k/x" }
			sURL := func(int) string { return "ws://" + p.addr + "/s/x" }

			// A killed backend.
			m0 := p.metrics(t)
			killed := time.Now()
			a.kill()
			took := p.waitState(t, "k", a.addr, "unhealthy", 5*time.Second)
			t.Logf("%s checks: killed backend unhealthy in /pools after %v", kind, took)
			if took > 2500*time.Millisecond {
				t.Errorf("%s checks (interval 200ms, unhealthy_threshold 3): killed backend took %v to be unhealthy, want ~2s at most", kind, took)
			}
			_ = killed
			m := landings(20, 4, kURL, nil)
			if m["b"] != 20 {
				t.Errorf("after the kill: %s; want all 20 on b", fmtCounts(m))
			}
			m1 := p.metrics(t)
			if d := m1.sum("wsgate_backend_upgrades_total", "backend", a.addr) - m0.sum("wsgate_backend_upgrades_total", "backend", a.addr); d != 0 {
				t.Errorf("the unhealthy backend was still tried %v times", d)
			}
			if _, ok := m1.get("wsgate_backend_up", "pool", "k", "backend", a.addr); ok {
				if v, _ := m1.get("wsgate_backend_up", "pool", "k", "backend", a.addr); v != 0 {
					t.Errorf("wsgate_backend_up for the killed backend is %v, want 0", v)
				}
			} else {
				t.Errorf("no wsgate_backend_up{pool=k,backend=%s}", a.addr)
			}
			if m1.sum("wsgate_health_check_duration_seconds_count", "backend", a.addr) == 0 {
				t.Errorf("no wsgate_health_check_duration_seconds samples for %s", a.addr)
			}
			a.restart(t)
			p.waitState(t, "k", a.addr, "healthy", 5*time.Second)

			// A backend that accepts TCP and never answers.
			s.kill()
			s.stall = true
			s.restart(t)
			if kind == "tcp" {
				deadline := time.Now().Add(2 * time.Second)
				for time.Now().Before(deadline) {
					if bd, _ := p.pools(t).backend("s", s.addr); bd.State != "healthy" {
						t.Errorf("tcp checks: a backend that accepts TCP is %q, want healthy (tcp checks cannot see a stalled upgrade)", bd.State)
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
			} else {
				took := p.waitState(t, "s", s.addr, "unhealthy", 5*time.Second)
				t.Logf("%s checks: stalled backend unhealthy after %v", kind, took)
				if took > 2500*time.Millisecond {
					t.Errorf("%s checks: stalled backend took %v to be unhealthy, want ~2s at most", kind, took)
				}
				t0 := time.Now()
				m := landings(10, 2, sURL, nil)
				if m["g"] != 10 {
					t.Errorf("%s checks, stalled backend: %s; want all 10 on g", kind, fmtCounts(m))
				}
				if d := time.Since(t0); d > 3*time.Second {
					t.Errorf("10 sessions took %v: the stalled backend was tried", d)
				}
			}
			// Back to normal, so that wsgate holds no check connection
			// open at the baseline check.
			s.kill()
			s.stall = false
			s.restart(t)
			p.waitState(t, "s", s.addr, "healthy", 5*time.Second)
		})
	}
}

// ---------------------------------------------------------------- 4. passive ejection

func TestMultiCloudEjection(t *testing.T) {
	g := newMCBackend(t, "g", false)
	dead := closedAddr(t)
	pools := []mcPool{{
		name: "ej", keys: []string{`balance = "round_robin"`, "preconnect = 0"},
		outlier:  []string{"consecutive_failures = 3", `ejection_time = "30s"`, `max_ejection_time = "60s"`, "max_ejected_percent = 50"},
		backends: []mcBE{{addr: dead}, {addr: g.addr}},
	}}
	p := startMC(t, func(l, a string) string { return mcConfig(l, a, nil, nil, pools) })
	url := "ws://" + p.addr + "/e"
	m0 := p.metrics(t)
	ejectedAfter := -1
	for i := range 20 {
		m, _, err := mcDial(url, nil, "")
		if err != nil {
			t.Fatalf("session %d failed (wsgate should move on to the healthy backend): %v", i, err)
		}
		if m.backend != "g" {
			t.Errorf("session %d on %s", i, m.backend)
		}
		m.close()
		if bd, _ := p.pools(t).backend("ej", dead); bd.State == "ejected" {
			ejectedAfter = i + 1
			break
		}
	}
	if ejectedAfter < 0 {
		t.Fatalf("the dead backend was never ejected after 20 sessions")
	}
	m1 := p.metrics(t)
	fails := m1.sum("wsgate_backend_upgrades_total", "backend", dead, "result", "dial_error") -
		m0.sum("wsgate_backend_upgrades_total", "backend", dead, "result", "dial_error")
	t.Logf("ejected after %d sessions, %v failed dials", ejectedAfter, fails)
	if fails != 3 {
		t.Errorf("dead backend: %v failed dials before ejection, want 3 (consecutive_failures)", fails)
	}
	if d := m1.sum("wsgate_backend_ejections_total", "pool", "ej", "backend", dead) - m0.sum("wsgate_backend_ejections_total", "pool", "ej", "backend", dead); d != 1 {
		t.Errorf("wsgate_backend_ejections_total for the dead backend grew by %v, want 1", d)
	}
	if v, ok := m1.get("wsgate_backend_up", "pool", "ej", "backend", dead); !ok || v != 0 {
		t.Errorf("wsgate_backend_up for the ejected backend: %v (present %v), want 0", v, ok)
	}
	// While ejected: no attempt on it at all.
	m := landings(20, 1, func(int) string { return url }, nil)
	if m["g"] != 20 {
		t.Errorf("while ejected: %s; want all 20 on g", fmtCounts(m))
	}
	m2 := p.metrics(t)
	if d := m2.sum("wsgate_upstream_dials_total", "pool", "ej", "result", "error") - m1.sum("wsgate_upstream_dials_total", "pool", "ej", "result", "error"); d != 0 {
		t.Errorf("while ejected: %v failed dials; the ejected backend was still tried", d)
	}
	if d := m2.sum("wsgate_backend_upgrades_total", "backend", dead) - m1.sum("wsgate_backend_upgrades_total", "backend", dead); d != 0 {
		t.Errorf("while ejected: %v upgrade attempts on the ejected backend", d)
	}
	if bd, _ := p.pools(t).backend("ej", dead); bd.State != "ejected" {
		t.Errorf("/pools: %s, want still ejected (ejection_time 30s)", bd.State)
	}
}

// ---------------------------------------------------------------- 5. drain spread

func TestMultiCloudDrainSpread(t *testing.T) {
	a := newMCBackend(t, "a", false)
	b := newMCBackend(t, "b", false)
	pools := []mcPool{{
		name: "dr", keys: []string{`balance = "round_robin"`, "preconnect = 0", `drain_period = "2s"`},
		backends: []mcBE{{addr: a.addr}, {addr: b.addr}},
	}}
	p := startMC(t, func(l, ad string) string { return mcConfig(l, ad, nil, nil, pools) })
	url := "ws://" + p.addr + "/d"
	all := openSessions(t, 40, 8, url)
	var onA, onB []*mcConn
	for _, m := range all {
		if m.backend == "a" {
			onA = append(onA, m)
		} else {
			onB = append(onB, m)
		}
	}
	if len(onA) != 20 {
		t.Fatalf("round robin put %d of 40 sessions on a, want 20", len(onA))
	}
	m0 := p.metrics(t)
	type got struct {
		code int
		at   time.Time
	}
	res := make(chan got, len(onA))
	for _, m := range onA {
		go func() {
			code, at := m.awaitClose(10 * time.Second)
			res <- got{code, at}
		}()
	}
	start := time.Now()
	p.drainBackend(t, "dr", a.addr, true)
	if bd, _ := p.pools(t).backend("dr", a.addr); bd.State != "draining" {
		t.Errorf("/pools after drain: %q, want draining", bd.State)
	}
	// New sessions while it drains: none on a.
	m := landings(10, 2, func(int) string { return url }, nil)
	if m["b"] != 10 {
		t.Errorf("while draining: %s; want all 10 on b", fmtCounts(m))
	}
	ms := p.metrics(t)
	if v, _ := ms.get("wsgate_backend_draining", "pool", "dr", "backend", a.addr); v != 1 {
		t.Errorf("wsgate_backend_draining for a = %v while draining, want 1", v)
	}
	var times []time.Time
	for range onA {
		r := <-res
		if r.code != 1001 {
			t.Errorf("a drained session got close %d, want 1001", r.code)
		}
		times = append(times, r.at)
	}
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	first, last := times[0].Sub(start), times[len(times)-1].Sub(start)
	t.Logf("20 drained sessions closed between %v and %v after the drain", first, last)
	if span := last - first; span < 1200*time.Millisecond {
		t.Errorf("drain_period 2s: closes spread over only %v, want ≥ 1.2s", span)
	}
	if last > 3500*time.Millisecond {
		t.Errorf("drain_period 2s: last close after %v", last)
	}
	if errs := echoAll(onB, 8, "still here"); len(errs) > 0 {
		t.Errorf("%d sessions on b broke during a's drain; first: %v", len(errs), errs[0])
	}
	m1 := p.metrics(t)
	if d := m1.sum("wsgate_backend_drains_total", "pool", "dr", "backend", a.addr) - m0.sum("wsgate_backend_drains_total", "pool", "dr", "backend", a.addr); d != 1 {
		t.Errorf("wsgate_backend_drains_total for a grew by %v, want 1", d)
	}
	p.drainBackend(t, "dr", a.addr, false)
	p.waitState(t, "dr", a.addr, "healthy", 2*time.Second)
	m = landings(10, 1, func(int) string { return url }, nil)
	if m["a"] == 0 || errorsIn(m) > 0 {
		t.Errorf("after undrain: %s; want a to take new sessions again", fmtCounts(m))
	}
	ms = p.metrics(t)
	if v, _ := ms.get("wsgate_backend_draining", "pool", "dr", "backend", a.addr); v != 0 {
		t.Errorf("wsgate_backend_draining for a = %v after undrain, want 0", v)
	}
}

// ---------------------------------------------------------------- 8. backend killed

// TestMultiCloudBackendKilled: 1,000 clients that reconnect on Close 1012 or
// EOF after 0-200ms; one of three backends is killed. Measures the time
// until every client is back in session on the survivors.
func TestMultiCloudBackendKilled(t *testing.T) {
	const n = 1000
	a := newMCBackend(t, "a", false)
	b := newMCBackend(t, "b", false)
	c := newMCBackend(t, "c", false)
	pools := []mcPool{{
		name: "kill", keys: []string{`balance = "round_robin"`, "preconnect = 0"},
		backends: []mcBE{{addr: a.addr}, {addr: b.addr}, {addr: c.addr}},
	}}
	p := startMC(t, func(l, ad string) string { return mcConfig(l, ad, nil, nil, pools) })
	f := startFleet(t, n, "ws://"+p.addr+"/k")
	if _, ok := f.waitAll(60*time.Second, nil); !ok {
		in, by := f.counts()
		t.Fatalf("only %d of %d clients in session after 60s: %s", in, n, fmtCounts(by))
	}
	_, by := f.counts()
	t.Logf("before the kill: %s", fmtCounts(by))
	onA := by["a"]
	killed := time.Now()
	a.kill()
	at, ok := f.waitAll(30*time.Second, func(by map[string]int) bool { return by["a"] == 0 })
	if !ok {
		in, by := f.counts()
		t.Fatalf("30s after the kill only %d of %d clients are back in session: %s", in, n, fmtCounts(by))
	}
	recovery := at.Sub(killed)
	t.Logf("backend killed with %d of %d clients on it: every client back in session on the survivors after %v", onA, n, recovery)
	if recovery > 10*time.Second {
		t.Errorf("recovery took %v, want under 10s", recovery)
	}
	codes := map[int]int{}
	for _, e := range f.closeEvents() {
		if e.backend == "a" {
			codes[e.code]++
		} else {
			t.Errorf("a session on %s ended (code %d) though its backend lives", e.backend, e.code)
		}
	}
	t.Logf("close codes received by a's clients: %v", codes)
	if codes[1012] != onA {
		t.Errorf("%d of %d clients of the killed backend got Close 1012 (codes %v)", codes[1012], onA, codes)
	}
	_, by = f.counts()
	t.Logf("after: %s", fmtCounts(by))
	f.stop()
}

// ---------------------------------------------------------------- 10. admin API

func TestMultiCloudAdmin(t *testing.T) {
	a := newMCBackend(t, "a", false)
	b := newMCBackend(t, "b", false)
	pools := []mcPool{{
		name: "api", keys: []string{`balance = "p2c"`, `locality = "prefer"`, "preconnect = 1"},
		health: tcpHealth("tcp"),
		backends: []mcBE{
			{a.addr, append(loc("aws", "eu-west-1", "eu-west-1a"), "weight = 150", "max_sessions = 1000")},
			{b.addr, loc("aws", "us-east-1", "us-east-1a")},
		},
	}}
	p := startMC(t, func(l, ad string) string { return mcConfig(l, ad, mcNodeAWS, nil, pools) })
	m, _, err := mcDial("ws://"+p.addr+"/x", nil, "")
	if err != nil {
		t.Fatal(err)
	}
	defer m.close()
	if m.backend != "a" {
		t.Errorf("session landed on %s, want a (the proxy's zone)", m.backend)
	}

	code, body, err := p.adminGet("/pools")
	if err != nil || code != 200 {
		t.Fatalf("GET /pools: %d %v", code, err)
	}
	var raw map[string]any
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatalf("GET /pools: not JSON: %v\n%s", err, body)
	}
	pl, ok := raw["pools"].([]any)
	if !ok || len(pl) != 1 {
		t.Fatalf("GET /pools: want {\"pools\": [one pool]}, got %s", body)
	}
	pm := pl[0].(map[string]any)
	for k, want := range map[string]string{"name": "api", "balance": "p2c", "locality": "prefer"} {
		if pm[k] != want {
			t.Errorf("pools[0].%s = %v, want %q", k, pm[k], want)
		}
	}
	bl, _ := pm["backends"].([]any)
	if len(bl) != 2 {
		t.Fatalf("pools[0].backends: %v", pm["backends"])
	}
	for _, x := range bl {
		bm := x.(map[string]any)
		if _, ok := bm["address"].(string); !ok {
			t.Errorf("backend without a string address: %v", bm)
		}
		if s, _ := bm["state"].(string); s != "healthy" {
			t.Errorf("backend %v state %v, want healthy", bm["address"], bm["state"])
		}
		for _, k := range []string{"active_sessions", "weight", "locality_tier", "warm_connections"} {
			if _, ok := bm[k].(float64); !ok {
				t.Errorf("backend %v: %s = %v, want a number", bm["address"], k, bm[k])
			}
		}
	}
	d := p.pools(t)
	ba, _ := d.backend("api", a.addr)
	bb, _ := d.backend("api", b.addr)
	if ba.Sessions != 1 || ba.Weight != 150 || ba.Tier != 0 {
		t.Errorf("/pools a: %+v; want active_sessions 1, weight 150, locality_tier 0", ba)
	}
	if bb.Sessions != 0 || bb.Weight != 100 || bb.Tier != 2 {
		t.Errorf("/pools b: %+v; want active_sessions 0, weight 100, locality_tier 2 (same cloud)", bb)
	}
	ms := p.metrics(t)
	for _, x := range []struct {
		name string
		be   string
		want float64
	}{
		{"wsgate_backend_sessions_active", a.addr, 1},
		{"wsgate_backend_sessions_active", b.addr, 0},
		{"wsgate_backend_up", a.addr, 1},
		{"wsgate_backend_draining", a.addr, 0},
	} {
		if v, ok := ms.get(x.name, "pool", "api", "backend", x.be); !ok || v != x.want {
			t.Errorf("%s{pool=api,backend=%s} = %v (present %v), want %v", x.name, x.be, v, ok, x.want)
		}
	}
	if v, _ := ms.get("wsgate_backend_upgrades_total", "pool", "api", "backend", a.addr, "result", "upgraded"); v != 1 {
		t.Errorf("wsgate_backend_upgrades_total{result=upgraded} for a = %v, want 1", v)
	}

	for _, path := range []string{
		"/pools/nope/backends/" + a.addr + "/drain",
		"/pools/nope/backends/" + a.addr + "/undrain",
		"/pools/api/backends/127.0.0.1:1/drain",
		"/pools/api/backends/127.0.0.1:1/undrain",
	} {
		code, body, err := p.adminPost(path)
		if err != nil || code != 404 {
			t.Errorf("POST %s: status %d (%v) %q, want 404", path, code, err, body)
		}
	}

	// Not on the WebSocket listener: a POST there is not an upgrade.
	for _, r := range []string{
		"POST /pools/api/backends/" + a.addr + "/drain HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
		"POST /reload HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
		"GET /pools HTTP/1.1\r\nHost: x\r\n\r\n",
	} {
		c, err := net.DialTimeout("tcp", p.addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, r)
		buf := make([]byte, 512)
		n, _ := io.ReadAtLeast(c, buf, 12)
		c.Close()
		line := firstLine(buf[:n])
		if !strings.HasPrefix(line, "HTTP/1.1 400") {
			t.Errorf("%q on the WebSocket listener: %q, want 400", strings.SplitN(r, "\r\n", 2)[0], line)
		}
	}
	if bd, _ := p.pools(t).backend("api", a.addr); bd.State != "healthy" {
		t.Errorf("after the POSTs on the WebSocket listener a is %q, want healthy", bd.State)
	}
	if err := m.echo("still there"); err != nil {
		t.Errorf("session: %v", err)
	}
}
