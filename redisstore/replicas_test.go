package redisstore_test

// End-to-end tests of stepup as many replicas: real stepup.Clients (each the
// Client of one replica) share one real Redis through redisstore, in front
// of an auth0test tenant. A "load balancer" (an httptest server) sends each
// request of a browser to the replica the test names, with no stickiness;
// browsers are HTTP clients with cookie jars.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/oauth2"

	"github.com/stepupauth/stepup"
	"github.com/stepupauth/stepup/auth0test"
	"github.com/stepupauth/stepup/internal/redistest"
	"github.com/stepupauth/stepup/redisstore"
	"github.com/stepupauth/stepup/store"
)

// Paths served by every replica.
const (
	pathPrivate  = "/private"  // RequireLogin
	pathSalaries = "/salaries" // RequireStepUp(stepup.MFA)
	pathCallback = "/callback"
)

// replicaHeader names the replica the load balancer sends a request to.
const replicaHeader = "X-Test-Replica"

// sealingKey is shared by every replica, as Config.SealingKeys requires.
var sealingKey = []byte("0123456789abcdef0123456789abcdef")

// replicaSet is n replicas of one application behind one load balancer,
// sharing a Redis and a tenant.
type replicaSet struct {
	t       testing.TB
	tn      *auth0test.Tenant
	rdb     redis.UniversalClient
	st      *redisstore.Store
	clients []*stepup.Client
	front   *httptest.Server
	next    atomic.Int64 // round robin when a request names no replica

	mu   sync.Mutex // guards errs
	errs []error    // every error the replicas' ErrorHandler received
}

type replicaOpts struct {
	n      int                  // replicas; default 2
	tenant auth0test.Config     // the tenant's configuration
	client func(*stepup.Config) // changes every replica's Config
	// requestTimeout, when set, is the deadline the load balancer puts on
	// every request, as a production server would (http.TimeoutHandler, a
	// proxy's timeout): a hung Redis then costs a request at most this long.
	requestTimeout time.Duration
}

func newReplicaSet(t testing.TB, rdb redis.UniversalClient, o replicaOpts) *replicaSet {
	t.Helper()
	if o.n == 0 {
		o.n = 2
	}
	rs := &replicaSet{t: t, rdb: rdb, tn: auth0test.NewTenant(t, o.tenant)}
	st, err := redisstore.New(rdb, redisstore.Options{Prefix: redistest.Prefix(t)})
	if err != nil {
		t.Fatal(err)
	}
	rs.st = st

	muxes := make([]*http.ServeMux, o.n)
	rs.front = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(rs.next.Add(1)-1) % o.n
		if v := r.Header.Get(replicaHeader); v != "" {
			var err error
			if i, err = strconv.Atoi(v); err != nil || i < 0 || i >= o.n {
				http.Error(w, "bad "+replicaHeader, http.StatusBadRequest)
				return
			}
		}
		w.Header().Set(replicaHeader, strconv.Itoa(i))
		if o.requestTimeout > 0 {
			ctx, cancel := context.WithTimeout(r.Context(), o.requestTimeout)
			defer cancel()
			r = r.WithContext(ctx)
		}
		muxes[i].ServeHTTP(w, r)
	}))
	rs.front.Start()
	t.Cleanup(rs.front.Close)

	app := auth0test.DefaultApplication()
	redirect := rs.front.URL + pathCallback
	if err := rs.tn.AddCallbackURL(app.ClientID, redirect); err != nil {
		t.Fatal(err)
	}
	for i := range o.n {
		cfg := stepup.Config{
			Domain:       rs.tn.Domain(),
			ClientID:     app.ClientID,
			ClientSecret: app.ClientSecret,
			RedirectURL:  redirect,
			Store:        st,
			SealingKeys:  [][]byte{sealingKey},
			HTTPClient:   rs.tn.Client(),
			ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
				rs.mu.Lock()
				rs.errs = append(rs.errs, err)
				rs.mu.Unlock()
				stepup.DefaultErrorHandler(w, r, err)
			},
		}
		if o.client != nil {
			o.client(&cfg)
		}
		c, err := stepup.New(context.Background(), cfg)
		if err != nil {
			t.Fatalf("replica %d: New: %v", i, err)
		}
		t.Cleanup(func() { c.Close() })
		rs.clients = append(rs.clients, c)

		replica := i
		show := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s, ok := stepup.SessionFromContext(r.Context())
			if !ok {
				http.Error(w, "no session in context", http.StatusInternalServerError)
				return
			}
			fmt.Fprintf(w, "hello %s from replica %d", s.Subject, replica)
		})
		mux := http.NewServeMux()
		mux.Handle("GET "+pathPrivate, c.RequireLogin(show))
		mux.Handle("GET "+pathSalaries, c.RequireStepUp(stepup.MFA)(show))
		mux.Handle("GET "+pathCallback, c.CallbackHandler())
		muxes[i] = mux
	}
	return rs
}

// errors returns the errors the replicas answered with so far.
func (rs *replicaSet) errors() []error {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return append([]error(nil), rs.errs...)
}

// sessionKeys returns the Redis keys of the sessions in the store.
func (rs *replicaSet) sessionKeys(ctx context.Context) []string {
	rs.t.Helper()
	return rs.keys(ctx, rs.st.Key("sess:")+"*")
}

// keys lists the keys matching pattern, on every master of a Cluster.
func (rs *replicaSet) keys(ctx context.Context, pattern string) []string {
	rs.t.Helper()
	keys, err := redistest.Keys(ctx, rs.rdb, pattern)
	if err != nil {
		rs.t.Fatalf("SCAN %s: %v", pattern, err)
	}
	return keys
}

// browser is one user's browser in front of the load balancer: a cookie jar
// (cookies of 127.0.0.1 go to every replica, as behind one host name) and,
// for the tenant, an auth0test.Browser with its own SSO cookie.
type browser struct {
	rs    *replicaSet
	http  *http.Client
	tb    *auth0test.Browser
	creds auth0test.Credentials
}

var (
	alice = auth0test.Credentials{Email: auth0test.AliceEmail, Password: auth0test.AlicePassword}
	bob   = auth0test.Credentials{Email: auth0test.BobEmail, Password: auth0test.BobPassword}
)

func (rs *replicaSet) newBrowser(creds auth0test.Credentials) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		rs.t.Fatal(err)
	}
	return &browser{
		rs: rs,
		http: &http.Client{
			Jar:           jar,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Timeout:       30 * time.Second,
		},
		tb:    rs.tn.NewBrowser(),
		creds: creds,
	}
}

// response is an answer of the app, its body read.
type response struct {
	status   int
	location string
	body     string
	cookies  []*http.Cookie
	took     time.Duration
}

// get loads target (a path and query) from replica i as a browser
// navigation. It returns an error instead of failing the test, so that it
// can be called from other goroutines.
func (b *browser) get(replica int, target string) (*response, error) {
	req, err := http.NewRequest(http.MethodGet, b.rs.front.URL+target, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/html,application/xhtml+xml")
	req.Header.Set(replicaHeader, strconv.Itoa(replica))
	start := time.Now()
	resp, err := b.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &response{status: resp.StatusCode, location: resp.Header.Get("Location"), body: string(body),
		cookies: resp.Cookies(), took: time.Since(start)}, nil
}

func (r *response) String() string {
	return fmt.Sprintf("%d location=%q body=%q", r.status, r.location, r.body)
}

// cookie returns the cookie named name that r sets, or nil.
func (r *response) cookie(name string) *http.Cookie {
	for _, c := range r.cookies {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// startLogin loads path on replica i, which must redirect to the tenant,
// and goes through the tenant's pages: it returns the callback URL (not yet
// delivered) and the authorize URL.
func (b *browser) startLogin(ctx context.Context, replica int, path string) (cb, authorize *url.URL, err error) {
	r, err := b.get(replica, path)
	if err != nil {
		return nil, nil, err
	}
	if r.status != http.StatusFound || !strings.HasPrefix(r.location, b.rs.tn.URL()+"/authorize?") {
		return nil, nil, fmt.Errorf("GET %s on replica %d: got %v, want a redirect to the tenant's /authorize", path, replica, r)
	}
	if authorize, err = url.Parse(r.location); err != nil {
		return nil, nil, err
	}
	if cb, err = b.tb.Login(ctx, r.location, b.creds); err != nil {
		return nil, nil, fmt.Errorf("tenant login: %w", err)
	}
	if cb.Query().Get("code") == "" {
		return nil, nil, fmt.Errorf("tenant redirected to %s without a code", cb.Redacted())
	}
	return cb, authorize, nil
}

// login loads path on replica from, logs in at the tenant, delivers the
// callback to replica to, and returns the new session cookie.
func (b *browser) login(ctx context.Context, path string, from, to int) (*http.Cookie, error) {
	cb, _, err := b.startLogin(ctx, from, path)
	if err != nil {
		return nil, err
	}
	r, err := b.get(to, cb.RequestURI())
	if err != nil {
		return nil, err
	}
	ck := r.cookie("stepup_session")
	if r.status != http.StatusFound || r.location != path || ck == nil || ck.Value == "" {
		return nil, fmt.Errorf("callback on replica %d: got %v, want a redirect to %s with a session cookie", to, r, path)
	}
	return ck, nil
}

// handleOf returns the session handle of a session cookie's value.
func handleOf(cookieValue string) string {
	h, _, _ := strings.Cut(cookieValue, ".")
	return h
}

// Authorize on A, callback on B, the session then works on A: on a plain
// Redis and on a Redis Cluster.
// backends are the shared Redis servers the cross-replica tests run on.
var backends = []struct {
	name   string
	client func(t *testing.T) redis.UniversalClient
}{
	{"single", func(t *testing.T) redis.UniversalClient { return redistest.Client(t) }},
	{"cluster", func(t *testing.T) redis.UniversalClient { return redistest.Cluster(t) }},
}

func TestReplicasCallbackOnAnotherReplica(t *testing.T) {
	for _, tc := range backends {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			rs := newReplicaSet(t, tc.client(t), replicaOpts{n: 2})
			const a, b = 0, 1
			u := rs.newBrowser(alice)

			before := rs.keys(ctx, rs.st.Key("")+"*")
			cb, authorize, err := u.startLogin(ctx, a, pathPrivate)
			if err != nil {
				t.Fatal(err)
			}
			// The transaction is the browser's cookie: replica A wrote nothing.
			if after := rs.keys(ctx, rs.st.Key("")+"*"); len(after) != len(before) {
				t.Fatalf("starting a login wrote %d keys to Redis, want none", len(after)-len(before))
			}
			state := authorize.Query().Get("state")
			txName := rs.clients[a].TransactionCookieName(state)
			front, _ := url.Parse(rs.front.URL)
			var txValue string
			for _, c := range u.http.Jar.Cookies(front) {
				if c.Name == txName {
					txValue = c.Value
				}
			}
			if txValue == "" {
				t.Fatalf("the browser holds no transaction cookie %s", txName)
			}

			r, err := u.get(b, cb.RequestURI())
			if err != nil {
				t.Fatal(err)
			}
			ck := r.cookie("stepup_session")
			if r.status != http.StatusFound || r.location != pathPrivate || ck == nil {
				t.Fatalf("callback on replica B: got %v, want a redirect to %s with a session cookie", r, pathPrivate)
			}
			for _, c := range u.http.Jar.Cookies(front) {
				if c.Name == txName {
					t.Errorf("the transaction cookie survived its callback")
				}
			}
			// The callback left one small marker, living no longer than
			// the transaction would have; a replay on replica A, even with
			// a copy of the cookie, is refused there.
			used := rs.keys(ctx, rs.st.Key("used:")+"*")
			if len(used) != 1 {
				t.Fatalf("Redis holds %d used: markers, want 1", len(used))
			}
			if ttl := rs.rdb.PTTL(ctx, used[0]).Val(); ttl <= 0 || ttl > stepup.DefaultTransactionTTL {
				t.Errorf("marker PTTL = %v, want in (0, %v]", ttl, stepup.DefaultTransactionTTL)
			}
			if v := rs.rdb.Get(ctx, used[0]).Val(); len(v) > 64 || strings.Contains(v, state) {
				t.Errorf("marker value %q: want a small sealed value", v)
			}
			if _, err := rs.clients[a].Exchange(ctx, cb.Query(), txValue); !errors.Is(err, stepup.ErrTransactionNotFound) {
				t.Errorf("the callback replayed on replica A: got %v, want ErrTransactionNotFound", err)
			}

			for _, replica := range []int{a, b} {
				r, err := u.get(replica, pathPrivate)
				if err != nil {
					t.Fatal(err)
				}
				want := fmt.Sprintf("hello auth0|alice from replica %d", replica)
				if r.status != http.StatusOK || r.body != want {
					t.Errorf("GET %s on replica %d with the session: got %v, want 200 %q", pathPrivate, replica, r, want)
				}
			}

			// What Redis holds: one session, under sess:<handle>, living
			// until the idle deadline (its TTL), sealed, and its tokens in
			// a sealed token record of their own.
			handle := handleOf(ck.Value)
			sessKey := rs.st.Key("sess:" + handle)
			if got := rs.sessionKeys(ctx); len(got) != 1 || got[0] != sessKey {
				t.Errorf("session keys in Redis = %q, want [%q]", got, sessKey)
			}
			ttl := rs.rdb.PTTL(ctx, sessKey).Val()
			if ttl <= stepup.DefaultSessionIdleTimeout-time.Minute || ttl > stepup.DefaultSessionIdleTimeout {
				t.Errorf("session PTTL = %v, want about SessionIdleTimeout (%v)", ttl, stepup.DefaultSessionIdleTimeout)
			}
			s, err := rs.clients[a].LoadSession(ctx, ck.Value)
			if err != nil {
				t.Fatalf("LoadSession on replica A: %v", err)
			}
			tok, err := rs.clients[a].Token(ctx, s, "")
			if err != nil || tok.AccessToken == "" {
				t.Fatalf("Token on replica A = %v, %v; want the login's access token", tok, err)
			}
			toks := rs.keys(ctx, rs.st.Key("tok:"+handle+":")+"*")
			if len(toks) != 2 { // the login's audience and the ID token
				t.Errorf("token records in Redis = %q, want the login's tokens and its ID token", toks)
			}
			for _, key := range append(toks, sessKey) {
				raw, err := rs.rdb.Get(ctx, key).Bytes()
				if err != nil {
					t.Fatal(err)
				}
				secret := strings.SplitN(ck.Value, ".", 3)[1]
				if strings.Contains(string(raw), tok.AccessToken[:32]) || strings.Contains(string(raw), secret) || strings.Contains(string(raw), "alice") {
					t.Errorf("%s in Redis holds a token, the cookie's secret or the user in clear", key)
				}
			}
			if errs := rs.errors(); len(errs) != 0 {
				t.Errorf("the replicas answered with errors: %v", errs)
			}
		})
	}
}

// 200 logins over 4 replicas, 16 at a time, each starting on one replica
// and calling back on the next: all complete, each exactly once (one code
// redemption at the tenant, one session in Redis), none lost.
func TestReplicasManyConcurrentLogins(t *testing.T) {
	const (
		logins   = 200
		parallel = 16
		replicas = 4
	)
	ctx := context.Background()
	rs := newReplicaSet(t, redistest.Client(t), replicaOpts{n: replicas})
	codes0 := rs.tn.GrantCalls("authorization_code")

	type result struct {
		cookie *http.Cookie
		err    error
		user   auth0test.Credentials
	}
	results := make([]result, logins)
	jobs := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each worker is one person at the tenant (alice or bob, whose
			// SSO session spares the password page after the first login)
			// and logs in with a new browser profile for the app each time.
			creds := alice
			if w%2 == 1 {
				creds = bob
			}
			tb := rs.tn.NewBrowser()
			for i := range jobs {
				u := rs.newBrowser(creds)
				u.tb = tb
				from, to := i%replicas, (i+1)%replicas
				ck, err := u.login(ctx, pathPrivate, from, to)
				results[i] = result{ck, err, creds}
			}
		}()
	}
	for i := range logins {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	t.Logf("%d logins over %d replicas, %d at a time: %v", logins, replicas, parallel, time.Since(start).Round(time.Millisecond))

	handles := map[string]bool{}
	failed := 0
	for i, r := range results {
		if r.err != nil {
			failed++
			if failed <= 5 {
				t.Errorf("login %d: %v", i, r.err)
			}
			continue
		}
		handles[handleOf(r.cookie.Value)] = true
	}
	if failed > 0 || len(handles) != logins {
		for _, err := range rs.errors() {
			t.Logf("a replica answered with: %v", err)
		}
		t.Fatalf("%d of %d logins failed; %d distinct sessions", failed, logins, len(handles))
	}
	if got := rs.tn.GrantCalls("authorization_code") - codes0; got != logins {
		t.Errorf("the tenant redeemed %d codes, want exactly %d (one per login)", got, logins)
	}
	keys := rs.sessionKeys(ctx)
	if len(keys) != logins {
		t.Errorf("Redis holds %d sessions, want %d", len(keys), logins)
	}
	for _, k := range keys {
		if !handles[strings.TrimPrefix(k, rs.st.Key("sess:"))] {
			t.Errorf("Redis holds session %s that no login returned", k)
		}
	}
	if used := rs.keys(ctx, rs.st.Key("used:")+"*"); len(used) != logins {
		t.Errorf("Redis holds %d single-use markers, want one per callback (%d)", len(used), logins)
	}
	// Every session works on a replica where it neither started nor called back.
	for i, r := range results {
		s, err := rs.clients[(i+2)%replicas].LoadSession(ctx, r.cookie.Value)
		want := "auth0|alice"
		if r.user == bob {
			want = "auth0|bob"
		}
		if err != nil || s.Subject != want {
			t.Errorf("login %d: LoadSession on replica %d = %v, %v; want %s", i, (i+2)%replicas, s, err, want)
		}
	}
}

// 64 callbacks carrying the same state (and the browser's transaction cookie),
// at once, spread over 4 replicas: exactly one starts a session; the others
// get 400 with ErrTransactionNotFound and never reach the tenant. On a plain
// Redis and on a Redis Cluster.
func TestReplicasConcurrentCallbacksSameState(t *testing.T) {
	for _, tc := range backends {
		t.Run(tc.name, func(t *testing.T) { testConcurrentCallbacksSameState(t, tc.client(t)) })
	}
}

func testConcurrentCallbacksSameState(t *testing.T, rdb redis.UniversalClient) {
	const (
		callbacks = 64
		replicas  = 4
	)
	ctx := context.Background()
	rs := newReplicaSet(t, rdb, replicaOpts{n: replicas})
	u := rs.newBrowser(alice)
	cb, _, err := u.startLogin(ctx, 0, pathPrivate)
	if err != nil {
		t.Fatal(err)
	}
	codes0 := rs.tn.GrantCalls("authorization_code")

	// Each callback is sent with the browser's cookies but through a client
	// of its own, so that every answer's cookies are seen separately.
	cookieHeader := ""
	front, _ := url.Parse(rs.front.URL)
	for _, c := range u.http.Jar.Cookies(front) {
		cookieHeader += c.Name + "=" + c.Value + "; "
	}
	if !strings.Contains(cookieHeader, "stepup_tx_") {
		t.Fatalf("the browser holds no transaction cookie: %q", cookieHeader)
	}
	answers := make([]*response, callbacks)
	errs := make([]error, callbacks)
	ready := make(chan struct{})
	var wg sync.WaitGroup
	for i := range callbacks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodGet, rs.front.URL+cb.RequestURI(), nil)
			req.Header.Set("Accept", "text/html")
			req.Header.Set("Cookie", cookieHeader)
			req.Header.Set(replicaHeader, strconv.Itoa(i%replicas))
			client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			<-ready
			resp, err := client.Do(req)
			if err != nil {
				errs[i] = err
				return
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			answers[i] = &response{status: resp.StatusCode, location: resp.Header.Get("Location"), body: string(body), cookies: resp.Cookies()}
		}()
	}
	close(ready)
	wg.Wait()

	var won []int
	for i, a := range answers {
		switch {
		case errs[i] != nil:
			t.Errorf("callback %d: %v", i, errs[i])
		case a.status == http.StatusFound && a.cookie("stepup_session") != nil:
			won = append(won, i)
		case a.status != http.StatusBadRequest || a.cookie("stepup_session") != nil:
			t.Errorf("callback %d: got %v, want 400 without a session cookie", i, a)
		}
	}
	if len(won) != 1 {
		t.Fatalf("%d callbacks started a session (%v), want exactly 1", len(won), won)
	}
	refused := rs.errors()
	if len(refused) != callbacks-1 {
		t.Errorf("%d callbacks were refused, want %d", len(refused), callbacks-1)
	}
	for _, err := range refused {
		if !errors.Is(err, stepup.ErrTransactionNotFound) {
			t.Errorf("a losing callback failed with %v, want ErrTransactionNotFound", err)
		}
	}
	if got := rs.tn.GrantCalls("authorization_code") - codes0; got != 1 {
		t.Errorf("the tenant got %d code redemptions, want 1: a losing callback must not reach it", got)
	}
	if keys := rs.sessionKeys(ctx); len(keys) != 1 {
		t.Errorf("Redis holds %d sessions, want 1", len(keys))
	}
	winner := answers[won[0]].cookie("stepup_session")
	for replica := range replicas {
		if _, err := rs.clients[replica].LoadSession(ctx, winner.Value); err != nil {
			t.Errorf("the winning session on replica %d: %v", replica, err)
		}
	}
}

// Redis hangs (frozen) and then stops, mid-run, under two replicas: every
// Client call ends with a typed error by its context's deadline; the
// middleware answers 503 with a clear page, both on a page that needs a
// login and on the callback (nobody gets in, no code is redeemed); and
// service resumes by itself once Redis is back, with the same Clients.
func TestReplicasRedisDown(t *testing.T) {
	const (
		callTimeout = 500 * time.Millisecond
		reqTimeout  = 2 * time.Second
		// slack covers scheduling on a loaded 2-core machine, not Redis.
		slack = 500 * time.Millisecond
	)
	srv := redistest.StartServer(t)
	rs := newReplicaSet(t, srv.Client(), replicaOpts{n: 2, requestTimeout: reqTimeout})
	ctx := context.Background()
	u := rs.newBrowser(alice)
	session, err := u.login(ctx, pathPrivate, 0, 1)
	if err != nil {
		t.Fatal(err)
	}

	for _, fault := range []struct {
		name     string
		down, up func()
		kept     bool // the data survives
	}{
		{"frozen", srv.Freeze, srv.Thaw, true},
		{"stopped", srv.Stop, srv.Start, false},
	} {
		t.Run(fault.name, func(t *testing.T) {
			// A login half done: the tenant redirected back, the
			// callback is not delivered yet.
			pending := rs.newBrowser(bob)
			cb, _, err := pending.startLogin(ctx, 0, pathPrivate)
			if err != nil {
				t.Fatal(err)
			}
			front, _ := url.Parse(rs.front.URL)
			var txValue string
			for _, c := range pending.http.Jar.Cookies(front) {
				if c.Name == rs.clients[0].TransactionCookieName(cb.Query().Get("state")) {
					txValue = c.Value
				}
			}
			codes0 := rs.tn.GrantCalls("authorization_code")
			errs0 := len(rs.errors())

			fault.down()
			downAt := time.Now()

			// Starting a login needs no Redis: the transaction is a cookie.
			c := rs.clients[0]
			if _, err := c.AuthorizeURL(ctx, stepup.AuthorizeOptions{}); err != nil {
				t.Errorf("AuthorizeURL with Redis %s: %v, want a login started without the store", fault.name, err)
			}
			// The Client's calls, with a deadline, at once.
			calls := map[string]func(ctx context.Context) error{
				"LoadSession": func(ctx context.Context) error { _, err := c.LoadSession(ctx, session.Value); return err },
				"Session":     func(ctx context.Context) error { _, err := c.Session(ctx, handleOf(session.Value)); return err },
				"Exchange": func(ctx context.Context) error {
					_, err := rs.clients[1].Exchange(ctx, cb.Query(), txValue)
					return err
				},
			}
			var wg sync.WaitGroup
			for name, call := range calls {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ctx, cancel := context.WithTimeout(ctx, callTimeout)
					defer cancel()
					start := time.Now()
					err := call(ctx)
					took := time.Since(start)
					var rerr *redisstore.Error
					switch {
					case !errors.Is(err, store.ErrUnavailable) || !errors.As(err, &rerr):
						t.Errorf("%s with Redis %s: got %v, want a *redisstore.Error matching store.ErrUnavailable", name, fault.name, err)
					case errors.Is(err, stepup.ErrNoSession), errors.Is(err, stepup.ErrTransactionNotFound):
						t.Errorf("%s with Redis %s: %v also says the record does not exist: it must say only that the store is unavailable", name, fault.name, err)
					case stepup.ErrorStatus(err) != http.StatusServiceUnavailable:
						t.Errorf("%s: ErrorStatus(%v) = %d, want 503", name, err, stepup.ErrorStatus(err))
					}
					if took > callTimeout+slack {
						t.Errorf("%s took %v with a %v deadline", name, took, callTimeout)
					}
					t.Logf("%s: %v after %v", name, err, took.Round(time.Millisecond))
				}()
			}
			wg.Wait()

			// The middleware and the callback, over HTTP, at once.
			pages := []struct {
				name    string
				b       *browser
				replica int
				target  string
			}{
				{"login page with a session", u, 0, pathPrivate},
				{"step-up page with a session", u, 1, pathSalaries},
				{"callback", pending, 1, cb.RequestURI()},
			}
			// Without a session, a protected page sends the browser to the
			// tenant: nothing of it needs Redis.
			if r, err := rs.newBrowser(alice).get(1, pathPrivate); err != nil || r.status != http.StatusFound ||
				!strings.HasPrefix(r.location, rs.tn.URL()+"/authorize?") {
				t.Errorf("a protected page without a session, Redis %s: got %v, %v; want a redirect to the tenant", fault.name, r, err)
			}
			for _, p := range pages {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r, err := p.b.get(p.replica, p.target)
					switch {
					case err != nil:
						t.Errorf("%s: %v", p.name, err)
					case r.status != http.StatusServiceUnavailable || !strings.Contains(r.body, "unavailable") ||
						strings.Contains(r.body, "hello") || r.cookie("stepup_session") != nil:
						t.Errorf("%s with Redis %s: got %v with cookies %v, want a 503 page that says the service is unavailable, sets no cookie",
							p.name, fault.name, r, r.cookies)
					case r.took > reqTimeout+slack:
						t.Errorf("%s took %v with a %v request deadline", p.name, r.took, reqTimeout)
					default:
						t.Logf("%s: 503 after %v", p.name, r.took.Round(time.Millisecond))
					}
				}()
			}
			wg.Wait()
			for _, err := range rs.errors()[errs0:] {
				if !errors.Is(err, store.ErrUnavailable) {
					t.Errorf("a replica failed with %v, want store.ErrUnavailable", err)
				}
			}
			if got := rs.tn.GrantCalls("authorization_code"); got != codes0 {
				t.Errorf("the tenant got %d code redemptions while Redis was %s, want none", got-codes0, fault.name)
			}

			fault.up()
			upAt := time.Now()
			failed := 0
			var r *response
			for {
				if r, err = u.get(0, pathPrivate); err != nil {
					t.Fatal(err)
				}
				if r.status != http.StatusServiceUnavailable {
					break
				}
				if failed++; time.Since(upAt) > 10*time.Second {
					t.Fatalf("still %v 10s after Redis came back", r)
				}
				time.Sleep(10 * time.Millisecond) // waiting for go-redis to reconnect
			}
			t.Logf("Redis %s for %v; served again %v after it came back (%d request(s) answered 503 meanwhile)",
				fault.name, upAt.Sub(downAt).Round(time.Millisecond), time.Since(upAt).Round(time.Millisecond), failed)

			want := "hello auth0|alice from replica 0"
			if fault.kept {
				// The same session works again. The pending login's
				// callbacks sent SET NX (the single-use marker) before
				// they timed out: a frozen Redis runs such a command when
				// it resumes, so the callback may be spent by an attempt
				// that failed.
				// Either way the outcome is never a guess: a login, or
				// 400 and the user signs in again.
				if r.status != http.StatusOK || r.body != want {
					t.Fatalf("after Redis thawed: got %v, want 200 %q", r, want)
				}
				r, err := pending.get(1, cb.RequestURI())
				switch {
				case err != nil:
					t.Fatal(err)
				case r.status == http.StatusFound && r.cookie("stepup_session") != nil:
					t.Log("the pending callback after Redis thawed: the transaction survived, login completed")
				case r.status == http.StatusBadRequest && r.cookie("stepup_session") == nil:
					if err := rs.errors()[len(rs.errors())-1]; !errors.Is(err, stepup.ErrTransactionNotFound) {
						t.Errorf("the pending callback after Redis thawed failed with %v, want ErrTransactionNotFound", err)
					}
					t.Log("the pending callback after Redis thawed: 400, its marker was set by the SET NX that timed out")
				default:
					t.Errorf("the pending callback after Redis thawed: got %v, want a login or 400", r)
				}
				return
			}
			// The restarted Redis is empty: the old session is gone (a new
			// login is asked for, nothing served on a guess). The pending
			// transaction was never in Redis (it is the browser's cookie)
			// and its code was never redeemed (the marker could not be
			// set): its callback now completes. A new login works on the
			// same Clients too.
			if r.status != http.StatusFound || !strings.HasPrefix(r.location, rs.tn.URL()+"/authorize?") {
				t.Fatalf("the old session after Redis restarted empty: got %v, want a redirect to the tenant", r)
			}
			if r, err := pending.get(1, cb.RequestURI()); err != nil || r.status != http.StatusFound || r.cookie("stepup_session") == nil {
				t.Fatalf("the pending callback after Redis restarted empty: got %v, %v; want the login completed", r, err)
			}
			if _, err := u.login(ctx, pathPrivate, 1, 0); err != nil {
				t.Fatalf("a new login after Redis came back: %v", err)
			}
			for replica := range 2 {
				want := fmt.Sprintf("hello auth0|alice from replica %d", replica)
				if r, err := u.get(replica, pathPrivate); err != nil || r.status != http.StatusOK || r.body != want {
					t.Errorf("replica %d after the new login: got %v, %v; want 200 %q", replica, r, err, want)
				}
			}
		})
	}
}

// The single-use marker does not outlive its transaction in Redis: with
// TransactionTTL 1 s, the marker a callback leaves has a PTTL of at most
// 1 s and then disappears from the server (nothing accumulates), while the
// transaction itself is refused once expired on the Client's clock, before
// any command is sent.
func TestReplicasUsedMarkerExpiresInRedis(t *testing.T) {
	ctx := context.Background()
	var offset atomic.Int64
	rs := newReplicaSet(t, redistest.Client(t), replicaOpts{n: 1, client: func(c *stepup.Config) {
		c.TransactionTTL = time.Second
		c.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	}})
	ar, err := rs.clients[0].AuthorizeURL(ctx, stepup.AuthorizeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cb, err := rs.tn.Login(ctx, ar.URL, alice)
	if err != nil {
		t.Fatal(err)
	}
	q := cb.Query()
	q.Set("code", "forged") // spends only its own marker; the tenant refuses it
	written := time.Now()   // at most the time of the SET: the key lives at most 1s from its write
	if _, err := rs.clients[0].Exchange(ctx, q, ar.Transaction); err == nil {
		t.Fatal("a forged code was accepted")
	}
	used := rs.keys(ctx, rs.st.Key("used:")+"*")
	if len(used) != 1 {
		t.Fatalf("Redis holds %d markers, want 1", len(used))
	}
	key := used[0]
	if ttl := rs.rdb.PTTL(ctx, key).Val(); ttl <= 0 || ttl > time.Second {
		t.Fatalf("PTTL %s = %v, want in (0, 1s]", key, ttl)
	}
	for {
		ttl, err := rs.rdb.PTTL(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if ttl == -2*time.Nanosecond { // go-redis's value for "no such key"
			break
		}
		if time.Since(written) > 5*time.Second {
			t.Fatalf("the marker is still in Redis %v after it was written with at most a 1s TTL (PTTL %v)", time.Since(written), ttl)
		}
		time.Sleep(20 * time.Millisecond) // polling the server's expiry
	}
	t.Logf("the marker left Redis after %v", time.Since(written).Round(time.Millisecond))
	n := redistest.CountCommands(rs.rdb)
	offset.Store(int64(time.Second))
	_, err = rs.clients[0].Exchange(ctx, cb.Query(), ar.Transaction)
	if !errors.Is(err, stepup.ErrTransactionNotFound) {
		t.Fatalf("Exchange after the transaction expired: got %v, want ErrTransactionNotFound", err)
	}
	if got := n.Commands(); len(got) != 0 {
		t.Errorf("an expired transaction's callback sent %q to Redis, want nothing", got)
	}
	if n := rs.tn.GrantCalls("authorization_code"); n != 1 {
		t.Errorf("the tenant got %d code redemptions, want only the forged one", n)
	}
}

// What a login costs in Redis commands, counted with a go-redis hook (not
// by reading the code): AuthorizeURL sends none (the transaction is a
// cookie); a callback sets its single-use marker with one SET NX, then
// writes the session's index entries (by sid, by user, and its own list of
// token records: one script each, EVALSHA), its token record, its ID token
// and the session (SET each); a step-up of a live session first reads it
// (GETEX), writes its sid, user and per-session index entries again (idempotent; a logout racing it must not leave it unindexed), and reads the
// audience's token record (GET) when the login brought no refresh token, to
// keep one; a page load of a live session is one GETEX (the idle deadline
// moves with the read; nothing is rewritten), whenever it comes; a
// TokenSource's Token while the access token is valid is one GET.
func TestReplicasRedisCommandCost(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	// The replicas' clock; it moves only at the end, after every login.
	var offset atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	rs := newReplicaSet(t, rdb, replicaOpts{n: 2, client: func(c *stepup.Config) { c.Now = now }})
	// One login first, so that Redis has loaded the index scripts (the
	// first EVALSHA of a script on a server is answered NOSCRIPT, then
	// EVAL): the counts below are those of a running service.
	if _, err := rs.newBrowser(alice).login(ctx, pathPrivate, 0, 1); err != nil {
		t.Fatal(err)
	}
	n := redistest.CountCommands(rdb)
	c := rs.clients[0]
	check := func(what string, want ...string) {
		t.Helper()
		if got := n.Commands(); !slices.Equal(got, want) {
			t.Errorf("%s: Redis commands %q, want %q", what, got, want)
		}
		n.Reset()
	}
	loginWrites := []string{"evalsha", "evalsha", "evalsha", "set", "set", "set"}

	// The Client's own calls.
	ar, err := c.AuthorizeURL(ctx, stepup.AuthorizeOptions{Policy: stepup.MFA})
	if err != nil {
		t.Fatal(err)
	}
	check("AuthorizeURL")
	cb, err := rs.tn.Login(ctx, ar.URL, alice)
	if err != nil {
		t.Fatal(err)
	}
	n.Reset()
	login, err := rs.clients[1].Exchange(ctx, cb.Query(), ar.Transaction)
	if err != nil {
		t.Fatal(err)
	}
	check("Exchange (the callback's single-use marker)", "set")
	s, err := rs.clients[1].StartSession(ctx, login, nil)
	if err != nil {
		t.Fatal(err)
	}
	check("StartSession", loginWrites...)
	if _, err := c.LoadSession(ctx, rs.clients[1].SessionCookie(s).Value); err != nil {
		t.Fatal(err)
	}
	check("LoadSession", "getex")
	if _, err := c.TokenSource(ctx, s.Handle, stepup.TokenSourceOptions{}).Token(); err != nil {
		t.Fatal(err)
	}
	check("TokenSource.Token (valid)", "get")

	// The same through the middleware and the callback handler.
	u := rs.newBrowser(bob)
	r, err := u.get(0, pathPrivate)
	if err != nil || r.status != http.StatusFound {
		t.Fatalf("GET %s without a session: %v, %v", pathPrivate, r, err)
	}
	check("a protected page without a session (redirect to /authorize)")
	cbu, err := u.tb.Login(ctx, r.location, u.creds)
	if err != nil {
		t.Fatal(err)
	}
	n.Reset()
	if r, err = u.get(1, cbu.RequestURI()); err != nil || r.status != http.StatusFound {
		t.Fatalf("callback: %v, %v", r, err)
	}
	check("the callback handler of a first login", append([]string{"set"}, loginWrites...)...)
	if r, err = u.get(0, pathPrivate); err != nil || r.status != http.StatusOK {
		t.Fatalf("GET %s with a session: %v, %v", pathPrivate, r, err)
	}
	check("a protected page with a session", "getex")

	ua := rs.newBrowser(alice)
	if _, err := ua.login(ctx, pathPrivate, 0, 1); err != nil {
		t.Fatal(err)
	}
	n.Reset()
	if r, err = ua.get(0, pathSalaries); err != nil || r.status != http.StatusFound {
		t.Fatalf("GET %s with a password-only session: %v, %v", pathSalaries, r, err)
	}
	check("a step-up page with a weaker session (redirect to /authorize)", "getex")
	cbu, err = ua.tb.Login(ctx, r.location, ua.creds)
	if err != nil {
		t.Fatal(err)
	}
	n.Reset()
	if r, err = ua.get(1, cbu.RequestURI()); err != nil || r.status != http.StatusFound {
		t.Fatalf("step-up callback: %v, %v", r, err)
	}
	// These logins ask for no offline_access: a step-up's tokens come
	// without a refresh token, so the callback reads the audience's token
	// record (GET) to keep the refresh token it may hold.
	check("the callback handler of a step-up", "set", "getex", "evalsha", "evalsha", "get", "evalsha", "set", "set", "set")
	if r, err = ua.get(0, pathSalaries); err != nil || r.status != http.StatusOK {
		t.Fatalf("GET %s after the step-up: %v, %v", pathSalaries, r, err)
	}
	check("a step-up page with a stepped-up session", "getex")

	// Two minutes later, a page load moves the idle deadline with its one
	// GETEX (no write), and Redis holds the new deadline as the record's
	// TTL, for every replica.
	var handle string
	front, _ := url.Parse(rs.front.URL)
	for _, ck := range ua.http.Jar.Cookies(front) {
		if ck.Name == "stepup_session" {
			handle = handleOf(ck.Value)
		}
	}
	sessKey := rs.st.Key("sess:" + handle)
	if err := rdb.PExpire(ctx, sessKey, time.Minute).Err(); err != nil { // as if 29 idle minutes had passed
		t.Fatal(err)
	}
	n.Reset()
	offset.Store(int64(2 * time.Minute))
	if r, err = ua.get(0, pathSalaries); err != nil || r.status != http.StatusOK {
		t.Fatalf("GET %s two minutes later: %v, %v", pathSalaries, r, err)
	}
	check("a page load that extends the idle deadline", "getex")
	if ttl := rdb.PTTL(ctx, sessKey).Val(); ttl < stepup.DefaultSessionIdleTimeout-10*time.Second || ttl > stepup.DefaultSessionIdleTimeout {
		t.Errorf("the session's TTL after the page load is %v, want about SessionIdleTimeout (%v)", ttl, stepup.DefaultSessionIdleTimeout)
	}
	n.Reset()
	s2, err := rs.clients[1].Session(ctx, handle)
	if err != nil {
		t.Fatal(err)
	}
	if !s2.IdleExpiresAt.IsZero() {
		t.Errorf("a session read by handle reports the idle deadline %v; it does not read the TTL", s2.IdleExpiresAt)
	}
	check("Session (by handle)", "get")
}

// 200 concurrent logins across 4 Clients (replicas) sharing one Redis, or
// one Cluster: the sid and user indexes lose no entry, and LogoutSID and
// LogoutUser end exactly the sessions of a sid or a user, with their token
// records, on every replica; the others live on.
func TestReplicasLogoutBySIDAndUser(t *testing.T) {
	for _, tc := range []struct {
		name string
		rdb  func(t *testing.T) redis.UniversalClient
	}{
		{"Redis", func(t *testing.T) redis.UniversalClient { return redistest.Client(t) }},
		{"Cluster", func(t *testing.T) redis.UniversalClient { return redistest.Cluster(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const (
				logins   = 200
				replicas = 4
				users    = 5
				sids     = 20
			)
			ctx := context.Background()
			rdb := tc.rdb(t)
			st, err := redisstore.New(rdb, redisstore.Options{Prefix: redistest.Prefix(t)})
			if err != nil {
				t.Fatal(err)
			}
			clients := make([]*stepup.Client, replicas)
			for i := range clients {
				c, err := stepup.New(ctx, stepup.Config{
					Domain: "fabrikam.eu.auth0.com", ClientID: "client-1", ClientSecret: "secret-1",
					RedirectURL: "https://app.example.com/callback", Store: st, SealingKeys: [][]byte{sealingKey},
				})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.Close() })
				clients[i] = c
			}
			const api = "https://api.fabrikam.example"
			sessions := make([]*stepup.Session, logins)
			var wg sync.WaitGroup
			errs := make(chan error, logins)
			for i := range logins {
				wg.Add(1)
				go func() {
					defer wg.Done()
					sub, sid := fmt.Sprintf("auth0|user-%d", i%users), fmt.Sprintf("sid-%d", i%sids)
					s, err := clients[i%replicas].StartSession(ctx, &stepup.LoginResult{
						IDToken:  &stepup.IDToken{Subject: sub, SessionID: sid, Raw: "id." + sub},
						Token:    &oauth2.Token{AccessToken: "at-" + strconv.Itoa(i), Expiry: time.Now().Add(time.Hour)},
						Audience: api,
					}, nil)
					if err != nil {
						errs <- err
						return
					}
					sessions[i] = s
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatalf("a login: %v", err)
			}
			ended := make([]bool, logins)
			check := func(what string) {
				t.Helper()
				for i, s := range sessions {
					c := clients[(i+1)%replicas] // never the replica that started it
					_, err := c.Session(ctx, s.Handle)
					_, terr := c.TokenSource(ctx, s.Handle, stepup.TokenSourceOptions{Audience: api}).Token()
					switch {
					case ended[i] && (!errors.Is(err, stepup.ErrNoSession) || !errors.Is(terr, stepup.ErrNoSession)):
						t.Errorf("%s: session %d (%s, %s) lives on: %v, tokens %v", what, i, s.Subject, s.SessionID, err, terr)
					case !ended[i] && (err != nil || terr != nil):
						t.Errorf("%s: session %d (%s, %s) ended: %v, tokens %v", what, i, s.Subject, s.SessionID, err, terr)
					}
				}
			}
			check("after the logins")
			// sid-3's sessions, from replica 2.
			n, err := clients[2].LogoutSID(ctx, "sid-3")
			if err != nil {
				t.Fatal(err)
			}
			want := 0
			for i := range sessions {
				if i%sids == 3 {
					ended[i] = true
					want++
				}
			}
			if n != want {
				t.Errorf("LogoutSID(sid-3) ended %d sessions, want %d", n, want)
			}
			check("after LogoutSID(sid-3)")
			// Every session of user-1 (some of which sid-3 took already),
			// from replica 0.
			n, err = clients[0].LogoutUser(ctx, "auth0|user-1")
			if err != nil {
				t.Fatal(err)
			}
			want = 0
			for i := range sessions {
				if i%users == 1 && !ended[i] {
					ended[i] = true
					want++
				}
			}
			if n != want {
				t.Errorf("LogoutUser(user-1) ended %d sessions, want %d", n, want)
			}
			check("after LogoutUser(user-1)")
			// No record of an ended session is left in Redis.
			for i, s := range sessions {
				if !ended[i] {
					continue
				}
				if keys, err := redistest.Keys(ctx, rdb, st.Key("*"+s.Handle+"*")); err != nil || len(keys) != 0 {
					t.Errorf("session %d ended, yet Redis holds %q (%v)", i, keys, err)
				}
			}
		})
	}
}

// Two replicas on a Sentinel set-up, opened from a REDIS_URL as a
// deployment would: the master stops, the Sentinel promotes the replica,
// and the same Clients serve the session started before the failover (once
// replicated) and complete new logins, answering only 503 meanwhile.
func TestReplicasSentinelFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Sentinel set-up and waits for a failover")
	}
	ctx := context.Background()
	sen := redistest.StartSentinel(t)
	rdb, err := redisstore.OpenURL("redis://" + sen.Sentinel.Addr() + "?master_name=" + redistest.MasterName)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	rs := newReplicaSet(t, rdb, replicaOpts{n: 2, requestTimeout: 2 * time.Second})
	u := rs.newBrowser(alice)
	if _, err := u.login(ctx, pathPrivate, 0, 1); err != nil {
		t.Fatal(err)
	}
	// Replication is asynchronous: wait until the replica has the session.
	if n, err := rdb.Do(ctx, "WAIT", 1, 5000).Int(); err != nil || n != 1 {
		t.Fatalf("WAIT for the replica = %d, %v", n, err)
	}

	sen.Master.Stop()
	stopped := time.Now()
	unavailable := 0
	for {
		r, err := u.get(0, pathPrivate)
		if err != nil {
			t.Fatal(err)
		}
		if r.status == http.StatusOK && r.body == "hello auth0|alice from replica 0" {
			break
		}
		if r.status != http.StatusServiceUnavailable {
			t.Fatalf("during the failover: got %v, want 503 or the page", r)
		}
		if unavailable++; time.Since(stopped) > 30*time.Second {
			t.Fatalf("still 503 30s after the master stopped")
		}
		time.Sleep(50 * time.Millisecond) // waiting for the Sentinel to fail over
	}
	t.Logf("the session was served again %v after the master stopped (%d answers were 503 meanwhile)",
		time.Since(stopped).Round(time.Millisecond), unavailable)
	if master, err := sen.MasterAddr(ctx); err != nil || master != sen.Replica.Addr() {
		t.Fatalf("master after the failover = %s, %v; want the former replica %s", master, err, sen.Replica.Addr())
	}
	ub := rs.newBrowser(bob)
	if _, err := ub.login(ctx, pathPrivate, 1, 0); err != nil {
		t.Fatalf("a login after the failover: %v", err)
	}
	if r, err := ub.get(1, pathPrivate); err != nil || r.status != http.StatusOK {
		t.Fatalf("bob's page after the failover: %v, %v", r, err)
	}
}
