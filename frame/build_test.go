package frame

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// readFrame parses one whole frame from p with ParseHeader and returns its
// header and unmasked payload.
func readFrame(t *testing.T, p []byte) (ws.Header, []byte) {
	t.Helper()
	h, n, err := ParseHeader(p)
	if err != nil || n == 0 {
		t.Fatalf(
			"ParseHeader(%x): n=%d err=%v",
			p, n, err,
		)
	}
	if int64(len(p)-n) != h.Length {
		t.Fatalf(
			"frame %x: header says %d payload bytes, have %d",
			p, h.Length, len(p)-n,
		)
	}
	payload := bytes.Clone(p[n:])
	if h.Masked {
		ws.Cipher(payload, h.Mask, 0)
	}
	return h, payload
}

func TestAppendCloseMatchesCompiled(t *testing.T) {
	for _, tc := range []struct {
		code ws.StatusCode
		want []byte
	}{
		{
			code: ws.StatusNormalClosure,
			want: ws.CompiledCloseNormalClosure,
		},
		{
			code: ws.StatusGoingAway,
			want: ws.CompiledCloseGoingAway,
		},
		{
			code: ws.StatusProtocolError,
			want: ws.CompiledCloseProtocolError,
		},
		{
			code: ws.StatusMessageTooBig,
			want: ws.CompiledCloseMessageTooBig,
		},
		{
			code: ws.StatusNoStatusRcvd,
			want: ws.CompiledClose,
		},
		{
			code: 0,
			want: ws.CompiledClose,
		},
	} {
		got := AppendClose(nil, tc.code, "", nil)
		if !bytes.Equal(got, tc.want) {
			t.Errorf(
				"AppendClose(%d) = %x, want %x",
				tc.code, got, tc.want,
			)
		}
	}
}

func TestAppendClose(t *testing.T) {
	long := strings.Repeat("x", 200)
	// Two-byte runes start at even offsets, so byte 123 is inside a rune.
	runes := strings.Repeat("é", 70)
	for _, tc := range []struct {
		name   string
		code   ws.StatusCode
		reason string
		mask   *[4]byte
		// wantReason is the reason after fitting; wantLen the payload length.
		wantReason string
		wantLen    int
	}{
		{
			name:       "code and reason",
			code:       ws.StatusGoingAway,
			reason:     "restarting",
			wantReason: "restarting",
			wantLen:    12,
		},
		{
			name:       "masked",
			code:       4000,
			reason:     "bye",
			mask:       &testMask,
			wantReason: "bye",
			wantLen:    5,
		},
		{
			name:       "1005 drops the reason",
			code:       ws.StatusNoStatusRcvd,
			reason:     "ignored",
			mask:       &testMask,
			wantReason: "",
			wantLen:    0,
		},
		{
			name:       "long ascii cut to 123 bytes",
			code:       ws.StatusPolicyViolation,
			reason:     long,
			wantReason: long[:123],
			wantLen:    125,
		},
		{
			name:       "long utf-8 cut at rune boundary",
			code:       ws.StatusPolicyViolation,
			reason:     runes,
			mask:       &testMask,
			wantReason: runes[:122],
			wantLen:    124,
		},
		{
			name:       "exactly 123 bytes kept",
			code:       ws.StatusNormalClosure,
			reason:     long[:123],
			wantReason: long[:123],
			wantLen:    125,
		},
		{
			name:       "invalid utf-8 dropped",
			code:       ws.StatusNormalClosure,
			reason:     "bad\xff",
			wantReason: "",
			wantLen:    2,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prefix := []byte("keep")
			out := AppendClose(bytes.Clone(prefix), tc.code, tc.reason, tc.mask)
			if !bytes.HasPrefix(out, prefix) {
				t.Fatalf(
					"prefix clobbered: %x",
					out,
				)
			}
			h, payload := readFrame(t, out[len(prefix):])
			want := ws.Header{Fin: true, OpCode: ws.OpClose, Length: int64(tc.wantLen)}
			if tc.mask != nil {
				want.Masked = true
				want.Mask = *tc.mask
			}
			if h != want {
				t.Fatalf(
					"header %+v, want %+v",
					h, want,
				)
			}
			var v Validator
			v.Init(tc.mask != nil, false, 0)
			if err := v.Check(h); err != nil {
				t.Fatalf(
					"injected frame rejected: %v",
					err,
				)
			}
			code, reason, err := ParseClose(payload, nil, nil)
			wantCode := tc.code
			if tc.wantLen == 0 {
				wantCode = ws.StatusNoStatusRcvd
			}
			if err != nil || code != wantCode || string(reason) != tc.wantReason {
				t.Fatalf(
					"ParseClose = %d %q %v; want %d %q",
					code, reason, err, wantCode, tc.wantReason,
				)
			}
			if !utf8.Valid(reason) {
				t.Fatalf(
					"reason %q not UTF-8",
					reason,
				)
			}
		})
	}
}

func TestAppendPing(t *testing.T) {
	payload := []byte("ping-1234")
	orig := bytes.Clone(payload)

	got := AppendPing(nil, payload, nil)
	want := ws.MustCompileFrame(ws.NewPingFrame(payload))
	if !bytes.Equal(got, want) {
		t.Fatalf(
			"unmasked = %x, want %x",
			got, want,
		)
	}

	got = AppendPing([]byte{0xaa}, payload, &testMask)
	want = ws.MustCompileFrame(ws.MaskFrameWith(ws.NewPingFrame(payload), testMask))
	if got[0] != 0xaa || !bytes.Equal(got[1:], want) {
		t.Fatalf(
			"masked = %x, want aa%x",
			got, want,
		)
	}
	if !bytes.Equal(payload, orig) {
		t.Fatalf(
			"payload modified: %q",
			payload,
		)
	}

	big := bytes.Repeat([]byte{'p'}, 300)
	h, p := readFrame(t, AppendPing(nil, big, &testMask))
	if h.Length != 125 || !bytes.Equal(p, big[:125]) {
		t.Fatalf(
			"oversized ping: %+v %q",
			h, p,
		)
	}

	h, p = readFrame(t, AppendPing(nil, nil, nil))
	if h != (ws.Header{Fin: true, OpCode: ws.OpPing}) || len(p) != 0 {
		t.Fatalf(
			"empty ping: %+v %q",
			h, p,
		)
	}
}

func TestAppendAllocs(t *testing.T) {
	dst := make([]byte, 0, 256)
	payload := []byte("12345678")
	reason := strings.Repeat("é", 70)
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{
			name: "AppendClose",
			f:    func() { _ = AppendClose(dst[:0], ws.StatusGoingAway, "draining", nil) },
		},
		{
			name: "AppendClose masked long",
			f:    func() { _ = AppendClose(dst[:0], ws.StatusGoingAway, reason, &testMask) },
		},
		{
			name: "AppendPing",
			f:    func() { _ = AppendPing(dst[:0], payload, nil) },
		},
		{
			name: "AppendPing masked",
			f:    func() { _ = AppendPing(dst[:0], payload, &testMask) },
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

func TestMaskSource(t *testing.T) {
	a, b, c := NewMaskSource(1), NewMaskSource(1), NewMaskSource(2)
	seen := map[[4]byte]bool{}
	same := 0
	for range 10000 {
		ka, kb, kc := a.Next(), b.Next(), c.Next()
		if ka != kb {
			t.Fatalf(
				"%s",
				"same seed, different keys",
			)
		}
		if ka == kc {
			same++
		}
		seen[ka] = true
	}
	if same > 5 {
		t.Errorf(
			"seeds 1 and 2 agree on %d of 10000 keys",
			same,
		)
	}
	// 10000 draws from 2^32 keys collide with probability about 1%.
	if len(seen) < 9990 {
		t.Errorf(
			"only %d distinct keys in 10000",
			len(seen),
		)
	}

	var z MaskSource
	z.Seed(1)
	if z.Next() != NewMaskSource(1).Next() {
		t.Errorf(
			"%s",
			"Seed and NewMaskSource disagree",
		)
	}

	if allocs := testing.AllocsPerRun(1000, func() { _ = a.Next() }); allocs != 0 {
		t.Errorf(
			"Next: %v allocs",
			allocs,
		)
	}
}

var sinkBytes []byte

func BenchmarkAppendClose(b *testing.B) {
	dst := make([]byte, 0, 256)
	m := NewMaskSource(1)
	b.ReportAllocs()
	for b.Loop() {
		k := m.Next()
		sinkBytes = AppendClose(dst[:0], ws.StatusGoingAway, "draining", &k)
	}
}

// TestGobwasCloseBodySplitsRunes records why AppendClose fits the reason
// itself: ws.NewCloseFrameBody cuts at byte 123 and can split a rune.
func TestGobwasCloseBodySplitsRunes(t *testing.T) {
	body := ws.NewCloseFrameBody(ws.StatusNormalClosure, strings.Repeat("é", 70))
	if utf8.Valid(body[2:]) {
		t.Fatalf(
			"%s",
			"ws.NewCloseFrameBody now cuts at rune boundaries; AppendClose's note is stale",
		)
	}
}
