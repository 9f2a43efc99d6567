package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const testPassword = "s3cret-Pa55word"

// clearEnv unsets every ARIFLOW_* variable for the test (t.Setenv restores
// them afterwards), so the developer's environment cannot leak in.
func clearEnv(t *testing.T) {
	t.Helper()
	names := []string{
		"ARIFLOW_ARI_URL", "ARIFLOW_ARI_USER", "ARIFLOW_ARI_PASSWORD", "ARIFLOW_ARI_PASSWORD_FILE",
		"ARIFLOW_APP", "ARIFLOW_REDIS_URL", "ARIFLOW_FLOWS", "ARIFLOW_LOG_LEVEL", "ARIFLOW_LOG_FORMAT",
		"ARIFLOW_HTTP_ADDR", "ARIFLOW_DIAL_TEMPLATE", "ARIFLOW_DEFAULT_REGION", "ARIFLOW_DTMF_DELAY",
		"ARIFLOW_CONNECT_TIMEOUT", "ARIFLOW_DRAIN_TIMEOUT",
	}
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "ARIFLOW_") {
			names = append(names, k)
		}
	}
	for _, k := range names {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
}

func TestParseConfigDefaults(t *testing.T) {
	clearEnv(t)
	t.Setenv("ARIFLOW_ARI_PASSWORD", testPassword)
	var stderr bytes.Buffer
	c, err := parseConfig(nil, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	want := config{
		ARIURL:         "http://127.0.0.1:8088/ari",
		ARIUser:        "ariflow",
		ARIPassword:    testPassword,
		App:            "ariflow",
		RedisURL:       "redis://127.0.0.1:6379/0",
		FlowsPath:      "flows/examples",
		LogLevel:       "info",
		LogFormat:      "text",
		HTTPAddr:       "127.0.0.1:8090",
		DialTemplate:   "PJSIP/{number}@trunk",
		DialVia:        "ari",
		DTMFDelay:      500 * time.Millisecond,
		LegAhead:       true,
		ConnectTimeout: 10 * time.Second,
		LeaseTTL:       800 * time.Millisecond,
		MaxExternal:    32 << 10,
		maxExternal:    "32768",
		observeConfig: observeConfig{TraceNumbers: "masked", TraceInviteHeader: "traceparent",
			RecordsStream: "ariflow:records", RecordsMaxLen: 100000, recordsMaxLen: "100000"},
	}
	if *c != want {
		t.Errorf("defaults:\n got %+v\nwant %+v", *c, want)
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr %q", stderr.String())
	}
}

func TestParseConfigEnvAndFlags(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "ari_password")
	if err := os.WriteFile(pwFile, []byte(testPassword+"\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"ARIFLOW_ARI_URL":            "https://pbx.example:8089/ari",
		"ARIFLOW_ARI_USER":           "flows",
		"ARIFLOW_ARI_PASSWORD":       "ignored-when-a-file-is-given",
		"ARIFLOW_ARI_PASSWORD_FILE":  pwFile,
		"ARIFLOW_APP":                "ivr",
		"ARIFLOW_REDIS_URL":          "redis://redis:6379/2",
		"ARIFLOW_FLOWS":              "/etc/ariflow/flows",
		"ARIFLOW_LOG_LEVEL":          "debug",
		"ARIFLOW_LOG_FORMAT":         "json",
		"ARIFLOW_HTTP_ADDR":          "0.0.0.0:8090",
		"ARIFLOW_DIAL_TEMPLATE":      "PJSIP/trunk/sip:{number}@carrier.example",
		"ARIFLOW_DIAL_VIA":           "pbx",
		"ARIFLOW_DEFAULT_REGION":     "DE",
		"ARIFLOW_DTMF_DELAY":         "1s",
		"ARIFLOW_LEG_AHEAD":          "false",
		"ARIFLOW_PBX_BACK_ALWAYS":    "true",
		"ARIFLOW_CONNECT_TIMEOUT":    "3s",
		"ARIFLOW_DRAIN_TIMEOUT":      "30s",
		"ARIFLOW_MAX_EXTERNAL_BYTES": "4096",
	} {
		t.Setenv(k, v)
	}
	// Flags win over the environment.
	c, err := parseConfig([]string{"-app", "ivr2", "-dtmf-delay", "0"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := config{
		ARIURL:          "https://pbx.example:8089/ari",
		ARIUser:         "flows",
		ARIPassword:     testPassword, // the file's, without the line end
		ARIPasswordFile: pwFile,
		App:             "ivr2",
		RedisURL:        "redis://redis:6379/2",
		FlowsPath:       "/etc/ariflow/flows",
		LogLevel:        "debug",
		LogFormat:       "json",
		HTTPAddr:        "0.0.0.0:8090",
		DialTemplate:    "PJSIP/trunk/sip:{number}@carrier.example",
		DialVia:         "pbx",
		PBXBackAlways:   true,
		Region:          "DE",
		DTMFDelay:       0,
		ConnectTimeout:  3 * time.Second,
		DrainTimeout:    30 * time.Second,
		LeaseTTL:        800 * time.Millisecond,
		MaxExternal:     4096,
		maxExternal:     "4096",
		observeConfig: observeConfig{TraceNumbers: "masked", TraceInviteHeader: "traceparent",
			RecordsStream: "ariflow:records", RecordsMaxLen: 100000, recordsMaxLen: "100000"},
	}
	if *c != want {
		t.Errorf("config:\n got %+v\nwant %+v", *c, want)
	}
}

func TestParseConfigErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-file")
	emptyFile := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(emptyFile, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string // in the error text
	}{
		{"ARI URL scheme", nil, []string{"-ari-url", "ws://127.0.0.1:8088/ari"}, `ARI URL "ws://127.0.0.1:8088/ari" must be http(s)://host:port/ari`},
		{"ARI URL without host", map[string]string{"ARIFLOW_ARI_URL": "http:///ari"}, nil, `ARI URL "http:///ari"`},
		{"ARI URL unparsable", nil, []string{"-ari-url", "http://[::1/ari"}, `ARI URL "http://[::1/ari"`},
		{"no password", map[string]string{"ARIFLOW_ARI_PASSWORD": ""}, nil, "no ARI password: set ARIFLOW_ARI_PASSWORD or ARIFLOW_ARI_PASSWORD_FILE"},
		{"password unset", map[string]string{"ARIFLOW_ARI_PASSWORD": "-"}, nil, "no ARI password"},
		{"empty password file", map[string]string{"ARIFLOW_ARI_PASSWORD_FILE": emptyFile}, nil, "no ARI password"},
		{"password file missing", nil, []string{"-ari-password-file", missing}, "ARI password file: open " + missing + ": no such file or directory"},
		{"empty user", nil, []string{"-ari-user", ""}, "ARI user is empty"},
		{"bad app", nil, []string{"-app", "a,b"}, `app name "a,b" is not a plain name`},
		{"Redis URL scheme", nil, []string{"-redis-url", "http://127.0.0.1:6379"}, `Redis URL "http://127.0.0.1:6379": `},
		{"Redis URL db", map[string]string{"ARIFLOW_REDIS_URL": "redis://127.0.0.1:6379/x"}, nil, `Redis URL "redis://127.0.0.1:6379/x": `},
		{"log level", nil, []string{"-log-level", "verbose"}, `log level "verbose": use trace, debug, info, warn or error`},
		{"log format", map[string]string{"ARIFLOW_LOG_FORMAT": "xml"}, nil, `log format "xml": use text or json`},
		{"dial template without number", nil, []string{"-dial-template", "PJSIP/trunk"}, `dial template "PJSIP/trunk" must be like PJSIP/{number}@trunk`},
		{"dial template with two numbers", nil, []string{"-dial-template", "PJSIP/{number}@{number}"}, `dial template "PJSIP/{number}@{number}"`},
		{"dial template with &", nil, []string{"-dial-template", "PJSIP/{number}@trunk&PJSIP/{x}"}, `dial template "PJSIP/{number}@trunk&PJSIP/{x}"`},
		{"dial template with comma", map[string]string{"ARIFLOW_DIAL_TEMPLATE": "PJSIP/{number}@trunk,30"}, nil, `dial template "PJSIP/{number}@trunk,30"`},
		{"dial template with space", nil, []string{"-dial-template", "PJSIP/{number} @trunk"}, `dial template "PJSIP/{number} @trunk"`},
		{"dial template without technology", nil, []string{"-dial-template", "{number}@trunk"}, `dial template "{number}@trunk"`},
		{"dial via neither ari nor pbx", nil, []string{"-dial-via", "asterisk"}, `dial-via "asterisk": want ari or pbx`},
		{"negative DTMF delay", nil, []string{"-dtmf-delay", "-1s"}, "DTMF delay -1s must be between 0 and 10s"},
		{"long DTMF delay", map[string]string{"ARIFLOW_DTMF_DELAY": "11s"}, nil, "DTMF delay 11s must be between 0 and 10s"},
		{"DTMF delay env not a duration", map[string]string{"ARIFLOW_DTMF_DELAY": "abc"}, nil, `ARIFLOW_DTMF_DELAY="abc" is not a duration (like 500ms or 10s)`},
		{"leg ahead env not a boolean", map[string]string{"ARIFLOW_LEG_AHEAD": "sometimes"}, nil, `ARIFLOW_LEG_AHEAD="sometimes" is not true or false`},
		{"connect timeout env not a duration", map[string]string{"ARIFLOW_CONNECT_TIMEOUT": "10"}, nil, `ARIFLOW_CONNECT_TIMEOUT="10" is not a duration`},
		{"drain timeout env not a duration", map[string]string{"ARIFLOW_DRAIN_TIMEOUT": "soon"}, nil, `ARIFLOW_DRAIN_TIMEOUT="soon" is not a duration`},
		{"zero connect timeout", nil, []string{"-connect-timeout", "0s"}, "connect timeout 0s must be positive"},
		{"positional argument", nil, []string{"-log-level", "debug", "extra"}, `unexpected argument "extra"`},
		{"unknown flag", nil, []string{"-nope"}, "flag provided but not defined: -nope"},
		{"bad duration flag", nil, []string{"-dtmf-delay", "abc"}, `invalid value "abc" for flag -dtmf-delay`},
		{"max external bytes too small", nil, []string{"-max-external-bytes", "10"}, `max external bytes "10": want a whole number from 1024 to 1048576`},
		{"max external bytes not a number", map[string]string{"ARIFLOW_MAX_EXTERNAL_BYTES": "32k"}, nil, `max external bytes "32k"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t)
			t.Setenv("ARIFLOW_ARI_PASSWORD", testPassword)
			for k, v := range tc.env {
				t.Setenv(k, v)
				if v == "-" {
					os.Unsetenv(k)
				}
			}
			var stderr bytes.Buffer
			c, err := parseConfig(tc.args, &stderr)
			if err == nil {
				t.Fatalf("no error; config %+v", c)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), testPassword) || strings.Contains(stderr.String(), testPassword) {
				t.Errorf("the password leaks: error %q, stderr %q", err, stderr.String())
			}
		})
	}
}

// Every problem is reported at once, not only the first.
func TestParseConfigAllErrors(t *testing.T) {
	clearEnv(t)
	_, err := parseConfig([]string{"-log-level", "loud", "-log-format", "xml", "-dial-template", "x"}, io.Discard)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"no ARI password", `log level "loud"`, `log format "xml"`, `dial template "x"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestConfigRedacted(t *testing.T) {
	clearEnv(t)
	t.Setenv("ARIFLOW_ARI_PASSWORD", testPassword)
	t.Setenv("ARIFLOW_REDIS_URL", "redis://default:redis-Pa55-w0rd@redis:6379/0")
	c, err := parseConfig(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	fields := c.redacted()
	for k, v := range fields {
		s := fmt.Sprint(v)
		if strings.Contains(s, testPassword) || strings.Contains(s, "redis-Pa55") {
			t.Errorf("redacted()[%q] = %q holds a password", k, s)
		}
	}
	if got := fields["redis"]; got != "redis://default@redis:6379/0" {
		t.Errorf("redis = %q", got)
	}
	for _, k := range []string{"ari_url", "ari_user", "app", "flows", "http", "dial_template"} {
		if _, ok := fields[k]; !ok {
			t.Errorf("redacted() lacks %q", k)
		}
	}
}

// runStderr runs "ariflow run args..." and returns the exit code and the
// lines it wrote to stderr.
func runStderr(t *testing.T, args ...string) (int, []string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(append([]string{"run"}, args...), &stdout, &stderr)
	if stdout.Len() != 0 {
		t.Errorf("stdout %q", stdout.String())
	}
	if strings.Contains(stderr.String(), testPassword) {
		t.Errorf("stderr holds the password: %q", stderr.String())
	}
	return code, strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
}

func TestRunBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"no password", nil, nil, "no ARI password"},
		{"several problems", map[string]string{"ARIFLOW_ARI_PASSWORD": testPassword}, []string{"-log-level", "loud", "-dial-template", "x", "-ari-url", "ftp://x"}, `log level "loud"`},
		{"bad duration env", map[string]string{"ARIFLOW_ARI_PASSWORD": testPassword, "ARIFLOW_DTMF_DELAY": "abc"}, nil, `ARIFLOW_DTMF_DELAY="abc"`},
		{"positional argument", map[string]string{"ARIFLOW_ARI_PASSWORD": testPassword}, []string{"extra"}, `unexpected argument "extra"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			code, lines := runStderr(t, tc.args...)
			if code != 2 || len(lines) != 1 || !strings.HasPrefix(lines[0], "ariflow: configuration: ") || !strings.Contains(lines[0], tc.want) {
				t.Errorf("code %d, stderr %q; want 2 and one line \"ariflow: configuration: ...%s...\"", code, lines, tc.want)
			}
		})
	}
}

func TestRunHelp(t *testing.T) {
	clearEnv(t)
	var stdout, stderr bytes.Buffer
	if code := run([]string{"run", "-h"}, &stdout, &stderr); code != 0 || !strings.Contains(stderr.String(), "-ari-url") {
		t.Errorf("code %d, stderr %q", code, stderr.String())
	}
}

// validRunEnv is a complete configuration; the tests point it at servers
// that are down or refuse.
func validRunEnv(t *testing.T, ariURL, password string) {
	t.Helper()
	clearEnv(t)
	t.Setenv("ARIFLOW_ARI_PASSWORD", password)
	t.Setenv("ARIFLOW_ARI_URL", ariURL)
	t.Setenv("ARIFLOW_FLOWS", "../../flows/examples")
	t.Setenv("ARIFLOW_REDIS_URL", "redis://127.0.0.1:1/0")
	t.Setenv("ARIFLOW_HTTP_ADDR", "127.0.0.1:0")
}

func TestRunARIUnreachable(t *testing.T) {
	validRunEnv(t, "http://127.0.0.1:1/ari", testPassword)
	start := time.Now()
	code, lines := runStderr(t, "-connect-timeout", "2s")
	if code != 1 || len(lines) != 1 || !strings.HasPrefix(lines[0], "ariflow: ARI unreachable") {
		t.Errorf("code %d, stderr %q; want 1 and one line \"ariflow: ARI unreachable ...\"", code, lines)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s with -connect-timeout 2s", d)
	}
}

// fakeARI answers GET /ari/asterisk/info like Asterisk does for user
// ariflow with password testPassword.
func fakeARI(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/ari/asterisk/info" {
			http.NotFound(w, r)
			return
		}
		user, pass, ok := r.BasicAuth()
		if !ok || user != "ariflow" || pass != testPassword {
			w.Header().Set("WWW-Authenticate", `Basic realm="Asterisk REST Interface"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprintln(w, `{"error":"Authentication required"}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintln(w, `{"system":{"version":"22.0.0","entity_id":"02:00:00:a1:f1:01"}}`)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/ari"
}

func TestRunARIWrongPassword(t *testing.T) {
	validRunEnv(t, fakeARI(t), "wrong-password")
	code, lines := runStderr(t, "-connect-timeout", "2s")
	if code != 1 || len(lines) != 1 || !strings.HasPrefix(lines[0], "ariflow: ARI refused the credentials") || !strings.Contains(lines[0], `user "ariflow"`) {
		t.Errorf("code %d, stderr %q; want 1 and one line \"ariflow: ARI refused the credentials ...\"", code, lines)
	}
	if strings.Contains(strings.Join(lines, "\n"), "wrong-") {
		t.Errorf("stderr holds the password: %q", lines)
	}
}

func TestRunRedisDown(t *testing.T) {
	validRunEnv(t, fakeARI(t), testPassword)
	start := time.Now()
	code, lines := runStderr(t, "-connect-timeout", "2s")
	if code != 1 || len(lines) != 1 || !strings.HasPrefix(lines[0], "ariflow: Redis at redis://127.0.0.1:1/0: ") {
		t.Errorf("code %d, stderr %q; want 1 and one line \"ariflow: Redis at ...\"", code, lines)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s with -connect-timeout 2s", d)
	}
}
