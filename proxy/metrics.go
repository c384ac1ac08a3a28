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

// metrics is what the admin listener exposes. Counters the relay updates
// per frame live in loop.Stats and are read here at scrape time.
type metrics struct {
	reg *prometheus.Registry

	accepted   prometheus.Counter
	upgraded   prometheus.Counter
	failed     *prometheus.CounterVec
	closed     *prometheus.CounterVec
	handshake  prometheus.Histogram
	dials      *prometheus.CounterVec
	poolHits   *prometheus.CounterVec
	poolMisses *prometheus.CounterVec
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
	for _, r := range failReasons {
		m.failed.WithLabelValues(r)
	}
	for _, c := range loop.Causes() {
		m.closed.WithLabelValues(c.String())
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
				ConstLabels: prometheus.Labels{"direction": d.String()}}, func() float64 { return float64(st.Frames[d].Load()) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "wsgate_bytes_total", Help: "Bytes relayed (headers and payloads), by direction.",
				ConstLabels: prometheus.Labels{"direction": d.String()}}, func() float64 { return float64(st.Bytes[d].Load()) }),
		)
	}
	return m
}
