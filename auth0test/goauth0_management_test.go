package auth0test_test

import (
	"context"
	"testing"

	"github.com/auth0/go-auth0/v3/management"
	mgmtclient "github.com/auth0/go-auth0/v3/management/client"
	"github.com/auth0/go-auth0/v3/management/option"
	"golang.org/x/oauth2"

	"github.com/stepupauth/stepup/auth0test"
)

// TestGoAuth0ManagementCrossCheck runs go-auth0 v3's management client, as is
// (management.New with the tenant's domain and WithClientCredentials, the test's
// HTTP client trusting the tenant), through the MFA self-service calls: the
// paths, bodies and answers must be the ones it speaks.
func TestGoAuth0ManagementCrossCheck(t *testing.T) {
	// A separate M2M application using client_secret_basic: x/oauth2's
	// clientcredentials tries the Authorization header first, so a
	// client_secret_post application would cost one refused request first.
	m2m := auth0test.Application{Name: "Stepup M2M", ClientID: "stepup-m2m", ClientSecret: "m2m-secret-0123456789abcdef0123456789abcdef",
		TokenEndpointAuthMethod: "client_secret_basic", ManagementScopes: auth0test.ManagementScopes}
	users := auth0test.DefaultUsers()
	users[0].UserMetadata = map[string]any{"theme": "dark"}
	tn := auth0test.NewTenant(t, auth0test.Config{Users: users,
		Applications: []auth0test.Application{auth0test.DefaultApplication(), m2m}})
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, tn.Client())
	m, err := mgmtclient.New(tn.Domain(), option.WithClientCredentials(ctx, m2m.ClientID, m2m.ClientSecret),
		option.WithHTTPClient(tn.Client()), option.WithMaxAttempts(1))
	if err != nil {
		t.Fatal(err)
	}
	const alice = "auth0|alice"

	page, err := m.Users.AuthenticationMethods.List(ctx, alice, &management.ListUserAuthenticationMethodsRequestParameters{})
	if err != nil {
		t.Fatalf("AuthenticationMethods.List: %v", err)
	}
	var totpID string
	var types []string
	for _, am := range page.Results {
		types = append(types, string(am.Type))
		if am.Type == management.AuthenticationMethodTypeEnumTotp {
			totpID = am.ID
			if am.Confirmed == nil || !*am.Confirmed || am.CreatedAt.IsZero() {
				t.Errorf("totp method %+v", am)
			}
		}
	}
	if len(types) != 2 || totpID == "" {
		t.Fatalf("methods %v", types)
	}
	enr, err := m.Users.Enrollments.Get(ctx, alice)
	if err != nil || len(enr) != 1 || enr[0].GetID() != totpID {
		t.Fatalf("Enrollments.Get: %v %v", enr, err)
	}
	if err := m.Users.AuthenticationMethods.Delete(ctx, alice, totpID); err != nil {
		t.Fatalf("AuthenticationMethods.Delete: %v", err)
	}
	if u, _ := tn.User(auth0test.AliceEmail); u.TOTPSecret != "" {
		t.Error("the deleted factor is still enrolled")
	}
	factor := management.GuardianEnrollmentFactorEnumOtp
	req := &management.CreateGuardianEnrollmentTicketRequestContent{UserID: alice}
	req.SetFactor(&factor)
	ticket, err := m.Guardian.Enrollments.CreateTicket(ctx, req)
	if err != nil || ticket.TicketID == nil || ticket.TicketURL == nil {
		t.Fatalf("CreateTicket: %+v %v", ticket, err)
	}
	enrolled, err := tn.NewBrowser().Enroll(ctx, *ticket.TicketURL, auth0test.Credentials{})
	if u, _ := tn.User(auth0test.AliceEmail); err != nil || u.TOTPSecret != enrolled.Secret {
		t.Fatalf("Enroll: %v", err)
	}
	enr, err = m.Users.Enrollments.Get(ctx, alice)
	if err != nil || len(enr) != 1 {
		t.Fatalf("Enrollments.Get after the ticket: %v %v", enr, err)
	}
	if err := m.Guardian.Enrollments.Delete(ctx, enr[0].GetID()); err != nil {
		t.Fatalf("Guardian.Enrollments.Delete: %v", err)
	}
	rc, err := m.Users.RegenerateRecoveryCode(ctx, alice)
	if u, _ := tn.User(auth0test.AliceEmail); err != nil || rc.RecoveryCode == nil || *rc.RecoveryCode != u.RecoveryCode {
		t.Fatalf("RegenerateRecoveryCode: %+v %v", rc, err)
	}
	if err := m.Users.Multifactor.InvalidateRememberBrowser(ctx, alice); err != nil {
		t.Fatalf("InvalidateRememberBrowser: %v", err)
	}
	u, err := m.Users.Get(ctx, alice, &management.GetUserRequestParameters{})
	if err != nil || u.UserMetadata == nil || (*u.UserMetadata)["theme"] != "dark" {
		t.Fatalf("Users.Get: %+v %v", u, err)
	}
	md := management.UserMetadata{"always_mfa": true, "theme": nil}
	upd := &management.UpdateUserRequestContent{}
	upd.SetUserMetadata(&md)
	got, err := m.Users.Update(ctx, alice, upd)
	if err != nil || got.UserMetadata == nil || len(*got.UserMetadata) != 1 || (*got.UserMetadata)["always_mfa"] != true {
		t.Fatalf("Users.Update: %+v %v", got, err)
	}
	// One token for all of it.
	if n := tn.GrantCalls(auth0test.GrantClientCredentials); n != 1 {
		t.Errorf("client_credentials calls: %d, want 1", n)
	}
	if n := tn.ManagementTokens(); n != 1 {
		t.Errorf("ManagementTokens: %d, want 1", n)
	}
}
