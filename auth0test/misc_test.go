package auth0test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"testing"
)

func TestCACertPEMAndCertPool(t *testing.T) {
	tn := NewTenant(t, Config{})
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(tn.CACertPEM()) {
		t.Fatal("CACertPEM is not a PEM certificate")
	}
	for name, p := range map[string]*x509.CertPool{"CACertPEM": pool, "CertPool": tn.CertPool()} {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p}}}
		resp, err := c.Get(tn.URL() + "/.well-known/openid-configuration")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		resp.Body.Close()
		c.CloseIdleConnections()
	}
	// The certificate is also valid for localhost.
	c := tn.Client()
	c.Transport.(*http.Transport).TLSClientConfig.ServerName = "localhost"
	resp, err := c.Get(tn.URL() + "/.well-known/jwks.json")
	if err != nil {
		t.Fatalf("localhost: %v", err)
	}
	resp.Body.Close()
}

func TestEndSessionsAndRevokeFamily(t *testing.T) {
	tn := NewTenant(t, Config{})
	b := tn.NewBrowser()
	rt := exchange(t, tn, login(t, b, authorizeURL(tn, nil), alice))["refresh_token"].(string)
	tn.EndSessions()
	if b.HasSession() {
		t.Error("session survived EndSessions")
	}
	cb, err := b.Login(context.Background(), authorizeURL(tn, map[string]string{"prompt": "none"}), alice)
	if err != nil || cb.Query().Get("error") != "login_required" {
		t.Errorf("prompt=none after EndSessions: %v %v", cb, err)
	}
	if tn.RefreshFamily(rt) == "" || !tn.RevokeRefreshFamily(rt) || tn.RevokeRefreshFamily("unknown") {
		t.Fatal("RevokeRefreshFamily")
	}
	if st, _ := post(t, tn, "/oauth/token", refreshForm(rt)); st != 403 {
		t.Errorf("refresh after RevokeRefreshFamily: %d", st)
	}
}

func TestAddLogoutURL(t *testing.T) {
	tn := NewTenant(t, Config{})
	b := tn.NewBrowser()
	login(t, b, authorizeURL(tn, nil), alice)
	const back = "http://127.0.0.1:9999/bye"
	logout := tn.URL() + "/v2/logout?client_id=" + DefaultApplication().ClientID + "&returnTo=" + back
	var pe *PageError
	if _, err := b.Logout(context.Background(), logout); err == nil || !asPageError(err, &pe) {
		t.Fatalf("unregistered returnTo: %v", err)
	}
	if err := tn.AddLogoutURL(DefaultApplication().ClientID, back); err != nil {
		t.Fatal(err)
	}
	u, err := b.Logout(context.Background(), logout)
	if err != nil || u.String() != back {
		t.Fatalf("registered returnTo: %v %v", u, err)
	}
	// Without returnTo, the tenant shows its own page.
	if u, err := b.Logout(context.Background(), tn.URL()+"/v2/logout"); u != nil || err != nil {
		t.Errorf("bare logout: %v %v", u, err)
	}
}
