package stepup

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stepupauth/stepup/store"
	"golang.org/x/oauth2"
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
	if _, err := c.LoadSession(ctx, c.SessionCookie(b).Value); !errors.Is(err, ErrNoSession) {
		t.Errorf("corrupt record: %v, want ErrNoSession", err)
	}
	exp := strconv.FormatInt(b.ExpiresAt.UnixMilli(), 10)
	for _, v := range []string{"", "x", b.Handle, b.Handle + ".", "." + b.secret, b.Handle + "." + b.secret + ".x",
		b.Handle + "." + b.secret, b.Handle + "." + b.secret + ".", b.Handle + "." + b.secret + ".-1", b.Handle + "." + b.secret + ".0",
		b.Handle + "." + b.secret + "." + exp + ".x", b.Handle + "." + b.secret + ".+" + exp, b.Handle + "." + b.secret + ".99999999999999999"} {
		if _, err := c.LoadSession(ctx, v); !errors.Is(err, ErrNoSession) {
			t.Errorf("cookie %q: %v, want ErrNoSession", v, err)
		}
	}
}

// BenchmarkLoadSession: the cost of a page load's session check on the
// memory store (one read that moves the idle deadline, no write).
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
	gets, writes := cs.reads(), cs.writes()
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
	if g, w := cs.reads()-gets, cs.writes()-writes; g != int64(b.N) || w != 0 {
		b.Fatalf("%d reads and %d writes for %d page loads, want one read each and no write", g, w, b.N)
	}
}

// pausingStore holds the answer of one armed read of key: it reads the
// record, then waits for release before returning, like a page load whose
// answer is slow to come back while another request writes the record.
type pausingStore struct {
	store.Store
	mu      sync.Mutex
	key     string
	reached chan struct{} // closed when the armed read has read
	release chan struct{}
}

func (s *pausingStore) arm(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.key, s.reached, s.release = key, make(chan struct{}), make(chan struct{})
}

func (s *pausingStore) pause(key string) {
	s.mu.Lock()
	if s.key != key {
		s.mu.Unlock()
		return
	}
	s.key = ""
	reached, release := s.reached, s.release
	s.mu.Unlock()
	close(reached)
	<-release
}

func (s *pausingStore) Get(ctx context.Context, k string) ([]byte, error) {
	v, err := s.Store.Get(ctx, k)
	s.pause(k)
	return v, err
}

func (s *pausingStore) GetEx(ctx context.Context, k string, ttl time.Duration) ([]byte, error) {
	v, err := s.Store.GetEx(ctx, k, ttl)
	s.pause(k)
	return v, err
}

// An idle extension racing a step-up keeps the step-up: a page load reads
// the session (with the old cookie), the step-up writes the new record
// (new secret, MFA evidence), then the page load's answer arrives. It
// rewrites nothing (the extension is the read's own TTL move), so the new
// cookie works with its MFA and the old one does not. Before the record's
// TTL was the idle deadline, that page load wrote the older record back
// (the "known window"): the step-up was lost.
func TestIdleExtensionRacingStepUpKeepsStepUp(t *testing.T) {
	ps := &pausingStore{}
	c, _, clock := offlineClient(t, func(cfg *Config) {
		ps.Store = cfg.Store
		cfg.Store = ps
		cfg.SessionIdleTimeout = 30 * time.Minute
	})
	ctx := context.Background()
	s0, err := c.StartSession(ctx, &LoginResult{IDToken: &IDToken{Subject: "auth0|alice", ACR: "pwd", AMR: []string{"pwd"}, AuthTime: clock.Now(), SessionID: "sid-1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	oldCookie := c.SessionCookie(s0).Value
	// Two minutes later (past any idle step), a page load of the old cookie.
	clock.Advance(2 * time.Minute)
	ps.arm(c.sessionKey(s0.Handle))
	reached := ps.reached
	done := make(chan error, 1)
	go func() {
		_, err := c.LoadSession(ctx, oldCookie)
		done <- err
	}()
	<-reached
	// Meanwhile the step-up completes (the callback loaded the session
	// before, as CallbackHandler does).
	prev := *s0
	prev.rec = new(sessionRecord)
	*prev.rec = *s0.rec
	s1, err := c.StartSession(ctx, &LoginResult{
		IDToken: &IDToken{Subject: "auth0|alice", ACR: ACRMultiFactor, AMR: []string{"pwd", "mfa"}, AuthTime: clock.Now(), SessionID: "sid-1"},
		Policy:  MFA,
	}, &prev)
	if err != nil {
		t.Fatal(err)
	}
	close(ps.release)
	if err := <-done; err != nil {
		t.Fatalf("the racing page load: %v", err)
	}
	clock.Advance(time.Second)
	s, err := c.LoadSession(ctx, c.SessionCookie(s1).Value)
	if err != nil {
		t.Fatalf("the step-up's cookie after the racing extension: %v", err)
	}
	if err := c.CheckSession(s, MFA); err != nil {
		t.Errorf("the step-up's evidence after the racing extension: %v", err)
	}
	if s.StepUpAt.IsZero() || s.Handle != s0.Handle {
		t.Errorf("step-up at %v, handle kept %v", s.StepUpAt, s.Handle == s0.Handle)
	}
	if _, err := c.LoadSession(ctx, oldCookie); !errors.Is(err, ErrNoSession) {
		t.Errorf("the cookie from before the step-up: %v, want ErrNoSession", err)
	}
}

// logCounter counts the log records whose message contains sub, and keeps
// every record's text.
type logCounter struct {
	mu   sync.Mutex
	text strings.Builder
}

func (l *logCounter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.text.Write(p)
}

func (l *logCounter) count(sub string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.text.String(), sub)
}

// Every record is sealed and bound to its key: a session record written
// without the Client's keys (a forger with write access to the store), by
// a Client with other keys, copied to another session's key, or of the
// previous version, is no session; the first is logged once (not per
// record), without content.
func TestForgedSessionRecordIsAbsent(t *testing.T) {
	logs := &logCounter{}
	c, cs, clock := offlineClient(t, func(cfg *Config) {
		cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	})
	other, _, _ := offlineClient(t, func(cfg *Config) { cfg.SealingKeys = [][]byte{sealTestKey(9)} })
	ctx := context.Background()
	now := clock.Now()
	handle, secret := randomToken(), randomToken()
	exp := now.Add(time.Hour).UnixMilli()
	forged := &sessionRecord{
		SecretHash: string(secretHash(secret)), Subject: "auth0|forged-victim",
		Auth:      evidence{ACR: ACRMultiFactor, AMR: []string{"mfa"}, AuthTime: now.Unix()},
		HasStepUp: true, StepUp: evidence{ACR: ACRMultiFactor, AMR: []string{"mfa"}, AuthTime: now.Unix()}, StepUpAt: now.UnixMilli(),
		Created: now.UnixMilli(), Expires: exp,
	}
	plain, err := encodeSession(forged)
	if err != nil {
		t.Fatal(err)
	}
	key := c.sessionKey(handle)
	cookie := handle + "." + secret + "." + strconv.FormatInt(exp, 10)
	a, err := c.StartSession(ctx, &LoginResult{IDToken: &IDToken{Subject: "auth0|a"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	aRecord, _ := cs.Get(ctx, c.sessionKey(a.Handle))
	for name, blob := range map[string][]byte{
		"unsealed":                   plain,
		"sealed with other keys":     other.ring.sealRecord(key, plain),
		"sealed for another key":     c.ring.sealRecord(c.sessionKey(randomToken()), plain),
		"another session's record":   aRecord,
		"the previous version (v1)":  []byte(`{"v":1,"sh":"AAAA","sub":"auth0|forged-victim","c":1,"x":9999999999999,"i":9999999999999}`),
		"tampered (bit flipped)":     flip(c.ring.sealRecord(key, plain), 30),
		"truncated":                  c.ring.sealRecord(key, plain)[:40],
		"sealed but not a session":   c.ring.sealRecord(key, []byte("not a session")),
		"sealed, previous JSON body": c.ring.sealRecord(key, []byte(`{"v":1}`)),
	} {
		if err := cs.Set(ctx, key, blob, time.Hour); err != nil {
			t.Fatal(err)
		}
		if s, err := c.LoadSession(ctx, cookie); !errors.Is(err, ErrNoSession) {
			t.Errorf("%s: LoadSession got %+v, %v; want ErrNoSession", name, s, err)
		}
		if _, err := c.Session(ctx, handle); !errors.Is(err, ErrNoSession) {
			t.Errorf("%s: Session(handle) got %v, want ErrNoSession", name, err)
		}
	}
	// The control: the same record sealed for its key is a session.
	if err := cs.Set(ctx, key, c.ring.sealRecord(key, plain), time.Hour); err != nil {
		t.Fatal(err)
	}
	if s, err := c.LoadSession(ctx, cookie); err != nil || s.Subject != "auth0|forged-victim" {
		t.Fatalf("the sealed record: %+v, %v", s, err)
	}
	if n := logs.count("unreadable session record"); n != 1 {
		t.Errorf("unreadable session records logged %d times, want once (rate-limited)", n)
	}
	if strings.Contains(logs.text.String(), "forged-victim") || strings.Contains(logs.text.String(), handle) {
		t.Error("the log of an unreadable record shows its content or key")
	}
	// A cookie whose absolute end differs from the record's, or is past,
	// is no session; a past one costs no store call.
	for _, v := range []string{handle + "." + secret + "." + strconv.FormatInt(exp+1, 10), handle + "." + secret + "." + strconv.FormatInt(now.UnixMilli(), 10)} {
		reads := cs.reads()
		if _, err := c.LoadSession(ctx, v); !errors.Is(err, ErrNoSession) {
			t.Errorf("cookie %q: %v, want ErrNoSession", v, err)
		}
		if strings.HasSuffix(v, strconv.FormatInt(now.UnixMilli(), 10)) && cs.reads() != reads {
			t.Errorf("an expired cookie cost %d store reads, want 0", cs.reads()-reads)
		}
	}
}

// LogoutSID and LogoutUser end exactly the sessions of a sid or a user,
// with their token, ID-token and out-of-band records and their index
// entries, and leave the others alone; a session continued under another
// sid leaves the old sid's index.
func TestLogoutSIDAndUser(t *testing.T) {
	c, cs, clock := offlineClient(t, nil)
	ctx := context.Background()
	login := func(sub, sid string, prev *Session) *Session {
		t.Helper()
		s, err := c.StartSession(ctx, &LoginResult{
			IDToken:  &IDToken{Subject: sub, SessionID: sid, Raw: "raw-id-token-of-" + sub},
			Token:    &oauth2.Token{AccessToken: "at-" + sub + sid, TokenType: "Bearer", Expiry: clock.Now().Add(time.Hour)},
			Audience: "https://api.example",
		}, prev)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a1, a2 := login("auth0|alice", "sid-1", nil), login("auth0|alice", "sid-1", nil)
	a3 := login("auth0|alice", "sid-2", nil)
	b1 := login("auth0|bob", "sid-3", nil)
	moved := login("auth0|alice", "sid-1", nil)
	moved = login("auth0|alice", "sid-4", moved) // continued under a new Auth0 session
	if err := cs.Set(ctx, c.outOfBandKey(a1.Handle), c.ring.sealRecord(c.outOfBandKey(a1.Handle), []byte("{}")), time.Hour); err != nil {
		t.Fatal(err)
	}
	if tok, err := c.IDToken(ctx, a1); err != nil || tok != "raw-id-token-of-auth0|alice" {
		t.Fatalf("IDToken: %q, %v", tok, err)
	}
	alive := func(s *Session) bool {
		t.Helper()
		_, err := c.Session(ctx, s.Handle)
		if err != nil && !errors.Is(err, ErrNoSession) {
			t.Fatal(err)
		}
		return err == nil
	}
	gone := func(s *Session) {
		t.Helper()
		for _, key := range []string{c.sessionKey(s.Handle), c.tokenKey(s.Handle, "https://api.example"), c.idTokenKey(s.Handle), c.outOfBandKey(s.Handle)} {
			if _, err := cs.Get(ctx, key); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("%s after logout: %v", strings.SplitN(key, ":", 2)[0], err)
			}
		}
		if m, _ := cs.IndexMembers(ctx, c.handleIndexKey(s.Handle)); len(m) != 0 {
			t.Errorf("the session's index after logout: %v", m)
		}
		if _, err := c.TokenSource(ctx, s.Handle, TokenSourceOptions{Audience: "https://api.example"}).Token(); !errors.Is(err, ErrNoSession) {
			t.Errorf("TokenSource after logout: %v", err)
		}
	}
	n, err := c.LogoutSID(ctx, "sid-1")
	if err != nil || n != 2 {
		t.Fatalf("LogoutSID(sid-1) = %d, %v; want 2", n, err)
	}
	gone(a1)
	gone(a2)
	if !alive(a3) || !alive(b1) || !alive(moved) {
		t.Fatalf("LogoutSID(sid-1) ended another session: a3 %v, b1 %v, moved %v", alive(a3), alive(b1), alive(moved))
	}
	if m, _ := cs.IndexMembers(ctx, c.sidIndexKey("sid-1")); len(m) != 0 {
		t.Errorf("sid-1's index after its logout: %v", m)
	}
	if n, err := c.LogoutSID(ctx, "sid-1"); err != nil || n != 0 {
		t.Errorf("second LogoutSID(sid-1) = %d, %v; want 0", n, err)
	}
	// An idled-out session's tokens still go with its sid.
	clock.Advance(DefaultSessionIdleTimeout)
	if alive(a3) {
		t.Fatal("a3 did not idle out")
	}
	b1 = login("auth0|bob", "sid-3", nil)
	moved = login("auth0|alice", "sid-4", nil)
	n, err = c.LogoutUser(ctx, "auth0|alice")
	if err != nil || n != 1 {
		t.Fatalf("LogoutUser(alice) = %d, %v; want 1 (a3 had idled out)", n, err)
	}
	gone(a3)
	gone(moved)
	if !alive(b1) {
		t.Error("LogoutUser(alice) ended bob's session")
	}
	if _, err := c.LogoutSID(ctx, ""); err == nil {
		t.Error("LogoutSID(\"\") accepted")
	}
	if _, err := c.LogoutUser(ctx, strings.Repeat("x", 2000)); err == nil {
		t.Error("LogoutUser of 2000 bytes accepted")
	}
}
