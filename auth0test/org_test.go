package auth0test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var fabrikam = Organization{ID: "org_fabrikam01", Name: "fabrikam", DisplayName: "Fabrikam Inc.", Members: []string{"auth0|alice"}}

func orgApp(usage string) Application {
	a := DefaultApplication()
	a.OrganizationUsage = usage
	return a
}

// orgCallback drives a login and returns the callback's query.
func orgCallback(t *testing.T, tn *Tenant, extra map[string]string, c Credentials) (code, errCode, desc string) {
	t.Helper()
	cb, err := tn.NewBrowser().Login(context.Background(), authorizeURL(tn, extra), c)
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	q := cb.Query()
	return q.Get("code"), q.Get("error"), q.Get("error_description")
}

func TestOrganizationLoginAndTokens(t *testing.T) {
	var events []ActionEvent
	api := API{Identifier: "https://payroll.example", Scopes: []string{"read:payroll"}}
	tn := NewTenant(t, Config{Organizations: []Organization{fabrikam}, APIs: []API{api},
		Applications: []Application{orgApp(OrganizationAllow)},
		Action:       func(ev *ActionEvent, _ *ActionAPI) { events = append(events, *ev) }})
	code, e, d := orgCallback(t, tn, map[string]string{"organization": fabrikam.ID, "audience": api.Identifier}, alice)
	if code == "" {
		t.Fatalf("member login: %s %s", e, d)
	}
	tok := exchange(t, tn, code)
	id := verifiedClaims(t, tn, tok["id_token"].(string))
	at := verifiedClaims(t, tn, tok["access_token"].(string))
	if id["org_id"] != fabrikam.ID || at["org_id"] != fabrikam.ID || id["org_name"] != nil || at["org_name"] != nil {
		t.Errorf("org claims: id %v %v, at %v %v", id["org_id"], id["org_name"], at["org_id"], at["org_name"])
	}
	st, rt := post(t, tn, "/oauth/token", refreshForm(tok["refresh_token"].(string)))
	if st != 200 || verifiedClaims(t, tn, rt["id_token"].(string))["org_id"] != fabrikam.ID {
		t.Errorf("refresh: %d %v", st, rt)
	}
	want := &ActionOrganization{ID: fabrikam.ID, Name: fabrikam.Name, DisplayName: fabrikam.DisplayName}
	if len(events) != 2 || !cmp.Equal(events[0].Organization, want) || !cmp.Equal(events[1].Organization, want) {
		t.Errorf("the Action saw %+v", events)
	}
	// Names only with the tenant setting.
	if _, e, _ := orgCallback(t, tn, map[string]string{"organization": "fabrikam"}, alice); e != "invalid_request" {
		t.Errorf("organization name without OrganizationNames: %q", e)
	}
	// A non-member is refused at the callback, with Auth0's description.
	if _, e, d := orgCallback(t, tn, map[string]string{"organization": fabrikam.ID}, UserWithoutMFA()); e != "access_denied" ||
		d != "user auth0|bob is not part of the org_fabrikam01 organization" {
		t.Errorf("non-member: %q %q", e, d)
	}
	// No organization: no org claims.
	code, _, _ = orgCallback(t, tn, nil, alice)
	if id := verifiedClaims(t, tn, exchange(t, tn, code)["id_token"].(string)); id["org_id"] != nil {
		t.Errorf("org_id without organization: %v", id["org_id"])
	}

	named := NewTenant(t, Config{Organizations: []Organization{fabrikam}, OrganizationNames: true,
		Applications: []Application{orgApp(OrganizationAllow)}})
	code, e, d = orgCallback(t, named, map[string]string{"organization": "Fabrikam"}, alice)
	if code == "" {
		t.Fatalf("by name: %s %s", e, d)
	}
	if id := verifiedClaims(t, named, exchange(t, named, code)["id_token"].(string)); id["org_id"] != fabrikam.ID || id["org_name"] != "fabrikam" {
		t.Errorf("named: %v %v", id["org_id"], id["org_name"])
	}
}

func TestOrganizationUsage(t *testing.T) {
	for _, tc := range []struct {
		usage, org, want string
	}{
		{"", fabrikam.ID, "parameter organization is not allowed for this client"},
		{OrganizationRequire, "", "parameter organization is required for this client"},
		{OrganizationAllow, "org_nothere", "parameter organization is invalid: org_nothere"},
	} {
		tn := NewTenant(t, Config{Organizations: []Organization{fabrikam}, Applications: []Application{orgApp(tc.usage)}})
		if _, e, d := orgCallback(t, tn, map[string]string{"organization": tc.org}, alice); e != "invalid_request" || d != tc.want {
			t.Errorf("usage %q, organization %q: %q %q", tc.usage, tc.org, e, d)
		}
	}
	if _, err := Start(Config{Applications: []Application{orgApp("sometimes")}}); err == nil {
		t.Error("unknown organization usage accepted")
	}
	if _, err := Start(Config{Organizations: []Organization{{ID: "fabrikam", Name: "fabrikam"}}}); err == nil {
		t.Error("organization id without org_ accepted")
	}
}

func TestOrganizationInvitation(t *testing.T) {
	clock := newClock()
	tn := NewTenant(t, Config{Now: clock.Now, Organizations: []Organization{fabrikam}, Applications: []Application{orgApp(OrganizationAllow)}})
	inv, err := tn.Invite("fabrikam", BobEmail)
	if err != nil || inv.OrganizationID != fabrikam.ID || inv.OrganizationName != "fabrikam" {
		t.Fatalf("Invite: %+v %v", inv, err)
	}
	params := map[string]string{"organization": fabrikam.ID, "invitation": inv.ID}
	// The invitation is for bob: alice cannot accept it.
	if _, e, d := orgCallback(t, tn, params, alice); e != "access_denied" || d != "the invitation was issued for another user" {
		t.Errorf("alice with bob's invitation: %q %q", e, d)
	}
	if code, e, d := orgCallback(t, tn, params, UserWithoutMFA()); code == "" {
		t.Fatalf("bob accepts: %s %s", e, d)
	}
	if !slices.Contains(tn.Members(fabrikam.ID), "auth0|bob") {
		t.Errorf("members %v", tn.Members(fabrikam.ID))
	}
	// Accepted once.
	if _, e, _ := orgCallback(t, tn, params, UserWithoutMFA()); e != "invalid_request" {
		t.Errorf("invitation reused: %q", e)
	}
	// Bob is a member now: a plain organization login works.
	if code, _, _ := orgCallback(t, tn, map[string]string{"organization": fabrikam.ID}, UserWithoutMFA()); code == "" {
		t.Error("new member refused")
	}
	if _, e, _ := orgCallback(t, tn, map[string]string{"invitation": inv.ID}, UserWithoutMFA()); e != "invalid_request" {
		t.Errorf("invitation without organization: %q", e)
	}
	late, _ := tn.Invite(fabrikam.ID, CarolEmail)
	clock.Advance(invitationLifetime + time.Second)
	if _, e, _ := orgCallback(t, tn, map[string]string{"organization": fabrikam.ID, "invitation": late.ID}, SocialUser()); e != "invalid_request" {
		t.Errorf("expired invitation: %q", e)
	}
	if _, err := tn.Invite("org_nothere", BobEmail); !errors.Is(err, ErrNoOrganization) {
		t.Errorf("Invite unknown org: %v", err)
	}
	// Auto-membership.
	auto := fabrikam
	auto.AssignMembershipOnLogin = true
	tn = NewTenant(t, Config{Organizations: []Organization{auto}, Applications: []Application{orgApp(OrganizationAllow)}})
	if code, _, _ := orgCallback(t, tn, map[string]string{"organization": auto.ID}, UserWithoutMFA()); code == "" || !slices.Contains(tn.Members(auto.ID), "auth0|bob") {
		t.Error("AssignMembershipOnLogin did not add bob")
	}
	if err := tn.AddMember(auto.ID, "google-oauth2|108000000000000000001"); err != nil || len(tn.Members(auto.ID)) != 3 {
		t.Errorf("AddMember: %v %v", err, tn.Members(auto.ID))
	}
}

// TestRefreshActionEvent: what the Action sees on a refresh-token exchange.
func TestRefreshActionEvent(t *testing.T) {
	for _, withAuth := range []bool{false, true} {
		clock := newClock()
		var events []ActionEvent
		tn := NewTenant(t, Config{Now: clock.Now, RefreshActionAuthentication: withAuth,
			Action: func(ev *ActionEvent, _ *ActionAPI) { events = append(events, *ev) }})
		loginAt := clock.Now()
		code := login(t, tn.NewBrowser(), authorizeURL(tn, map[string]string{"acr_values": MFAACR}), alice)
		tok := exchange(t, tn, code)
		clock.Advance(time.Hour)
		if st, m := post(t, tn, "/oauth/token", refreshForm(tok["refresh_token"].(string))); st != http.StatusOK {
			t.Fatalf("refresh: %d %v", st, m)
		}
		ev := events[len(events)-1]
		if ev.Protocol != ProtocolRefreshToken || ev.RefreshToken == nil || !ev.RefreshToken.CreatedAt.Equal(loginAt) || ev.RefreshToken.SessionID == "" {
			t.Errorf("refresh event %+v", ev)
		}
		var want []AuthMethod
		if withAuth {
			want = []AuthMethod{{Name: "pwd", Timestamp: loginAt}, {Name: "mfa", Timestamp: loginAt}}
		}
		if !cmp.Equal(ev.Authentication, want) {
			t.Errorf("RefreshActionAuthentication %v: Authentication %v, want %v", withAuth, ev.Authentication, want)
		}
	}
}
