package handshake

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strconv"
	"testing"
)

func TestAppendErrorResponse(t *testing.T) {
	tests := []struct {
		status     int
		reason     string
		wantStatus int
		wantBody   string
		wantHeader map[string]string
	}{
		{404, "no route for host", 404, "wsgate: no route for host\n", nil},
		{400, "method must be GET", 400, "wsgate: method must be GET\n", nil},
		{426, "unsupported Sec-WebSocket-Version", 426, "wsgate: unsupported Sec-WebSocket-Version\n",
			map[string]string{"Sec-WebSocket-Version": "13", "Upgrade": "websocket"}},
		{431, "request head too large", 431, "wsgate: request head too large\n", nil},
		{405, "method", 405, "wsgate: method\n", map[string]string{"Allow": "GET"}},
		{502, "Sec-WebSocket-Accept does not match key", 502, "wsgate: Sec-WebSocket-Accept does not match key\n", nil},
		{503, "no healthy backend", 503, "wsgate: no healthy backend\n", nil},
		{505, "HTTP version not 1.1", 505, "wsgate: HTTP version not 1.1\n", nil},
		{499, "", 499, "wsgate: \n", nil},
		{200, "oops", 500, "wsgate: oops\n", nil},
		{101, "oops", 500, "wsgate: oops\n", nil},
		{0, "oops", 500, "wsgate: oops\n", nil},
		{400, "evil\r\nX-Injected: 1\r\n\r\n\xff", 400, "wsgate: evil??X-Injected: 1?????\n", nil},
	}
	for _, tt := range tests {
		out := AppendErrorResponse([]byte("keep"), tt.status, tt.reason)
		if !bytes.HasPrefix(out, []byte("keep")) {
			t.Fatalf("did not append")
		}
		out = out[4:]
		res, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(out)), nil)
		if err != nil {
			t.Fatalf("%d: ReadResponse(%q): %v", tt.status, out, err)
		}
		body, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != tt.wantStatus || string(body) != tt.wantBody {
			t.Errorf("%d %q: got %d %q", tt.status, tt.reason, res.StatusCode, body)
		}
		if want := tt.wantStatus; res.Status != strconv.Itoa(want)+" "+http.StatusText(want) && http.StatusText(want) != "" {
			t.Errorf("status line %q", res.Status)
		}
		if !res.Close || res.Header.Get("Content-Type") != "text/plain; charset=utf-8" || res.ContentLength != int64(len(body)) {
			t.Errorf("%d: close=%v type=%q length=%d", tt.status, res.Close, res.Header.Get("Content-Type"), res.ContentLength)
		}
		if res.Header.Get("X-Injected") != "" {
			t.Errorf("header injected")
		}
		for k, v := range tt.wantHeader {
			if got := res.Header.Get(k); got != v {
				t.Errorf("%d: %s = %q, want %q", tt.status, k, got, v)
			}
		}
		if tt.wantStatus != 426 && res.Header.Get("Sec-WebSocket-Version") != "" {
			t.Errorf("%d carries Sec-WebSocket-Version", tt.status)
		}
		// wsgate's own answers pass its own response parser, so a chain of
		// two wsgates relays them.
		var r Response
		if err := ParseResponse(out, nil, &r); err == nil {
			t.Errorf("%d: ParseResponse of the whole answer (head and body) succeeded", tt.status)
		}
		n := HeadEnd(out)
		if err := ParseResponse(out[:n], nil, &r); err != nil || r.ContentLength != int64(len(out)-n) {
			t.Errorf("%d: ParseResponse: %v, length %d", tt.status, err, r.ContentLength)
		}
	}
}

func TestRejectError(t *testing.T) {
	r := &Reject{Status: 426, Reason: "not a WebSocket upgrade"}
	if r.Error() != "handshake: 426 not a WebSocket upgrade" {
		t.Errorf("Error() = %q", r.Error())
	}
	if got, want := string(r.AppendResponse(nil)), string(AppendErrorResponse(nil, 426, r.Reason)); got != want {
		t.Errorf("AppendResponse = %q", got)
	}
}
