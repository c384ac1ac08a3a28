// Package wsframe parses and encodes WebSocket frame headers (RFC 6455,
// section 5.2) in place on byte slices.
//
// github.com/gobwas/ws only reads headers from an io.Reader; the benchmark
// tools keep their own read buffers and parse frames straight out of them,
// so they need the byte-slice form. Validation is left to ws.CheckHeader.
package wsframe
