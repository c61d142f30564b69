package auth0test

import (
	"context"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// rp is an application's back-channel logout endpoint: it records every
// logout token and answers status.
type rp struct {
	srv    *httptest.Server
	mu     sync.Mutex
	tokens []string
	status int
}

func newRP(t *testing.T) *rp {
	r := &rp{status: http.StatusOK}
	r.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		req.ParseForm()
		r.mu.Lock()
		r.tokens = append(r.tokens, req.PostForm.Get("logout_token"))
		st := r.status
		r.mu.Unlock()
		w.WriteHeader(st)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *rp) received() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.tokens)
}

// revokedToo subscribes to session-revoked (Tenant.EndSession) besides
// Auth0's default rp-logout and idp-logout.
var revokedToo = LogoutInitiators{Mode: "custom", Selected: []string{InitiatorRPLogout, InitiatorIDPLogout, InitiatorSessionRevoked}}

// bclTenant: the default application with a back-channel URL (initiators
// as given) and a second application without one.
func bclTenant(t *testing.T, r *rp, in LogoutInitiators, clk func() time.Time) *Tenant {
	app := DefaultApplication()
	app.BackChannelLogoutURLs = []string{r.srv.URL + "/backchannel-logout"}
	app.BackChannelLogoutInitiators = in
	other := Application{ClientID: "other-app", ClientSecret: "other-secret", CallbackURLs: []string{"https://other.example/cb"}}
	return NewTenant(t, Config{Applications: []Application{app, other}, BackChannelLogoutClient: r.srv.Client(), Now: clk})
}

func TestBackChannelLogoutToken(t *testing.T) {
	clk := newClock()
	r := newRP(t)
	tn := bclTenant(t, r, revokedToo, clk.Now)
	b := tn.NewBrowser()
	idt := exchange(t, tn, login(t, b, authorizeURL(tn, nil), alice))["id_token"].(string)
	sid := claimsOf(t, idt)["sid"]
	if !cmp.Equal(tn.SessionIDs(AliceEmail), []string{sid.(string)}) {
		t.Fatalf("SessionIDs = %v, want [%v]", tn.SessionIDs(AliceEmail), sid)
	}
	if _, err := b.Logout(context.Background(), tn.URL()+"/v2/logout?client_id="+DefaultApplication().ClientID); err != nil {
		t.Fatal(err)
	}
	got := r.received()
	if len(got) != 1 {
		t.Fatalf("the RP received %d logout tokens, want 1", len(got))
	}
	hdr := headerOf(t, got[0])
	if hdr["typ"] != "logout+jwt" || hdr["alg"] != "RS256" || hdr["kid"] == nil {
		t.Errorf("logout token header = %v", hdr)
	}
	c := verifiedClaims(t, tn, got[0])
	want := map[string]any{"iss": tn.Issuer(), "aud": DefaultApplication().ClientID, "sub": "auth0|alice", "sid": sid,
		"iat": float64(clk.Now().Unix()), "events": map[string]any{BackChannelLogoutEvent: map[string]any{}}}
	for k, v := range want {
		if !cmp.Equal(c[k], v) {
			t.Errorf("logout token %s = %v, want %v", k, c[k], v)
		}
	}
	if c["jti"] == nil || c["nonce"] != nil {
		t.Errorf("logout token jti %v nonce %v", c["jti"], c["nonce"])
	}
	if exp, _ := c["exp"].(float64); exp <= c["iat"].(float64) {
		t.Errorf("logout token exp %v not after iat", c["exp"])
	}
	d := tn.LogoutDeliveries()
	if len(d) != 1 || d[0].Status != http.StatusOK || d[0].Initiator != InitiatorRPLogout || d[0].SID != sid || d[0].LogoutToken != got[0] {
		t.Errorf("deliveries = %+v", d)
	}
	// Discovery says so.
	var doc map[string]any
	resp, err := tn.Client().Get(tn.URL() + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	decodeJSON(resp, &doc)
	if doc["backchannel_logout_supported"] != true || doc["backchannel_logout_session_supported"] != true {
		t.Errorf("discovery: backchannel_logout_supported %v, _session_supported %v",
			doc["backchannel_logout_supported"], doc["backchannel_logout_session_supported"])
	}
}

func TestBackChannelLogoutInitiators(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name      string
		in        LogoutInitiators
		end       func(t *testing.T, tn *Tenant, b *Browser, clk func(time.Duration))
		initiator string // "" when no delivery is expected
	}{
		{"oidc logout", LogoutInitiators{}, func(t *testing.T, tn *Tenant, b *Browser, _ func(time.Duration)) {
			b.Logout(ctx, tn.URL()+"/oidc/logout?client_id="+DefaultApplication().ClientID)
		}, InitiatorRPLogout},
		{"test ends the session", LogoutInitiators{Mode: "all"}, func(t *testing.T, tn *Tenant, b *Browser, _ func(time.Duration)) {
			if !tn.EndSession(tn.SessionIDs(AliceEmail)[0]) {
				t.Error("EndSession: no session")
			}
		}, InitiatorSessionRevoked},
		{"password change", LogoutInitiators{Mode: "all"}, func(t *testing.T, tn *Tenant, b *Browser, _ func(time.Duration)) {
			if err := tn.ChangePassword(AliceEmail, "a new password"); err != nil {
				t.Error(err)
			}
		}, InitiatorPasswordChanged},
		{"blocked", LogoutInitiators{Mode: "all"}, func(t *testing.T, tn *Tenant, b *Browser, _ func(time.Duration)) {
			if err := tn.BlockUser(AliceEmail, true); err != nil {
				t.Error(err)
			}
		}, InitiatorSessionRevoked},
		{"session expired", LogoutInitiators{Mode: "all"}, func(t *testing.T, tn *Tenant, b *Browser, advance func(time.Duration)) {
			advance(8 * 24 * time.Hour)
			tn.Sweep()
		}, InitiatorSessionExpired},
		{"deleted, not selected by default", LogoutInitiators{}, func(t *testing.T, tn *Tenant, b *Browser, _ func(time.Duration)) {
			if err := tn.DeleteUser(AliceEmail); err != nil {
				t.Error(err)
			}
		}, ""},
		{"deleted, mode all", LogoutInitiators{Mode: "all"}, func(t *testing.T, tn *Tenant, b *Browser, _ func(time.Duration)) {
			if err := tn.DeleteUser(AliceEmail); err != nil {
				t.Error(err)
			}
		}, InitiatorAccountDeleted},
		{"email changed, custom", LogoutInitiators{Mode: "custom", Selected: []string{InitiatorEmailIdentifierChanged}},
			func(t *testing.T, tn *Tenant, b *Browser, _ func(time.Duration)) {
				if err := tn.ChangeEmail(AliceEmail, "alice2@fabrikam.example"); err != nil {
					t.Error(err)
				}
			}, InitiatorEmailIdentifierChanged},
		{"rp-logout not selected", LogoutInitiators{Mode: "custom", Selected: []string{InitiatorPasswordChanged}},
			func(t *testing.T, tn *Tenant, b *Browser, _ func(time.Duration)) {
				b.Logout(ctx, tn.URL()+"/v2/logout")
			}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			r := newRP(t)
			tn := bclTenant(t, r, tc.in, clk.Now)
			b := tn.NewBrowser()
			login(t, b, authorizeURL(tn, nil), alice)
			tc.end(t, tn, b, clk.Advance)
			d := tn.LogoutDeliveries()
			if tc.initiator == "" {
				if len(d) != 0 {
					t.Errorf("deliveries = %+v, want none", d)
				}
				return
			}
			if len(d) != 1 || d[0].Initiator != tc.initiator || d[0].Status != http.StatusOK || d[0].Sub != "auth0|alice" {
				t.Errorf("deliveries = %+v, want one %s answered 200", d, tc.initiator)
			}
			if b.HasSession() {
				t.Error("the SSO session survived")
			}
		})
	}
}

// Only applications that logged in with the session are notified, and a
// delivery the RP refuses, or a fault drops, is recorded as such.
func TestBackChannelLogoutDeliveryOutcomes(t *testing.T) {
	r := newRP(t)
	tn := bclTenant(t, r, revokedToo, nil)
	// A session of the other application only: nothing to deliver.
	b := tn.NewBrowser()
	u := authorizeURL(tn, map[string]string{"client_id": "other-app", "redirect_uri": "https://other.example/cb"})
	login(t, b, u, alice)
	tn.EndSession(tn.SessionIDs(AliceEmail)[0])
	if d := tn.LogoutDeliveries(); len(d) != 0 {
		t.Fatalf("deliveries for an application outside the session: %+v", d)
	}
	// The RP answers 400.
	r.mu.Lock()
	r.status = http.StatusBadRequest
	r.mu.Unlock()
	login(t, b, authorizeURL(tn, nil), alice)
	tn.EndSession(tn.SessionIDs(AliceEmail)[0])
	// A dropped delivery, then a forged one.
	tn.InjectDeliveryFault(DefaultApplication().ClientID, DeliveryFault{Drop: true, Times: 1})
	login(t, b, authorizeURL(tn, nil), alice)
	tn.EndSession(tn.SessionIDs(AliceEmail)[0])
	tn.InjectDeliveryFault(DefaultApplication().ClientID, DeliveryFault{Times: 1,
		Forge: func(h, c map[string]any) { c["nonce"] = "n" }})
	login(t, b, authorizeURL(tn, nil), alice)
	tn.EndSession(tn.SessionIDs(AliceEmail)[0])
	d := tn.LogoutDeliveries()
	if len(d) != 3 || d[0].Status != http.StatusBadRequest || d[1].Status != 0 || d[1].Err == "" || len(r.received()) != 2 {
		t.Fatalf("deliveries = %+v (RP received %d)", d, len(r.received()))
	}
	if c := claimsOf(t, d[2].LogoutToken); c["nonce"] != "n" {
		t.Errorf("forged token claims = %v", c)
	}
}

func TestBackChannelLogoutURLRules(t *testing.T) {
	for _, urls := range [][]string{{"http://rp.example/bcl"}, {"https://a.example/1", "https://b.example/2"}, {"/relative"}} {
		app := DefaultApplication()
		app.BackChannelLogoutURLs = urls
		if tn, err := Start(Config{Applications: []Application{app}}); err == nil {
			tn.Close()
			t.Errorf("back-channel URLs %v accepted", urls)
		}
	}
	app := DefaultApplication()
	app.BackChannelLogoutURLs = []string{"https://rp.example/bcl"}
	app.BackChannelLogoutInitiators = LogoutInitiators{Mode: "custom", Selected: []string{"user-sneezed"}}
	if tn, err := Start(Config{Applications: []Application{app}}); err == nil {
		tn.Close()
		t.Error("unknown initiator accepted")
	}
}

// Config.BackChannelLogoutCAs: the default delivery client trusts the app's CA.
func TestBackChannelLogoutCAs(t *testing.T) {
	r := newRP(t)
	pool := x509.NewCertPool()
	pool.AddCert(r.srv.Certificate())
	app := DefaultApplication()
	app.BackChannelLogoutURLs = []string{r.srv.URL + "/bcl"}
	app.BackChannelLogoutInitiators = revokedToo
	tn := NewTenant(t, Config{Applications: []Application{app}, BackChannelLogoutCAs: pool})
	login(t, tn.NewBrowser(), authorizeURL(tn, nil), alice)
	tn.EndSession(tn.SessionIDs(AliceEmail)[0])
	if d := tn.LogoutDeliveries(); len(d) != 1 || d[0].Status != http.StatusOK {
		t.Errorf("deliveries = %+v", d)
	}
	// Without it, the system roots do not know the test server.
	tn = NewTenant(t, Config{Applications: []Application{app}})
	login(t, tn.NewBrowser(), authorizeURL(tn, nil), alice)
	tn.EndSession(tn.SessionIDs(AliceEmail)[0])
	if d := tn.LogoutDeliveries(); len(d) != 1 || d[0].Status != 0 || d[0].Err == "" {
		t.Errorf("deliveries without the CA = %+v, want a TLS failure", d)
	}
}
