// Package e2e holds wsgate's end-to-end tests. They build the real wsgate
// binary once (TestMain), run it against in-process WebSocket backends
// written with gorilla/websocket, coder/websocket and raw TCP sockets, and
// drive it with independent clients over loopback only.
//
// Environment:
//
//	WSGATE_E2E_RACE=1    build the wsgate binary with -race
//	WSGATE_E2E_DIRECT=1  do not build or start wsgate; run the subset of tests
//	                     that make sense straight against the test backends
//	                     (checks the backends and clients themselves)
//
// After every test that talks to a running wsgate, the harness polls the
// admin /metrics until go_goroutines and process_open_fds are back to the
// values measured before the test (see proxyProc.expectBaseline).
package e2e
