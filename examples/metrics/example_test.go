package metrics_test

import (
	"context"
	"fmt"
	"log"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stepupauth/stepup"
	"github.com/stepupauth/stepup/auth0test"
	"github.com/stepupauth/stepup/examples/metrics"
)

// A login and an MFA step-up against the dev tenant, counted in Prometheus.
func Example() {
	ctx := context.Background()
	tenant, err := auth0test.Start(auth0test.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer tenant.Close()
	reg := prometheus.NewRegistry()
	counters, err := metrics.New(reg)
	if err != nil {
		log.Fatal(err)
	}
	app := auth0test.DefaultApplication()
	client, err := stepup.New(ctx, stepup.Config{
		Domain: tenant.Domain(), ClientID: app.ClientID, ClientSecret: app.ClientSecret,
		RedirectURL: app.CallbackURLs[0], HTTPClient: tenant.Client(),
		Events: counters.Observe, // every audit event, counted
	})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	// Alice logs in, then steps up with MFA (the hand-written callback).
	browser := tenant.NewBrowser()
	for _, p := range []stepup.Policy{stepup.Login, stepup.MFA} {
		ar, err := client.AuthorizeURL(ctx, stepup.AuthorizeOptions{Policy: p})
		if err != nil {
			log.Fatal(err)
		}
		cb, err := browser.Login(ctx, ar.URL, auth0test.Credentials{Email: auth0test.AliceEmail, Password: auth0test.AlicePassword})
		if err != nil {
			log.Fatal(err)
		}
		login, err := client.Exchange(ctx, cb.Query(), ar.Transaction)
		if err != nil {
			log.Fatal(err)
		}
		if _, err := client.StartSession(ctx, login, nil); err != nil {
			log.Fatal(err)
		}
	}
	events := counters.Events()
	fmt.Println("logins:", testutil.ToFloat64(events.WithLabelValues("login", "login", ""))+
		testutil.ToFloat64(events.WithLabelValues("login", "mfa", "")))
	fmt.Println("MFA step-ups:", testutil.ToFloat64(events.WithLabelValues("step_up_completed", "mfa", "")))
	n, _ := testutil.GatherAndCount(reg, "stepup_events_total")
	fmt.Println("series:", n)
	// Output:
	// logins: 2
	// MFA step-ups: 1
	// series: 3
}
