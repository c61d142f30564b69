package stepup

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stepupauth/stepup/auth0test"
)

func TestCheckBindingMessage(t *testing.T) {
	for _, tc := range []struct {
		name string
		msg  string
		ok   bool
	}{
		{"typical", "Export salaries 4711", true},
		{"all punctuation", "a+b-c_d.e,f:g#h", true},
		{"64 chars", strings.Repeat("x", 64), true},
		{"empty", "", false},
		{"65 chars", strings.Repeat("x", 65), false},
		{"slash", "a/b", false},
		{"newline", "a\nb", false},
		{"non-ascii", "Gehälter", false},
		{"quote", `say "hi"`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckBindingMessage(tc.msg)
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrInvalidBindingMessage)) {
				t.Fatalf("CheckBindingMessage(%q) = %v, want ok=%v", tc.msg, err, tc.ok)
			}
		})
	}
}

// Auth0's rule, as auth0test enforces it.
var bindingMessageRule = regexp.MustCompile(`^[A-Za-z0-9 +\-_.,:#]{1,64}$`)

func FuzzCheckBindingMessage(f *testing.F) {
	for _, s := range []string{"Export salaries 4711", "", "a/b", strings.Repeat("y", 64), "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, msg string) {
		err := CheckBindingMessage(msg)
		if want := bindingMessageRule.MatchString(msg); (err == nil) != want {
			t.Fatalf("CheckBindingMessage(%q) = %v, Auth0's rule says ok=%v", msg, err, want)
		}
	})
}

// cibaWait returns a Wait that moves the clock by what it is asked to wait
// (or by short, to poll too early), records the waits, and runs then before
// returning on its n-th call (1-based).
func cibaWait(e *wkEnv, waits *[]time.Duration, short map[int]time.Duration, then map[int]func()) func(context.Context, time.Duration) error {
	return func(ctx context.Context, d time.Duration) error {
		*waits = append(*waits, d)
		n := len(*waits)
		if s, ok := short[n]; ok {
			e.clock.Advance(s)
		} else {
			e.clock.Advance(d)
		}
		if f := then[n]; f != nil {
			f()
		}
		if n > 50 {
			return errors.New("too many polls")
		}
		return nil
	}
}

func TestCIBA(t *testing.T) {
	fresh := Policy{Name: "approve-export", MaxAge: 5 * time.Minute}
	mfaFresh := MFA.WithMaxAge(5 * time.Minute).Named("export-salaries")
	for _, tc := range []struct {
		name      string
		policy    Policy
		expiry    time.Duration
		forgeMFA  bool                                  // the tenant reports acr/amr for the approval
		decide    func(tn *auth0test.Tenant, id string) // on the 2nd wait
		short     map[int]time.Duration                 // polls made too early
		wantErr   error
		wantWaits []time.Duration
	}{
		{name: "approve, freshness policy", policy: fresh,
			decide:    func(tn *auth0test.Tenant, id string) { tn.ApproveCIBA(id) },
			wantWaits: []time.Duration{5 * time.Second, 5 * time.Second}},
		{name: "approve, MFA policy, tenant reports MFA", policy: mfaFresh, forgeMFA: true,
			decide:    func(tn *auth0test.Tenant, id string) { tn.ApproveCIBA(id) },
			wantWaits: []time.Duration{5 * time.Second, 5 * time.Second}},
		{name: "approve, MFA policy, no acr/amr from the tenant", policy: mfaFresh,
			decide:  func(tn *auth0test.Tenant, id string) { tn.ApproveCIBA(id) },
			wantErr: ErrStepUpRequired, wantWaits: []time.Duration{5 * time.Second, 5 * time.Second}},
		{name: "deny", policy: fresh,
			decide:  func(tn *auth0test.Tenant, id string) { tn.DenyCIBA(id) },
			wantErr: ErrStepUpDenied, wantWaits: []time.Duration{5 * time.Second, 5 * time.Second}},
		{name: "expiry", policy: fresh, expiry: 12 * time.Second,
			wantErr: ErrStepUpExpired, wantWaits: []time.Duration{5 * time.Second, 5 * time.Second, 5 * time.Second}},
		{name: "slow_down", policy: fresh, short: map[int]time.Duration{2: time.Second},
			decide:    func(tn *auth0test.Tenant, id string) {},
			wantWaits: []time.Duration{5 * time.Second, 5 * time.Second, 10 * time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newWkEnv(t, wkOpts{})
			c := e.client(nil, nil)
			s := e.login(c, MFA)
			ctx := context.Background()
			e.clock.Advance(time.Hour) // the login's step-up is stale for the action
			if _, err := c.SessionFor(ctx, s.Handle, tc.policy); tc.policy.MaxAge > 0 && !errors.Is(err, ErrStepUpRequired) {
				t.Fatalf("SessionFor before CIBA: got %v, want ErrStepUpRequired", err)
			}
			if tc.forgeMFA {
				e.tn.ForgeIDTokens(func(h, cl map[string]any) { cl["acr"] = ACRMultiFactor; cl["amr"] = []string{"mfa"} })
			}
			var waits []time.Duration
			var a *CIBAAuthorization
			then := map[int]func(){}
			if tc.decide != nil {
				decideAt := 2
				if tc.short != nil {
					decideAt = 3 // after the slow_down
				}
				then[decideAt] = func() {
					if tc.short != nil {
						e.tn.ApproveCIBA(a.AuthReqID)
						return
					}
					tc.decide(e.tn, a.AuthReqID)
				}
			}
			req := CIBARequest{Policy: tc.policy, BindingMessage: "Export salaries 4711", Audience: wkAPI,
				RequestedExpiry: tc.expiry, Wait: cibaWait(e, &waits, tc.short, then)}
			var err error
			a, err = c.StartCIBA(ctx, s, req)
			if err != nil {
				t.Fatalf("StartCIBA: %v", err)
			}
			pending := e.tn.PendingCIBA()
			if len(pending) != 1 || pending[0].UserID != s.Subject || pending[0].BindingMessage != req.BindingMessage {
				t.Fatalf("tenant's pending CIBA requests: %+v", pending)
			}
			res, err := c.WaitCIBA(ctx, a)
			if diff := cmp.Diff(tc.wantWaits, waits); diff != "" {
				t.Errorf("waits (-want +got):\n%s", diff)
			}
			after, serr := c.Session(ctx, s.Handle)
			if serr != nil {
				t.Fatal(serr)
			}
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("WaitCIBA: got %v, want %v", err, tc.wantErr)
				}
				var se *StepUpError
				if errors.As(err, &se) && se.Reason != ReasonNotPerformed {
					t.Errorf("StepUpError reason %q, want %q", se.Reason, ReasonNotPerformed)
				}
				if _, at, err := c.OutOfBandStepUp(ctx, s.Handle); err != nil || !at.IsZero() || !after.StepUpAt.Equal(s.StepUpAt) {
					t.Errorf("a failed CIBA recorded a step-up (out-of-band at %v, %v)", at, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("WaitCIBA: %v", err)
			}
			if res.Token == nil || res.Token.AccessToken == "" || res.IDToken.Subject != s.Subject {
				t.Errorf("result: token %v, subject %q", res.Token, res.IDToken.Subject)
			}
			ev, at, err := c.OutOfBandStepUp(ctx, s.Handle)
			if err != nil || !at.Equal(e.clock.Now().Truncate(time.Millisecond)) || ev.AuthTime.IsZero() {
				t.Errorf("out-of-band step-up %+v at %v (%v), want now %v", ev, at, err, e.clock.Now())
			}
			if _, err := c.SessionFor(ctx, s.Handle, tc.policy); err != nil {
				t.Errorf("SessionFor after CIBA: %v", err)
			}
			// The browser's evidence is left alone: its cookie was not rotated.
			if !after.StepUpAt.Equal(s.StepUpAt) {
				t.Errorf("StepUpAt %v, want the login's %v", after.StepUpAt, s.StepUpAt)
			}
			if err := c.CheckSession(after, tc.policy); !errors.Is(err, ErrStepUpRequired) {
				t.Errorf("CheckSession (the browser's check) after CIBA: got %v, want ErrStepUpRequired", err)
			}
			// The interactive login's evidence is left alone.
			if diff := cmp.Diff(s.Authentication, after.Authentication); diff != "" {
				t.Errorf("Authentication changed (-before +after):\n%s", diff)
			}
		})
	}
}

// WaitCIBA stops when its context ends.
func TestWaitCIBAHonoursContext(t *testing.T) {
	e := newWkEnv(t, wkOpts{})
	c := e.client(nil, nil)
	s := e.login(c, Login)
	ctx, cancel := context.WithCancel(context.Background())
	polls := e.tn.GrantCalls(auth0test.GrantCIBA)
	res, err := c.StepUpCIBA(ctx, s, CIBARequest{BindingMessage: "Export salaries", Wait: func(ctx context.Context, d time.Duration) error {
		e.clock.Advance(d)
		if e.tn.GrantCalls(auth0test.GrantCIBA) > polls {
			cancel() // the job is shut down while the user has not answered
		}
		return ctx.Err()
	}})
	if !errors.Is(err, context.Canceled) || res != nil {
		t.Fatalf("got %v, %v; want context.Canceled", res, err)
	}
}

func TestStartCIBARejectsBadInput(t *testing.T) {
	e := newWkEnv(t, wkOpts{})
	c := e.client(nil, nil)
	s := e.login(c, Login)
	ctx := context.Background()
	calls := e.tn.Calls("/bc-authorize")
	if _, err := c.StartCIBA(ctx, s, CIBARequest{BindingMessage: "bad/message"}); !errors.Is(err, ErrInvalidBindingMessage) {
		t.Errorf("bad binding message: got %v", err)
	}
	if _, err := c.StartCIBA(ctx, s, CIBARequest{BindingMessage: "ok", RequestedExpiry: 73 * time.Hour}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("expiry too long: got %v", err)
	}
	if _, err := c.StartCIBA(ctx, &Session{}, CIBARequest{BindingMessage: "ok"}); !errors.Is(err, ErrNoSession) {
		t.Errorf("no session: got %v", err)
	}
	if got := e.tn.Calls("/bc-authorize"); got != calls {
		t.Errorf("%d requests reached the tenant, want none", got-calls)
	}
}
