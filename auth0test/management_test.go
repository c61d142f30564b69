package auth0test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// mgmtApp is the default application with a client grant for every emulated scope.
func mgmtApp(scopes ...string) Application {
	a := DefaultApplication()
	a.ManagementScopes = scopes
	if scopes == nil {
		a.ManagementScopes = ManagementScopes
	}
	return a
}

func ccForm(audience, scope string) url.Values {
	app := DefaultApplication()
	f := url.Values{"grant_type": {"client_credentials"}, "client_id": {app.ClientID},
		"client_secret": {app.ClientSecret}, "audience": {audience}}
	if scope != "" {
		f.Set("scope", scope)
	}
	return f
}

// mgmtToken gets a Management API token for the default application.
func mgmtToken(t *testing.T, tn *Tenant) string {
	t.Helper()
	st, m := post(t, tn, "/oauth/token", ccForm(tn.Issuer()+"api/v2/", ""))
	if st != http.StatusOK {
		t.Fatalf("management token: %d %v", st, m)
	}
	return m["access_token"].(string)
}

// mgmt calls the Management API and decodes its JSON answer (nil for 204).
func mgmt(t *testing.T, tn *Tenant, tok, method, path string, body any) (int, any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = strings.NewReader(string(b))
	}
	req, _ := http.NewRequest(method, tn.URL()+"/api/v2/"+path, rd)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := tn.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var v any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatalf("%s %s: %d %q not JSON", method, path, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode, v
}

var aliceID = url.PathEscape("auth0|alice")

func TestManagementToken(t *testing.T) {
	// No client grant: refused, as on Auth0.
	tn := NewTenant(t, Config{})
	aud := tn.Issuer() + "api/v2/"
	st, m := post(t, tn, "/oauth/token", ccForm(aud, ""))
	if st != http.StatusForbidden || m["error"] != "access_denied" || !strings.Contains(m["error_description"].(string), "client-grant") {
		t.Errorf("without a client grant: %d %v", st, m)
	}
	tn = NewTenant(t, Config{Applications: []Application{mgmtApp(ScopeReadUsers, ScopeUpdateUsers)}})
	aud = tn.Issuer() + "api/v2/"
	st, m = post(t, tn, "/oauth/token", ccForm(aud, ""))
	if st != http.StatusOK || m["expires_in"] != float64(86400) || m["scope"] != "read:users update:users" || m["token_type"] != "Bearer" {
		t.Fatalf("token: %d %v", st, m)
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	})
	if !cmp.Equal(keys, []string{"access_token", "expires_in", "scope", "token_type"}) {
		t.Errorf("token members %v", keys)
	}
	c := verifiedClaims(t, tn, m["access_token"].(string))
	if c["aud"] != aud || c["gty"] != "client-credentials" || c["sub"] != DefaultApplication().ClientID+"@clients" {
		t.Errorf("claims %v", c)
	}
	st, m = post(t, tn, "/oauth/token", ccForm(aud, "read:users delete:users"))
	if st != http.StatusForbidden || m["error_description"] != "Client has not been granted scopes: delete:users" {
		t.Errorf("ungranted scope: %d %v", st, m)
	}
	if n := tn.ManagementTokens(); n != 2 {
		t.Errorf("ManagementTokens %d, want 2", n)
	}
}

func TestManagementAuthErrors(t *testing.T) {
	clock := newClock()
	tn := NewTenant(t, Config{Now: clock.Now, Applications: []Application{mgmtApp(ScopeReadUsers)}})
	tok := mgmtToken(t, tn)
	for _, tc := range []struct {
		name, tok, method, path string
		status                  int
		want                    map[string]any
	}{
		{"missing", "", "GET", "users/" + aliceID, 401, map[string]any{"statusCode": 401.0, "error": "Unauthorized", "message": "Missing authentication"}},
		{"garbage", "a.b.c", "GET", "users/" + aliceID, 401, map[string]any{"statusCode": 401.0, "error": "Unauthorized", "message": "Invalid token"}},
		{"scope", tok, "DELETE", "guardian/enrollments/x", 403, map[string]any{"statusCode": 403.0, "error": "Forbidden",
			"message": "Insufficient scope, expected any of: delete:guardian_enrollments", "errorCode": "insufficient_scope"}},
		{"user", tok, "GET", "users/" + url.PathEscape("auth0|nobody"), 404, map[string]any{"statusCode": 404.0, "error": "Not Found",
			"message": "The user does not exist.", "errorCode": "inexistent_user"}},
		{"path", tok, "GET", "users/" + aliceID + "/nothing", 404, map[string]any{"statusCode": 404.0, "error": "Not Found", "message": "Not Found"}},
	} {
		st, body := mgmt(t, tn, tc.tok, tc.method, tc.path, nil)
		if st != tc.status || !cmp.Equal(body, any(tc.want)) {
			t.Errorf("%s: %d %v, want %d %v", tc.name, st, body, tc.status, tc.want)
		}
	}
	// An MFA-API or user token is not a Management API token.
	st, _ := mgmt(t, tn, tn.Sign(nil, tn.AccessTokenClaims(DefaultApplication().ClientID, tn.Issuer()+"mfa/", DefaultUsers()[0], "read:users")), "GET", "users/"+aliceID, nil)
	if st != 401 {
		t.Errorf("other audience: %d", st)
	}
	// A token an application signs with its own secret (HS256) is refused.
	app := DefaultApplication()
	forged := tn.SignWith([]byte(app.ClientSecret), map[string]any{"alg": "HS256"}, map[string]any{"iss": tn.Issuer(),
		"aud": []any{app.ClientID, tn.Issuer() + "api/v2/"}, "gty": "client-credentials", "scope": "read:users",
		"exp": clock.Now().Add(time.Hour).Unix()})
	if st, _ := mgmt(t, tn, forged, "GET", "users/"+aliceID, nil); st != 401 {
		t.Errorf("HS256 token: %d", st)
	}
	// A user's token for the Management API audience is refused.
	code := login(t, tn.NewBrowser(), authorizeURL(tn, map[string]string{"audience": tn.Issuer() + "api/v2/", "scope": "openid read:users"}), alice)
	if st, _ := mgmt(t, tn, exchange(t, tn, code)["access_token"].(string), "GET", "users/"+aliceID, nil); st != 401 {
		t.Errorf("user token: %d", st)
	}
	clock.Advance(86401 * time.Second)
	st, body := mgmt(t, tn, tok, "GET", "users/"+aliceID, nil)
	if st != 401 || body.(map[string]any)["message"] != "Expired token received for JSON Web Token validation" {
		t.Errorf("expired: %d %v", st, body)
	}
}

// TestManagementFactors: what the Management API lists, deletes and enrolls is
// exactly what the OTP page then accepts.
func TestManagementFactors(t *testing.T) {
	clock := newClock()
	tn := NewTenant(t, Config{Now: clock.Now, Applications: []Application{mgmtApp()}})
	tok := mgmtToken(t, tn)
	ctx := context.Background()
	st, list := mgmt(t, tn, tok, "GET", "users/"+aliceID+"/authentication-methods", nil)
	methods, _ := list.([]any)
	if st != 200 || len(methods) != 2 {
		t.Fatalf("list: %d %v", st, list)
	}
	totp := methods[0].(map[string]any)
	if totp["type"] != "totp" || totp["confirmed"] != true || !strings.HasPrefix(totp["id"].(string), "totp|dev_") ||
		totp["created_at"] != "2026-11-28T12:00:00.000Z" || totp["last_auth_at"] != nil {
		t.Errorf("totp method %v", totp)
	}
	if rc := methods[1].(map[string]any); rc["type"] != "recovery-code" {
		t.Errorf("recovery-code method %v", rc)
	}
	// include_totals wraps the list, as go-auth0 asks for by default.
	_, wrapped := mgmt(t, tn, tok, "GET", "users/"+aliceID+"/authentication-methods?include_totals=true&per_page=1", nil)
	if w := wrapped.(map[string]any); w["total"] != 2.0 || len(w["authenticators"].([]any)) != 1 {
		t.Errorf("include_totals: %v", w)
	}
	// A step-up records last_auth_at.
	stepUp := authorizeURL(tn, map[string]string{"acr_values": MFAACR})
	login(t, tn.NewBrowser(), stepUp, alice)
	_, got := mgmt(t, tn, tok, "GET", "users/"+aliceID+"/authentication-methods/"+url.PathEscape(totp["id"].(string)), nil)
	if got.(map[string]any)["last_auth_at"] != "2026-11-28T12:00:00.000Z" {
		t.Errorf("after a step-up: %v", got)
	}
	_, enr := mgmt(t, tn, tok, "GET", "users/"+aliceID+"/enrollments", nil)
	if e := enr.([]any); len(e) != 1 || e[0].(map[string]any)["id"] != totp["id"] || e[0].(map[string]any)["status"] != "confirmed" {
		t.Errorf("enrollments %v", enr)
	}
	// Delete: the factor stops working, alice is "without MFA".
	if st, _ := mgmt(t, tn, tok, "DELETE", "users/"+aliceID+"/authentication-methods/"+url.PathEscape(totp["id"].(string)), nil); st != 204 {
		t.Fatalf("delete: %d", st)
	}
	if st, _ := mgmt(t, tn, tok, "DELETE", "users/"+aliceID+"/authentication-methods/"+url.PathEscape(totp["id"].(string)), nil); st != 404 {
		t.Errorf("second delete: %d", st)
	}
	cb, err := tn.NewBrowser().Login(ctx, stepUp, alice)
	if err != nil || cb.Query().Get("error") != "access_denied" {
		t.Errorf("step-up without a factor: %v %v", cb, err)
	}
	// A ticket enrolls a new OTP factor; the old secret no longer works.
	st, tk := mgmt(t, tn, tok, "POST", "guardian/enrollments/ticket", map[string]any{"user_id": "auth0|alice"})
	ticket, _ := tk.(map[string]any)
	if st != 200 || ticket["ticket_id"] == nil || !strings.HasPrefix(ticket["ticket_url"].(string), tn.URL()+"/u/guardian/enroll?ticket=") {
		t.Fatalf("ticket: %d %v", st, tk)
	}
	enrolled, err := tn.NewBrowser().Enroll(ctx, ticket["ticket_url"].(string), Credentials{})
	if err != nil || enrolled.Secret == "" || enrolled.Secret == AliceTOTPSecret || enrolled.RecoveryCode != "" {
		t.Fatalf("Enroll: %+v %v", enrolled, err)
	}
	if _, err := tn.NewBrowser().Enroll(ctx, ticket["ticket_url"].(string), Credentials{}); !errors.As(err, new(*PageError)) {
		t.Errorf("ticket reused: %v", err)
	}
	old := alice
	old.OTP = TOTP(AliceTOTPSecret, clock.Now())
	if _, err := tn.NewBrowser().Login(ctx, stepUp, old); !errors.Is(err, ErrOTPRejected) {
		t.Errorf("old secret after re-enrollment: %v", err)
	}
	fresh := alice
	fresh.OTP = TOTP(enrolled.Secret, clock.Now())
	login(t, tn.NewBrowser(), stepUp, fresh)
	_, list = mgmt(t, tn, tok, "GET", "users/"+aliceID+"/authentication-methods", nil)
	if id := list.([]any)[0].(map[string]any)["id"]; id == totp["id"] {
		t.Errorf("re-enrolled factor kept the old id %v", id)
	}
	// The legacy Guardian delete removes it too.
	_, enr = mgmt(t, tn, tok, "GET", "users/"+aliceID+"/enrollments", nil)
	eid := enr.([]any)[0].(map[string]any)["id"].(string)
	if st, _ := mgmt(t, tn, tok, "DELETE", "guardian/enrollments/"+url.PathEscape(eid), nil); st != 204 {
		t.Errorf("guardian delete: %d", st)
	}
	if u, _ := tn.User(AliceEmail); u.TOTPSecret != "" {
		t.Errorf("after guardian delete alice still has a secret")
	}
	// A ticket for a user already enrolled shows an error page.
	_, tk = mgmt(t, tn, tok, "POST", "guardian/enrollments/ticket", map[string]any{"user_id": "google-oauth2|108000000000000000001"})
	var pe *PageError
	if _, err := tn.NewBrowser().Enroll(ctx, tk.(map[string]any)["ticket_url"].(string), Credentials{}); !errors.As(err, &pe) || pe.Code != "already_enrolled" {
		t.Errorf("ticket for an enrolled user: %v", err)
	}
	if st, body := mgmt(t, tn, tok, "POST", "guardian/enrollments/ticket", map[string]any{"user_id": "auth0|alice", "factor": "phone"}); st != 400 {
		t.Errorf("phone ticket: %d %v", st, body)
	}
}

func TestManagementRecoveryCodeAndRememberBrowser(t *testing.T) {
	clock := newClock()
	tn := NewTenant(t, Config{Now: clock.Now, AllowRememberBrowser: true, Applications: []Application{mgmtApp()}})
	tok := mgmtToken(t, tn)
	st, body := mgmt(t, tn, tok, "POST", "users/"+aliceID+"/recovery-code-regeneration", nil)
	code, _ := body.(map[string]any)["recovery_code"].(string)
	if st != 200 || len(code) != 24 || code == AliceRecoveryCode {
		t.Fatalf("regenerate: %d %v", st, body)
	}
	useCode := func(rc string) int {
		mt, err := tn.NewMFAToken(DefaultApplication().ClientID, AliceEmail, "openid", "")
		if err != nil {
			t.Fatal(err)
		}
		app := DefaultApplication()
		st, _ := post(t, tn, "/oauth/token", url.Values{"grant_type": {GrantMFARecoveryCode}, "client_id": {app.ClientID},
			"client_secret": {app.ClientSecret}, "mfa_token": {mt}, "recovery_code": {rc}})
		return st
	}
	if st := useCode(AliceRecoveryCode); st != 403 {
		t.Errorf("old recovery code: %d", st)
	}
	if st := useCode(code); st != 200 {
		t.Errorf("new recovery code: %d", st)
	}
	if st := useCode(code); st != 403 {
		t.Errorf("new recovery code twice: %d", st)
	}
	// Remembered browser: the second step-up needs no code until invalidated.
	b := tn.NewBrowser()
	stepUp := authorizeURL(tn, map[string]string{"acr_values": MFAACR})
	login(t, b, stepUp, alice)
	clock.Advance(time.Minute)
	login(t, b, stepUp, alice)
	if len(b.Pages) != 0 {
		t.Fatalf("remembered: pages %v", b.Pages)
	}
	if st, _ := mgmt(t, tn, tok, "POST", "users/"+aliceID+"/multifactor/actions/invalidate-remember-browser", nil); st != 204 {
		t.Fatalf("invalidate: %d", st)
	}
	clock.Advance(time.Second)
	login(t, b, stepUp, alice)
	if !cmp.Equal(b.Pages, []string{"otp"}) {
		t.Errorf("after invalidate: pages %v", b.Pages)
	}
	clock.Advance(time.Minute)
	login(t, b, stepUp, alice)
	if len(b.Pages) != 0 {
		t.Errorf("MFA after the invalidation is remembered again: pages %v", b.Pages)
	}
}

func TestManagementUserMetadata(t *testing.T) {
	users := DefaultUsers()
	users[0].UserMetadata = map[string]any{"theme": "dark", "nested": map[string]any{"a": 1.0}}
	var seen []map[string]any
	tn := NewTenant(t, Config{Users: users, Applications: []Application{mgmtApp()},
		Action: func(ev *ActionEvent, api *ActionAPI) { seen = append(seen, ev.User.UserMetadata) }})
	tok := mgmtToken(t, tn)
	st, body := mgmt(t, tn, tok, "PATCH", "users/"+aliceID, map[string]any{
		"user_metadata": map[string]any{"always_mfa": true, "theme": nil, "nested": map[string]any{"b": 2.0}}})
	want := map[string]any{"always_mfa": true, "nested": map[string]any{"b": 2.0}}
	if st != 200 || !cmp.Equal(body.(map[string]any)["user_metadata"], any(want)) {
		t.Fatalf("patch: %d %v", st, body)
	}
	_, body = mgmt(t, tn, tok, "GET", "users/"+aliceID, nil)
	if u := body.(map[string]any); !cmp.Equal(u["user_metadata"], any(want)) || u["user_id"] != "auth0|alice" || u["email"] != AliceEmail {
		t.Errorf("get: %v", u)
	}
	login(t, tn.NewBrowser(), authorizeURL(tn, nil), alice)
	if len(seen) != 1 || !cmp.Equal(seen[0], want) {
		t.Errorf("the Action saw %v", seen)
	}
	for _, bad := range []any{map[string]any{"email": "x@y"}, []any{1}, map[string]any{"user_metadata": "x"}} {
		if st, body := mgmt(t, tn, tok, "PATCH", "users/"+aliceID, bad); st != 400 || body.(map[string]any)["errorCode"] != "invalid_body" {
			t.Errorf("patch %v: %d %v", bad, st, body)
		}
	}
}

// TestRecoveryCodeAtTheMFAStep: a regenerated recovery code works once on the
// hosted MFA step (and the old one not at all); the tenant then shows the next one.
func TestRecoveryCodeAtTheMFAStep(t *testing.T) {
	tn := NewTenant(t, Config{Applications: []Application{mgmtApp()}})
	_, body := mgmt(t, tn, mgmtToken(t, tn), "POST", "users/"+aliceID+"/recovery-code-regeneration", nil)
	code := body.(map[string]any)["recovery_code"].(string)
	stepUp := authorizeURL(tn, map[string]string{"acr_values": MFAACR})
	ctx := context.Background()
	withCode := func(rc string) Credentials { c := alice; c.RecoveryCode = rc; return c }
	if _, err := tn.NewBrowser().Login(ctx, stepUp, withCode(AliceRecoveryCode)); !errors.Is(err, ErrOTPRejected) {
		t.Errorf("old code: %v", err)
	}
	b := tn.NewBrowser()
	cb := login(t, b, stepUp, withCode(code))
	if !cmp.Equal(b.Pages, []string{"login", "otp", "recovery-new"}) || b.LastRecoveryCode() == "" || b.LastRecoveryCode() == code {
		t.Errorf("pages %v, next code %q", b.Pages, b.LastRecoveryCode())
	}
	if id := verifiedClaims(t, tn, exchange(t, tn, cb)["id_token"].(string)); !cmp.Equal(id["amr"], any([]any{"mfa"})) {
		t.Errorf("amr %v", id["amr"])
	}
	if _, err := tn.NewBrowser().Login(ctx, stepUp, withCode(code)); !errors.Is(err, ErrOTPRejected) {
		t.Errorf("code used twice: %v", err)
	}
	login(t, tn.NewBrowser(), stepUp, withCode(b.LastRecoveryCode()))
}

// TestAssociateShowsInManagementAPI: a factor enrolled through /mfa/associate
// is the one the Management API lists, and the one the OTP page accepts.
func TestAssociateShowsInManagementAPI(t *testing.T) {
	tn := NewTenant(t, Config{Applications: []Application{mgmtApp()}})
	app := DefaultApplication()
	bob := url.PathEscape("auth0|bob")
	tok := mgmtToken(t, tn)
	if _, list := mgmt(t, tn, tok, "GET", "users/"+bob+"/authentication-methods", nil); len(list.([]any)) != 0 {
		t.Fatalf("bob starts with %v", list)
	}
	mt, _ := tn.NewMFAToken(app.ClientID, BobEmail, "openid", "")
	req, _ := http.NewRequest(http.MethodPost, tn.URL()+"/mfa/associate", strings.NewReader(
		`{"client_id":"`+app.ClientID+`","client_secret":"`+app.ClientSecret+`","authenticator_types":["otp"]}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+mt)
	resp, err := tn.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	decodeJSON(resp, &m)
	secret := m["secret"].(string)
	if st, r := post(t, tn, "/oauth/token", url.Values{"grant_type": {GrantMFAOTP}, "client_id": {app.ClientID},
		"client_secret": {app.ClientSecret}, "mfa_token": {mt}, "otp": {TOTP(secret, tn.Now())}}); st != 200 {
		t.Fatalf("confirm: %d %v", st, r)
	}
	_, list := mgmt(t, tn, tok, "GET", "users/"+bob+"/authentication-methods", nil)
	var types []string
	for _, x := range list.([]any) {
		types = append(types, x.(map[string]any)["type"].(string))
	}
	if !cmp.Equal(types, []string{"totp", "recovery-code"}) || list.([]any)[0].(map[string]any)["last_auth_at"] == nil {
		t.Errorf("after associate: %v", list)
	}
	c := UserWithoutMFA()
	c.OTP = TOTP(secret, tn.Now())
	login(t, tn.NewBrowser(), authorizeURL(tn, map[string]string{"acr_values": MFAACR}), c)
}
