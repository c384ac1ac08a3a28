package e2e

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	cws "github.com/coder/websocket"
	"github.com/gorilla/websocket"
)

var gorillaDialer = websocket.Dialer{
	HandshakeTimeout: 10 * time.Second,
	ReadBufferSize:   32 << 10,
	WriteBufferSize:  32 << 10,
}

// dialGorilla dials url with gorilla/websocket and closes the connection at
// the end of the test. Reads and writes get a 60s deadline.
func dialGorilla(t testing.TB, url string, d *websocket.Dialer, h http.Header) (*websocket.Conn, *http.Response) {
	t.Helper()
	if d == nil {
		d = &gorillaDialer
	}
	c, resp, err := d.Dial(url, h)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("gorilla dial %s: %v (status %d)", url, err, status)
	}
	t.Cleanup(func() { c.Close() })
	c.SetReadDeadline(time.Now().Add(60 * time.Second))
	c.SetWriteDeadline(time.Now().Add(60 * time.Second))
	return c, resp
}

// closeGorilla performs a normal closing handshake (1000) and requires the
// echo of the close code.
func closeGorilla(t testing.TB, c *websocket.Conn) {
	t.Helper()
	if err := c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(5*time.Second)); err != nil {
		t.Fatalf("write close: %v", err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != 1000 {
			t.Fatalf("after sending Close 1000: want Close 1000 back, got %v", err)
		}
		break
	}
	c.Close()
}

var coderHTTPClient = &http.Client{Transport: &http.Transport{Proxy: nil}}

func dialCoder(t testing.TB, url string, opts *cws.DialOptions) (*cws.Conn, *http.Response) {
	t.Helper()
	if opts == nil {
		opts = &cws.DialOptions{}
	}
	opts.HTTPClient = coderHTTPClient
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := cws.Dial(ctx, url, opts)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("coder dial %s: %v (status %d)", url, err, status)
	}
	c.SetReadLimit(64 << 20)
	t.Cleanup(func() { c.CloseNow() })
	return c, resp
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// payload makes n bytes: printable ASCII for text, pseudo-random otherwise.
func payload(n int, text bool, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, uint64(n)))
	if text {
		const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:-_"
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		return b
	}
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

func sameBytes(t testing.TB, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		t.Fatalf("%s: got %d bytes, want %d; first difference at byte %d", what, len(got), len(want), i)
	}
}
