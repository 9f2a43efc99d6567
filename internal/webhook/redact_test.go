package webhook

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

func TestRedactURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://hooks.example.com/orders/lookup", "https://hooks.example.com/orders/lookup"},
		{"http://user:pa55word@hooks.example.com:8080/hook?token=s3cret&id=42#frag",
			"http://[redacted]@hooks.example.com:8080/hook?token=[redacted]&id=[redacted]"},
		{"https://t0ken@hooks.example.com/", "https://[redacted]@hooks.example.com/"},
		{"https://hooks.example.com/h?s3cretAlone", "https://hooks.example.com/h?[redacted]"},
		{"https://hooks.example.com/h?", "https://hooks.example.com/h?"},
		{"https://hooks.example.com/a%20b?k=v%20w", "https://hooks.example.com/a%20b?k=[redacted]"},
		// url.Parse refuses these; the credentials go anyway.
		{"http://user:pa ss@host/x?token=s3cret", "http://[redacted]@host/x?[redacted]"},
		{"http://user:p%zz@host/x", "http://[redacted]@host/x"},
		{"not a url ?token=s3cret", "not a url ?[redacted]"},
	} {
		if got := RedactURL(tc.in); got != tc.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// Every error Post returns for a URL with credentials carries none of
// them: not for a URL it refuses, not for a host it cannot reach (where
// net/http quotes the URL with its query).
func TestPostErrorsRedactURL(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: connection refused
	c := newClient(t, Options{})
	for _, u := range []string{
		"http://alice:pa55word@" + addr + "/hook?token=s3cret-t0ken&x=1",
		"ftp://alice:pa55word@" + addr + "/hook?token=s3cret-t0ken",
		"http://alice:pa55word@" + addr + "/hook?token=s3cret-t0ken%zz",
	} {
		_, _, err := c.Post(context.Background(), u, []byte(`{}`), time.Second)
		if err == nil {
			t.Fatalf("Post(%s) succeeded", u)
		}
		for _, leak := range []string{"alice", "pa55word", "s3cret-t0ken"} {
			if strings.Contains(err.Error(), leak) {
				t.Errorf("Post error %q holds %q", err, leak)
			}
		}
	}
}
