package stepup

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stepupauth/stepup/auth0test"
)

// Organizations end to end against the dev tenant, which checks membership,
// invitations and puts org_id (and org_name) in its tokens as Auth0 does.
// The forged-token unit tests of the callback's check are in claims_test.go.

const (
	orgFabrikamID = "org_fabrikam01"
	orgContosoID  = "org_contoso01"
)

// orgHarness is a harness whose tenant has two organizations (alice is a
// member of both, bob of neither) and whose application allows them.
func orgHarness(t *testing.T, names bool, client func(*Config)) *harness {
	t.Helper()
	app := auth0test.DefaultApplication()
	app.OrganizationUsage = auth0test.OrganizationAllow
	return newHarness(t, harnessOpts{
		tenant: auth0test.Config{
			Applications:      []auth0test.Application{app},
			OrganizationNames: names,
			Organizations: []auth0test.Organization{
				{ID: orgFabrikamID, Name: "fabrikam", DisplayName: "Fabrikam", Members: []string{"auth0|alice"}},
				{ID: orgContosoID, Name: "contoso", DisplayName: "Contoso", Members: []string{"auth0|alice"}},
			},
		},
		client: client,
	})
}

func (h *harness) bob() *user {
	return h.newUser(auth0test.UserWithoutMFA())
}

// A login with Config.Organization, by id and (with the tenant's
// organization names) by name, gets a session for that organization.
func TestOrganizationLoginE2E(t *testing.T) {
	for _, tc := range []struct {
		name     string
		org      string
		names    bool
		wantName string
	}{
		{"by id", orgFabrikamID, false, ""},
		{"by id with names", orgFabrikamID, true, "fabrikam"},
		{"by name", "fabrikam", true, "fabrikam"},
		{"by name, other case", "Fabrikam", true, "fabrikam"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := orgHarness(t, tc.names, func(c *Config) { c.Organization = tc.org })
			v := h.alice()
			w := v.get(pathPrivate)
			if got := query(t, w.Header().Get("Location")).Get("organization"); got != tc.org {
				t.Fatalf("organization sent %q, want %q", got, tc.org)
			}
			if w := v.callback(v.authorize(w)); w.Code != http.StatusFound {
				t.Fatalf("callback: %d %s", w.Code, w.Body.String())
			}
			s := v.session()
			if s.OrgID != orgFabrikamID || s.OrgName != tc.wantName {
				t.Errorf("session organization %q %q, want %q %q", s.OrgID, s.OrgName, orgFabrikamID, tc.wantName)
			}
			if w := v.get(pathPrivate); w.Code != http.StatusOK {
				t.Errorf("page after the login: %d", w.Code)
			}
		})
	}
}

// A user who is not a member is refused by the tenant: the callback shows
// its error page and nothing is stored.
func TestOrganizationNonMemberE2E(t *testing.T) {
	h := orgHarness(t, false, func(c *Config) { c.Organization = orgFabrikamID })
	b := h.bob()
	cb := b.authorize(b.get(pathPrivate))
	if got := cb.Query().Get("error"); got != "access_denied" {
		t.Fatalf("tenant answered %q, want error=access_denied", cb.RawQuery)
	}
	writes := h.cs.sets.Load() + h.cs.setnxs.Load()
	w := b.callback(cb)
	if w.Code < 400 || !strings.Contains(w.Body.String(), "access_denied") {
		t.Errorf("callback: %d %q, want the error page naming access_denied", w.Code, w.Body.String())
	}
	if got := h.cs.sets.Load() + h.cs.setnxs.Load(); got != writes {
		t.Errorf("store writes by the refused callback: %d, want 0", got-writes)
	}
	if b.cookies[h.c.sessionCookie] != nil {
		t.Error("a non-member got a session cookie")
	}
}

// A login that the tenant completed for another organization than the one
// the transaction sent (the front channel's organization parameter changed
// on the way) is ErrOrganizationMismatch, with real tokens from the tenant.
func TestOrganizationMismatchE2E(t *testing.T) {
	for _, tc := range []struct {
		name, sent, tampered string
		names                bool
	}{
		{"id", orgFabrikamID, orgContosoID, false},
		{"name", "fabrikam", "contoso", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := orgHarness(t, tc.names, func(c *Config) { c.Organization = tc.sent })
			ar, err := h.c.AuthorizeURL(context.Background(), AuthorizeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			u, _ := url.Parse(ar.URL)
			q := u.Query()
			if q.Get("organization") != tc.sent {
				t.Fatalf("organization sent %q", q.Get("organization"))
			}
			q.Set("organization", tc.tampered)
			u.RawQuery = q.Encode()
			cb, err := h.tn.NewBrowser().Login(context.Background(), u.String(), aliceCreds)
			if err != nil {
				t.Fatal(err)
			}
			if cb.Query().Get("code") == "" {
				t.Fatalf("tenant refused the login for %s: %s", tc.tampered, cb.RawQuery)
			}
			_, err = h.c.Exchange(context.Background(), cb.Query(), ar.Transaction)
			if !errors.Is(err, ErrOrganizationMismatch) || ErrorStatus(err) != http.StatusForbidden {
				t.Fatalf("got %v (status %d), want ErrOrganizationMismatch, 403", err, ErrorStatus(err))
			}
			// The same organization untampered logs in.
			ar, cbq := h.startAuthorize(nil, aliceCreds, AuthorizeOptions{})
			login, err := h.c.Exchange(context.Background(), cbq, ar.Transaction)
			if err != nil || login.IDToken.OrgID != orgFabrikamID {
				t.Fatalf("untampered login: %v", err)
			}
		})
	}
}

// The invitation flow: an invitation link reaches the app's login route,
// which sends organization and invitation on; the invitee logs in, becomes a
// member, and gets a session for that organization. The invitation is then
// used up, and an invitation for someone else is refused.
func TestOrganizationInvitationE2E(t *testing.T) {
	h := orgHarness(t, true, nil)
	inv, err := h.tn.Invite(orgFabrikamID, auth0test.BobEmail)
	if err != nil {
		t.Fatal(err)
	}
	link := "/login?" + url.Values{"invitation": {inv.ID}, "organization": {inv.OrganizationID},
		"organization_name": {inv.OrganizationName}}.Encode()

	// Before the invitation bob is no member: a plain login for the
	// organization is refused.
	other := h.bob()
	ar, err := h.c.AuthorizeURL(context.Background(), AuthorizeOptions{Organization: orgFabrikamID})
	if err != nil {
		t.Fatal(err)
	}
	cb, err := other.tb.Login(context.Background(), ar.URL, other.creds)
	if err != nil || cb.Query().Get("error") != "access_denied" {
		t.Fatalf("non-member before the invitation: %v %v", err, cb)
	}

	b := h.bob()
	w := b.get(link)
	q := query(t, w.Header().Get("Location"))
	if q.Get("invitation") != inv.ID || q.Get("organization") != orgFabrikamID {
		t.Fatalf("login route sent %v, want the invitation and its organization", q)
	}
	if w := b.callback(b.authorize(w)); w.Code != http.StatusFound {
		t.Fatalf("invitation callback: %d %s", w.Code, w.Body.String())
	}
	if s := b.session(); s.Subject != "auth0|bob" || s.OrgID != orgFabrikamID || s.OrgName != "fabrikam" {
		t.Errorf("session %q org %q %q, want bob in %s", s.Subject, s.OrgID, s.OrgName, orgFabrikamID)
	}

	// Now a member: a login for the organization without an invitation works.
	ar, cbq := h.startAuthorize(nil, auth0test.UserWithoutMFA(), AuthorizeOptions{Organization: orgFabrikamID})
	if cbq.Get("code") == "" {
		t.Fatalf("member login refused: %v", cbq)
	}
	if login, err := h.c.Exchange(context.Background(), cbq, ar.Transaction); err != nil || login.IDToken.OrgID != orgFabrikamID {
		t.Fatalf("member login: %v", err)
	}

	// The invitation is used up.
	again := h.bob()
	w = again.get(link)
	if cb, err := again.tb.Login(context.Background(), w.Header().Get("Location"), again.creds); err == nil && cb.Query().Get("code") != "" {
		t.Error("a used invitation logged in again")
	}

	// An invitation for another email: alice may not accept it.
	inv2, err := h.tn.Invite(orgContosoID, "carol@example.test")
	if err != nil {
		t.Fatal(err)
	}
	a := h.alice()
	w = a.get("/login?" + url.Values{"invitation": {inv2.ID}, "organization": {inv2.OrganizationID}}.Encode())
	cb, err = a.tb.Login(context.Background(), w.Header().Get("Location"), a.creds)
	if err != nil || cb.Query().Get("error") != "access_denied" {
		t.Errorf("someone else's invitation: %v %v, want access_denied", err, cb)
	}
}
