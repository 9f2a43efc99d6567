package webhook

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

var secret = []byte("0123456789abcdef-shared")

func newClient(t *testing.T, o Options) *Client {
	t.Helper()
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRedirectNotFollowed(t *testing.T) {
	for _, code := range []int{301, 302, 303, 307, 308} {
		var reached atomic.Int32
		target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			reached.Add(1)
		}))
		hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.URL+"/steal", code)
		}))
		c := newClient(t, Options{})
		status, _, err := c.Post(context.Background(), hook.URL, []byte(`{"attributes":{"pin":"1234"}}`), time.Second)
		if !errors.Is(err, ErrRedirect) || status != code || !strings.Contains(err.Error(), "webhook answered a redirect; not followed") {
			t.Errorf("%d: status %d, err %v", code, status, err)
		}
		if n := reached.Load(); n != 0 {
			t.Errorf("%d: the redirect target received %d requests", code, n)
		}
		hook.Close()
		target.Close()
	}
}

func TestSignature(t *testing.T) {
	body := []byte(`{"call_id":"c1","attributes":{}}`)
	got := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		got <- Verify(secret, r.Header.Get(SignatureHeader), raw, time.Now(), 5*time.Minute)
		w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	c := newClient(t, Options{Secret: secret})
	if _, _, err := c.Post(context.Background(), srv.URL, body, time.Second); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Errorf("receiver: %v", err)
	}

	// A known vector (from openssl dgst -sha256 -hmac), so receivers in
	// other languages can check theirs.
	h := Sign(secret, time.Unix(1700000000, 0), []byte(`{}`))
	if want := "t=1700000000,v1=3a96fb9ddb3616d4668e1bfcd164dc4592eba98a86ed2e958de8fdce6179382b"; h != want {
		t.Errorf("Sign = %s, want %s", h, want)
	}
	now := time.Unix(1700000000, 0)
	for _, tc := range []struct {
		name, header, body string
		secret             []byte
		at                 time.Time
		ok                 bool
	}{
		{"good", h, `{}`, secret, now, true},
		{"good, extra keys", h + ",v2=zz", `{}`, secret, now, true},
		{"body changed", h, `{"x":1}`, secret, now, false},
		{"other secret", h, `{}`, []byte("another-secret-of-16"), now, false},
		{"replayed later", h, `{}`, secret, now.Add(6 * time.Minute), false},
		{"from the future", h, `{}`, secret, now.Add(-6 * time.Minute), false},
		{"no header", "", `{}`, secret, now, false},
		{"no v1", "t=1700000000", `{}`, secret, now, false},
	} {
		err := Verify(tc.secret, tc.header, []byte(tc.body), tc.at, 5*time.Minute)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrBadSignature)) {
			t.Errorf("%s: Verify = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

func TestNoSignatureWithoutSecret(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(SignatureHeader) != "" {
			w.WriteHeader(400)
		}
	}))
	defer srv.Close()
	if _, _, err := newClient(t, Options{}).Post(context.Background(), srv.URL, nil, time.Second); err != nil {
		t.Error(err)
	}
}

func TestAllowHosts(t *testing.T) {
	var reached atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached.Add(1) }))
	defer srv.Close()
	port := srv.URL[strings.LastIndex(srv.URL, ":"):]
	c := newClient(t, Options{AllowHosts: []string{"hooks.example.com", "*.internal.example", "127.0.0.1"}})
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{srv.URL, true},
		{"http://localhost" + port, false},
		{"http://evil.example.com/x", false},
		{"http://hooks.example.com.evil.net/x", false},
		{"http://internal.example/x", false},
		{"http://user:pw@evil.example.com/x", false},
		{"ftp://hooks.example.com/x", false},
		{"/relative", false},
	} {
		_, _, err := c.Post(context.Background(), tc.url, nil, 200*time.Millisecond)
		if tc.ok != (err == nil) {
			t.Errorf("Post(%s) = %v, want ok=%v", tc.url, err, tc.ok)
		}
		if strings.Contains(tc.url, "evil") && !errors.Is(err, ErrHostNotAllowed) {
			t.Errorf("Post(%s) = %v, want ErrHostNotAllowed", tc.url, err)
		}
		if err != nil && strings.Contains(err.Error(), "pw") {
			t.Errorf("error shows the URL's password: %v", err)
		}
	}
	if n := reached.Load(); n != 1 {
		t.Errorf("server reached %d times, want 1", n)
	}
	for _, h := range []string{"", "a/b", "host:80", "*", "a.*.com", "x*.example.com"} {
		if _, err := New(Options{AllowHosts: []string{h}}); err == nil {
			t.Errorf("allow-list entry %q accepted", h)
		}
	}
	if !newClient(t, Options{AllowHosts: []string{"*.example.com"}}).hostAllowed("A.B.Example.COM.") {
		t.Error("wildcard does not match a sub-domain regardless of case")
	}
}

func TestBodyBound(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := 1 << 20
		if r.URL.Path == "/big" {
			n++
		}
		w.Write([]byte(strings.Repeat("x", n)))
	}))
	defer srv.Close()
	c := newClient(t, Options{})
	if _, b, err := c.Post(context.Background(), srv.URL+"/ok", nil, 2*time.Second); err != nil || len(b) != 1<<20 {
		t.Errorf("1 MiB: %d bytes, %v", len(b), err)
	}
	if _, _, err := c.Post(context.Background(), srv.URL+"/big", nil, 2*time.Second); !errors.Is(err, ErrTooLarge) {
		t.Errorf("1 MiB + 1: %v, want ErrTooLarge", err)
	}
}

func TestErrorStatus(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "nope", http.StatusBadGateway)
	}))
	defer srv.Close()
	status, body, err := newClient(t, Options{}).Post(context.Background(), srv.URL, nil, time.Second)
	if !errors.Is(err, ErrStatus) || status != 502 || string(body) != "nope\n" {
		t.Errorf("status %d, body %q, err %v", status, body, err)
	}
}

// The request's own timeout is the bound: nothing in the client or its
// transport may cut a slow webhook (up to 30 s) shorter.
func TestTimeoutIsTheRequests(t *testing.T) {
	c := newClient(t, Options{})
	if c.http.Timeout != 0 {
		t.Errorf("client timeout %s would cut requests", c.http.Timeout)
	}
	tr, ok := c.http.Transport.(*http.Transport)
	if !ok {
		t.Fatalf("transport %T", c.http.Transport)
	}
	if tr == http.DefaultTransport {
		t.Error("shares the default transport")
	}
	if tr.ResponseHeaderTimeout != 0 && tr.ResponseHeaderTimeout < 30*time.Second {
		t.Errorf("ResponseHeaderTimeout %s is shorter than the 30 s webhook timeout", tr.ResponseHeaderTimeout)
	}
	if tr.TLSClientConfig == nil || tr.TLSClientConfig.InsecureSkipVerify {
		t.Error("TLS not verified")
	}

	// The server answers after the delay the request asks for (?after=),
	// or when the client gives up.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		after, err := time.ParseDuration(r.URL.Query().Get("after"))
		if err != nil {
			t.Errorf("after: %v", err)
		}
		select {
		case <-time.After(after):
		case <-r.Context().Done():
			return
		}
		w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	if _, _, err := c.Post(context.Background(), srv.URL+"?after=400ms", nil, 30*time.Second); err != nil {
		t.Errorf("slow webhook within its timeout: %v", err)
	}
	// A server that would answer only after the test's bound: the
	// request's own deadline is what ends the request (had nothing cut
	// it, the answer would come, without an error).
	start := time.Now()
	_, _, err := c.Post(context.Background(), srv.URL+"?after=10s", nil, 100*time.Millisecond)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("after %s: %v, want the 100ms deadline", time.Since(start), err)
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("cut after %s, before its 100ms deadline", d)
	}
}

// TLS is verified: a self-signed server is refused unless its CA is given.
func TestTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{}`)) }))
	defer srv.Close()
	if _, _, err := newClient(t, Options{}).Post(context.Background(), srv.URL, nil, time.Second); err == nil {
		t.Error("self-signed certificate accepted")
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pemOf(srv.Certificate().Raw), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := newClient(t, Options{CAFile: caFile}).Post(context.Background(), srv.URL, nil, time.Second); err != nil {
		t.Errorf("with the CA file: %v", err)
	}
	if _, err := New(Options{CAFile: filepath.Join(t.TempDir(), "none.pem")}); err == nil {
		t.Error("missing CA file accepted")
	}
	if err := os.WriteFile(caFile, []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{CAFile: caFile}); err == nil {
		t.Error("CA file without a certificate accepted")
	}
}

func TestSecretFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	os.WriteFile(good, append(secret, '\n'), 0o600)
	short := filepath.Join(dir, "short")
	os.WriteFile(short, []byte("short\n"), 0o600)
	if b, err := ReadSecretFile(good); err != nil || string(b) != string(secret) {
		t.Errorf("good: %q, %v", b, err)
	}
	if _, err := ReadSecretFile(short); err == nil {
		t.Error("short secret accepted")
	}
	if _, err := ReadSecretFile(filepath.Join(dir, "none")); err == nil {
		t.Error("missing file accepted")
	}
	if _, err := New(Options{Secret: []byte("short")}); err == nil {
		t.Error("short secret accepted by New")
	}
}
