// Package proxy is wsgate's WebSocket ingress: it serves the HTTP upgrade
// (routing by host and path, backend selection, warm upstream connections,
// retries), hands upgraded sessions to the reactor in package loop, and runs
// the admin listener with health, readiness and Prometheus metrics.
//
// One concern a file: routes.go maps a request to a pool, upstreams.go
// keeps each backend's warm connections, selectionpolicies.go picks a
// backend, upgrade.go passes the handshake through, metrics.go and admin.go
// are what operators read, server.go ties them together. Configuration
// parsing lives in proxy/config and HTTP head parsing in proxy/handshake.
package proxy
