package handshake

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

// feedPieces feeds data to a fresh framer for resp in the given pieces,
// stopping at done or error, and returns the body length found.
func feedPieces(resp *Response, pieces ...[]byte) (n int, done bool, err error) {
	var b BodyFramer
	b.Init(resp)
	for _, p := range pieces {
		k, d, e := b.Feed(p)
		n += k
		if e != nil {
			return n, false, e
		}
		if d {
			return n, true, nil
		}
		if k != len(p) {
			return n, false, errors.New("framer stopped early without done")
		}
	}
	return n, false, nil
}

var chunkedResp = &Response{Status: 401, ContentLength: -1, Chunked: true}

// chunkedBodies are valid chunked bodies; each is followed in the tests by
// bytes that are not part of it.
var chunkedBodies = []string{
	"0\r\n\r\n",
	"000\r\n\r\n",
	"5\r\nhello\r\n0\r\n\r\n",
	"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
	"A\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n",
	"5;name=value\r\nhello\r\n0;last\r\n\r\n",
	"5;a=\"quoted; \\\"x\\\"\";b\r\nhello\r\n0\r\n\r\n",
	"5\r\nhello\r\n0\r\nExpires: never\r\nX-Checksum:abc \t\r\n\r\n",
	"1\r\n\r\r\n1\r\n\n\r\n0\r\n\r\n", // CR and LF as chunk data are data
	"00000000000000F\r\n" + strings.Repeat("x", 15) + "\r\n0\r\n\r\n",
}

func TestBodyFramerChunkedSplits(t *testing.T) {
	for _, body := range chunkedBodies {
		stream := []byte(body + "HTTP/1.1 200 OK\r\n")
		want := len(body)
		// Whole.
		if n, done, err := feedPieces(chunkedResp, stream); n != want || !done || err != nil {
			t.Fatalf("%q whole: n=%d done=%v err=%v, want %d", body, n, done, err, want)
		}
		// Split in two at every byte boundary.
		for i := 0; i <= len(stream); i++ {
			if n, done, err := feedPieces(chunkedResp, stream[:i], stream[i:]); n != want || !done || err != nil {
				t.Fatalf("%q split at %d: n=%d done=%v err=%v, want %d", body, i, n, done, err, want)
			}
		}
		// One byte at a time.
		pieces := make([][]byte, len(stream))
		for i := range stream {
			pieces[i] = stream[i : i+1]
		}
		if n, done, err := feedPieces(chunkedResp, pieces...); n != want || !done || err != nil {
			t.Fatalf("%q bytewise: n=%d done=%v err=%v, want %d", body, n, done, err, want)
		}
		// Truncated: never done, never an error.
		for i := 0; i < want; i++ {
			if n, done, err := feedPieces(chunkedResp, stream[:i]); n != i || done || err != nil {
				t.Fatalf("%q truncated at %d: n=%d done=%v err=%v", body, i, n, done, err)
			}
		}
	}
}

// The bodies the framer accepts must be what Go's client reads as complete
// bodies, ending at the same byte.
func TestBodyFramerChunkedStdlib(t *testing.T) {
	for _, body := range chunkedBodies {
		rest := "NEXT"
		raw := "HTTP/1.1 401 Unauthorized\r\nTransfer-Encoding: chunked\r\n\r\n" + body + rest
		br := bufio.NewReader(strings.NewReader(raw))
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%q: ReadResponse: %v", body, err)
		}
		if _, err := io.ReadAll(res.Body); err != nil {
			t.Fatalf("%q: reading body: %v", body, err)
		}
		left, _ := io.ReadAll(br)
		if string(left) != rest {
			t.Errorf("%q: Go left %q after the body, want %q", body, left, rest)
		}
	}
}

func TestBodyFramerChunkedErrors(t *testing.T) {
	tests := []struct {
		in  string
		err FramingError
	}{
		{"\r\n", errChunkSize},
		{"x\r\n", errChunkSize},
		{";ext\r\n", errChunkSize},
		{" 5\r\n", errChunkSize},
		{"5 \r\n", errChunkSize},
		{"5 ;a\r\n", errChunkSize},
		{"5\t;a\r\n", errChunkSize},
		{"-5\r\n", errChunkSize},
		{"0x5\r\n", errChunkSize},
		{"5\n", errChunkSize},
		{"5\r\r\n", errChunkCRLF},
		{"5\rx", errChunkCRLF},
		{"5;a\nhello", errChunkExt},
		{"5;a\x00\r\n", errChunkExt},
		{"5;a\x7f\r\n", errChunkExt},
		{"5\r\nhelloX\r\n", errChunkCRLF},
		{"5\r\nhello\n0\r\n\r\n", errChunkCRLF},
		{"5\r\nhello\r\r", errChunkCRLF},
		{"5\r\nhello\r\n0\r\n\n", errTrailerField},
		{"5\r\nhello\r\n0\n\r\n", errChunkSize},
		{"0\r\n\rx", errChunkCRLF},
		{"0\r\n x: y\r\n\r\n", errTrailerField},
		{"0\r\nx : y\r\n\r\n", errTrailerField},
		{"0\r\n: y\r\n\r\n", errTrailerField},
		{"0\r\nx\r\n\r\n", errTrailerField},
		{"0\r\nx: \x01\r\n\r\n", errTrailerField},
		{"0\r\nx: y\n\r\n", errTrailerField},
		{"0\r\nx: y\r\r\n", errChunkCRLF},
		{"1000000000000000\r\n", errChunkTooBig},
		{"0000000000000000\r\n", errChunkTooBig},
		{"1;" + strings.Repeat("a", maxChunkLine-3) + "\r\n", errChunkLine},
		{"0\r\nx:" + strings.Repeat("a", maxChunkLine-5) + "\r\n\r\n", errTrailerLong},
		{"0\r\n" + strings.Repeat("x:a\r\n", maxChunkLine/5) + "\r\n", errTrailerLong},
	}
	for _, tt := range tests {
		stream := []byte(tt.in)
		for i := 0; i <= len(stream); i++ {
			_, done, err := feedPieces(chunkedResp, stream[:i], stream[i:])
			if err != tt.err || done {
				t.Fatalf("%q split at %d: done=%v err=%v, want %v", tt.in, i, done, err, tt.err)
			}
		}
	}
	// Errors are sticky.
	var b BodyFramer
	b.Init(chunkedResp)
	if _, _, err := b.Feed([]byte("x")); err == nil {
		t.Fatal("no error")
	}
	if n, done, err := b.Feed([]byte("0\r\n\r\n")); n != 0 || done || err == nil {
		t.Errorf("after error: n=%d done=%v err=%v", n, done, err)
	}
}

// Lines of exactly the limit pass: the limit is Go's, not one less.
func TestBodyFramerLineLimit(t *testing.T) {
	for _, body := range []string{
		"1;" + strings.Repeat("a", maxChunkLine-4) + "\r\nx\r\n0\r\n\r\n",
		"0\r\nx:" + strings.Repeat("a", maxChunkLine-6) + "\r\n\r\n",
		"0\r\n" + strings.Repeat("x:a\r\n", (maxChunkLine-2)/5) + "\r\n",
	} {
		if n, done, err := feedPieces(chunkedResp, []byte(body)); n != len(body) || !done || err != nil {
			t.Errorf("n=%d done=%v err=%v", n, done, err)
		}
		raw := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body
		res, err := http.ReadResponse(bufio.NewReader(strings.NewReader(raw)), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadAll(res.Body); err != nil {
			t.Errorf("Go rejects a line at the limit: %v", err)
		}
	}
}

func TestBodyFramerContentLength(t *testing.T) {
	resp := &Response{Status: 401, ContentLength: 12}
	stream := []byte("unauthorizedEXTRA")
	for i := 0; i <= len(stream); i++ {
		for j := i; j <= len(stream); j++ {
			n, done, err := feedPieces(resp, stream[:i], stream[i:j], stream[j:])
			wantDone := j >= 12 || len(stream) >= 12
			if err != nil || n != min(12, len(stream)) || done != wantDone {
				t.Fatalf("split %d,%d: n=%d done=%v err=%v", i, j, n, done, err)
			}
		}
	}
	var b BodyFramer
	b.Init(resp)
	if b.Remaining() != 12 || b.UntilEOF() {
		t.Fatalf("Remaining=%d UntilEOF=%v", b.Remaining(), b.UntilEOF())
	}
	b.Feed([]byte("unauth"))
	if b.Remaining() != 6 {
		t.Fatalf("Remaining=%d, want 6", b.Remaining())
	}
	if n, done, _ := b.Feed([]byte("orizedX")); n != 6 || !done || b.Remaining() != 0 {
		t.Fatalf("n=%d done=%v Remaining=%d", n, done, b.Remaining())
	}
	if n, done, err := b.Feed([]byte("more")); n != 0 || !done || err != nil {
		t.Fatalf("after done: n=%d done=%v err=%v", n, done, err)
	}
}

func TestBodyFramerModes(t *testing.T) {
	tests := []struct {
		name      string
		resp      Response
		untilEOF  bool
		remaining int64
	}{
		{"101", Response{Status: 101, ContentLength: -1}, false, 0},
		{"100", Response{Status: 100, ContentLength: -1}, false, 0},
		{"103", Response{Status: 103, ContentLength: -1}, false, 0},
		{"204 with length", Response{Status: 204, ContentLength: 10}, false, 0},
		{"304 with length", Response{Status: 304, ContentLength: 10}, false, 0},
		{"304 chunked", Response{Status: 304, ContentLength: -1, Chunked: true}, false, 0},
		{"200 length 0", Response{Status: 200, ContentLength: 0}, false, 0},
		{"403 no length", Response{Status: 403, ContentLength: -1}, true, -1},
		{"HTTP/1.0 no length", Response{Status: 403, ContentLength: -1, HTTP10: true}, true, -1},
		{"chunked", Response{Status: 500, ContentLength: -1, Chunked: true}, false, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b BodyFramer
			b.Init(&tt.resp)
			if b.UntilEOF() != tt.untilEOF || b.Remaining() != tt.remaining {
				t.Errorf("UntilEOF=%v Remaining=%d", b.UntilEOF(), b.Remaining())
			}
			n, done, err := b.Feed([]byte("data"))
			switch {
			case tt.untilEOF:
				if n != 4 || done || err != nil {
					t.Errorf("until EOF: n=%d done=%v err=%v", n, done, err)
				}
			case tt.remaining == 0:
				if n != 0 || !done || err != nil {
					t.Errorf("no body: n=%d done=%v err=%v", n, done, err)
				}
			}
		})
	}
	var zero BodyFramer
	if n, done, _ := zero.Feed([]byte("x")); n != 0 || !done {
		t.Errorf("zero BodyFramer: n=%d done=%v", n, done)
	}
}

// A chunked body spread over many Feed calls of random sizes, with large
// chunks, ends where it should.
func TestBodyFramerLargeChunks(t *testing.T) {
	var body bytes.Buffer
	for _, size := range []int{1, 4096, 65536, 3, 100000} {
		body.WriteString(strings.ToUpper(strings.TrimLeft(hex(size), "0")) + "\r\n")
		body.Write(bytes.Repeat([]byte{'z'}, size))
		body.WriteString("\r\n")
	}
	body.WriteString("0\r\n\r\n")
	stream := append(body.Bytes(), "tail"...)
	var pieces [][]byte
	for i, step := 0, 1; i < len(stream); step = step*7%9973 + 1 {
		j := min(i+step, len(stream))
		pieces = append(pieces, stream[i:j])
		i = j
	}
	if n, done, err := feedPieces(chunkedResp, pieces...); n != body.Len() || !done || err != nil {
		t.Errorf("n=%d done=%v err=%v, want %d", n, done, err, body.Len())
	}
}

func hex(n int) string {
	const digits = "0123456789abcdef"
	s := ""
	for ; n > 0; n >>= 4 {
		s = string(digits[n&15]) + s
	}
	return s
}
