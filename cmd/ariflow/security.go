package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"

	"github.com/ariflow/ariflow/controller"
	"github.com/ariflow/ariflow/internal/webhook"
	"github.com/ariflow/ariflow/policy"
)

// securityFlags registers the settings of issue 10 (dial policy, admin
// token, secrets from files, webhook client) next to the others.
func (c *config) securityFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.DialPolicyFile, "dial-policy", envDefault("ARIFLOW_DIAL_POLICY", ""), "dial-out policy file ($ARIFLOW_DIAL_POLICY); default: the built-in policy (docs/security.md)")
	fs.StringVar(&c.AdminTokenFile, "admin-token-file", envDefault("ARIFLOW_ADMIN_TOKEN_FILE", ""), "file with the bearer token for /-/reload and /debug/pprof/ ($ARIFLOW_ADMIN_TOKEN_FILE); without it, reload over HTTP is refused")
	fs.StringVar(&c.RedisPasswordFile, "redis-password-file", envDefault("ARIFLOW_REDIS_PASSWORD_FILE", ""), "file with the Redis password, instead of one in the URL ($ARIFLOW_REDIS_PASSWORD_FILE)")
	fs.StringVar(&c.WebhookSecretFile, "webhook-secret-file", envDefault("ARIFLOW_WEBHOOK_SECRET_FILE", ""), "file with the secret that signs webhook requests ($ARIFLOW_WEBHOOK_SECRET_FILE)")
	fs.StringVar(&c.WebhookAllowHosts, "webhook-allow-hosts", envDefault("ARIFLOW_WEBHOOK_ALLOW_HOSTS", ""), "comma-separated hosts webhooks may call, like hooks.example.com,*.internal.example ($ARIFLOW_WEBHOOK_ALLOW_HOSTS); empty: any")
	fs.StringVar(&c.WebhookCAFile, "webhook-ca-file", envDefault("ARIFLOW_WEBHOOK_CA_FILE", ""), "PEM file of extra CAs for webhook servers ($ARIFLOW_WEBHOOK_CA_FILE)")
	c.maxExternal = envDefault("ARIFLOW_MAX_EXTERNAL_BYTES", strconv.Itoa(controller.DefaultMaxExternal))
	fs.Func("max-external-bytes", fmt.Sprintf("bytes (keys and values) a call keeps of a webhook's answer as $.External, %d to %d; a larger answer takes Error ($ARIFLOW_MAX_EXTERNAL_BYTES; default %d)", minMaxExternal, maxMaxExternal, controller.DefaultMaxExternal),
		func(v string) error { c.maxExternal = v; return nil })
}

// Bounds of -max-external-bytes: a webhook's answer is read up to 1 MiB.
const (
	minMaxExternal = 1 << 10
	maxMaxExternal = 1 << 20
)

// loadSecurity reads the files the security settings name; every problem
// is reported, as configuration errors (exit 2).
func (c *config) loadSecurity() error {
	var errs []error
	if c.DialPolicyFile != "" {
		p, err := policy.Load(c.DialPolicyFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("dial policy: %w", err))
		}
		c.Policy = p
	}
	if c.AdminTokenFile != "" {
		tok, err := readSecretFile(c.AdminTokenFile, "admin token", 16)
		if err != nil {
			errs = append(errs, err)
		}
		c.AdminToken = tok
	}
	if c.RedisPasswordFile != "" {
		pw, err := readSecretFile(c.RedisPasswordFile, "Redis password", MinSecret)
		if err != nil {
			errs = append(errs, err)
		}
		c.RedisPassword = pw
	}
	if c.WebhookSecretFile != "" {
		s, err := webhook.ReadSecretFile(c.WebhookSecretFile)
		if err != nil {
			errs = append(errs, err)
		}
		c.WebhookSecret = string(s)
	}
	if _, err := webhook.New(c.webhookOptions()); err != nil {
		errs = append(errs, err)
	}
	n, err := strconv.Atoi(c.maxExternal)
	if err != nil || n < minMaxExternal || n > maxMaxExternal {
		errs = append(errs, fmt.Errorf("max external bytes %q: want a whole number from %d to %d", c.maxExternal, minMaxExternal, maxMaxExternal))
	}
	c.MaxExternal = n
	errs = append(errs, c.checkSecretLengths())
	return errors.Join(errs...)
}

func readSecretFile(path, what string, min int) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s file: %w", what, err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if len(s) < min {
		return "", fmt.Errorf("%s file %s: %d bytes, at least %d needed", what, path, len(s), min)
	}
	return s, nil
}

// dialPolicy is the policy file's, or the documented default.
func (c *config) dialPolicy() *policy.Policy {
	if c.Policy != nil {
		return c.Policy
	}
	return policy.Default()
}

// webhookOptions are the options for webhook.New.
func (c *config) webhookOptions() webhook.Options {
	o := webhook.Options{CAFile: c.WebhookCAFile}
	if c.WebhookSecret != "" {
		o.Secret = []byte(c.WebhookSecret)
	}
	for _, h := range strings.Split(c.WebhookAllowHosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			o.AllowHosts = append(o.AllowHosts, h)
		}
	}
	return o
}

// redisOptions are the Redis URL's options, with the password from its
// file when one is given (the file wins over a password in the URL).
func (c *config) redisOptions() (*redis.UniversalOptions, error) {
	o, err := redisOptions(c.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("Redis URL %q: %s", redactURL(c.RedisURL), redactErr(err, c.RedisURL))
	}
	if c.RedisPassword != "" {
		o.Password = c.RedisPassword
	}
	return o, nil
}

// secrets are every secret value the configuration holds, for scrubbing
// them from log lines and errors whatever quotes them.
func (c *config) secrets() []string {
	var out []string
	for _, s := range []string{c.ARIPassword, c.RedisPassword, c.AdminToken, c.WebhookSecret, c.traceHashKey,
		urlPassword(c.ARIURL), urlPassword(c.RedisURL)} {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

func urlPassword(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.User != nil {
		pw, _ := u.User.Password()
		return pw
	}
	// Unparsable: take what sits between "user:" and "@" anyway.
	if m := userinfoPasswordRE.FindStringSubmatch(raw); m != nil {
		return m[1]
	}
	return ""
}

// MinSecret is the shortest password or token accepted, in bytes. A
// shorter one is guessable, and is too likely to be an ordinary word of a
// log line (asterisk, ariflow, ari) to be masked wherever it appears.
const MinSecret = 12

// mask stands for a secret in logs and errors. It is shorter than
// MinSecret, so it never contains what it masks.
const mask = "[redacted]"

// userinfoAnyRE finds a URL's user:password@ anywhere in a text.
var userinfoAnyRE = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://[^\s/?#@:"'<>]*):[^\s/?#@"'<>]*@`)

// scrubber masks secrets in the values of log lines and in errors: each
// configured secret (also JSON- and URL-escaped), and the password of any
// URL's user info, configured or not. Keys, levels and times are never
// touched, so a secret can only be masked where it could appear.
type scrubber struct {
	forms []string // every form of every secret, longest first
	r     *strings.Replacer
}

func newScrubber(secrets []string) *scrubber {
	var forms []string
	for _, sec := range secrets {
		j, _ := json.Marshal(sec)
		forms = append(forms, sec, string(j[1:len(j)-1]), url.PathEscape(sec), url.QueryEscape(sec), url.UserPassword("u", sec).String()[2:])
	}
	forms = slices.DeleteFunc(forms, func(f string) bool { return f == "" })
	// Longest first: a secret containing another is masked whole (the
	// Replacer tries its pairs in order at each position).
	sort.SliceStable(forms, func(i, j int) bool { return len(forms[i]) > len(forms[j]) })
	forms = slices.Compact(forms)
	pairs := make([]string, 0, 2*len(forms))
	for _, f := range forms {
		pairs = append(pairs, f, mask)
	}
	return &scrubber{forms: forms, r: strings.NewReplacer(pairs...)}
}

// String masks s in one pass (what a mask replaced is never looked at
// again, so the text cannot grow past one mask per secret). Should the
// masks and the text around them still spell a secret, all of s goes.
func (sc *scrubber) String(s string) string {
	if strings.Contains(s, "://") && strings.Contains(s, "@") { // what userinfoAnyRE needs, found faster
		s = userinfoAnyRE.ReplaceAllString(s, "${1}:"+mask+"@")
	}
	if !slices.ContainsFunc(sc.forms, func(f string) bool { return strings.Contains(s, f) }) {
		return s // nothing to mask: the Replacer would copy s as it is
	}
	s = sc.r.Replace(s)
	for _, f := range sc.forms {
		if strings.Contains(s, f) {
			return mask
		}
	}
	return s
}

// scrubFormatter scrubs a log entry's message and field values, then
// formats it: whatever a library or an error puts in a field, the line
// carries no secret.
type scrubFormatter struct {
	inner logrus.Formatter
	sc    *scrubber
}

func (f scrubFormatter) Format(e *logrus.Entry) ([]byte, error) {
	msg := f.sc.String(e.Message)
	var data logrus.Fields // a copy, made once a value needs masking
	for k, v := range e.Data {
		text, ok := v.(string)
		if !ok {
			text = fmt.Sprint(v) // an error's text, a URL, a number
		}
		if clean := f.sc.String(text); clean != text {
			if data == nil {
				data = maps.Clone(e.Data)
			}
			data[k] = clean
		}
	}
	if msg == e.Message && data == nil {
		return f.inner.Format(e) // nothing masked (nearly every line)
	}
	out := *e
	out.Message = msg
	if data != nil {
		out.Data = data
	}
	return f.inner.Format(&out)
}

// checkSecretLengths refuses secrets shorter than MinSecret, naming each.
func (c *config) checkSecretLengths() error {
	var errs []error
	for _, s := range []struct{ what, value string }{
		{"ARI password", c.ARIPassword},
		{"password in the ARI URL", urlPassword(c.ARIURL)},
		{"Redis password", c.RedisPassword},
		{"password in the Redis URL", urlPassword(c.RedisURL)},
	} {
		if s.value != "" && len(s.value) < MinSecret {
			errs = append(errs, fmt.Errorf("%s: %d bytes, at least %d needed (shorter ones are guessable, and too common a string to mask in the logs)", s.what, len(s.value), MinSecret))
		}
	}
	return errors.Join(errs...)
}
