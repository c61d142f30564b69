package auth0test

import (
	"context"
	"net/http"
	"testing"
)

// BenchmarkInteractiveLogin: /authorize, login page, code exchange, over HTTPS.
func BenchmarkInteractiveLogin(b *testing.B) {
	tn := NewTenant(b, Config{})
	ctx := context.Background()
	u := authorizeURL(tn, nil)
	client := tn.Client()
	b.ResetTimer()
	for b.Loop() {
		cb, err := tn.Login(ctx, u, alice)
		if err != nil {
			b.Fatal(err)
		}
		resp, err := client.PostForm(tn.URL()+"/oauth/token", codeForm(cb.Query().Get("code")))
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("exchange: %v %v", resp, err)
		}
		resp.Body.Close()
	}
}

// BenchmarkRefreshRotation: one rotating refresh-token exchange, over HTTPS with a
// kept-alive connection.
func BenchmarkRefreshRotation(b *testing.B) {
	tn := NewTenant(b, Config{RefreshTokenRotation: true})
	cb, err := tn.Login(context.Background(), authorizeURL(tn, nil), alice)
	if err != nil {
		b.Fatal(err)
	}
	client := tn.Client()
	resp, err := client.PostForm(tn.URL()+"/oauth/token", codeForm(cb.Query().Get("code")))
	if err != nil {
		b.Fatal(err)
	}
	var m map[string]any
	decodeJSON(resp, &m)
	resp.Body.Close()
	rt := m["refresh_token"].(string)
	b.ResetTimer()
	for b.Loop() {
		resp, err := client.PostForm(tn.URL()+"/oauth/token", refreshForm(rt))
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("refresh: %v %v", resp, err)
		}
		var m map[string]any
		decodeJSON(resp, &m)
		resp.Body.Close()
		rt = m["refresh_token"].(string)
	}
}
