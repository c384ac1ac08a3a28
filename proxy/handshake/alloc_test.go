package handshake

import (
	"testing"

	"github.com/valyala/bytebufferpool"
)

// The handshake path runs once per connection, at connection rate; it should
// not feed the garbage collector. A warmed-up Request (its field slice grown
// once) parses without allocating, and writers allocate only when dst is too
// small.
func TestAllocs(t *testing.T) {
	in := []byte(chromeRequest)
	var r Request
	if err := r.Parse(in); err != nil {
		t.Fatal(err)
	}
	dst := make([]byte, 0, UpstreamRequestSize(&r, testFI))
	if a := testing.AllocsPerRun(200, func() {
		if err := r.Parse(in); err != nil {
			t.Fatal(err)
		}
		dst = AppendUpstreamRequest(dst[:0], &r, testFI)
	}); a != 0 {
		t.Errorf("Parse + AppendUpstreamRequest: %v allocs, want 0", a)
	}

	resp := []byte(resp101("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=15", "Sec-WebSocket-Protocol: chat"))
	var res Response
	if a := testing.AllocsPerRun(200, func() {
		if err := ParseResponse(resp, r.Key, &res); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("ParseResponse: %v allocs, want 0", a)
	}

	body := []byte("5;x=y\r\nhello\r\n0\r\nX-T: 1\r\n\r\n")
	chunked := Response{Status: 401, ContentLength: -1, Chunked: true}
	var fr BodyFramer
	if a := testing.AllocsPerRun(200, func() {
		fr.Init(&chunked)
		if _, done, err := fr.Feed(body); !done || err != nil {
			t.Fatal(done, err)
		}
	}); a != 0 {
		t.Errorf("BodyFramer: %v allocs, want 0", a)
	}

	errBuf := make([]byte, 0, 512)
	if a := testing.AllocsPerRun(200, func() {
		errBuf = AppendErrorResponse(errBuf[:0], 426, "unsupported Sec-WebSocket-Version")
	}); a != 0 {
		t.Errorf("AppendErrorResponse: %v allocs, want 0", a)
	}

	// The writers work on a pooled buffer's B as the proxy uses them.
	bb := bytebufferpool.Get()
	defer bytebufferpool.Put(bb)
	bb.B = AppendUpstreamRequest(bb.B[:0], &r, testFI)
	if string(bb.B) != string(dst) {
		t.Errorf("pooled buffer output differs")
	}
}

func BenchmarkParseRequest(b *testing.B) {
	in := []byte(chromeRequest)
	var r Request
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if err := r.Parse(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendUpstreamRequest(b *testing.B) {
	var r Request
	if err := r.Parse([]byte(chromeRequest)); err != nil {
		b.Fatal(err)
	}
	dst := make([]byte, 0, UpstreamRequestSize(&r, testFI))
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendUpstreamRequest(dst[:0], &r, testFI)
	}
}

func BenchmarkParseResponse(b *testing.B) {
	in := []byte(resp101("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=15"))
	key := []byte(testKey)
	var r Response
	b.ReportAllocs()
	for b.Loop() {
		if err := ParseResponse(in, key, &r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHeadEnd(b *testing.B) {
	in := []byte(chromeRequest)
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if HeadEnd(in) != len(in) {
			b.Fatal()
		}
	}
}
