// Command wsgate is the WebSocket ingress proxy.
//
//	wsgate run --config FILE     serve until SIGTERM or SIGINT, then drain
//	wsgate check --config FILE   validate FILE; print every error as FILE:LINE: key: what is wrong
//	wsgate version               print the version
//
// This package owns only the command line, logging set-up and signals; the
// proxy itself is package proxy.
package main
