package frame

import (
	"bytes"
	"testing"

	"github.com/gobwas/ws"
)

func closePayload(code ws.StatusCode, reason string) []byte {
	return append([]byte{byte(code >> 8), byte(code)}, reason...)
}

func TestParseClose(t *testing.T) {
	for _, tc := range []struct {
		name    string
		payload []byte
		code    ws.StatusCode
		reason  string
		err     error
	}{
		{
			name:    "empty means 1005",
			payload: nil,
			code:    ws.StatusNoStatusRcvd,
		},
		{
			name:    "one byte",
			payload: []byte{0x03},
			err:     ErrBadClosePayload,
		},
		{
			name:    "code only",
			payload: closePayload(1000, ""),
			code:    1000,
		},
		{
			name:    "code and reason",
			payload: closePayload(1001, "going away"),
			code:    1001,
			reason:  "going away",
		},
		{
			name:    "utf-8 reason",
			payload: closePayload(4999, "κόσμε"),
			code:    4999,
			reason:  "κόσμε",
		},
		{
			name:    "max length",
			payload: closePayload(3000, string(bytes.Repeat([]byte{'r'}, 123))),
			code:    3000,
			reason:  string(bytes.Repeat([]byte{'r'}, 123)),
		},
		{
			name:    "too long",
			payload: closePayload(3000, string(bytes.Repeat([]byte{'r'}, 124))),
			err:     ErrControlTooLong,
		},
		{
			name:    "invalid utf-8",
			payload: closePayload(1000, "a\xffb"),
			err:     ErrBadClosePayload,
		},
		{
			name:    "truncated rune",
			payload: closePayload(1000, "\xce"),
			err:     ErrBadClosePayload,
		},
		{
			name:    "surrogate encoded in utf-8",
			payload: closePayload(1000, "\xed\xa0\x80"),
			err:     ErrBadClosePayload,
		},
		{
			name:    "1005 on the wire",
			payload: closePayload(1005, ""),
			err:     ErrBadClosePayload,
		},
		{
			name:    "1006 on the wire",
			payload: closePayload(1006, ""),
			err:     ErrBadClosePayload,
		},
		{
			name:    "1015 on the wire",
			payload: closePayload(1015, ""),
			err:     ErrBadClosePayload,
		},
		{
			name:    "zero",
			payload: closePayload(0, ""),
			err:     ErrBadClosePayload,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			orig := bytes.Clone(tc.payload)
			code, reason, err := ParseClose(tc.payload, nil, nil)
			if err != tc.err || code != tc.code || string(reason) != tc.reason {
				t.Fatalf(
					"unmasked: %d %q %v; want %d %q %v",
					code, reason, err, tc.code, tc.reason, tc.err,
				)
			}

			masked := bytes.Clone(tc.payload)
			ws.Cipher(masked, testMask, 0)
			maskedOrig := bytes.Clone(masked)
			var scratch [125]byte
			code, reason, err = ParseClose(masked, &testMask, scratch[:])
			if err != tc.err || code != tc.code || string(reason) != tc.reason {
				t.Fatalf(
					"masked: %d %q %v; want %d %q %v",
					code, reason, err, tc.code, tc.reason, tc.err,
				)
			}
			if !bytes.Equal(masked, maskedOrig) || !bytes.Equal(tc.payload, orig) {
				t.Fatalf(
					"%s",
					"payload modified",
				)
			}
			// Too small a scratch still gives the right answer.
			code, reason, err = ParseClose(masked, &testMask, scratch[:1])
			if err != tc.err || code != tc.code || string(reason) != tc.reason {
				t.Fatalf(
					"small scratch: %d %q %v",
					code, reason, err,
				)
			}
		})
	}
}

// TestCloseCodes checks every code against the registry-derived list and
// records how ws.CheckCloseFrameData differs.
func TestCloseCodes(t *testing.T) {
	valid := func(c int) bool {
		return (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014) || (c >= 3000 && c <= 4999)
	}
	for c := range 1 << 16 {
		code := ws.StatusCode(c)
		if ValidCloseCode(code) != valid(c) {
			t.Fatalf(
				"ValidCloseCode(%d) = %v",
				c, ValidCloseCode(code),
			)
		}
		_, _, err := ParseClose(closePayload(code, "ok"), nil, nil)
		if (err == nil) != valid(c) {
			t.Fatalf(
				"ParseClose code %d: %v",
				c, err,
			)
		}
		gobwasOK := ws.CheckCloseFrameData(code, "ok") == nil
		gobwasDiffers := (c >= 1012 && c <= 1014) || c >= 5000
		if (gobwasOK != valid(c)) != gobwasDiffers {
			t.Fatalf(
				"code %d: gobwas says %v, we say %v",
				c, gobwasOK, valid(c),
			)
		}
	}
}

func TestParseCloseAllocs(t *testing.T) {
	p := closePayload(1001, "going away")
	m := bytes.Clone(p)
	ws.Cipher(m, testMask, 0)
	var scratch [125]byte
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{
			name: "unmasked",
			f:    func() { _, _, _ = ParseClose(p, nil, nil) },
		},
		{
			name: "masked",
			f:    func() { _, _, _ = ParseClose(m, &testMask, scratch[:]) },
		},
		{
			name: "invalid",
			f:    func() { _, _, _ = ParseClose(p[:1], nil, nil) },
		},
	} {
		if allocs := testing.AllocsPerRun(1000, tc.f); allocs != 0 {
			t.Errorf(
				"%s: %v allocs",
				tc.name, allocs,
			)
		}
	}
}
