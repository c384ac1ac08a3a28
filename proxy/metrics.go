package proxy

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/wsgate/wsgate/loop"
)

// Reasons an upgrade fails, the label values of wsgate_sessions_failed_total.
const (
	failBadRequest      = "bad_request"       // 400, 405, 505: not a valid upgrade
	failVersion         = "version"           // 426: not WebSocket version 13
	failHeaderTooLarge  = "header_too_large"  // 431
	failTimeout         = "handshake_timeout" // 408: the request did not arrive in time
	failNoRoute         = "no_route"          // 404
	failNoBackend       = "no_backend"        // 503: the pool has no backend
	failBackendDown     = "backend_unavailable"
	failBadResponse     = "bad_backend_response"
	failBackendRejected = "backend_rejected" // the backend answered with a status other than 101
	failClientGone      = "client_gone"
)

var failReasons = []string{failBadRequest, failVersion, failHeaderTooLarge, failTimeout, failNoRoute,
	failNoBackend, failBackendDown, failBadResponse, failBackendRejected, failClientGone}

// Results of an upgrade sent to a backend, the label values of
// wsgate_backend_upgrades_total.
const (
	upgradeOK = iota
	upgradeRefused
	upgradeError
	upgradeDialError
	numUpgradeResults
)

var upgradeResults = [numUpgradeResults]string{"upgraded", "refused", "error", "dial_error"}

// Results of a dial, the result label values of wsgate_upstream_dials_total.
const (
	dialOK = iota
	dialError
	dialTimeout
	numDialResults
)

var dialResults = [numDialResults]string{"ok", "error", "timeout"}

// metrics is what the admin listener exposes. Counters the relay updates
// per frame live in loop.Stats and are read here at scrape time.
type metrics struct {
	reg *prometheus.Registry

	accepted        prometheus.Counter
	upgraded        prometheus.Counter
	failed          *prometheus.CounterVec
	closed          *prometheus.CounterVec
	handshake       prometheus.Histogram
	dials           *prometheus.CounterVec
	poolHits        *prometheus.CounterVec
	poolMisses      *prometheus.CounterVec
	drains          *prometheus.CounterVec
	ejections       *prometheus.CounterVec
	rebalances      *prometheus.CounterVec
	checks          *prometheus.HistogramVec
	backendUpgrades *prometheus.CounterVec

	// Children resolved once, so that a handshake does not hash label
	// values and look them up: by failure reason and by loop.Cause.
	failedByReason map[string]prometheus.Counter
	closedByCause  []prometheus.Counter
}

// failedBy is wsgate_sessions_failed_total{reason}.
func (m *metrics) failedBy(reason string) prometheus.Counter {
	if c, ok := m.failedByReason[reason]; ok {
		return c
	}
	return m.failed.WithLabelValues(reason)
}

// closedBy is wsgate_sessions_closed_total{cause}.
func (m *metrics) closedBy(c loop.Cause) prometheus.Counter {
	if int(c) >= 0 && int(c) < len(m.closedByCause) && m.closedByCause[c] != nil {
		return m.closedByCause[c]
	}
	return m.closed.WithLabelValues(c.String())
}

// poolMetrics are a pool's series, resolved when the pool is built.
type poolMetrics struct {
	hits, misses prometheus.Counter
	dials        [numDialResults]prometheus.Counter
}

func (m *metrics) forPool(name string) poolMetrics {
	pm := poolMetrics{hits: m.poolHits.WithLabelValues(name), misses: m.poolMisses.WithLabelValues(name)}
	for i, r := range dialResults {
		pm.dials[i] = m.dials.WithLabelValues(name, r)
	}
	return pm
}

func newMetrics(st *loop.Stats) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	f := func(name, help string, v func() float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, v)
	}
	m.accepted = prometheus.NewCounter(prometheus.CounterOpts{Name: "wsgate_sessions_accepted_total", Help: "Client connections whose upgrade request wsgate began to read."})
	m.upgraded = prometheus.NewCounter(prometheus.CounterOpts{Name: "wsgate_sessions_upgraded_total", Help: "Sessions switched to frame relay after a 101."})
	m.failed = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wsgate_sessions_failed_total", Help: "Upgrades that did not become sessions, by reason."}, []string{"reason"})
	m.closed = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wsgate_sessions_closed_total", Help: "Sessions ended, by cause."}, []string{"cause"})
	m.handshake = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "wsgate_handshake_duration_seconds",
		Help:    "From the first byte of an upgrade request to the 101 relayed to the client.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 12),
	})
	m.dials = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wsgate_upstream_dials_total", Help: "TCP dials to backends, by pool and result."}, []string{"pool", "result"})
	m.poolHits = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wsgate_pool_hits_total", Help: "Sessions that took a warm upstream connection."}, []string{"pool"})
	m.poolMisses = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wsgate_pool_misses_total", Help: "Sessions that had to dial because no warm connection was ready."}, []string{"pool"})
	m.drains = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wsgate_backend_drains_total", Help: "Drains of a backend (admin API, config, or removal by reload)."}, []string{"pool", "backend"})
	m.backendUpgrades = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wsgate_backend_upgrades_total", Help: "Upgrade attempts sent to a backend, by result."}, []string{"pool", "backend", "result"})
	m.ejections = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wsgate_backend_ejections_total", Help: "Passive health ejections of a backend."}, []string{"pool", "backend"})
	m.checks = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "wsgate_health_check_duration_seconds",
		Help:    "Active health check latency, by result.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 3, 9),
	}, []string{"pool", "backend", "result"})
	m.rebalances = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wsgate_backend_rebalance_closes_total", Help: "Sessions closed with 1012 to move them off an overloaded backend."}, []string{"pool", "backend"})
	m.reg.MustRegister(m.drains, m.backendUpgrades, m.ejections, m.checks, m.rebalances)
	m.failedByReason = make(map[string]prometheus.Counter, len(failReasons))
	for _, r := range failReasons {
		m.failedByReason[r] = m.failed.WithLabelValues(r)
	}
	for _, c := range loop.Causes() {
		if int(c) >= len(m.closedByCause) {
			m.closedByCause = append(m.closedByCause, make([]prometheus.Counter, int(c)+1-len(m.closedByCause))...)
		}
		m.closedByCause[c] = m.closed.WithLabelValues(c.String())
	}
	m.reg.MustRegister(m.accepted, m.upgraded, m.failed, m.closed, m.handshake, m.dials, m.poolHits, m.poolMisses,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "wsgate_sessions_active", Help: "Sessions in frame relay."},
			func() float64 { return float64(st.SessionsActive.Load()) }),
		f("wsgate_slow_consumer_closes_total", "Sessions closed because one side did not read and its backlog passed max_buffered_bytes.",
			func() float64 { return float64(st.SlowConsumerCloses.Load()) }),
		f("wsgate_buffered_total_closes_total", "Sessions closed because the sum of all backlogs passed max_buffered_total.",
			func() float64 { return float64(st.BufferedTotalCloses.Load()) }),
		f("wsgate_pings_sent_total", "Keepalive pings sent to silent clients.",
			func() float64 { return float64(st.PingsSent.Load()) }),
	)
	for _, d := range []loop.Direction{loop.ClientToBackend, loop.BackendToClient} {
		d := d
		m.reg.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "wsgate_frames_total", Help: "Frames relayed, by direction.",
				ConstLabels: prometheus.Labels{"direction": d.String()}}, func() float64 { return float64(st.Frames(d)) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "wsgate_bytes_total", Help: "Bytes relayed (headers and payloads), by direction.",
				ConstLabels: prometheus.Labels{"direction": d.String()}}, func() float64 { return float64(st.Bytes(d)) }),
		)
	}
	return m
}

// backendCollector reports per-backend state at scrape time from the
// current routing, so backends added or removed by a reload appear and
// disappear without bookkeeping.
type backendCollector struct {
	s                          *Server
	active, up, draining, warm *prometheus.Desc
}

func newBackendCollector(s *Server) *backendCollector {
	l := []string{"pool", "backend"}
	return &backendCollector{
		s:        s,
		active:   prometheus.NewDesc("wsgate_backend_sessions_active", "Sessions in relay on a backend.", l, nil),
		up:       prometheus.NewDesc("wsgate_backend_up", "1 when a backend may take new sessions (healthy, not ejected, not draining).", l, nil),
		draining: prometheus.NewDesc("wsgate_backend_draining", "1 while a backend is draining.", l, nil),
		warm:     prometheus.NewDesc("wsgate_backend_warm_connections", "Pre-dialed connections ready for new sessions.", l, nil),
	}
}

func (c *backendCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.active
	ch <- c.up
	ch <- c.draining
	ch <- c.warm
}

func (c *backendCollector) Collect(ch chan<- prometheus.Metric) {
	for _, p := range c.s.routing.Load().pools {
		for _, b := range p.backends {
			ch <- prometheus.MustNewConstMetric(c.active, prometheus.GaugeValue, float64(b.active.Load()), p.name, b.addr)
			ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, boolf(b.available()), p.name, b.addr)
			ch <- prometheus.MustNewConstMetric(c.draining, prometheus.GaugeValue, boolf(b.draining.Load()), p.name, b.addr)
			ch <- prometheus.MustNewConstMetric(c.warm, prometheus.GaugeValue, float64(b.warmCount()), p.name, b.addr)
		}
	}
}

func boolf(v bool) float64 {
	if v {
		return 1
	}
	return 0
}
