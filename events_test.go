package stepup

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stepupauth/stepup/auth0test"
)

// eventLog collects the events of a Client.
type eventLog struct {
	mu     sync.Mutex
	events []Event
}

func (l *eventLog) add(_ context.Context, e Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

// take returns the events since the last take.
func (l *eventLog) take() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.events
	l.events = nil
	return out
}

func kinds(es []Event) []EventKind {
	out := make([]EventKind, len(es))
	for i, e := range es {
		out[i] = e.Kind
	}
	return out
}

// The audit trail of a full session: login, step-up demanded and completed,
// an API's challenge, a refresh, a refused refresh, mfa_required, CIBA
// started/approved/denied/expired. Every event names the session by its
// handle's prefix and holds no token.
func TestEventSequence(t *testing.T) {
	const api = "https://api.fabrikam.example/"
	var (
		log     eventLog
		logs    bytes.Buffer
		mfaNext bool
	)
	h := newHarness(t, harnessOpts{
		tenant: auth0test.Config{
			RefreshTokenRotation: true,
			APIs:                 []auth0test.API{{Identifier: api, AccessTokenLifetime: 2 * time.Minute}},
			Action: func(ev *auth0test.ActionEvent, a *auth0test.ActionAPI) {
				auth0test.StepUpAction(ev, a)
				if ev.Protocol == auth0test.ProtocolRefreshToken && mfaNext {
					a.RequireMFA()
				}
			},
		},
		client: func(c *Config) {
			c.Audience = api
			c.Scopes = []string{"profile", "email", "offline_access"}
			c.Events = log.add
			c.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		},
	})
	ctx := context.Background()
	u := h.alice()

	u.visit(pathPrivate)
	s := u.session()
	prefix := s.Handle[:8]
	want := []Event{{Kind: EventLogin, Session: prefix, Subject: s.Subject, SessionID: s.SessionID, Connection: "auth0",
		Policy: "login", Audience: api}}
	if diff := cmp.Diff(want, log.take(), cmpEvent); diff != "" {
		t.Errorf("login (-want +got):\n%s", diff)
	}

	u.visit(pathSalaries)
	got := log.take()
	if diff := cmp.Diff([]EventKind{EventStepUpDemanded, EventLogin, EventStepUpCompleted}, kinds(got)); diff != "" {
		t.Fatalf("step-up (-want +got):\n%s", diff)
	}
	if got[0].Reason != string(ReasonACRMissing) || got[0].Policy != "mfa" {
		t.Errorf("step-up demanded: %+v", got[0])
	}
	if c := got[2]; c.ACR != ACRMultiFactor || !strings.Contains(strings.Join(c.AMR, " "), "mfa") || c.Policy != "mfa" || c.Session != prefix {
		t.Errorf("step-up completed: %+v", c)
	}

	// An API that demands what no token carries (no Action copies it).
	v, err := h.c.Verifier(api, WithClaimNamespace("https://stepup.example/"))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	srv := httptest.NewServer(v.Require(MFA.WithMaxAge(5 * time.Minute))(http.NotFoundHandler()))
	defer srv.Close()
	ac, err := h.c.APIClient(APIConfig{})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/x", nil)
	s = u.session()
	var need *StepUpNeededError
	if _, err := ac.Do(s, req); !errors.As(err, &need) || need.Job {
		t.Fatalf("API call: %v, want a *StepUpNeededError for a page (Job false)", err)
	}
	got = log.take()
	if len(got) != 1 || got[0].Kind != EventAPIChallenge || got[0].Audience != api || got[0].ACR != ACRMultiFactor ||
		got[0].Reason != "insufficient_user_authentication max_age=300" {
		t.Fatalf("API challenge: %+v", got)
	}
	// The same call by a job (session read by handle) says how to recover.
	js, _ := h.c.Session(ctx, s.Handle)
	if _, err := ac.Do(js, req); !errors.As(err, &need) || !need.Job || !strings.Contains(err.Error(), "StepUpCIBA") {
		t.Fatalf("job's API call: %v, want Job and the way out", err)
	}
	if p := need.Policy(); p.MaxAge != 5*time.Minute || len(p.ACR) != 1 {
		t.Errorf("need.Policy() = %+v", p)
	}
	log.take()

	// A refresh, then an mfa_required, then a refused refresh.
	h.clock.Advance(3 * time.Minute)
	ts := h.c.TokenSource(ctx, s.Handle, TokenSourceOptions{})
	if _, err := ts.Token(); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(3 * time.Minute)
	mfaNext = true
	if _, err := ts.Token(); !errors.Is(err, ErrMFARequired) {
		t.Fatalf("refresh with an Action demanding MFA: %v", err)
	}
	mfaNext = false
	tok, err := h.c.Token(ctx, s, "")
	if err != nil {
		t.Fatal(err)
	}
	h.tn.RevokeRefreshFamily(tok.RefreshToken)
	if _, err := ts.Token(); !errors.Is(err, ErrRefreshTokenInvalid) {
		t.Fatalf("refresh of a revoked family: %v", err)
	}
	got = log.take()
	if diff := cmp.Diff([]EventKind{EventRefresh, EventMFARequired, EventRefreshRefused}, kinds(got)); diff != "" {
		t.Fatalf("refreshes (-want +got):\n%s", diff)
	}
	if got[2].Reason != "invalid_grant" || got[0].Audience != api || got[0].Session != prefix {
		t.Errorf("refresh events: %+v", got)
	}

	// CIBA: approved, denied, expired.
	for _, tc := range []struct {
		decide func(id string)
		want   EventKind
	}{
		{func(id string) { h.tn.ApproveCIBA(id) }, EventCIBAApproved},
		{func(id string) { h.tn.DenyCIBA(id) }, EventCIBADenied},
		{func(string) { h.clock.Advance(10 * time.Minute) }, EventCIBAExpired},
	} {
		_, err := h.c.StepUpCIBA(ctx, js, CIBARequest{Policy: Policy{Name: "approve"}, BindingMessage: "Approve 1",
			Wait: func(context.Context, time.Duration) error {
				for _, p := range h.tn.PendingCIBA() {
					tc.decide(p.AuthReqID)
				}
				return nil
			}})
		got := log.take()
		if diff := cmp.Diff([]EventKind{EventCIBAStarted, tc.want}, kinds(got)); diff != "" {
			t.Errorf("CIBA (err %v) (-want +got):\n%s", err, diff)
		}
	}

	// The log carries the same events with the stable attribute schema,
	// and never a token.
	out := logs.String()
	for _, want := range []string{`"msg":"stepup: login"`, `"event":"step_up_completed"`, `"session":"` + prefix + `"`,
		`"event":"refresh_refused"`, `"level":"WARN"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s", want)
		}
	}
	if strings.Contains(out, "eyJ") || strings.Contains(out, s.Handle) || strings.Contains(out, tok.RefreshToken) {
		t.Error("the log holds a token or a whole handle")
	}
}

// Refused logins: by the hook, and a step-up the tenant did not perform.
func TestEventsOfRefusals(t *testing.T) {
	var log eventLog
	h := newHarness(t, harnessOpts{
		tenant: auth0test.Config{IgnoreACRValues: true}, // a tenant without the step-up Action
		client: func(c *Config) {
			c.Events = log.add
			c.BeforeSession = func(_ context.Context, l *LoginResult) (map[string]string, error) {
				if l.Connection == "refuse" {
					return nil, errors.New("no")
				}
				return nil, nil
			}
		},
	})
	u := h.alice()
	u.visit(pathPrivate)
	log.take()
	w := u.callback(u.authorize(u.get(pathSalaries)))
	if w.Code != http.StatusForbidden {
		t.Fatalf("step-up not performed: %d", w.Code)
	}
	got := log.take()
	if diff := cmp.Diff([]EventKind{EventStepUpDemanded, EventStepUpRefused}, kinds(got)); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(got[1].Reason, string(ReasonNotPerformed)) || got[1].Policy != "mfa" {
		t.Errorf("step-up refused: %+v", got[1])
	}
	if _, err := h.c.StartSession(context.Background(), &LoginResult{IDToken: &IDToken{Subject: "auth0|x"}, Connection: "refuse"}, nil); !errors.Is(err, ErrLoginRefused) {
		t.Fatal(err)
	}
	if got := log.take(); len(got) != 1 || got[0].Kind != EventLoginRefused || got[0].Reason != "no" {
		t.Errorf("login refused: %+v", got)
	}
}

// cmpEvent ignores the time and the evidence of an event (asserted apart).
var cmpEvent = cmp.Transformer("event", func(e Event) Event {
	e.At, e.ACR, e.AMR, e.AuthTime = time.Time{}, "", nil, time.Time{}
	return e
})
