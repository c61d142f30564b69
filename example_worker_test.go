package stepup_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/stepupauth/stepup"
	"github.com/stepupauth/stepup/auth0test"
)

// exportJob is what the web app queues when a user asks for an export: the
// session's handle (never its cookie) and the job's parameters.
type exportJob struct {
	Handle string
	Year   int
	After  time.Duration // how long after the login the worker runs it
}

// The export needs MFA within 5 minutes: the worker checks it first
// (SessionFor), and the salaries API checks it again in the access token.
var exportSalaries = stepup.MFA.WithMaxAge(5 * time.Minute).Named("export-salaries")

// When the user's MFA is older, or the API refuses the worker's token, the
// worker asks for the user's fresh approval on their phone (CIBA). Auth0
// reports no acr/amr in CIBA ID tokens, so the worker's own check of the
// approval asks freshness only; the API's check relies on the Action's
// claims (exampleAction).
var exportApproval = stepup.Policy{Name: "export-approval", MaxAge: 5 * time.Minute}

// runExport is the worker's job handler: check the action's policy, call
// the API as the user (APIClient: the session's token, refreshed with
// rotation across replicas), and recover out of band when the step-up is
// stale or the API refuses the token.
func runExport(ctx context.Context, c *stepup.Client, api *stepup.APIClient, apiURL string, job exportJob, wait func(context.Context, time.Duration) error) error {
	target := fmt.Sprintf("%s/salaries/export?year=%d", apiURL, job.Year)
	s, err := c.SessionFor(ctx, job.Handle, exportSalaries)
	var se *stepup.StepUpError
	switch {
	case errors.As(err, &se):
		fmt.Println("step-up stale:", se.Reason)
		return approveAndCall(ctx, c, s, target, job, wait)
	case err != nil:
		return fmt.Errorf("export %d: %w", job.Year, err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	resp, err := api.Do(s, req)
	var need *stepup.StepUpNeededError
	if errors.As(err, &need) && need.Job {
		// The session's step-up is fresh, yet the API refuses the token:
		// it came from a refresh-token exchange, which carries the step-up
		// only where the Action can keep it in the refresh token's metadata
		// (Auth0 Enterprise; README). Elsewhere, a fresh approval.
		fmt.Println("API refused the refreshed token:", need.Challenge.Error)
		return approveAndCall(ctx, c, s, target, job, wait)
	}
	if err != nil {
		return fmt.Errorf("export %d: %w", job.Year, err)
	}
	return printAnswer(resp)
}

// approveAndCall asks the user to approve the export on their phone, then
// calls the API with the approval's access token, which carries the
// step-up (the Action sets it for CIBA).
func approveAndCall(ctx context.Context, c *stepup.Client, s *stepup.Session, target string, job exportJob, wait func(context.Context, time.Duration) error) error {
	res, err := c.StepUpCIBA(ctx, s, stepup.CIBARequest{
		Policy:         exportApproval,
		BindingMessage: fmt.Sprintf("Export salaries %d", job.Year),
		Audience:       exampleAPI,
		Wait:           wait, // nil in production: poll every Interval
	})
	if err != nil {
		return fmt.Errorf("export %d: %w", job.Year, err)
	}
	fmt.Println("approved on the phone")
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	res.Token.SetAuthHeader(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("export %d: %w", job.Year, err)
	}
	return printAnswer(resp)
}

func printAnswer(resp *http.Response) error {
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Printf("API: %d %s\n", resp.StatusCode, body)
	return nil
}

const (
	exampleAPI = "https://api.fabrikam.example/"
	exampleNS  = "https://stepup.example/"
)

// exampleAction is the README's post-login Action (the one Action this SDK
// documents) as auth0test runs it: auth0test.ClaimsAction, its Go twin. It
// demands MFA when acr_values ask for it and copies the step-up into the
// access token under exampleNS (Auth0 refuses acr, amr and auth_time in
// access tokens): on an interactive login the MFA's time, on a CIBA approval
// the approval's; and it keeps the step-up in the refresh token's metadata,
// from which it copies it again on every refresh-token exchange (Auth0's
// refresh-token metadata, an Enterprise feature: the tenant below enables
// it with Config.RefreshTokenMetadata). Without that feature a refreshed
// token carries no step-up, the API refuses it, and runExport recovers with
// a CIBA push.
func exampleAction(now func() time.Time) auth0test.ActionFunc {
	return auth0test.ClaimsAction(exampleNS, now)
}

// A background worker takes queued export jobs for an API that demands MFA
// within 5 minutes. The first runs right after Alice's MFA login (her
// access token is fresh: 200). The second runs 3 minutes later: her MFA is
// still fresh, her 2-minute access token has expired, and the token source
// refreshes it; the refreshed token carries the login's step-up (the Action
// kept it in the refresh token's metadata), so the API answers 200. The
// third runs an hour later: her step-up is too old for the export
// (SessionFor reports it), so the worker asks for a CIBA push on her phone
// before calling at all, and the approval's token gets 200.
func Example_worker() {
	ctx := context.Background()
	clock := &workerExampleClock{t: time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)}
	tenant, err := auth0test.Start(auth0test.Config{
		RefreshTokenRotation: true,
		RefreshTokenMetadata: true, // Auth0 Enterprise: the Action keeps the step-up for refreshes
		APIs:                 []auth0test.API{{Identifier: exampleAPI, Scopes: []string{"read:salaries"}, AccessTokenLifetime: 2 * time.Minute}},
		Action:               exampleAction(clock.Now),
		Now:                  clock.Now,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer tenant.Close()
	app := auth0test.DefaultApplication()
	client, err := stepup.New(ctx, stepup.Config{
		Domain:             tenant.Domain(),
		ClientID:           app.ClientID,
		ClientSecret:       app.ClientSecret,
		RedirectURL:        app.CallbackURLs[0],
		Scopes:             []string{"profile", "email", "offline_access", "read:salaries"},
		Audience:           exampleAPI,
		SessionIdleTimeout: 8 * time.Hour, // jobs run while the user is away
		HTTPClient:         tenant.Client(),
		Now:                clock.Now,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	// The salaries API: a resource server that demands MFA within 5
	// minutes, read from the Action's claims.
	verifier, err := client.Verifier(exampleAPI, stepup.WithClaimNamespace(exampleNS))
	if err != nil {
		log.Fatal(err)
	}
	defer verifier.Close()
	api := httptest.NewServer(verifier.Require(exportSalaries)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		at, _ := stepup.AccessTokenFromContext(r.Context())
		fmt.Fprintf(w, "export %s for %s", r.URL.Query().Get("year"), at.Subject)
	})))
	defer api.Close()
	apiClient, err := client.APIClient(stepup.APIConfig{}) // Config.Audience
	if err != nil {
		log.Fatal(err)
	}

	// Alice logs in with MFA in the web app, which queues her jobs.
	handle := workerExampleLogin(ctx, client, tenant)
	queue := make(chan exportJob, 3)
	queue <- exportJob{Handle: handle, Year: 2024}
	queue <- exportJob{Handle: handle, Year: 2025, After: 3 * time.Minute}
	queue <- exportJob{Handle: handle, Year: 2026, After: time.Hour}
	close(queue)

	// The user's phone: approve the pending CIBA request (a person would
	// press Approve in Guardian; the demo tenant lets a test do it).
	phone := func(ctx context.Context, d time.Duration) error {
		clock.Advance(d)
		for _, p := range tenant.PendingCIBA() {
			fmt.Printf("phone shows %q\n", p.BindingMessage)
			tenant.ApproveCIBA(p.AuthReqID)
		}
		return nil
	}

	login := clock.Now()
	for job := range queue {
		clock.Advance(login.Add(job.After).Sub(clock.Now()))
		if err := runExport(ctx, client, apiClient, api.URL, job, phone); err != nil {
			fmt.Println("job failed:", err)
		}
	}
	fmt.Println("refreshes at the tenant:", tenant.GrantCalls(auth0test.GrantRefreshToken))
	// Output:
	// API: 200 export 2024 for auth0|alice
	// API: 200 export 2025 for auth0|alice
	// step-up stale: authentication too old
	// phone shows "Export salaries 2026"
	// approved on the phone
	// API: 200 export 2026 for auth0|alice
	// refreshes at the tenant: 1
}

// workerExampleLogin signs Alice in with MFA, as the web app's callback
// would, and returns her session's handle. The policy's MaxAge sends max_age,
// without which Auth0 (and auth0test) put no auth_time in the ID token.
func workerExampleLogin(ctx context.Context, c *stepup.Client, tenant *auth0test.Tenant) string {
	ar, err := c.AuthorizeURL(ctx, stepup.AuthorizeOptions{Policy: exportSalaries})
	if err != nil {
		log.Fatal(err)
	}
	cb, err := tenant.Login(ctx, ar.URL, auth0test.Credentials{Email: auth0test.AliceEmail, Password: auth0test.AlicePassword})
	if err != nil {
		log.Fatal(err)
	}
	res, err := c.Exchange(ctx, cb.Query(), ar.Transaction)
	if err != nil {
		log.Fatal(err)
	}
	s, err := c.StartSession(ctx, res, nil)
	if err != nil {
		log.Fatal(err)
	}
	return s.Handle
}

// workerExampleClock is the example's moving clock, shared by the tenant
// and the Client.
type workerExampleClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *workerExampleClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *workerExampleClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// The same worker on a tenant without refresh-token metadata (any plan but
// Enterprise): three minutes after the login her MFA is still fresh, but the
// refreshed access token carries no step-up, the API refuses it, and the
// worker recovers with a CIBA push.
func Example_workerWithoutRefreshTokenMetadata() {
	ctx := context.Background()
	clock := &workerExampleClock{t: time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)}
	tenant, err := auth0test.Start(auth0test.Config{
		RefreshTokenRotation: true, // RefreshTokenMetadata false: api.refreshToken absent
		APIs:                 []auth0test.API{{Identifier: exampleAPI, Scopes: []string{"read:salaries"}, AccessTokenLifetime: 2 * time.Minute}},
		Action:               exampleAction(clock.Now),
		Now:                  clock.Now,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer tenant.Close()
	app := auth0test.DefaultApplication()
	client, err := stepup.New(ctx, stepup.Config{
		Domain: tenant.Domain(), ClientID: app.ClientID, ClientSecret: app.ClientSecret,
		RedirectURL: app.CallbackURLs[0], Scopes: []string{"profile", "email", "offline_access", "read:salaries"},
		Audience: exampleAPI, SessionIdleTimeout: 8 * time.Hour, HTTPClient: tenant.Client(), Now: clock.Now,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	verifier, err := client.Verifier(exampleAPI, stepup.WithClaimNamespace(exampleNS))
	if err != nil {
		log.Fatal(err)
	}
	defer verifier.Close()
	api := httptest.NewServer(verifier.Require(exportSalaries)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		at, _ := stepup.AccessTokenFromContext(r.Context())
		fmt.Fprintf(w, "export %s for %s", r.URL.Query().Get("year"), at.Subject)
	})))
	defer api.Close()
	apiClient, err := client.APIClient(stepup.APIConfig{})
	if err != nil {
		log.Fatal(err)
	}
	handle := workerExampleLogin(ctx, client, tenant)
	phone := func(ctx context.Context, d time.Duration) error {
		clock.Advance(d)
		for _, p := range tenant.PendingCIBA() {
			fmt.Printf("phone shows %q\n", p.BindingMessage)
			tenant.ApproveCIBA(p.AuthReqID)
		}
		return nil
	}
	clock.Advance(3 * time.Minute)
	if err := runExport(ctx, client, apiClient, api.URL, exportJob{Handle: handle, Year: 2025}, phone); err != nil {
		fmt.Println("job failed:", err)
	}
	fmt.Println("refreshes at the tenant:", tenant.GrantCalls(auth0test.GrantRefreshToken))
	// Output:
	// API refused the refreshed token: insufficient_user_authentication
	// phone shows "Export salaries 2025"
	// approved on the phone
	// API: 200 export 2025 for auth0|alice
	// refreshes at the tenant: 1
}
