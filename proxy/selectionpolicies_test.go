package proxy

import "testing"

func TestCookieValue(t *testing.T) {
	h := []byte(`theme=dark; session="abc123"; other=x`)
	if got := string(cookieValue(h, "session")); got != "abc123" {
		t.Fatalf("session = %q", got)
	}
	if got := cookieValue(h, "sess"); got != nil {
		t.Fatalf("sess = %q, want none", got)
	}
	if got := string(cookieValue([]byte("a=1"), "a")); got != "1" {
		t.Fatalf("a = %q", got)
	}
}

func TestQueryValue(t *testing.T) {
	q := []byte("room=42&user=ann%20b&x")
	if got := string(queryValue(q, "user")); got != "ann%20b" {
		t.Fatalf("user = %q", got)
	}
	if got := queryValue(q, "x"); got != nil {
		t.Fatalf("x = %q, want none", got)
	}
	if got := queryValue(nil, "room"); got != nil {
		t.Fatalf("nil query gave %q", got)
	}
}
