// Package webhook is ariflow's HTTP client for InvokeWebhook blocks: its own
// http.Client and transport (never the process-wide default one the ARI
// library also uses), redirects not followed, an optional host allow-list,
// a bound on the response size, the caller's timeout per request, TLS
// verified (with an optional extra CA), and an optional signature.
//
// # Signature
//
// With a secret, every request carries
//
//	X-Ariflow-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>
//
// where the HMAC is computed with the shared secret over the bytes
// "<t>." followed by the raw request body (as Stripe and jambonz do). To
// verify, a receiver:
//
//  1. reads the header and splits it on ',' into t= and v1= (ignore
//     unknown keys: later versions may add v2=);
//  2. computes hex(HMAC-SHA256(secret, t + "." + raw body)) over the body
//     exactly as received, before any JSON parsing;
//  3. compares it with v1 in constant time (hmac.Equal,
//     crypto.timingSafeEqual, hmac.compare_digest);
//  4. refuses t more than five minutes away from its clock, so a captured
//     request cannot be replayed later.
//
// Verify does exactly this, for Go receivers and the tests.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
)

// Outcomes callers may branch on; all of them mean the webhook failed.
var (
	ErrRedirect       = errors.New("webhook answered a redirect; not followed")
	ErrHostNotAllowed = errors.New("webhook host not in the allow-list")
	ErrTooLarge       = errors.New("webhook response too large")
	ErrStatus         = errors.New("webhook answered an error status")
	ErrBadSignature   = errors.New("webhook signature does not verify")
)

// SignatureHeader carries the request's signature when a secret is set.
const SignatureHeader = "X-Ariflow-Signature"

// DefaultMaxBody bounds a response body when Options.MaxBody is 0.
const DefaultMaxBody = 1 << 20

// MinSecret is the shortest secret accepted: 16 bytes (128 bits).
const MinSecret = 16

// Options configure a Client; the zero value is a working client without
// signature or allow-list.
type Options struct {
	// Secret signs every request (see the package comment); nil: unsigned.
	Secret []byte
	// AllowHosts, when not empty, are the only host names requests may go
	// to: exact names ("hooks.example.com", compared without case) or
	// "*.example.com" for any name below example.com. Ports are not
	// compared.
	AllowHosts []string
	// CAFile is a PEM file of CAs trusted in addition to the system's,
	// for webhook servers with a private CA.
	CAFile string
	// MaxBody bounds the response body; DefaultMaxBody (1 MiB) if 0.
	MaxBody int64
}

// Client posts webhook requests. It is safe for concurrent use.
type Client struct {
	http    *http.Client
	secret  []byte
	allow   []string
	maxBody int64
	now     func() time.Time
}

// New builds a Client with its own transport.
func New(o Options) (*Client, error) {
	if o.Secret != nil && len(o.Secret) < MinSecret {
		return nil, fmt.Errorf("webhook secret: %d bytes, at least %d needed", len(o.Secret), MinSecret)
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("webhook CA file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("webhook CA file %s: no PEM certificate in it", o.CAFile)
		}
		tlsConf.RootCAs = pool
	}
	for _, h := range o.AllowHosts {
		if h == "" || strings.ContainsAny(h, "/:@ ") || strings.Contains(h[1:], "*") || (h[0] == '*' && !strings.HasPrefix(h, "*.")) {
			return nil, fmt.Errorf("webhook allow-list: %q is not a host name or *.domain", h)
		}
	}
	max := o.MaxBody
	if max <= 0 {
		max = DefaultMaxBody
	}
	// No ResponseHeaderTimeout and no Client.Timeout: each request's own
	// timeout (up to 30 s for a slow webhook) is the bound, through its
	// context. Dial and TLS handshake have their own, shorter bounds,
	// which only cut a request that cannot even connect.
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     tlsConf,
		TLSHandshakeTimeout: 10 * time.Second,
		ForceAttemptHTTP2:   true,
		MaxIdleConns:        100,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     90 * time.Second,
	}
	c := &Client{
		http: &http.Client{
			Transport: tr,
			// A redirect could send every contact attribute anywhere:
			// hand the 3xx back instead of following it.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		secret:  o.Secret,
		allow:   o.AllowHosts,
		maxBody: max,
		now:     time.Now,
	}
	return c, nil
}

// ReadSecretFile reads a signing secret, without its trailing newline.
func ReadSecretFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("webhook secret file: %w", err)
	}
	b = bytes.TrimRight(b, "\r\n")
	if len(b) < MinSecret {
		return nil, fmt.Errorf("webhook secret file %s: %d bytes, at least %d needed", path, len(b), MinSecret)
	}
	return b, nil
}

// Post sends body as JSON to rawURL within timeout (and ctx) and returns
// the status and response body. A 3xx (ErrRedirect) or any other non-2xx
// status (ErrStatus) is an error that still reports the status; a body
// over the bound is ErrTooLarge; a host outside the allow-list is
// ErrHostNotAllowed and nothing is sent.
func (c *Client) Post(ctx context.Context, rawURL string, body []byte, timeout time.Duration) (status int, respBody []byte, err error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return 0, nil, fmt.Errorf("webhook URL %q: want http(s)://host/path", RedactURL(rawURL))
	}
	if !c.hostAllowed(u.Hostname()) {
		return 0, nil, fmt.Errorf("%w: %s", ErrHostNotAllowed, u.Hostname())
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return 0, nil, fmt.Errorf("webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "ariflow-webhook")
	if c.secret != nil {
		req.Header.Set(SignatureHeader, Sign(c.secret, c.now(), body))
	}
	// The call's trace context (traceparent), when the call is traced and
	// ctx carries its span; nothing otherwise.
	otel.GetTextMapPropagator().Inject(ctx, propagation.HeaderCarrier(req.Header))
	resp, err := c.http.Do(req)
	if err != nil {
		// net/http quotes the URL with its query (only the password is
		// masked); the error is logged, so it gets the redacted form.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			uerr.URL = RedactURL(uerr.URL)
		}
		return 0, nil, fmt.Errorf("webhook: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 && resp.StatusCode <= 399 {
		return resp.StatusCode, nil, fmt.Errorf("%w (%s)", ErrRedirect, resp.Status)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, c.maxBody+1))
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("webhook: reading response: %w", err)
	}
	if int64(len(raw)) > c.maxBody {
		return resp.StatusCode, nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, c.maxBody)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, raw, fmt.Errorf("%w: %s", ErrStatus, resp.Status)
	}
	return resp.StatusCode, raw, nil
}

func (c *Client) hostAllowed(host string) bool {
	if len(c.allow) == 0 {
		return true
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	for _, a := range c.allow {
		a = strings.ToLower(a)
		if suffix, ok := strings.CutPrefix(a, "*"); ok {
			if strings.HasSuffix(host, suffix) && len(host) > len(suffix) {
				return true
			}
			continue
		}
		if host == a {
			return true
		}
	}
	return false
}

// Redacted stands for what RedactURL takes out of a URL.
const Redacted = "[redacted]"

// RedactURL is a webhook URL as a log line, an error or a metric may show
// it: scheme, host, port and path. User info is replaced by Redacted, and
// so is each query value (the names stay, to tell which were sent; a name
// without a value, which may itself be a token, goes too); the fragment
// is dropped. Webhook URLs carry credentials there
// (https://user:password@host/hook?token=…), and logs are read by more
// people than the flow files.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" || u.Scheme == "" {
		return redactUnparsed(raw)
	}
	var b strings.Builder
	b.WriteString(u.Scheme + "://")
	if u.User != nil {
		b.WriteString(Redacted + "@")
	}
	b.WriteString(u.Host)
	b.WriteString(u.EscapedPath())
	if u.ForceQuery && u.RawQuery == "" {
		b.WriteByte('?')
	}
	if u.RawQuery != "" {
		b.WriteByte('?')
		for i, part := range strings.Split(u.RawQuery, "&") {
			if i > 0 {
				b.WriteByte('&')
			}
			name, _, hasValue := strings.Cut(part, "=")
			if !hasValue {
				b.WriteString(Redacted)
				continue
			}
			b.WriteString(name + "=" + Redacted)
		}
	}
	return b.String()
}

// redactUnparsed redacts what url.Parse refuses: everything between the
// scheme and an '@' before the first '/', and everything from '?' or '#'.
func redactUnparsed(s string) string {
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		s = s[:i] + "?" + Redacted
	}
	start := 0
	if i := strings.Index(s, "://"); i >= 0 {
		start = i + 3
	}
	end := len(s)
	if i := strings.IndexAny(s[start:], "/?"); i >= 0 {
		end = start + i
	}
	if at := strings.LastIndex(s[start:end], "@"); at >= 0 {
		s = s[:start] + Redacted + s[start+at:]
	}
	return s
}

// Sign returns the signature header value for body sent at t.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + mac(secret, ts, body)
}

func mac(secret []byte, ts string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Verify checks a signature header against the raw body as a receiver
// would: the HMAC must match (constant time) and t must be within
// tolerance of now.
func Verify(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sig == "" {
		return fmt.Errorf("%w: want t=<unix>,v1=<hex>", ErrBadSignature)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: timestamp %s is off by %s", ErrBadSignature, ts, d)
	}
	if !hmac.Equal([]byte(mac(secret, ts, body)), []byte(sig)) {
		return ErrBadSignature
	}
	return nil
}
