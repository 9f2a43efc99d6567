package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
)

const adminToken = "admin-T0ken-0123456789"

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAdminRoutes(t *testing.T) {
	for _, tc := range []struct {
		name, token, method, path, auth string
		pprof                           bool
		code                            int
		reloaded                        bool
	}{
		{"no token configured", "", "POST", "/-/reload", "Bearer " + adminToken, false, 403, false},
		{"no header", adminToken, "POST", "/-/reload", "", false, 401, false},
		{"wrong token", adminToken, "POST", "/-/reload", "Bearer nope", false, 401, false},
		{"token prefix only", adminToken, "POST", "/-/reload", "Bearer " + adminToken[:5], false, 401, false},
		{"token plus more", adminToken, "POST", "/-/reload", "Bearer " + adminToken + "x", false, 401, false},
		{"basic auth", adminToken, "POST", "/-/reload", "Basic " + adminToken, false, 401, false},
		{"lower-case scheme", adminToken, "POST", "/-/reload", "bearer " + adminToken, false, 401, false},
		{"GET with token", adminToken, "GET", "/-/reload", "Bearer " + adminToken, false, 405, false},
		{"POST with token", adminToken, "POST", "/-/reload", "Bearer " + adminToken, false, 200, true},
		{"pprof without token", adminToken, "GET", "/debug/pprof/", "", true, 401, false},
		{"pprof, none configured", "", "GET", "/debug/pprof/", "", true, 403, false},
		{"pprof with token", adminToken, "GET", "/debug/pprof/", "Bearer " + adminToken, true, 200, false},
		{"pprof off", adminToken, "GET", "/debug/pprof/", "Bearer " + adminToken, false, 404, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reloaded := false
			mux := http.NewServeMux()
			adminRoutes(mux, tc.token, func() error { reloaded = true; return nil }, tc.pprof)
			req := httptest.NewRequest(tc.method, tc.path, nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, req)
			if rec.Code != tc.code || reloaded != tc.reloaded {
				t.Errorf("code %d, reloaded %v, body %q; want %d, %v", rec.Code, reloaded, rec.Body.String(), tc.code, tc.reloaded)
			}
			if rec.Code == 403 && !strings.Contains(rec.Body.String(), "-admin-token-file") {
				t.Errorf("403 body %q does not say how to enable it", rec.Body.String())
			}
		})
	}
}

func TestRunReloadSendsToken(t *testing.T) {
	mux := http.NewServeMux()
	reloads := 0
	adminRoutes(mux, adminToken, func() error { reloads++; return nil }, false)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	clearEnv(t)
	addr := strings.TrimPrefix(srv.URL, "http://")
	var out, errb bytes.Buffer
	if code := runReload([]string{"-http-addr", addr}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "401") {
		t.Errorf("without token: code %d, stderr %q", code, errb.String())
	}
	tokFile := writeFile(t, "token", adminToken+"\n")
	out.Reset()
	errb.Reset()
	if code := runReload([]string{"-http-addr", addr, "-admin-token-file", tokFile}, &out, &errb); code != 0 || out.String() != "reloaded\n" {
		t.Errorf("with token: code %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
	t.Setenv("ARIFLOW_ADMIN_TOKEN_FILE", tokFile)
	t.Setenv("ARIFLOW_HTTP_ADDR", addr)
	if code := runReload(nil, &out, &errb); code != 0 {
		t.Errorf("token from the environment: code %d, stderr %q", code, errb.String())
	}
	if reloads != 2 {
		t.Errorf("%d reloads, want 2", reloads)
	}
	if code := runReload([]string{"extra"}, io.Discard, io.Discard); code != 2 {
		t.Errorf("extra argument: code %d", code)
	}
}

func TestSecurityConfig(t *testing.T) {
	clearEnv(t)
	t.Setenv("ARIFLOW_ARI_PASSWORD", testPassword)
	policyFile := writeFile(t, "policy.yaml", "allow: {countries: [49]}\nendpoint_technologies: [PJSIP, Local]\nlocal_contexts: [agents]\n")
	t.Setenv("ARIFLOW_DIAL_POLICY", policyFile)
	t.Setenv("ARIFLOW_ADMIN_TOKEN_FILE", writeFile(t, "token", adminToken+"\r\n"))
	t.Setenv("ARIFLOW_REDIS_PASSWORD_FILE", writeFile(t, "redis", "redis-from-File\n"))
	t.Setenv("ARIFLOW_WEBHOOK_SECRET_FILE", writeFile(t, "hook", "webhook-secret-0123456789\n"))
	t.Setenv("ARIFLOW_WEBHOOK_ALLOW_HOSTS", "hooks.example.com, *.internal.example")
	c, err := parseConfig(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.AdminToken != adminToken || c.RedisPassword != "redis-from-File" || c.WebhookSecret != "webhook-secret-0123456789" {
		t.Errorf("secrets read: %q %q %q", c.AdminToken, c.RedisPassword, c.WebhookSecret)
	}
	if p := c.dialPolicy(); len(p.AllowCountries) != 1 || len(p.EndpointTechs) != 2 {
		t.Errorf("policy %+v", p)
	}
	o, err := c.redisOptions()
	if err != nil || o.Password != "redis-from-File" {
		t.Errorf("redis options: %+v, %v", o, err)
	}
	if w := c.webhookOptions(); len(w.AllowHosts) != 2 || string(w.Secret) != "webhook-secret-0123456789" {
		t.Errorf("webhook options %+v", w)
	}
	for k, v := range c.redacted() {
		if s, ok := v.(string); ok && (strings.Contains(s, adminToken) || strings.Contains(s, "redis-from-File")) {
			t.Errorf("redacted()[%s] holds a secret", k)
		}
	}
}

func TestRunBadSecurityConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"bad policy", map[string]string{"ARIFLOW_DIAL_POLICY": writeFile(t, "p.yaml", "allow:\n  countries: [999]\nconcurrent: x\n")},
			`p.yaml:2: allow.countries: "999" is not a country calling code`},
		{"missing policy", map[string]string{"ARIFLOW_DIAL_POLICY": "/nonexistent/policy.yaml"}, "dial policy: "},
		{"short admin token", map[string]string{"ARIFLOW_ADMIN_TOKEN_FILE": writeFile(t, "t", "short\n")}, "admin token file"},
		{"missing Redis password file", map[string]string{"ARIFLOW_REDIS_PASSWORD_FILE": "/nonexistent/pw"}, "Redis password file"},
		{"bad webhook host", map[string]string{"ARIFLOW_WEBHOOK_ALLOW_HOSTS": "a/b"}, "webhook allow-list"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t)
			t.Setenv("ARIFLOW_ARI_PASSWORD", testPassword)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			code, lines := runStderr(t)
			if code != 2 || len(lines) != 1 || !strings.HasPrefix(lines[0], "ariflow: configuration: ") || !strings.Contains(lines[0], tc.want) {
				t.Errorf("code %d, stderr %q; want 2 and %q", code, lines, tc.want)
			}
		})
	}
}

// A password inside the ARI or Redis URL appears in no error and no log
// line, whatever quotes it.
func TestSecretsRedacted(t *testing.T) {
	const urlPW = "url-Pa55:w@rd"
	ariURL := "http://ariflow:url-Pa55%3Aw%40rd@127.0.0.1:1/ari"
	validRunEnv(t, ariURL, testPassword)
	code, lines := runStderr(t, "-connect-timeout", "1s")
	all := strings.Join(lines, "\n")
	if code != 1 || strings.Contains(all, "url-Pa55") || strings.Contains(all, testPassword) {
		t.Errorf("code %d, stderr %q", code, all)
	}

	clearEnv(t)
	t.Setenv("ARIFLOW_ARI_PASSWORD", testPassword)
	t.Setenv("ARIFLOW_ARI_URL", ariURL)
	t.Setenv("ARIFLOW_REDIS_URL", "redis://default:redis-Pa55-w0rd@redis:6379/0")
	c, err := parseConfig(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.redacted()["ari_url"]; got != "http://ariflow@127.0.0.1:1/ari" {
		t.Errorf("ari_url = %q", got)
	}
	for _, format := range []string{"text", "json"} {
		c.LogFormat = format
		var buf bytes.Buffer
		log := newLogger(c, &buf)
		log.WithFields(logrus.Fields{"url": ariURL, "decoded": urlPW, "redis": c.RedisURL, "pw": testPassword, "quoted": `"` + urlPW + `"`}).
			Errorf("connecting to %s failed with %s", ariURL, testPassword)
		out := buf.String()
		for _, s := range []string{"url-Pa55", "redis-Pa55", testPassword} {
			if strings.Contains(out, s) {
				t.Errorf("%s log line holds %q: %s", format, s, out)
			}
		}
		if !strings.Contains(out, mask) {
			t.Errorf("%s log line: %s", format, out)
		}
	}
	const quoted = `x"y-long-secret`
	sc := newScrubber([]string{urlPW, quoted})
	for _, tc := range []struct{ in, want string }{
		{"a " + urlPW + " b", "a [redacted] b"},
		{`{"p":"x\"y-long-secret"}`, `{"p":"[redacted]"}`},
		{"p=x%22y-long-secret", "p=[redacted]"},
	} {
		if got := sc.String(tc.in); got != tc.want {
			t.Errorf("scrub(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := urlPassword("redis://u:p%zz@h/0"); got != "p%zz" {
		t.Errorf("urlPassword of an unparsable URL = %q", got)
	}
}

func TestValidateDialPolicy(t *testing.T) {
	dir := t.TempDir()
	flow := `name: premium
version: "1"
entry: ["+4930555999"]
start: a
blocks:
  a:
    type: TransferToPhoneNumber
    number: "+19005550123"
    branches: {Success: b, CallFailed: b, Timeout: b}
  b:
    type: TransferToAgent
    endpoint: "+4930111000"
`
	if err := os.WriteFile(filepath.Join(dir, "premium.yaml"), []byte(flow), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := runValidate([]string{dir}, &out, &errb)
	want := filepath.Join(dir, "premium.yaml") + `:6: block "a": number: refused by the dial policy: +19005550123 is a premium-rate number, not allowed by the policy (rule number-type)`
	if code != 1 || strings.TrimSpace(errb.String()) != want {
		t.Errorf("default policy: code %d, stderr %q, want %q", code, errb.String(), want)
	}
	pol := writeFile(t, "policy.yaml", "allow: {countries: [1], types: [premium-rate]}\n")
	errb.Reset()
	code = runValidate([]string{"-dial-policy", pol, dir}, &out, &errb)
	want = `:10: block "b": endpoint: refused by the dial policy: +4930111000 is in country code +49, not allowed by the policy (rule country)`
	if code != 1 || !strings.Contains(errb.String(), want) || strings.Contains(errb.String(), `"a"`) {
		t.Errorf("policy file: code %d, stderr %q, want %q", code, errb.String(), want)
	}
	errb.Reset()
	if code := runValidate([]string{"-dial-policy", writeFile(t, "bad.yaml", "nope: 1\n"), dir}, &out, &errb); code != 1 || !strings.Contains(errb.String(), `bad.yaml:1: unknown setting "nope"`) {
		t.Errorf("bad policy: code %d, stderr %q", code, errb.String())
	}
	// Endpoint technologies come from the policy.
	agent := strings.Replace(flow, `"+4930111000"`, "Local/100@agents", 1)
	agent = strings.Replace(agent, `"+19005550123"`, `"+4930123456"`, 1)
	if err := os.WriteFile(filepath.Join(dir, "premium.yaml"), []byte(agent), 0o600); err != nil {
		t.Fatal(err)
	}
	errb.Reset()
	if code := runValidate([]string{dir}, &out, &errb); code != 1 || !strings.Contains(errb.String(), `technology "Local" is not allowed`) {
		t.Errorf("Local by default: code %d, stderr %q", code, errb.String())
	}
	pol = writeFile(t, "local.yaml", "endpoint_technologies: [PJSIP, Local]\nlocal_contexts: [agents]\n")
	errb.Reset()
	if code := runValidate([]string{"-dial-policy", pol, dir}, &out, &errb); code != 0 {
		t.Errorf("Local named by the policy: code %d, stderr %q", code, errb.String())
	}
	// Local goes only into the contexts the policy names.
	errb.Reset()
	other := writeFile(t, "other.yaml", "endpoint_technologies: [PJSIP, Local]\nlocal_contexts: [sales]\n")
	if code := runValidate([]string{"-dial-policy", other, dir}, &out, &errb); code != 1 ||
		!strings.Contains(errb.String(), `block "b": endpoint: refused by the dial policy: Local endpoint "Local/100@agents" enters context "agents", which local_contexts does not name (named: sales) (rule local-context)`) {
		t.Errorf("Local into a context the policy does not name: code %d, stderr %q", code, errb.String())
	}
	// A flow's dial_policy narrows what the operator's allows: its Local
	// agent and a second, Austrian number of a list are reported.
	narrowed := strings.Replace(agent, "start: a\n", "start: a\ndial_policy: {allow: {countries: [49]}, endpoint_technologies: [PJSIP]}\n", 1)
	narrowed = strings.Replace(narrowed, `number: "+4930123456"`, `number: ["+4930123456", "+43800123456"]`, 1)
	if err := os.WriteFile(filepath.Join(dir, "premium.yaml"), []byte(narrowed), 0o600); err != nil {
		t.Fatal(err)
	}
	errb.Reset()
	code = runValidate([]string{"-dial-policy", pol, dir}, &out, &errb)
	for _, w := range []string{`:7: block "a": number 2: refused by the dial policy: +43800123456 is in country code +43, not allowed by the flow policy`, `:11: block "b": endpoint: refused by the dial policy: technology "Local" is not allowed (allowed: PJSIP)`} {
		if code != 1 || !strings.Contains(errb.String(), w) {
			t.Errorf("flow dial_policy: code %d, stderr %q, want %q", code, errb.String(), w)
		}
	}
}

// Secrets shorter than MinSecret are refused at start, each named with
// its length and the minimum: the scrubber would otherwise mask ordinary
// words ("ari" in every ARI URL, "ariflow", "asterisk").
func TestShortSecretsRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"ARI password", map[string]string{"ARIFLOW_ARI_PASSWORD": "ariflow"}, "ARI password: 7 bytes, at least 12 needed"},
		{"ARI URL password", map[string]string{"ARIFLOW_ARI_URL": "http://u:asterisk@127.0.0.1:1/ari"}, "password in the ARI URL: 8 bytes, at least 12 needed"},
		{"Redis URL password", map[string]string{"ARIFLOW_REDIS_URL": "redis://default:e@127.0.0.1:1/0"}, "password in the Redis URL: 1 bytes, at least 12 needed"},
		{"Redis password file", map[string]string{"ARIFLOW_REDIS_PASSWORD_FILE": writeFile(t, "pw", "x\n")}, "Redis password file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t)
			t.Setenv("ARIFLOW_ARI_PASSWORD", testPassword)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var stdout, stderr bytes.Buffer
			code := run([]string{"run"}, &stdout, &stderr)
			if code != 2 || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("code %d, stderr %q; want 2 and %q", code, stderr.String(), tc.want)
			}
		})
	}
}

// The scrubber masks values only: keys, levels and the rest of a line
// stay readable, also where a secret's text could occur in them; any
// URL's password is masked, configured or not; the text never grows by
// more than a mask per secret; and what comes out never holds a secret,
// not even spelt by a mask and the text around it.
func TestScrubberOnlyValues(t *testing.T) {
	const secret = "ari-asterisk-pw"
	sc := newScrubber([]string{secret})
	var buf bytes.Buffer
	log := logrus.New()
	log.SetOutput(&buf)
	log.SetFormatter(scrubFormatter{&logrus.TextFormatter{DisableTimestamp: true, DisableColors: true}, sc})
	log.WithFields(logrus.Fields{
		"ari-asterisk-pw": "a key is not a value", // a key, left as it is
		"url":             "http://127.0.0.1:1/ari/asterisk/info",
		"redis":           "redis://default:0ther-Pa55w0rd@redis:6379/0", // not a configured secret
		"pw":              secret,
	}).Error("request to http://ariflow:" + secret + "@127.0.0.1:1/ari failed")
	out := buf.String()
	for _, want := range []string{
		`ari-asterisk-pw="a key is not a value"`,
		`url="http://127.0.0.1:1/ari/asterisk/info"`,
		`redis="redis://default:[redacted]@redis:6379/0"`,
		`pw="[redacted]"`,
		`msg="request to http://ariflow:[redacted]@127.0.0.1:1/ari failed"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log line lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "0ther-Pa55w0rd") {
		t.Errorf("a URL's password in the log line: %s", out)
	}
	for _, tc := range []struct{ secret, in string }{
		{"xxxxxxxxxxxx", strings.Repeat("x", 8000)},            // the mask was made of the secret's letters
		{"xxxxxxxxxxxx", "xx" + "xxxxxxxxxxxx" + "xxxxx"},      // a mask and its neighbours spelling the secret
		{"ted]abcdefgh", "ted]abcdefgh" + "abcdefgh"},          // the secret straddling a mask's end
		{"[redacted]abc", "[redacted]abc[redacted]abcdefghij"}, // the secret starting with the mask
	} {
		got := newScrubber([]string{tc.secret}).String(tc.in)
		if strings.Contains(got, tc.secret) || len(got) > len(tc.in)+len(mask) {
			t.Errorf("secret %q: scrub(%.40q) = %.60q", tc.secret, tc.in, got)
		}
	}
}

// BenchmarkScrubFormat is the cost of a typical call log line (a
// transfer's, with its fields) through the scrubber and the text
// formatter.
func BenchmarkScrubFormat(b *testing.B) {
	f := scrubFormatter{&logrus.TextFormatter{DisableColors: true, FullTimestamp: true}, newScrubber([]string{"ari-asterisk-pw", "admin-token-0123456789"})}
	e := logrus.NewEntry(logrus.New()).WithFields(logrus.Fields{"call_id": "pbx-1796178169.3425", "channel": "pbx-1796178169.3425",
		"entry": "+4930557003", "flow": "chaos", "number": "+4930125002", "outbound": "ariflow-leg-e41d0a5553959ae311f3",
		"phase": "answered", "ring_time": 115 * time.Millisecond, "step": "key", "version": "1"})
	e.Message, e.Level, e.Time = "transfer", logrus.InfoLevel, time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.Format(e); err != nil {
			b.Fatal(err)
		}
	}
}
