package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
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
	fs.StringVar(&c.DialPolicyFile, "dial-policy", envDefault("ARIFLOW_DIAL_POLICY", ""), "dial-out policy file ($ARIFLOW_DIAL_POLICY); default: the built-in policy (README, Security)")
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
		pw, err := readSecretFile(c.RedisPasswordFile, "Redis password", 1)
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
	for _, s := range []string{c.ARIPassword, c.RedisPassword, c.AdminToken, c.WebhookSecret,
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

// scrub replaces each secret in s, also in the forms a log line or an
// error may quote it in (JSON-escaped, URL-escaped), with "xxxxx".
func scrub(s string, secrets []string) string {
	var forms []string
	for _, sec := range secrets {
		j, _ := json.Marshal(sec)
		forms = append(forms, sec, string(j[1:len(j)-1]), url.PathEscape(sec), url.QueryEscape(sec), url.UserPassword("u", sec).String()[2:])
	}
	// Longest first, so a secret containing another is replaced whole.
	sort.Slice(forms, func(i, j int) bool { return len(forms[i]) > len(forms[j]) })
	for _, f := range forms {
		if f != "" {
			s = strings.ReplaceAll(s, f, "xxxxx")
		}
	}
	return s
}

// scrubFormatter formats a log entry, then scrubs every secret from it:
// whatever a library or an error puts in a field, the line carries none.
type scrubFormatter struct {
	inner   logrus.Formatter
	secrets []string
}

func (f scrubFormatter) Format(e *logrus.Entry) ([]byte, error) {
	b, err := f.inner.Format(e)
	if err != nil || len(f.secrets) == 0 {
		return b, err
	}
	return []byte(scrub(string(b), f.secrets)), nil
}
