package handshake

import (
	"net/http"
	"strconv"
)

// Reject is a refused handshake: the HTTP status wsgate answers with and a
// short reason for the log and the answer's body. Reasons are fixed strings
// and never quote the peer's bytes, so they are safe to log and to send back.
type Reject struct {
	Status int
	Reason string
}

func (r *Reject) Error() string {
	return "handshake: " + strconv.Itoa(r.Status) + " " + r.Reason
}

// AppendResponse appends the answer to send for r (see AppendErrorResponse).
func (r *Reject) AppendResponse(dst []byte) []byte {
	return AppendErrorResponse(dst, r.Status, r.Reason)
}

func reject(status int, reason string) error {
	return &Reject{Status: status, Reason: reason}
}

func badRequest(reason string) error { return reject(http.StatusBadRequest, reason) }

func badGateway(reason string) error { return reject(http.StatusBadGateway, reason) }

const errorBodyPrefix = "wsgate: "

// AppendErrorResponse appends a complete answer of wsgate's own: status line,
// headers, and a one-line text/plain body "wsgate: <reason>\n". It always
// closes the connection, since after a refused handshake nothing else is
// expected on it and reading on would only invite a second request.
//
// status should be a 4xx or 5xx code; anything else is sent as 500 so that
// a caller's mistake cannot produce a 1xx, 204 or 304 that the client reads
// without its body. A 426 carries "Upgrade: websocket" (required with 426 by
// RFC 9110 15.5.22) and "Sec-WebSocket-Version: 13" (RFC 6455 4.4); a 405
// carries "Allow: GET". Bytes of reason outside printable ASCII are sent as
// '?' so the body stays one line.
func AppendErrorResponse(dst []byte, status int, reason string) []byte {
	if status < 400 || status > 599 {
		status = http.StatusInternalServerError
	}
	text := http.StatusText(status)
	if text == "" {
		text = "Error"
	}
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(status), 10)
	dst = append(dst, ' ')
	dst = append(dst, text...)
	dst = append(dst, "\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nContent-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(errorBodyPrefix)+len(reason)+1), 10)
	switch status {
	case http.StatusUpgradeRequired:
		dst = append(dst, "\r\nConnection: Upgrade, close\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13"...)
	case http.StatusMethodNotAllowed:
		dst = append(dst, "\r\nConnection: close\r\nAllow: GET"...)
	default:
		dst = append(dst, "\r\nConnection: close"...)
	}
	dst = append(dst, "\r\n\r\n"+errorBodyPrefix...)
	for i := 0; i < len(reason); i++ {
		c := reason[i]
		if c < 0x20 || c > 0x7e {
			c = '?'
		}
		dst = append(dst, c)
	}
	return append(dst, '\n')
}
