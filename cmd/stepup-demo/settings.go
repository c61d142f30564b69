package main

import (
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"
)

// settings is the demo's configuration, read from the environment. The
// variable names are a contract: other tools drive the demo with them.
type settings struct {
	Addr         string        // STEPUP_ADDR
	BaseURL      string        // STEPUP_BASE_URL; redirect_uri = BaseURL + "/callback"
	Domain       string        // AUTH0_DOMAIN; "" = the embedded dev tenant
	ClientID     string        // AUTH0_CLIENT_ID
	ClientSecret string        // AUTH0_CLIENT_SECRET
	Audience     string        // AUTH0_AUDIENCE
	RedisURL     string        // REDIS_URL: one server, Cluster or Sentinel (redisstore.OpenURL)
	MaxAge       time.Duration // STEPUP_MAX_AGE
	SettingsAge  time.Duration // STEPUP_SETTINGS_MAX_AGE: how fresh an MFA the security page's changes need; default 5m
	Namespace    string        // STEPUP_API_CLAIM_NAMESPACE
	SealingKey   []byte        // STEPUP_SEALING_KEY (base64, 32 bytes); derived when unset
	RedisPrefix  string        // STEPUP_REDIS_PREFIX: key prefix in Redis; default "stepup-demo:"
	CAFile       string        // SSL_CERT_FILE: extra trusted CAs (PEM) for the tenant's certificate
	CADir        string        // STEPUP_DEMO_CA_DIR: where the embedded tenant's CA is kept; default os.UserConfigDir()/stepup-demo

	redisURL  string // REDIS_URL as opened: dial_timeout=2s added when absent
	redisName string // REDIS_URL for logs and the banner: no password, no query
}

// configError is a configuration the demo cannot run with; main prints it
// and exits with status 2.
type configError struct{ msg string }

func (e *configError) Error() string { return "stepup-demo: configuration: " + e.msg }

func badConfig(format string, args ...any) error {
	return &configError{msg: fmt.Sprintf(format, args...)}
}

func loadSettings(getenv func(string) string) (settings, error) {
	s := settings{
		Addr:         strings.TrimSpace(getenv("STEPUP_ADDR")),
		BaseURL:      strings.TrimRight(strings.TrimSpace(getenv("STEPUP_BASE_URL")), "/"),
		Domain:       strings.TrimSpace(getenv("AUTH0_DOMAIN")),
		ClientID:     strings.TrimSpace(getenv("AUTH0_CLIENT_ID")),
		ClientSecret: getenv("AUTH0_CLIENT_SECRET"),
		Audience:     strings.TrimSpace(getenv("AUTH0_AUDIENCE")),
		RedisURL:     strings.TrimSpace(getenv("REDIS_URL")),
		Namespace:    strings.TrimSpace(getenv("STEPUP_API_CLAIM_NAMESPACE")),
		RedisPrefix:  strings.TrimSpace(getenv("STEPUP_REDIS_PREFIX")),
		CAFile:       strings.TrimSpace(getenv("SSL_CERT_FILE")),
		CADir:        strings.TrimSpace(getenv("STEPUP_DEMO_CA_DIR")),
		MaxAge:       10 * time.Minute,
	}
	if s.Addr == "" {
		s.Addr = "127.0.0.1:8080"
	}
	if _, _, err := net.SplitHostPort(s.Addr); err != nil {
		return s, badConfig("STEPUP_ADDR=%q is not host:port: %v", s.Addr, err)
	}
	if s.BaseURL == "" {
		s.BaseURL = "http://" + s.Addr
	}
	u, err := url.Parse(s.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return s, badConfig("STEPUP_BASE_URL=%q must be an absolute http(s) URL with no path, e.g. https://intranet.example.com", s.BaseURL)
	}
	if v := strings.TrimSpace(getenv("STEPUP_MAX_AGE")); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return s, badConfig("STEPUP_MAX_AGE=%q must be a positive Go duration such as 10m or 90s", v)
		}
		s.MaxAge = d
	}
	s.SettingsAge = 5 * time.Minute
	if v := strings.TrimSpace(getenv("STEPUP_SETTINGS_MAX_AGE")); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return s, badConfig("STEPUP_SETTINGS_MAX_AGE=%q must be a positive Go duration such as 5m", v)
		}
		s.SettingsAge = d
	}
	if s.Namespace == "" {
		s.Namespace = "https://stepup.example/"
	}
	if nu, err := url.Parse(s.Namespace); err != nil || (nu.Scheme != "https" && nu.Scheme != "http") || nu.Host == "" ||
		!strings.HasSuffix(s.Namespace, "/") || strings.ContainsAny(s.Namespace, " \t\r\n") {
		return s, badConfig("STEPUP_API_CLAIM_NAMESPACE=%q must be an http(s) URL ending in /, such as https://stepup.example/ (the Action adds acr, amr and auth_time to it)", s.Namespace)
	}
	if s.Domain != "" {
		if strings.Contains(s.Domain, "://") || strings.ContainsAny(s.Domain, "/?#") {
			return s, badConfig("AUTH0_DOMAIN=%q must be a host name with an optional port, such as example.eu.auth0.com (it is spoken to over https)", s.Domain)
		}
		if s.ClientID == "" || s.ClientSecret == "" {
			return s, badConfig("AUTH0_DOMAIN is set, so AUTH0_CLIENT_ID and AUTH0_CLIENT_SECRET must be set too (the application's credentials, Settings tab of the Auth0 dashboard)")
		}
	} else if s.ClientID != "" || s.ClientSecret != "" {
		return s, badConfig("AUTH0_CLIENT_ID or AUTH0_CLIENT_SECRET is set without AUTH0_DOMAIN; set AUTH0_DOMAIN too, or unset them to use the embedded dev tenant")
	}
	if v := strings.TrimSpace(getenv("STEPUP_SEALING_KEY")); v != "" {
		k, err := base64.StdEncoding.DecodeString(v)
		if err != nil || len(k) != 32 {
			return s, badConfig("STEPUP_SEALING_KEY must be 32 bytes in standard base64 (e.g. the output of: head -c32 /dev/urandom | base64)")
		}
		s.SealingKey = k
	}
	if s.RedisURL != "" {
		// Parsed for good by redisstore.OpenURL (one server, Cluster or
		// Sentinel, as its query says); here only what the banner needs.
		u, err := url.Parse(s.RedisURL)
		if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "unix") {
			return s, badConfig("REDIS_URL=%q is not a Redis URL such as redis://127.0.0.1:6379/0 (redis://, rediss:// or unix://)", redactURL(s.RedisURL))
		}
		q := u.Query()
		if !q.Has("dial_timeout") {
			q.Set("dial_timeout", "2s") // a Redis that is down must not hang sign-ins
			u.RawQuery = q.Encode()
		}
		s.redisURL = u.String()
		s.redisName = u.Scheme + "://" + u.Host + u.Path
		switch {
		case q.Has("master_name"):
			s.redisName = fmt.Sprintf("sentinel %s (master %s)", strings.Join(append([]string{u.Host}, q["addr"]...), ","), q.Get("master_name"))
		case q.Has("addr") || q.Has("cluster"):
			s.redisName = "cluster " + strings.Join(append([]string{u.Host}, q["addr"]...), ",")
		}
	}
	if s.RedisPrefix == "" {
		s.RedisPrefix = "stepup-demo:"
	}
	if strings.ContainsAny(s.RedisPrefix, "{} \t\r\n") {
		return s, badConfig("STEPUP_REDIS_PREFIX=%q must not contain braces or spaces", s.RedisPrefix)
	}
	if s.CAFile != "" {
		pem, err := os.ReadFile(s.CAFile)
		if err != nil {
			return s, badConfig("SSL_CERT_FILE: %v", err)
		}
		if !strings.Contains(string(pem), "-----BEGIN CERTIFICATE-----") {
			return s, badConfig("SSL_CERT_FILE=%q holds no PEM certificate", s.CAFile)
		}
	}
	return s, nil
}

// sealingKey returns the key that seals tokens at rest. Instances that share
// a Redis must share it: without STEPUP_SEALING_KEY, it is derived from the
// client secret, which they share anyway. (A production service would set a
// key of its own and rotate it; this keeps the demo zero-configuration.)
func (s settings) sealingKey(clientSecret string) ([]byte, error) {
	if s.SealingKey != nil {
		return s.SealingKey, nil
	}
	return hkdf.Key(sha256.New, []byte(clientSecret), nil, "stepup-demo token sealing v1", 32)
}

// redactURL drops the user info of a URL for messages.
func redactURL(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	return "(unparsable)"
}
