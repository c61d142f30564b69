package stepup

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stepupauth/stepup/auth0test"
)

// Exchange checks a login against the policy that was sent in acr_values,
// which the transaction record keeps, and no longer against that policy
// re-adapted to the user's connection: an API's RFC 9470 challenge, answered
// with its exact acr_values, succeeds at the callback even when
// Config.ConnectionPolicies names another acr for the user's connection.
func TestExchangeChecksThePolicySent(t *testing.T) {
	corp := Policy{Name: "corp", ACR: []string{"urn:fabrikam:corp-mfa"}}
	mfaOnly := Policy{Name: "amr-mfa", AMR: []string{"mfa"}}
	requireMFA := func(ev *auth0test.ActionEvent, api *auth0test.ActionAPI) { api.RequireMFA() }
	challenge := (&Challenge{ACRValues: []string{ACRMultiFactor}}).AuthorizeOptions()
	tests := []struct {
		name       string
		tenant     auth0test.Config
		policies   map[string]Policy // Config.ConnectionPolicies
		opts       AuthorizeOptions
		wantPolicy Policy  // LoginResult.Policy
		wantCause  *Reason // a *StepUpError{ReasonNotPerformed, Cause}
	}{
		{
			name:       "challenge's acr_values, another acr for the connection",
			policies:   map[string]Policy{"auth0": corp},
			opts:       challenge,
			wantPolicy: challenge.Policy,
		},
		{
			name:       "page policy, another acr for the connection",
			policies:   map[string]Policy{"auth0": corp},
			opts:       AuthorizeOptions{Policy: MFA},
			wantPolicy: MFA,
		},
		{
			name:       "requested connection: its adapted policy was sent",
			policies:   map[string]Policy{auth0test.DatabaseConnection: MFA.WithMaxAge(5 * time.Minute)},
			opts:       AuthorizeOptions{Policy: MFA, Connection: auth0test.DatabaseConnection},
			wantPolicy: MFA.WithMaxAge(5 * time.Minute).Named("mfa@" + auth0test.DatabaseConnection),
		},
		{
			// The tenant performed MFA (its Action) but returned no acr:
			// what was sent is not met, the chosen connection's policy is.
			name:       "connection chosen at the chooser: its policy is accepted too",
			tenant:     auth0test.Config{IgnoreACRValues: true, Action: requireMFA},
			policies:   map[string]Policy{"auth0": mfaOnly},
			opts:       AuthorizeOptions{Policy: MFA},
			wantPolicy: Policy{Name: "mfa@auth0", AMR: []string{"mfa"}},
		},
		{
			name:      "neither the policy sent nor the connection's is met",
			tenant:    auth0test.Config{IgnoreACRValues: true},
			policies:  map[string]Policy{"auth0": corp},
			opts:      challenge,
			wantCause: ptr(ReasonACRMissing),
		},
		{
			name:      "requested connection: only the policy sent counts",
			tenant:    auth0test.Config{IgnoreACRValues: true, Action: requireMFA},
			policies:  map[string]Policy{"auth0": mfaOnly}, // the sub prefix is not the requested connection
			opts:      AuthorizeOptions{Policy: MFA, Connection: auth0test.DatabaseConnection},
			wantCause: ptr(ReasonACRMissing),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOpts{tenant: tc.tenant, client: func(cfg *Config) { cfg.ConnectionPolicies = tc.policies }})
			ar, cb := h.startAuthorize(nil, aliceCreds, tc.opts)
			res, err := h.c.Exchange(context.Background(), cb, ar.Transaction)
			if tc.wantCause != nil {
				var se *StepUpError
				if !errors.As(err, &se) || se.Reason != ReasonNotPerformed || se.Cause != *tc.wantCause {
					t.Fatalf("got %v, want *StepUpError{ReasonNotPerformed, Cause: %s}", err, *tc.wantCause)
				}
				return
			}
			if err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			if diff := cmp.Diff(tc.wantPolicy, res.Policy); diff != "" {
				t.Errorf("LoginResult.Policy (-want +got):\n%s", diff)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
