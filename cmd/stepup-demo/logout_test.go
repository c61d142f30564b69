package main

import (
	"crypto/tls"
	"net/http"
	"strings"
	"testing"

	"github.com/stepupauth/stepup/auth0test"
)

// GET /logout shows the sign-out button and ends nothing; a POST without
// the app's Origin is refused (403) and ends nothing; the embedded tenant
// delivers back-channel logout tokens to the demo over https, so a password
// change at the tenant signs the user out of the demo.
func TestDemoLogoutRoutes(t *testing.T) {
	d := startDemo(t, map[string]string{})
	if d.backChannel == nil || !strings.HasPrefix(d.backChannel.url, "https://127.0.0.1:") {
		t.Fatalf("no https back-channel listener: %+v", d.backChannel)
	}
	if !strings.Contains(d.stdout.String(), "back-channel logout: the tenant POSTs to "+d.backChannel.url) {
		t.Errorf("the banner does not say where back-channel logout goes:\n%s", d.stdout)
	}
	a := newAgent(t)
	b := d.tenant.NewBrowser()
	if resp, _, _ := a.signIn(b, d.url, "/customers", d.url, bob); resp.StatusCode != http.StatusFound {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	signedIn := func() bool {
		t.Helper()
		resp, _ := a.get(d.url + "/customers")
		return resp.StatusCode == http.StatusOK
	}
	if !signedIn() {
		t.Fatal("not signed in")
	}

	resp, body := a.get(d.url + "/logout")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `<form method="post" action="/logout">`) || !signedIn() {
		t.Fatalf("GET /logout: %d %.300s (signed in: %v)", resp.StatusCode, body, signedIn())
	}
	for _, hdr := range []http.Header{
		{"Origin": {"http://localhost:1"}},
		{"Sec-Fetch-Site": {"same-site"}, "Origin": {"http://127.0.0.1:1"}},
		{},
	} {
		if resp, _ := a.do(http.MethodPost, d.url+"/logout", hdr); resp.StatusCode != http.StatusForbidden {
			t.Errorf("POST /logout with %v: %d, want 403", hdr, resp.StatusCode)
		}
	}
	if !signedIn() {
		t.Fatal("a refused sign-out signed bob out")
	}

	// The back-channel listener serves POST /backchannel-logout only.
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsTrusting(d.backChannel)}}
	if resp, err := c.Get(d.backChannel.url); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET on the back-channel listener: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if resp, err := c.Get(strings.TrimSuffix(d.backChannel.url, backChannelPath) + "/customers"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("the back-channel listener serves pages: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	if err := d.tenant.ChangePassword(auth0test.BobEmail, "a brand new password for bob"); err != nil {
		t.Fatal(err)
	}
	ds := d.tenant.LogoutDeliveries()
	if len(ds) != 1 || ds[0].Status != http.StatusOK || ds[0].URL != d.backChannel.url {
		t.Fatalf("deliveries: %+v", ds)
	}
	if signedIn() {
		t.Error("bob is still signed in to the demo after his password changed")
	}
	if !strings.Contains(d.stderr.String(), "event=logout") || !strings.Contains(d.stderr.String(), "reason=back_channel") {
		t.Errorf("no logout event in the log:\n%s", d.stderr)
	}
}

func tlsTrusting(b *backChannelListener) *tls.Config {
	return &tls.Config{RootCAs: b.pool, MinVersion: tls.VersionTLS12}
}
