package stepup

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stepupauth/stepup/auth0test"
	"github.com/stepupauth/stepup/store"
)

// settingsPolicy is the security page's: MFA within 5 minutes.
var settingsPolicy = MFA.WithMaxAge(5 * time.Minute).Named("settings")

// factorsHarness is a harness whose application is granted the Management
// API scopes it names (all of them by default).
func factorsHarness(t *testing.T, scopes []string) *harness {
	t.Helper()
	app := auth0test.DefaultApplication()
	app.ManagementScopes = scopes
	if scopes == nil {
		app.ManagementScopes = auth0test.ManagementScopes
	}
	return newHarness(t, harnessOpts{tenant: auth0test.Config{Applications: []auth0test.Application{app}}})
}

func newFactors(t *testing.T, c *Client) *Factors {
	t.Helper()
	f, err := c.Factors(FactorsConfig{})
	if err != nil {
		t.Fatalf("Factors: %v", err)
	}
	return f
}

// steppedUpAlice signs alice in with MFA and returns her session.
func steppedUpAlice(h *harness) (*user, *Session) {
	u := h.alice()
	if w := u.visit(pathFresh); w.Code != http.StatusOK {
		h.t.Fatalf("salaries: %d %s", w.Code, w.Body.String())
	}
	return u, u.session()
}

// TestFactorsTokenSharedByReplicas: three replicas on one store, 50
// concurrent requests each, cost exactly one client_credentials request;
// when the token nears its expiry (moved clock) exactly one renewal.
func TestFactorsTokenSharedByReplicas(t *testing.T) {
	h := factorsHarness(t, nil)
	_, s := steppedUpAlice(h)
	var fs []*Factors
	for range 3 {
		fs = append(fs, newFactors(t, h.newClient(h.cs, nil)))
	}
	// load sends 50 concurrent requests per replica; mid, when set, runs
	// (once) halfway through the goroutines, as they run.
	load := func(mid func()) {
		var wg sync.WaitGroup
		var once sync.Once
		errs := make(chan error, 150)
		i := 0
		for _, f := range fs {
			for range 50 {
				i++
				half := i == 75
				wg.Go(func() {
					if half && mid != nil {
						once.Do(mid)
					}
					list, err := f.List(context.Background(), s)
					if err == nil && len(list) != 2 {
						err = errors.New("want 2 methods")
					}
					if err != nil {
						errs <- err
					}
				})
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
	load(nil)
	if n := h.tn.ManagementTokens(); n != 1 {
		t.Fatalf("client_credentials calls after 3×50 requests: %d, want 1", n)
	}
	// Into the renewal window (Auth0's tokens live 86400 s, renewal 5 min
	// before) in the middle of the load: one renewal for all.
	load(func() { h.clock.Advance(86400*time.Second - 4*time.Minute) })
	if n := h.tn.ManagementTokens(); n != 2 {
		t.Fatalf("client_credentials calls after the token neared its expiry: %d, want 2", n)
	}
	// Past the expiry of the second one too.
	h.clock.Advance(2 * 86400 * time.Second)
	load(nil)
	if n := h.tn.ManagementTokens(); n != 3 {
		t.Fatalf("client_credentials calls after the token expired: %d, want 3", n)
	}
}

// TestFactorsRefetchOn401: a 401 costs exactly one new token, and the call
// is made again with it.
func TestFactorsRefetchOn401(t *testing.T) {
	h := factorsHarness(t, nil)
	_, s := steppedUpAlice(h)
	f := newFactors(t, h.c)
	if _, err := f.List(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	h.tn.InjectFault("/api/v2/users/auth0|alice/authentication-methods", auth0test.Fault{Status: 401, Times: 1,
		Body: `{"statusCode":401,"error":"Unauthorized","message":"Invalid token","errorCode":"invalid_token"}`})
	list, err := f.List(context.Background(), s)
	if err != nil || len(list) != 2 {
		t.Fatalf("List after a 401: %v %v", list, err)
	}
	if n := h.tn.ManagementTokens(); n != 2 {
		t.Fatalf("client_credentials calls: %d, want 2 (one refetch)", n)
	}
	// A second replica learns the new token from the store.
	f2 := newFactors(t, h.newClient(h.cs, nil))
	if _, err := f2.List(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if n := h.tn.ManagementTokens(); n != 2 {
		t.Fatalf("client_credentials calls: %d, want 2", n)
	}
	// A 401 that persists is returned after one refetch, typed.
	h.tn.InjectFault("/api/v2/users/auth0|alice/authentication-methods", auth0test.Fault{Status: 401, Times: 2})
	_, err = f.List(context.Background(), s)
	var me *ManagementError
	if !errors.As(err, &me) || me.StatusCode != 401 {
		t.Fatalf("List with a refused token: %v, want a 401 *ManagementError", err)
	}
	if n := h.tn.ManagementTokens(); n != 3 {
		t.Fatalf("client_credentials calls: %d, want 3", n)
	}
}

func TestFactorsListShapes(t *testing.T) {
	h := factorsHarness(t, nil)
	_, s := steppedUpAlice(h)
	list, err := newFactors(t, h.c).List(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]Factor{}
	for _, fa := range list {
		types[fa.Type] = fa
	}
	totp, ok := types["totp"]
	if !ok || totp.ID == "" || !totp.Confirmed || totp.CreatedAt.IsZero() || totp.LastAuthAt.IsZero() || totp.Name == "" {
		t.Errorf("totp factor %+v (alice just used her code)", totp)
	}
	if _, ok := types["recovery-code"]; !ok {
		t.Errorf("no recovery-code factor in %+v", list)
	}
	if _, err := newFactors(t, h.c).List(context.Background(), nil); !errors.Is(err, ErrNoSession) {
		t.Errorf("List without a session: %v, want ErrNoSession", err)
	}
}

// TestFactorsRemoveOtherUsersID: an id that is not in the user's listing
// (carol's factor, unknown, malformed) is ErrFactorNotFound, and no DELETE
// reaches the tenant.
func TestFactorsRemoveOtherUsersID(t *testing.T) {
	h := factorsHarness(t, nil)
	_, s := steppedUpAlice(h)
	f := newFactors(t, h.c)
	carol := &Session{Handle: randomToken(), Subject: "google-oauth2|108000000000000000001"}
	carolList, err := f.list(context.Background(), carol.Subject)
	if err != nil || len(carolList) == 0 {
		t.Fatalf("carol's factors: %v %v", carolList, err)
	}
	for _, id := range []string{carolList[0].ID, "totp|dev_unknown", "../../users/google-oauth2|108000000000000000001", strings.Repeat("a", 500), ""} {
		if err := f.Remove(context.Background(), s, settingsPolicy, id); !errors.Is(err, ErrFactorNotFound) {
			t.Errorf("Remove(%q): %v, want ErrFactorNotFound", id, err)
		}
	}
	for _, p := range h.tn.Endpoints() {
		if strings.Contains(p, "google-oauth2") && strings.Contains(p, "authentication-methods/") {
			t.Errorf("a request reached %s", p)
		}
	}
	if u, _ := h.tn.User(auth0test.CarolEmail); u.TOTPSecret == "" {
		t.Error("carol's factor was deleted")
	}
	after, err := f.list(context.Background(), carol.Subject)
	if err != nil || len(after) != len(carolList) {
		t.Errorf("carol's factors after: %v %v", after, err)
	}
}

// TestFactorsChangesNeedFreshStepUp: every change refuses a session
// without MFA, or with an MFA older than the policy, with a *StepUpError,
// before anything is sent.
func TestFactorsChangesNeedFreshStepUp(t *testing.T) {
	h := factorsHarness(t, nil)
	plain := h.alice()
	if w := plain.visit(pathPrivate); w.Code != http.StatusOK {
		t.Fatalf("private: %d", w.Code)
	}
	noMFA := plain.session()
	_, mfaSession := steppedUpAlice(h)
	h.clock.Advance(6 * time.Minute)
	stale, err := h.c.Session(context.Background(), mfaSession.Handle)
	if err != nil {
		t.Fatal(err)
	}
	f := newFactors(t, h.c)
	ctx := context.Background()
	before := h.tn.ManagementTokens()
	for name, s := range map[string]*Session{"no MFA": noMFA, "stale MFA": stale} {
		changes := map[string]func() error{
			"Remove":                 func() error { return f.Remove(ctx, s, settingsPolicy, "x") },
			"EnrollmentTicket":       func() error { _, err := f.EnrollmentTicket(ctx, s, settingsPolicy, "otp"); return err },
			"StartTOTP":              func() error { _, err := f.StartTOTP(ctx, s, settingsPolicy); return err },
			"ConfirmTOTP":            func() error { return f.ConfirmTOTP(ctx, s, settingsPolicy, "123456") },
			"RegenerateRecoveryCode": func() error { _, err := f.RegenerateRecoveryCode(ctx, s, settingsPolicy); return err },
			"ForgetBrowsers":         func() error { return f.ForgetBrowsers(ctx, s, settingsPolicy) },
			"SetAlwaysMFA":           func() error { return f.SetAlwaysMFA(ctx, s, settingsPolicy, true) },
		}
		for op, call := range changes {
			var se *StepUpError
			if err := call(); !errors.As(err, &se) {
				t.Errorf("%s with %s: %v, want a *StepUpError", op, name, err)
			}
		}
	}
	if n := h.tn.ManagementTokens(); n != before {
		t.Errorf("refused changes reached the tenant (%d token requests)", n-before)
	}
	// Reads need a login only.
	if _, err := f.List(ctx, noMFA); err != nil {
		t.Errorf("List with a plain login: %v", err)
	}
}

// TestFactorsMissingScope: a 403 names the scope to grant.
func TestFactorsMissingScope(t *testing.T) {
	h := factorsHarness(t, []string{auth0test.ScopeReadUsers, auth0test.ScopeReadAuthenticationMethods})
	_, s := steppedUpAlice(h)
	f := newFactors(t, h.c)
	list, err := f.List(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	err = f.Remove(context.Background(), s, settingsPolicy, list[0].ID)
	var me *ManagementError
	if !errors.As(err, &me) || me.StatusCode != 403 || me.Scope != auth0test.ScopeDeleteAuthenticationMethods {
		t.Fatalf("Remove without the scope: %v, want a 403 naming %s", err, auth0test.ScopeDeleteAuthenticationMethods)
	}
	if !strings.Contains(err.Error(), auth0test.ScopeDeleteAuthenticationMethods) {
		t.Errorf("message %q does not name the scope", err)
	}
}

// TestFactorsRateLimited: a 429 is typed, carries the retry delay and
// matches ErrTenantUnavailable.
func TestFactorsRateLimited(t *testing.T) {
	h := factorsHarness(t, nil)
	_, s := steppedUpAlice(h)
	f := newFactors(t, h.c)
	h.tn.InjectFault("/api/v2/users/auth0|alice/authentication-methods", auth0test.Fault{Status: 429, Times: 1,
		Header: auth0test.RateLimitHeaders(10, 0, h.clock.Now().Add(7*time.Second))})
	_, err := f.List(context.Background(), s)
	var me *ManagementError
	if !errors.As(err, &me) || me.StatusCode != 429 || me.RetryAfter != 7*time.Second || !errors.Is(err, ErrTenantUnavailable) {
		t.Fatalf("List rate limited: %#v, want a 429 with RetryAfter 7s", err)
	}
}

// TestFactorsRemoveAndEnrollTOTP removes alice's factor, enrolls a new
// authenticator app through the MFA API (a step-up for its audience) and
// signs in with it.
func TestFactorsRemoveAndEnrollTOTP(t *testing.T) {
	h := factorsHarness(t, nil)
	u, s := steppedUpAlice(h)
	f := newFactors(t, h.c)
	ctx := context.Background()
	list, _ := f.List(ctx, s)
	var totp string
	for _, fa := range list {
		if fa.Type == "totp" {
			totp = fa.ID
		}
	}
	if err := f.Remove(ctx, s, settingsPolicy, totp); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if usr, _ := h.tn.User(auth0test.AliceEmail); usr.TOTPSecret != "" {
		t.Fatal("the factor is still enrolled at the tenant")
	}
	if _, err := f.StartTOTP(ctx, s, settingsPolicy); !errors.Is(err, ErrNoMFAToken) {
		t.Fatalf("StartTOTP without an MFA API token: %v, want ErrNoMFAToken", err)
	}
	// Alice has no factor now: a step-up for the MFA API audience is a plain
	// login at this tenant (Auth0 would enroll during it); give her a
	// session with the MFA API's token through the callback.
	opts := f.MFAAuthorizeOptions(Policy{}, "/")
	ar, q := h.startAuthorize(u.tb, u.creds, opts)
	login, err := h.c.Exchange(ctx, q, ar.Cookie().Value)
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	s2, err := h.c.StartSession(ctx, login, s)
	if err != nil {
		t.Fatal(err)
	}
	s2.StepUp, s2.StepUpAt = s.StepUp, s.StepUpAt // the earlier MFA, within 5 minutes
	e, err := f.StartTOTP(ctx, s2, settingsPolicy)
	if err != nil {
		t.Fatalf("StartTOTP: %v", err)
	}
	if !strings.HasPrefix(e.URI, "otpauth://totp/") || e.Secret == "" {
		t.Fatalf("enrollment %+v", e)
	}
	if err := f.ConfirmTOTP(ctx, s2, settingsPolicy, "000000"); err == nil {
		t.Fatal("a wrong code confirmed the enrollment")
	}
	code := auth0test.TOTP(e.Secret, h.clock.Now())
	if err := f.ConfirmTOTP(ctx, s2, settingsPolicy, code); err != nil {
		t.Fatalf("ConfirmTOTP: %v", err)
	}
	if usr, _ := h.tn.User(auth0test.AliceEmail); usr.TOTPSecret != e.Secret {
		t.Fatal("the new factor is not the user's")
	}
}

// recordingStore keeps every value written, to look for secrets in them.
type recordingStore struct {
	store.Store
	mu     sync.Mutex
	writes map[string][]byte
}

func (s *recordingStore) Set(ctx context.Context, k string, v []byte, ttl time.Duration) error {
	s.mu.Lock()
	s.writes[k] = bytes.Clone(v)
	s.mu.Unlock()
	return s.Store.Set(ctx, k, v, ttl)
}

func (s *recordingStore) SetNX(ctx context.Context, k string, v []byte, ttl time.Duration) (bool, error) {
	s.mu.Lock()
	s.writes[k] = bytes.Clone(v)
	s.mu.Unlock()
	return s.Store.SetNX(ctx, k, v, ttl)
}

// TestFactorsRecoveryCodeNeitherLoggedNorStored regenerates the recovery
// code with every log at debug level and every store write recorded: the
// code (and the Management API token) appear in neither, sealed or opened.
func TestFactorsRecoveryCodeNeitherLoggedNorStored(t *testing.T) {
	h := factorsHarness(t, nil)
	rs := &recordingStore{Store: h.cs, writes: map[string][]byte{}}
	var logs bytes.Buffer
	var mu sync.Mutex
	c := h.newClient(rs, func(cfg *Config) {
		cfg.Logger = slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	h.c, h.mux = c, h.newMux(c)
	_, s := steppedUpAlice(h)
	f := newFactors(t, c)
	code, err := f.RegenerateRecoveryCode(context.Background(), s, settingsPolicy)
	if err != nil {
		t.Fatal(err)
	}
	if usr, _ := h.tn.User(auth0test.AliceEmail); usr.RecoveryCode != code {
		t.Fatalf("returned %q, the tenant has %q", code, usr.RecoveryCode)
	}
	mu.Lock()
	logged := logs.String()
	mu.Unlock()
	if !strings.Contains(logged, "recovery_code_regenerated") {
		t.Fatalf("the change was not logged: %s", logged)
	}
	if strings.Contains(logged, code) {
		t.Fatal("the recovery code is in the log")
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	opened := 0
	for k, v := range rs.writes {
		if bytes.Contains(v, []byte(code)) {
			t.Errorf("the recovery code is in the store at %s", k)
		}
		if pt, err := c.ring.openRecordInPlace(k, bytes.Clone(v)); err == nil {
			opened++
			if bytes.Contains(pt, []byte(code)) {
				t.Errorf("the recovery code is in the record %s", k)
			}
		}
	}
	if opened == 0 {
		t.Fatal("no record written: the test proves nothing")
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestFactorsAlwaysMFAAndBrowsersAndTicket(t *testing.T) {
	h := factorsHarness(t, nil)
	_, s := steppedUpAlice(h)
	f := newFactors(t, h.c)
	ctx := context.Background()
	if on, err := f.AlwaysMFA(ctx, s); err != nil || on {
		t.Fatalf("AlwaysMFA: %v %v, want false", on, err)
	}
	if err := f.SetAlwaysMFA(ctx, s, settingsPolicy, true); err != nil {
		t.Fatal(err)
	}
	if usr, _ := h.tn.User(auth0test.AliceEmail); usr.UserMetadata[DefaultAlwaysMFAKey] != true {
		t.Fatalf("user_metadata %v", usr.UserMetadata)
	}
	if on, err := f.AlwaysMFA(ctx, s); err != nil || !on {
		t.Fatalf("AlwaysMFA: %v %v, want true", on, err)
	}
	if err := f.SetAlwaysMFA(ctx, s, settingsPolicy, false); err != nil {
		t.Fatal(err)
	}
	if usr, _ := h.tn.User(auth0test.AliceEmail); len(usr.UserMetadata) != 0 {
		t.Fatalf("user_metadata %v after switching off", usr.UserMetadata)
	}
	if err := f.ForgetBrowsers(ctx, s, settingsPolicy); err != nil {
		t.Fatal(err)
	}
	// The ticket: alice must remove her factor first (one OTP factor each).
	list, _ := f.List(ctx, s)
	for _, fa := range list {
		if fa.Type == "totp" {
			if err := f.Remove(ctx, s, settingsPolicy, fa.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	ticket, err := f.EnrollmentTicket(ctx, s, settingsPolicy, "otp")
	if err != nil {
		t.Fatal(err)
	}
	got, err := h.tn.NewBrowser().Enroll(ctx, ticket, auth0test.Credentials{})
	if err != nil {
		t.Fatalf("Enroll: %v", err)
	}
	if usr, _ := h.tn.User(auth0test.AliceEmail); usr.TOTPSecret != got.Secret {
		t.Fatal("the ticket did not enroll alice")
	}
	if _, err := h.c.Factors(FactorsConfig{ClientID: "x"}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("ClientID without ClientSecret: %v", err)
	}
}

// FuzzDecodeMgmtToken: the stored Management API token record decodes or
// is refused, never panics, and what decodes encodes back the same.
func FuzzDecodeMgmtToken(f *testing.F) {
	f.Add(encodeMgmtToken(mgmtToken{tok: "eyJhbGciOi.x.y", exp: time.UnixMilli(1790000000000), gen: 1}))
	f.Add([]byte{1, 0, 0, 0})
	f.Add([]byte{2})
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := decodeMgmtToken(data)
		if err != nil {
			return
		}
		if tok.tok == "" || tok.gen == 0 || len(tok.tok) > maxMgmtTokenLen {
			t.Fatalf("accepted %+v", tok)
		}
		back, err := decodeMgmtToken(encodeMgmtToken(tok))
		if err != nil || back != tok {
			t.Fatalf("round trip %+v -> %+v %v", tok, back, err)
		}
	})
}

// TestLogoutOtherSessions ends the user's other sessions and keeps the
// current one (and other users' sessions).
func TestLogoutOtherSessions(t *testing.T) {
	h := factorsHarness(t, nil)
	_, mine := steppedUpAlice(h)
	_, other := steppedUpAlice(h)
	bob := h.newUser(auth0test.Credentials{Email: auth0test.BobEmail, Password: auth0test.BobPassword})
	bob.visit(pathPrivate)
	bobs := bob.session()
	n, err := h.c.LogoutOtherSessions(context.Background(), mine)
	if err != nil || n != 1 {
		t.Fatalf("LogoutOtherSessions: %d %v, want 1", n, err)
	}
	if _, err := h.c.Session(context.Background(), other.Handle); !errors.Is(err, ErrNoSession) {
		t.Errorf("the other session: %v, want ErrNoSession", err)
	}
	for name, s := range map[string]*Session{"current": mine, "bob's": bobs} {
		if _, err := h.c.Session(context.Background(), s.Handle); err != nil {
			t.Errorf("the %s session ended: %v", name, err)
		}
	}
	if _, err := h.c.LogoutOtherSessions(context.Background(), nil); !errors.Is(err, ErrNoSession) {
		t.Errorf("without a session: %v", err)
	}
}

// TestFactorsSeparateM2MApplication: a separate machine-to-machine
// application (client_secret_basic) gets the token; a failed fetch frees
// the lease at once, and the next call fetches.
func TestFactorsSeparateM2MApplication(t *testing.T) {
	m2m := auth0test.Application{Name: "M2M", ClientID: "stepup-m2m", ClientSecret: "m2m-secret-0123456789abcdef0123456789abcdef",
		TokenEndpointAuthMethod: "client_secret_basic", ManagementScopes: auth0test.ManagementScopes}
	h := newHarness(t, harnessOpts{tenant: auth0test.Config{Applications: []auth0test.Application{auth0test.DefaultApplication(), m2m}}})
	_, s := steppedUpAlice(h)
	f, err := h.c.Factors(FactorsConfig{ClientID: m2m.ClientID, ClientSecret: m2m.ClientSecret, TokenEndpointAuthMethod: AuthClientSecretBasic})
	if err != nil {
		t.Fatal(err)
	}
	h.tn.InjectFault("/oauth/token", auth0test.Fault{Status: 503, Times: 1})
	if _, err := f.List(context.Background(), s); !errors.Is(err, ErrTenantUnavailable) {
		t.Fatalf("List with the token endpoint down: %v, want ErrTenantUnavailable", err)
	}
	if _, err := f.List(context.Background(), s); err != nil {
		t.Fatalf("List once the tenant is back: %v", err)
	}
	if n := h.tn.ManagementTokens(); n != 1 {
		t.Fatalf("Management API tokens: %d, want 1", n)
	}
	// The default application has no Management API grant: a typed refusal.
	f2, _ := h.c.Factors(FactorsConfig{})
	var te *TenantError
	if _, err := f2.List(context.Background(), s); !errors.As(err, &te) || te.StatusCode != 403 {
		t.Fatalf("List without a client grant: %v, want a 403 *TenantError", err)
	}
}
