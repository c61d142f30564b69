package stepup

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stepupauth/stepup/auth0test"
	"github.com/stepupauth/stepup/store"
)

// An out-of-band step-up (the MFA API through CompleteMFA, or CIBA) does not
// rotate the browser's cookie, so it must not strengthen it: a cookie
// captured before the step-up stays as weak as it was for RequireStepUp,
// while the job's SessionFor accepts the step-up. Logout removes the
// out-of-band evidence with the session.
func TestOutOfBandStepUpDoesNotUpgradeCookie(t *testing.T) {
	for _, kind := range []string{"MFA API", "CIBA"} {
		t.Run(kind, func(t *testing.T) {
			var demand atomic.Bool
			e := newWkEnv(t, wkOpts{action: func(ev *auth0test.ActionEvent, api *auth0test.ActionAPI) {
				if ev.Protocol == auth0test.ProtocolRefreshToken && demand.Load() {
					api.RequireMFA()
				}
			}})
			c := e.client(nil, nil)
			ctx := context.Background()
			s := e.login(c, Login)
			stolen := c.SessionCookie(s) // captured before any step-up
			served := 0
			page := c.RequireStepUp(MFA)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { served++ }))
			visit := func() int {
				req := httptest.NewRequest(http.MethodGet, "https://app.example/salaries", nil)
				req.AddCookie(stolen)
				rec := httptest.NewRecorder()
				page.ServeHTTP(rec, req)
				return rec.Code
			}
			if visit(); served != 0 {
				t.Fatal("precondition: a plain login passes RequireStepUp(MFA)")
			}
			e.clock.Advance(wkAccessLifetime)
			switch kind {
			case "MFA API":
				demand.Store(true)
				_, err := c.TokenSource(ctx, s.Handle, TokenSourceOptions{Audience: wkAPI}).Token()
				var me *MFARequiredError
				if !errors.As(err, &me) {
					t.Fatalf("refresh: got %v, want *MFARequiredError", err)
				}
				if _, err := c.CompleteMFA(ctx, me, MFAProof{OTP: e.tn.OTP(auth0test.AliceEmail)}); err != nil {
					t.Fatalf("CompleteMFA: %v", err)
				}
			case "CIBA":
				e.tn.ForgeIDTokens(func(h, cl map[string]any) { cl["acr"] = ACRMultiFactor; cl["amr"] = []string{"mfa"} })
				var waits []time.Duration
				var a *CIBAAuthorization
				req := CIBARequest{Policy: MFA, BindingMessage: "Export salaries 4711",
					Wait: cibaWait(e, &waits, nil, map[int]func(){1: func() { e.tn.ApproveCIBA(a.AuthReqID) }})}
				var err error
				if a, err = c.StartCIBA(ctx, s, req); err != nil {
					t.Fatalf("StartCIBA: %v", err)
				}
				if _, err := c.WaitCIBA(ctx, a); err != nil {
					t.Fatalf("WaitCIBA: %v", err)
				}
			}
			// The job sees the step-up...
			if _, err := c.SessionFor(ctx, s.Handle, MFA.WithMaxAge(5*time.Minute)); err != nil {
				t.Errorf("SessionFor(MFA within 5 min) after the %s step-up: %v", kind, err)
			}
			// ...the cookie captured before it does not.
			old, err := c.LoadSession(ctx, stolen.Value)
			if err != nil {
				t.Fatalf("LoadSession(old cookie): %v", err)
			}
			if err := c.CheckSession(old, MFA); !errors.Is(err, ErrStepUpRequired) {
				t.Errorf("CheckSession(old cookie, MFA) after the %s step-up: got %v, want ErrStepUpRequired", kind, err)
			}
			if code := visit(); served != 0 {
				t.Errorf("RequireStepUp(MFA) served the cookie captured before the %s step-up (status %d)", kind, code)
			}
			// Logout removes the out-of-band evidence too.
			if err := c.Logout(ctx, s.Handle); err != nil {
				t.Fatalf("Logout: %v", err)
			}
			if _, err := e.store.Get(ctx, c.outOfBandKey(s.Handle)); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("out-of-band record after Logout: %v, want store.ErrNotFound", err)
			}
		})
	}
}

// An out-of-band record counts only for the session it names.
func TestOutOfBandRecordOfAnotherSession(t *testing.T) {
	e := newWkEnv(t, wkOpts{})
	c := e.client(nil, nil)
	ctx := context.Background()
	s := e.login(c, Login)
	ev := obEvidence(toEvidence(Authentication{ACR: ACRMultiFactor, AMR: []string{AMRMultiFactor}, AuthTime: e.clock.Now()}))
	key := c.outOfBandKey(s.Handle)
	for _, rec := range []outOfBandRecord{
		{V: outOfBandVersion, Subject: "auth0|someone-else", Created: s.CreatedAt.UnixMilli(), Ev: ev, At: e.clock.Now().UnixMilli()},
		{V: outOfBandVersion, Subject: s.Subject, Created: s.CreatedAt.UnixMilli() - 1, Ev: ev, At: e.clock.Now().UnixMilli()},
	} {
		if err := e.store.Set(ctx, key, c.ring.sealRecord(key, encodeOutOfBand(&rec)), time.Hour); err != nil {
			t.Fatal(err)
		}
		if _, err := c.SessionFor(ctx, s.Handle, MFA); !errors.Is(err, ErrStepUpRequired) {
			t.Errorf("record %+v: SessionFor(MFA) got %v, want ErrStepUpRequired", rec, err)
		}
	}
	// The session's own record, sealed: it counts (the control)...
	good := outOfBandRecord{V: outOfBandVersion, Subject: s.Subject, Created: s.CreatedAt.UnixMilli(), Ev: ev, At: e.clock.Now().UnixMilli()}
	if err := e.store.Set(ctx, key, c.ring.sealRecord(key, encodeOutOfBand(&good)), time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SessionFor(ctx, s.Handle, MFA); err != nil {
		t.Fatalf("the session's sealed out-of-band record: SessionFor(MFA) got %v, want nil", err)
	}
	// ...written without the Client's keys (a forger with write access to
	// the store), moved from another session's key, or unreadable, it is
	// absent: no step-up.
	other := c.outOfBandKey(randomToken())
	for name, blob := range map[string][]byte{
		"unsealed":       encodeOutOfBand(&good),
		"other key":      c.ring.sealRecord(other, encodeOutOfBand(&good)),
		"unreadable":     []byte(`{"v":1}`),
		"sealed garbage": c.ring.sealRecord(key, []byte(`{"v":1}`)),
	} {
		if err := e.store.Set(ctx, key, blob, time.Hour); err != nil {
			t.Fatal(err)
		}
		if _, err := c.SessionFor(ctx, s.Handle, MFA); !errors.Is(err, ErrStepUpRequired) {
			t.Errorf("%s out-of-band record: SessionFor(MFA) got %v, want ErrStepUpRequired (absent)", name, err)
		}
	}
}

// Out-of-band records come from the shared store.
func FuzzDecodeOutOfBand(f *testing.F) {
	f.Add(encodeOutOfBand(&outOfBandRecord{V: 1, Subject: "auth0|1", Created: 1, Ev: obEvidence{ACR: ACRMultiFactor, AMR: []string{"mfa"}, AuthTime: 5}, At: 2}))
	f.Add([]byte(`{"v":1,"sub":"","c":1,"at":1}`))
	f.Add([]byte(`{"v":1,"sub":"x","c":1,"at":1,"ev":{"at":-1}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := decodeOutOfBand(data)
		if err != nil {
			return
		}
		if r.V != outOfBandVersion || r.Subject == "" || r.Created <= 0 || r.At <= 0 || r.Ev.AuthTime < 0 {
			t.Fatalf("accepted an invalid record: %+v", r)
		}
		if _, err := decodeOutOfBand(encodeOutOfBand(r)); err != nil {
			t.Fatalf("round trip: %v", err)
		}
	})
}
