package stepup

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// 64 concurrent callbacks carrying the same state: exactly one completes.
func TestConcurrentCallbacksOneWins(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	ar, cb := h.startAuthorize(nil, aliceCreds, AuthorizeOptions{})
	var (
		wg       sync.WaitGroup
		ok, gone atomic.Int64
		start    = make(chan struct{})
	)
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, err := h.c.Exchange(context.Background(), cb, ar.Transaction)
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, ErrTransactionNotFound):
				gone.Add(1)
			default:
				t.Errorf("unexpected error: %v", err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if ok.Load() != 1 || gone.Load() != 63 {
		t.Fatalf("%d succeeded and %d found no transaction, want 1 and 63", ok.Load(), gone.Load())
	}
	if got := h.tn.Calls("/oauth/token"); got != 1 {
		t.Errorf("the code was redeemed %d times, want 1", got)
	}
}

// A login by another user in the same browser starts a new session and
// deletes the previous one; a corrupt record is no session.
func TestStartSessionOtherUserAndCorruptRecord(t *testing.T) {
	c, cs, _ := offlineClient(t, nil)
	ctx := context.Background()
	a, err := c.StartSession(ctx, &LoginResult{IDToken: &IDToken{Subject: "auth0|a"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.StartSession(ctx, &LoginResult{IDToken: &IDToken{Subject: "auth0|b"}}, a)
	if err != nil {
		t.Fatal(err)
	}
	if b.Handle == a.Handle {
		t.Fatal("another user's login continued the previous session")
	}
	if _, err := c.Session(ctx, a.Handle); !errors.Is(err, ErrNoSession) {
		t.Errorf("previous session after another user's login: %v, want ErrNoSession", err)
	}
	cs.Set(ctx, c.sessionKey(b.Handle), []byte(`{"v":1}`), time.Hour)
	if _, err := c.LoadSession(ctx, b.Handle+"."+b.secret); !errors.Is(err, ErrNoSession) {
		t.Errorf("corrupt record: %v, want ErrNoSession", err)
	}
	for _, v := range []string{"", "x", b.Handle, b.Handle + ".", "." + b.secret, b.Handle + "." + b.secret + ".x"} {
		if _, err := c.LoadSession(ctx, v); !errors.Is(err, ErrNoSession) {
			t.Errorf("cookie %q: %v, want ErrNoSession", v, err)
		}
	}
}

// BenchmarkLoadSession: the cost of a page load's session check on the
// memory store (one read, no write inside an idle step).
func BenchmarkLoadSession(b *testing.B) {
	c, cs, _ := offlineClient(b, nil)
	ctx := context.Background()
	s, err := c.StartSession(ctx, &LoginResult{
		IDToken: &IDToken{Subject: "auth0|alice", ACR: ACRMultiFactor, AMR: []string{"pwd", "mfa"}, SessionID: "sid"},
		Policy:  MFA,
	}, nil)
	if err != nil {
		b.Fatal(err)
	}
	cookie := c.SessionCookie(s).Value
	gets, writes := cs.gets.Load(), cs.writes()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		s, err := c.LoadSession(ctx, cookie)
		if err != nil {
			b.Fatal(err)
		}
		if err := c.CheckSession(s, MFA); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if g, w := cs.gets.Load()-gets, cs.writes()-writes; g != int64(b.N) || w != 0 {
		b.Fatalf("%d reads and %d writes for %d page loads, want one read each and no write", g, w, b.N)
	}
}
