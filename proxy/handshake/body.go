package handshake

import "net/http"

// FramingError is a malformed chunked body from a backend. By the time it is
// found the head (and part of the body) may already be relayed, so the only
// remedy is to close both connections: the client then sees a truncated body
// rather than whatever a confused parser would make of the rest.
type FramingError string

func (e FramingError) Error() string { return "handshake: chunked body: " + string(e) }

const (
	errChunkSize    FramingError = "invalid chunk size"
	errChunkTooBig  FramingError = "chunk size too large"
	errChunkExt     FramingError = "invalid chunk extension"
	errChunkLine    FramingError = "chunk line too long"
	errTrailerLong  FramingError = "trailer section too long"
	errChunkCRLF    FramingError = "missing CRLF"
	errTrailerField FramingError = "invalid trailer field"
)

// maxChunkLine bounds a chunk-size line with its CRLF, and the trailer
// section with its final CRLF. These are the limits of Go's own reader (its
// 4 KiB read buffer), so a body wsgate passes is one a Go client accepts, and
// a backend cannot keep the framer in one line forever.
const maxChunkLine = 4096

// maxChunkDigits keeps a chunk size within an int64 with room to spare; no
// real chunk comes near 16^15 bytes.
const maxChunkDigits = 15

const (
	modeDone uint8 = iota
	modeLength
	modeChunked
	modeEOF
)

// Chunked parser states (RFC 9112 7.1).
const (
	csSize         uint8 = iota // at the first hex digit of a chunk-size
	csSizeMore                  // after a hex digit: more digits, ';' or CR
	csExt                       // inside chunk extensions, up to CR
	csSizeLF                    // after the chunk-size line's CR
	csData                      // inside chunk-data
	csDataCR                    // after chunk-data
	csDataLF                    // after chunk-data's CR
	csTrailerStart              // at the start of a trailer line or the final CRLF
	csTrailerName               // in a trailer field name
	csTrailerValue              // in a trailer field value, up to CR
	csTrailerLF                 // after a trailer line's CR
	csEndLF                     // after the final CR
)

// BodyFramer finds the end of a non-101 response body as it streams through,
// so wsgate relays exactly the body and nothing after it. It keeps only a few
// counters: chunk headers split across any number of Feed calls are parsed
// byte by byte, chunk data is skipped without being looked at. The zero
// value is a finished, empty body; call Init first.
type BodyFramer struct {
	mode      uint8
	state     uint8
	digits    uint8
	line      int   // bytes so far in the current chunk-size line or trailer section
	remaining int64 // Content-Length bytes left; or chunk-data bytes left
	err       error
}

// Init sets b up for the body of resp (RFC 9112 6.3): none for 1xx, 204 and
// 304 whatever their headers say; chunked if chunked is the last transfer
// coding; Content-Length bytes; otherwise (no length, or a transfer coding
// other than chunked) everything until the backend closes.
func (b *BodyFramer) Init(resp *Response) {
	*b = BodyFramer{remaining: -1}
	switch {
	case resp.Status < 200, resp.Status == http.StatusNoContent, resp.Status == http.StatusNotModified:
		b.mode = modeDone
	case resp.Chunked:
		b.mode, b.state, b.remaining = modeChunked, csSize, 0
	case resp.ContentLength > 0:
		b.mode, b.remaining = modeLength, resp.ContentLength
	case resp.ContentLength == 0:
		b.mode = modeDone
	default:
		b.mode = modeEOF
	}
}

// UntilEOF reports a body that ends only when the backend closes its
// connection; Feed then takes everything and never reports done.
func (b *BodyFramer) UntilEOF() bool { return b.mode == modeEOF }

// Remaining returns the number of body bytes still expected for a
// Content-Length body (0 once done), or -1 when it is not known in advance
// (chunked, until EOF).
func (b *BodyFramer) Remaining() int64 {
	switch b.mode {
	case modeDone:
		return 0
	case modeLength:
		return b.remaining
	}
	return -1
}

// Feed consumes the prefix of p that belongs to the body. It returns how
// many bytes that is, and done when the body ended within them; bytes after
// n are not part of the body (wsgate drops them and closes). After done,
// Feed returns 0, true. A malformed chunked body returns a FramingError, and
// keeps returning it.
func (b *BodyFramer) Feed(p []byte) (n int, done bool, err error) {
	switch b.mode {
	case modeDone:
		return 0, true, nil
	case modeEOF:
		return len(p), false, nil
	case modeLength:
		k := b.remaining
		if int64(len(p)) < k {
			k = int64(len(p))
		}
		if b.remaining -= k; b.remaining == 0 {
			b.mode = modeDone
		}
		return int(k), b.mode == modeDone, nil
	}
	if b.err != nil {
		return 0, false, b.err
	}
	n, done, err = b.feedChunked(p)
	if err != nil {
		b.err = err
	}
	return n, done, err
}

func (b *BodyFramer) feedChunked(p []byte) (int, bool, error) {
	i := 0
	for i < len(p) {
		if b.state == csData {
			k := b.remaining
			if left := int64(len(p) - i); left < k {
				k = left
			}
			i += int(k)
			if b.remaining -= k; b.remaining == 0 {
				b.state = csDataCR
			}
			continue
		}
		c := p[i]
		i++
		switch b.state {
		case csSize, csSizeMore, csExt, csSizeLF:
			if b.line++; b.line > maxChunkLine {
				return i, false, errChunkLine
			}
		case csTrailerStart, csTrailerName, csTrailerValue, csTrailerLF, csEndLF:
			if b.line++; b.line > maxChunkLine {
				return i, false, errTrailerLong
			}
		}
		switch b.state {
		case csSize, csSizeMore:
			if class[c]&cHex != 0 {
				if b.digits == maxChunkDigits {
					return i, false, errChunkTooBig
				}
				b.digits++
				b.remaining = b.remaining<<4 | int64(unhex(c))
				b.state = csSizeMore
				break
			}
			if b.state == csSize {
				return i, false, errChunkSize
			}
			switch c {
			case '\r':
				b.state = csSizeLF
			case ';':
				// Whitespace before ';' (BWS) is valid but Go's reader
				// rejects it and no server sends it, so neither does wsgate.
				b.state = csExt
			default:
				return i, false, errChunkSize
			}
		case csExt:
			// Extensions are relayed, not interpreted; what matters is that
			// the line ends at the same CRLF for every parser, so no control
			// byte (bare LF, CR) may hide inside them.
			if c == '\r' {
				b.state = csSizeLF
				break
			}
			if class[c]&cValue == 0 {
				return i, false, errChunkExt
			}
		case csSizeLF:
			if c != '\n' {
				return i, false, errChunkCRLF
			}
			b.line, b.digits = 0, 0
			if b.remaining == 0 {
				b.state = csTrailerStart
			} else {
				b.state = csData
			}
		case csDataCR:
			if c != '\r' {
				return i, false, errChunkCRLF
			}
			b.state = csDataLF
		case csDataLF:
			if c != '\n' {
				return i, false, errChunkCRLF
			}
			b.state, b.line = csSize, 0
		case csTrailerStart:
			if c == '\r' {
				b.state = csEndLF
				break
			}
			// A leading space would be obs-fold; a leading colon an empty
			// name: both read differently by different parsers.
			if class[c]&cToken == 0 {
				return i, false, errTrailerField
			}
			b.state = csTrailerName
		case csTrailerName:
			if c == ':' {
				b.state = csTrailerValue
			} else if class[c]&cToken == 0 {
				return i, false, errTrailerField
			}
		case csTrailerValue:
			if c == '\r' {
				b.state = csTrailerLF
			} else if class[c]&cValue == 0 {
				return i, false, errTrailerField
			}
		case csTrailerLF:
			if c != '\n' {
				return i, false, errChunkCRLF
			}
			b.state = csTrailerStart
		case csEndLF:
			if c != '\n' {
				return i, false, errChunkCRLF
			}
			b.mode = modeDone
			return i, true, nil
		}
	}
	return i, false, nil
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
