package main

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/stepupauth/stepup/auth0test"
	"github.com/stepupauth/stepup/internal/redistest"
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

// Two demo instances on one Redis, against a tenant of their own (the
// README's "Use your own tenant"), behind an https front end for the
// back-channel URL: the tenant's logout token reaches instance B, and the
// session that instance A serves ends.
func TestDemoBackChannelLogoutAcrossInstances(t *testing.T) {
	rdb := redistest.Client(t).(*redis.Client)
	var target atomic.Pointer[url.URL]
	front := httptest.NewTLSServer(&httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target.Load())
		pr.Out.Host = pr.In.Host
	}})
	defer front.Close()
	addrA := freeAddr(t)
	base := "http://" + addrA
	const clientID, secret = "fabrikam-intranet", "a-secret-shared-by-every-replica-0123456789abcdef"
	app := auth0test.Application{Name: "Fabrikam intranet", ClientID: clientID, ClientSecret: secret,
		CallbackURLs: []string{base + "/callback"}, LogoutURLs: []string{base + "/"},
		BackChannelLogoutURLs:       []string{front.URL + "/backchannel-logout"},
		BackChannelLogoutInitiators: auth0test.LogoutInitiators{Mode: "all"}}
	tn := auth0test.NewTenant(t, auth0test.Config{Applications: []auth0test.Application{app},
		BackChannelLogoutClient: front.Client()})
	ca := filepath.Join(t.TempDir(), "tenant-ca.pem")
	if err := os.WriteFile(ca, tn.CACertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"AUTH0_DOMAIN": tn.Domain(), "AUTH0_CLIENT_ID": clientID, "AUTH0_CLIENT_SECRET": secret,
		"SSL_CERT_FILE": ca, "REDIS_URL": "redis://" + rdb.Options().Addr + "/0",
		"STEPUP_REDIS_PREFIX": redistest.Prefix(t), "STEPUP_BASE_URL": base}
	envA, envB := map[string]string{"STEPUP_ADDR": addrA}, map[string]string{"STEPUP_ADDR": "127.0.0.1:0"}
	for k, v := range env {
		envA[k], envB[k] = v, v
	}
	replicaA, replicaB := startDemo(t, envA), startDemo(t, envB)
	if replicaA.backChannel != nil {
		t.Error("a demo on a tenant of its own opened the embedded tenant's back-channel listener")
	}
	target.Store(mustURL(replicaB.url))

	a := newAgent(t)
	if resp, _, _ := a.signIn(tn.NewBrowser(), replicaA.url, "/customers", replicaA.url, alice); resp.StatusCode != http.StatusFound {
		t.Fatalf("sign-in on A: %d", resp.StatusCode)
	}
	if resp, _ := a.get(replicaA.url + "/customers"); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /customers on A: %d", resp.StatusCode)
	}
	sids := tn.SessionIDs(auth0test.AliceEmail)
	if len(sids) != 1 || !tn.EndSession(sids[0]) {
		t.Fatalf("the tenant's sessions of alice: %v", sids)
	}
	ds := tn.LogoutDeliveries()
	if len(ds) != 1 || ds[0].Status != http.StatusOK {
		t.Fatalf("deliveries: %+v", ds)
	}
	if !strings.Contains(replicaB.stderr.String(), "path=/backchannel-logout status=200") {
		t.Errorf("B did not serve the delivery:\n%s", replicaB.stderr)
	}
	resp, _ := a.get(replicaA.url + "/customers")
	if loc, _ := resp.Location(); resp.StatusCode != http.StatusFound || loc == nil || loc.Path != "/authorize" {
		t.Errorf("GET /customers on A after the back-channel logout on B: %d to %v, want 302 to /authorize", resp.StatusCode, loc)
	}
}
