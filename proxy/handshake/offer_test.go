package handshake

import (
	"errors"
	"strings"
	"testing"
)

func TestOfferAllows(t *testing.T) {
	tests := []struct {
		name   string
		offer  []string // request headers besides minimal's
		answer []string // 101 headers besides resp101's
		reason string   // "" when allowed
	}{
		{"nothing offered, nothing selected", nil, nil, ""},
		{"protocol offered and selected", []string{"Sec-WebSocket-Protocol: chat, superchat"}, []string{"Sec-WebSocket-Protocol: superchat"}, ""},
		{"protocol from a second header line", []string{"Sec-WebSocket-Protocol: chat", "Sec-WebSocket-Protocol: v2.json"}, []string{"Sec-WebSocket-Protocol: v2.json"}, ""},
		{"protocol offered, none selected", []string{"Sec-WebSocket-Protocol: chat"}, nil, ""},
		{"protocol selected, none offered", nil, []string{"Sec-WebSocket-Protocol: chat"}, "101 selects a subprotocol the client did not offer"},
		{"another protocol selected", []string{"Sec-WebSocket-Protocol: chat, superchat"}, []string{"Sec-WebSocket-Protocol: super"}, "101 selects a subprotocol the client did not offer"},
		{"protocol differs in case", []string{"Sec-WebSocket-Protocol: chat"}, []string{"Sec-WebSocket-Protocol: Chat"}, "101 selects a subprotocol the client did not offer"},
		{"prefix of an offered protocol", []string{"Sec-WebSocket-Protocol: chatty"}, []string{"Sec-WebSocket-Protocol: chat"}, "101 selects a subprotocol the client did not offer"},
		{"deflate offered and selected", []string{"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"}, []string{"Sec-WebSocket-Extensions: permessage-deflate"}, ""},
		{"deflate offered second", []string{"Sec-WebSocket-Extensions: x-webkit-foo, PerMessage-Deflate"}, []string{"Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover"}, ""},
		{"deflate offered, none selected", []string{"Sec-WebSocket-Extensions: permessage-deflate"}, nil, ""},
		{"deflate selected, none offered", nil, []string{"Sec-WebSocket-Extensions: permessage-deflate"}, "101 selects permessage-deflate, which the client did not offer"},
		{"deflate selected, another offered", []string{"Sec-WebSocket-Extensions: x-foo"}, []string{"Sec-WebSocket-Extensions: permessage-deflate"}, "101 selects permessage-deflate, which the client did not offer"},
		{"many protocols offered", []string{"Sec-WebSocket-Protocol: " + strings.Repeat("p, ", 60) + "last"}, []string{"Sec-WebSocket-Protocol: last"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var req Request
			if err := req.Parse([]byte(minimal(tt.offer...))); err != nil {
				t.Fatalf("Parse: %v", err)
			}
			var o Offer
			req.Offer(&o)
			var resp Response
			if err := ParseResponse([]byte(resp101(tt.answer...)), []byte(testKey), &resp); err != nil {
				t.Fatalf("ParseResponse: %v", err)
			}
			err := o.Allows(&resp)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("Allows = %v, want nil", err)
				}
				return
			}
			var rej *Reject
			if !errors.As(err, &rej) || rej.Status != 502 || rej.Reason != tt.reason {
				t.Fatalf("Allows = %v, want 502 %q", err, tt.reason)
			}
		})
	}
}

// A refusal is relayed whatever it carries: only a 101 selects anything.
func TestOfferIgnoresRefusals(t *testing.T) {
	var o Offer
	var req Request
	if err := req.Parse([]byte(minimal())); err != nil {
		t.Fatal(err)
	}
	req.Offer(&o)
	var resp Response
	if err := ParseResponse([]byte(head("HTTP/1.1 400 Bad Request", "Sec-WebSocket-Protocol: x", "Content-Length: 0")), []byte(testKey), &resp); err != nil {
		t.Fatal(err)
	}
	if err := o.Allows(&resp); err != nil {
		t.Fatalf("Allows(400) = %v", err)
	}
}

// Taking the offer from each handshake must not cost an allocation.
func TestOfferAllocs(t *testing.T) {
	in := []byte(minimal("Sec-WebSocket-Protocol: graphql-ws, graphql-transport-ws", "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"))
	ans := []byte(resp101("Sec-WebSocket-Protocol: graphql-transport-ws", "Sec-WebSocket-Extensions: permessage-deflate"))
	var req Request
	var o Offer
	var resp Response
	allocs := testing.AllocsPerRun(100, func() {
		if err := req.Parse(in); err != nil {
			t.Fatal(err)
		}
		req.Offer(&o)
		if err := ParseResponse(ans, []byte(testKey), &resp); err != nil {
			t.Fatal(err)
		}
		if err := o.Allows(&resp); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per handshake", allocs)
	}
}

// FuzzOfferProtocols checks Allows against a plain reading of the two
// headers: the selected protocol must be one of the offered list's
// elements.
func FuzzOfferProtocols(f *testing.F) {
	f.Add("chat, superchat", "superchat")
	f.Add("a,,b , c", "c")
	f.Add("graphql-ws", "graphql")
	f.Fuzz(func(t *testing.T, offered, selected string) {
		var req Request
		if req.Parse([]byte(minimal("Sec-WebSocket-Protocol: "+offered))) != nil {
			return
		}
		var resp Response
		if ParseResponse([]byte(resp101("Sec-WebSocket-Protocol: "+selected)), []byte(testKey), &resp) != nil {
			return
		}
		var o Offer
		req.Offer(&o)
		want := false
		for _, p := range strings.Split(string(req.Header("Sec-WebSocket-Protocol")), ",") {
			if strings.Trim(p, " \t") == string(resp.Protocol) {
				want = true
			}
		}
		if got := o.Allows(&resp) == nil; got != want {
			t.Fatalf("offered %q, selected %q: allowed %v, want %v", offered, resp.Protocol, got, want)
		}
	})
}
