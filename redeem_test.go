package stepup

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func jsonResponse(status int, body string) *http.Response {
	return &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(strings.NewReader(body))}
}

// redeemCode sends what x/oauth2's Exchange sent, in one POST, and decodes
// the answer once; errors are *TenantError with the tenant's code.
func TestRedeemCode(t *testing.T) {
	const answer = `{"access_token":"at","token_type":"Bearer","refresh_token":"rt","id_token":"a.b.c","scope":"openid profile","expires_in":86400}`
	for _, tc := range []struct {
		name   string
		method string
		check  func(t *testing.T, r *http.Request, form url.Values)
	}{
		{"client_secret_post", AuthClientSecretPost, func(t *testing.T, r *http.Request, form url.Values) {
			if form.Get("client_secret") != "secret-1" || r.Header.Get("Authorization") != "" {
				t.Errorf("client_secret_post: form %v, Authorization %q", form, r.Header.Get("Authorization"))
			}
		}},
		{"client_secret_basic", AuthClientSecretBasic, func(t *testing.T, r *http.Request, form url.Values) {
			if u, p, ok := r.BasicAuth(); !ok || u != "client-1" || p != "secret-1" || form.Has("client_secret") {
				t.Errorf("client_secret_basic: %q %q %v, form %v", u, p, ok, form)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			posts := 0
			c, _, clock := offlineClient(t, func(cfg *Config) {
				cfg.TokenEndpointAuthMethod = tc.method
				cfg.HTTPClient = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
					posts++
					if r.Method != http.MethodPost || r.URL.String() != "https://fabrikam.eu.auth0.com/oauth/token" {
						t.Errorf("%s %s", r.Method, r.URL)
					}
					b, _ := io.ReadAll(r.Body)
					form, _ := url.ParseQuery(string(b))
					if form.Get("grant_type") != "authorization_code" || form.Get("code") != "the-code" ||
						form.Get("code_verifier") != "the-verifier" || form.Get("redirect_uri") != "https://app.example.com/callback" ||
						form.Get("client_id") != "client-1" {
						t.Errorf("form %v", form)
					}
					tc.check(t, r, form)
					return jsonResponse(200, answer), nil
				})}
			})
			tok, err := c.redeemCode(context.Background(), "the-code", "the-verifier", clock.Now())
			if err != nil {
				t.Fatal(err)
			}
			if posts != 1 {
				t.Errorf("%d POSTs, want 1", posts)
			}
			if tok.AccessToken != "at" || tok.RefreshToken != "rt" || tok.TokenType != "Bearer" || tok.Extra("id_token") != "a.b.c" ||
				tok.Extra("scope") != "openid profile" || !tok.Expiry.Equal(clock.Now().Add(24*time.Hour)) {
				t.Errorf("token %+v (expiry %v)", tok, tok.Expiry)
			}
		})
	}

	for _, tc := range []struct {
		name   string
		status int
		body   string
		code   string
	}{
		{"mfa_required", 403, `{"error":"mfa_required","error_description":"Multifactor authentication required","mfa_token":"mt"}`, "mfa_required"},
		{"invalid_grant", 400, `{"error":"invalid_grant","error_description":"Invalid authorization code"}`, "invalid_grant"},
		{"no access_token", 200, `{"id_token":"a.b.c"}`, ""},
		{"not JSON", 200, `<html>`, ""},
		{"server error", 502, `bad gateway`, "Bad Gateway"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _, clock := offlineClient(t, func(cfg *Config) {
				cfg.HTTPClient = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
					return jsonResponse(tc.status, tc.body), nil
				})}
			})
			_, err := c.redeemCode(context.Background(), "c", "v", clock.Now())
			var te *TenantError
			if !errors.As(err, &te) || te.Code != tc.code || te.StatusCode != tc.status || te.Endpoint != "/oauth/token" {
				t.Fatalf("got %#v, want a *TenantError %d %q", err, tc.status, tc.code)
			}
			if tc.code == "mfa_required" && te.MFAToken != "mt" {
				t.Errorf("MFAToken %q, want mt", te.MFAToken)
			}
		})
	}
}
