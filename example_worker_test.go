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
	"golang.org/x/oauth2"
)

// exportJob is what the web app queues when a user asks for an export: the
// session's handle (never its cookie) and the job's parameters.
type exportJob struct {
	Handle string
	Year   int
}

// Each action has its own policy: the export needs MFA within 5 minutes...
var exportSalaries = stepup.MFA.WithMaxAge(5 * time.Minute).Named("export-salaries")

// ...or, when the user's MFA is older, their fresh approval on their phone
// (CIBA). Auth0 reports no acr/amr for CIBA, so this policy asks freshness.
var exportApproval = stepup.Policy{Name: "export-approval", MaxAge: 5 * time.Minute}

// runExport is the worker's job handler: check the action's policy, ask
// the user out of band when the step-up is stale, then call the API as the
// user with a token source (refreshed, rotation-safe, across replicas).
func runExport(ctx context.Context, c *stepup.Client, apiURL string, job exportJob, wait func(context.Context, time.Duration) error) error {
	s, err := c.SessionFor(ctx, job.Handle, exportSalaries)
	var se *stepup.StepUpError
	switch {
	case errors.As(err, &se):
		fmt.Println("step-up stale:", se.Reason)
		_, err := c.StepUpCIBA(ctx, s, stepup.CIBARequest{
			Policy:         exportApproval,
			BindingMessage: fmt.Sprintf("Export salaries %d", job.Year),
			Wait:           wait, // nil in production: poll every Interval
		})
		if err != nil {
			return fmt.Errorf("export %d: %w", job.Year, err)
		}
		fmt.Println("approved on the phone")
	case err != nil:
		return fmt.Errorf("export %d: %w", job.Year, err)
	}
	ts := c.TokenSource(ctx, job.Handle, stepup.TokenSourceOptions{Audience: exampleAPI})
	resp, err := oauth2.NewClient(ctx, ts).Get(fmt.Sprintf("%s/salaries/export?year=%d", apiURL, job.Year))
	if err != nil {
		return fmt.Errorf("export %d: %w", job.Year, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Printf("API: %d %s\n", resp.StatusCode, body)
	return nil
}

const exampleAPI = "https://api.fabrikam.example/"

// A background worker takes queued export jobs. The first runs right after
// Alice's MFA login; the second an hour later, when her access token has
// expired (the token source refreshes it with Auth0's rotating refresh
// token) and her MFA is too old for the export (she approves a CIBA push).
func Example_worker() {
	ctx := context.Background()
	clock := &workerExampleClock{t: time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)}
	tenant, err := auth0test.Start(auth0test.Config{
		RefreshTokenRotation: true,
		APIs:                 []auth0test.API{{Identifier: exampleAPI, Scopes: []string{"read:salaries"}, AccessTokenLifetime: 30 * time.Minute}},
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

	// The salaries API: a resource server that wants read:salaries.
	verifier, err := client.Verifier(exampleAPI)
	if err != nil {
		log.Fatal(err)
	}
	defer verifier.Close()
	api := httptest.NewServer(verifier.Require(stepup.Policy{Scopes: []string{"read:salaries"}})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		at, _ := stepup.AccessTokenFromContext(r.Context())
		fmt.Fprintf(w, "export %s for %s", r.URL.Query().Get("year"), at.Subject)
	})))
	defer api.Close()

	// Alice logs in with MFA in the web app, which queues her job.
	handle := workerExampleLogin(ctx, client, tenant)
	queue := make(chan exportJob, 2)
	queue <- exportJob{Handle: handle, Year: 2025}
	queue <- exportJob{Handle: handle, Year: 2026}
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

	first := true
	for job := range queue {
		if !first {
			clock.Advance(time.Hour)
		}
		first = false
		if err := runExport(ctx, client, api.URL, job, phone); err != nil {
			fmt.Println("job failed:", err)
		}
	}
	fmt.Println("refreshes at the tenant:", tenant.GrantCalls(auth0test.GrantRefreshToken))
	// Output:
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
