package stepup

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestChallengeWriter(t *testing.T) {
	cases := []struct {
		name       string
		c          Challenge
		wantHeader string
		wantStatus int
	}{
		{"bare", Challenge{}, `Bearer`, 401},
		{"realm only", Challenge{Params: map[string]string{"realm": "api"}}, `Bearer realm="api"`, 401},
		{"invalid token", Challenge{Scheme: "Bearer", Error: "invalid_token", ErrorDescription: "The access token expired"},
			`Bearer error="invalid_token", error_description="The access token expired"`, 401},
		{"step-up", StepUpChallenge(MFA.WithMaxAge(300 * time.Second)),
			`Bearer error="insufficient_user_authentication", error_description="A more recent or stronger authentication is required", acr_values="` + ACRMultiFactor + `", max_age="300"`, 401},
		{"step-up acr only, two values", StepUpChallenge(Policy{ACR: []string{"urn:a", "urn:b"}}),
			`Bearer error="insufficient_user_authentication", error_description="A different authentication level is required", acr_values="urn:a urn:b"`, 401},
		{"max_age rounds up", Challenge{Error: ErrorInsufficientUserAuthentication, MaxAge: 1500 * time.Millisecond, HasMaxAge: true},
			`Bearer error="insufficient_user_authentication", max_age="2"`, 401},
		{"max_age zero", Challenge{Error: ErrorInsufficientUserAuthentication, HasMaxAge: true},
			`Bearer error="insufficient_user_authentication", max_age="0"`, 401},
		{"scope", Challenge{Error: "insufficient_scope", Scope: []string{"read:a", "read:b"}},
			`Bearer error="insufficient_scope", scope="read:a read:b"`, 403},
		{"escapes and control characters", Challenge{Error: "invalid_token", ErrorDescription: "a \"quoted\" \\ value\r\nX-Injected: 1"},
			`Bearer error="invalid_token", error_description="a \"quoted\" \\ valueX-Injected: 1"`, 401},
		{"extra params sorted, bad names dropped", Challenge{Error: "invalid_request", Params: map[string]string{"z": "1", "a": "2", "bad name": "3", "ERROR": "dup"}},
			`Bearer error="invalid_request", a="2", z="1"`, 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.c.String(); got != c.wantHeader {
				t.Fatalf("got  %s\nwant %s", got, c.wantHeader)
			}
			w := httptest.NewRecorder()
			WriteChallenge(w, c.c)
			if w.Code != c.wantStatus || w.Header().Get("WWW-Authenticate") != c.wantHeader {
				t.Fatalf("got %d %q, want %d", w.Code, w.Header().Get("WWW-Authenticate"), c.wantStatus)
			}
		})
	}
}

func respWith(headers ...string) *http.Response {
	r := &http.Response{StatusCode: 401, Header: http.Header{}}
	for _, h := range headers {
		r.Header.Add("WWW-Authenticate", h)
	}
	return r
}

func TestParseChallenge(t *testing.T) {
	mfa := []string{ACRMultiFactor}
	cases := []struct {
		name    string
		headers []string
		want    *Challenge
		wantErr error
	}{
		{name: "RFC 9470 example", headers: []string{`Bearer error="insufficient_user_authentication", error_description="A different authentication level is required", acr_values="myACR"`},
			want: &Challenge{Scheme: "Bearer", Error: ErrorInsufficientUserAuthentication, ErrorDescription: "A different authentication level is required", ACRValues: []string{"myACR"},
				Params: map[string]string{"error": ErrorInsufficientUserAuthentication, "error_description": "A different authentication level is required", "acr_values": "myACR"}}},
		{name: "max_age quoted", headers: []string{`Bearer error="insufficient_user_authentication", max_age="5"`},
			want: &Challenge{Scheme: "Bearer", Error: ErrorInsufficientUserAuthentication, MaxAge: 5 * time.Second, HasMaxAge: true,
				Params: map[string]string{"error": ErrorInsufficientUserAuthentication, "max_age": "5"}}},
		{name: "token form, odd spacing and case", headers: []string{`bEaReR   ERROR = insufficient_user_authentication ,Max_Age=300,acr_values="` + ACRMultiFactor + ` urn:b"`},
			want: &Challenge{Scheme: "Bearer", Error: ErrorInsufficientUserAuthentication, MaxAge: 300 * time.Second, HasMaxAge: true, ACRValues: append(mfa, "urn:b"),
				Params: map[string]string{"error": ErrorInsufficientUserAuthentication, "max_age": "300", "acr_values": ACRMultiFactor + " urn:b"}}},
		{name: "escapes in quoted-string", headers: []string{`Bearer error="invalid_token", error_description="say \"hi\", \\ bye"`},
			want: &Challenge{Scheme: "Bearer", Error: "invalid_token", ErrorDescription: `say "hi", \ bye`,
				Params: map[string]string{"error": "invalid_token", "error_description": `say "hi", \ bye`}}},
		{name: "several challenges in one header, commas in quotes", headers: []string{`Basic realm="a, b", DPoP algs="ES256 PS256", error="use_dpop_nonce", Bearer realm="api", error="insufficient_user_authentication", acr_values="x", Negotiate abc/def==`},
			want: &Challenge{Scheme: "Bearer", Error: ErrorInsufficientUserAuthentication, ACRValues: []string{"x"},
				Params: map[string]string{"realm": "api", "error": ErrorInsufficientUserAuthentication, "acr_values": "x"}}},
		{name: "several headers", headers: []string{`Basic realm="x"`, `Negotiate`, `Bearer error="insufficient_scope", scope="a b"`},
			want: &Challenge{Scheme: "Bearer", Error: "insufficient_scope", Scope: []string{"a", "b"}, Params: map[string]string{"error": "insufficient_scope", "scope": "a b"}}},
		{name: "step-up challenge preferred over an earlier Bearer", headers: []string{`Bearer realm="a"`, `Bearer error="insufficient_user_authentication", max_age=0`},
			want: &Challenge{Scheme: "Bearer", Error: ErrorInsufficientUserAuthentication, HasMaxAge: true, Params: map[string]string{"error": ErrorInsufficientUserAuthentication, "max_age": "0"}}},
		{name: "bare Bearer", headers: []string{`Bearer`}, want: &Challenge{Scheme: "Bearer", Params: map[string]string{}}},
		{name: "token68 is legal, no params", headers: []string{`Bearer error=`}, want: &Challenge{Scheme: "Bearer", Params: map[string]string{}}},
		{name: "unknown params kept", headers: []string{`Bearer resource_metadata="https://x/.well-known/oauth-protected-resource", foo=bar`},
			want: &Challenge{Scheme: "Bearer", Params: map[string]string{"resource_metadata": "https://x/.well-known/oauth-protected-resource", "foo": "bar"}}},
		{name: "empty list elements", headers: []string{` , Bearer error=invalid_token ,, realm=x , `},
			want: &Challenge{Scheme: "Bearer", Error: "invalid_token", Params: map[string]string{"error": "invalid_token", "realm": "x"}}},
		{name: "broken header ignored when another has the Bearer", headers: []string{`Bearer error="unterminated`, `Bearer error=invalid_token`},
			want: &Challenge{Scheme: "Bearer", Error: "invalid_token", Params: map[string]string{"error": "invalid_token"}}},
		{name: "no header", headers: nil, wantErr: ErrNoChallenge},
		{name: "other schemes only", headers: []string{`Basic realm="x", DPoP algs="ES256"`}, wantErr: ErrNoChallenge},
		{name: "Bearer as a param value is not a challenge", headers: []string{`Basic realm=Bearer`}, wantErr: ErrNoChallenge},
		{name: "unterminated quote", headers: []string{`Bearer error="insufficient_user_authentication`}, wantErr: ErrMalformedChallenge},
		{name: "NUL in quoted-string", headers: []string{"Bearer error=\"a\x00b\""}, wantErr: ErrMalformedChallenge},
		{name: "NUL outside quotes", headers: []string{"Bearer\x00 error=x"}, wantErr: ErrMalformedChallenge},
		{name: "dangling backslash", headers: []string{`Bearer error="abc\`}, wantErr: ErrMalformedChallenge},
		{name: "missing value", headers: []string{`Bearer realm=x, error=`}, wantErr: ErrMalformedChallenge},
		{name: "missing comma", headers: []string{`Bearer error="a" realm="b"`}, wantErr: ErrMalformedChallenge},
		{name: "repeated param", headers: []string{`Bearer error=a, ERROR=b`}, wantErr: ErrMalformedChallenge},
		{name: "max_age not a number", headers: []string{`Bearer max_age="soon"`}, wantErr: ErrMalformedChallenge},
		{name: "max_age negative", headers: []string{`Bearer max_age=-5`}, wantErr: ErrMalformedChallenge},
		{name: "max_age overflow", headers: []string{`Bearer max_age=99999999999999999999`}, wantErr: ErrMalformedChallenge},
		{name: "huge header", headers: []string{`Bearer error="` + strings.Repeat("a", 1<<20) + `"`}, wantErr: ErrMalformedChallenge},
		{name: "too many params", headers: []string{"Bearer " + strings.Repeat("a=b, ", 10) + strings.TrimSuffix(strings.Repeat("x=1, ", 40), ", ")}, wantErr: ErrMalformedChallenge},
		{name: "too many challenges", headers: []string{strings.TrimSuffix(strings.Repeat("Basic, ", 40), ", ") + ", Bearer"}, wantErr: ErrMalformedChallenge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseChallenge(respWith(c.headers...))
			if c.wantErr != nil {
				if !errors.Is(err, c.wantErr) {
					t.Fatalf("got %+v, %v; want error %v", got, err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Fatalf("challenge mismatch (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := ParseChallenge(nil); !errors.Is(err, ErrNoChallenge) {
		t.Fatalf("nil response: %v", err)
	}
}

func TestChallengeRoundTrip(t *testing.T) {
	policies := []Policy{
		MFA,
		MFA.WithMaxAge(90 * time.Second),
		{ACR: []string{"urn:a", "urn:b:c"}},
		{MaxAge: time.Hour},
	}
	for _, p := range policies {
		w := httptest.NewRecorder()
		WriteChallenge(w, StepUpChallenge(p))
		c, err := ParseChallenge(w.Result())
		if err != nil {
			t.Fatal(err)
		}
		got := c.Policy()
		if got.ACRValues() != p.ACRValues() || got.MaxAge != p.MaxAge {
			t.Fatalf("policy %+v came back as %+v", p, got)
		}
	}
	// Every field of an arbitrary challenge survives the trip.
	in := Challenge{Scheme: "Bearer", Error: "insufficient_scope", ErrorDescription: `needs "admin"`, Scope: []string{"a", "b"},
		ACRValues: []string{"x"}, MaxAge: 10 * time.Second, HasMaxAge: true, Params: map[string]string{"realm": "r", "ext": "v"}}
	out, err := ParseChallenge(respWith(in.String()))
	if err != nil {
		t.Fatal(err)
	}
	in.Params = map[string]string{"realm": "r", "ext": "v", "error": in.Error, "error_description": in.ErrorDescription, "scope": "a b", "acr_values": "x", "max_age": "10"}
	if diff := cmp.Diff(&in, out); diff != "" {
		t.Fatalf("round trip (-want +got):\n%s", diff)
	}
	// max_age=0 asks for a fresh authentication: sent unchanged, checked
	// with a minute's tolerance.
	zero := Challenge{HasMaxAge: true}
	if zero.Policy().MaxAge != time.Minute {
		t.Fatalf("max_age=0 gives %s", zero.Policy().MaxAge)
	}
	if o := zero.AuthorizeOptions(); o.MaxAge == nil || *o.MaxAge != 0 || o.Policy.MaxAge != time.Minute {
		t.Fatalf("max_age=0 gives options %+v", o)
	}
}

func TestChallengeAuthorizeOptions(t *testing.T) {
	c, err := ParseChallenge(respWith(`Bearer error="insufficient_user_authentication", acr_values="` + ACRMultiFactor + ` urn:b", max_age=300`))
	if err != nil {
		t.Fatal(err)
	}
	o := c.AuthorizeOptions()
	if o.Policy.ACRValues() != ACRMultiFactor+" urn:b" || o.Policy.MaxAge != 5*time.Minute || o.MaxAge == nil || *o.MaxAge != 5*time.Minute {
		t.Fatalf("options %+v", o)
	}
	c, err = ParseChallenge(respWith(`Bearer error="insufficient_user_authentication", acr_values=x`))
	if err != nil {
		t.Fatal(err)
	}
	if o := c.AuthorizeOptions(); o.MaxAge != nil || o.Policy.MaxAge != 0 || o.Policy.ACRValues() != "x" {
		t.Fatalf("options without max_age %+v", o)
	}
}

func FuzzParseChallenge(f *testing.F) {
	f.Add(`Bearer error="insufficient_user_authentication", acr_values="a b", max_age=5`)
	f.Add(`Basic realm="a, b", Bearer realm="x", error="e\"q", Negotiate abc/def==`)
	f.Add(`Bearer error="unterminated`)
	f.Add("Bearer x=\"\x00\"")
	f.Add("BeArer error=\"\xc4\"")
	f.Fuzz(func(t *testing.T, h string) {
		c, err := ParseChallenge(respWith(h))
		if err != nil {
			if !errors.Is(err, ErrNoChallenge) && !errors.Is(err, ErrMalformedChallenge) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		// What we parse, we write back in a form we parse again to the same
		// policy. The writer drops what a header should not carry (non-ASCII,
		// control characters), so only printable values are compared.
		printable := func(v string) bool {
			for i := 0; i < len(v); i++ {
				if v[i] < 0x20 || v[i] > 0x7e {
					return false
				}
			}
			return true
		}
		if !printable(c.Error) || !printable(strings.Join(c.ACRValues, " ")) {
			return
		}
		again, err := ParseChallenge(respWith(c.String()))
		if err != nil {
			t.Fatalf("re-parse of %q: %v", c.String(), err)
		}
		if again.Error != c.Error || again.HasMaxAge != c.HasMaxAge || again.MaxAge != c.MaxAge ||
			strings.Join(again.ACRValues, " ") != strings.Join(c.ACRValues, " ") {
			t.Fatalf("round trip of %q: %+v became %+v", h, c, again)
		}
	})
}

// max_age=9223372036 (the largest whole number of seconds a Duration holds)
// passed parsing and overflowed when rounded up: the authorize URL carried a
// negative max_age and the login failed after the tenant (issue 15).
func TestChallengeHugeMaxAge(t *testing.T) {
	h := http.Header{}
	h.Set("WWW-Authenticate", `Bearer error="insufficient_user_authentication", acr_values="`+ACRMultiFactor+`", max_age=9223372036`)
	ch, err := ParseChallenge(&http.Response{StatusCode: http.StatusUnauthorized, Header: h})
	if err != nil {
		t.Fatal(err)
	}
	p := ch.Policy()
	if got, ok := p.MaxAgeSeconds(); !ok || got != "9223372036" {
		t.Errorf("Policy().MaxAgeSeconds() = %q, %v; want 9223372036", got, ok)
	}
	w := httptest.NewRecorder()
	WriteChallenge(w, *ch)
	if got := w.Header().Get("WWW-Authenticate"); !strings.Contains(got, `max_age="9223372036"`) {
		t.Errorf("challenge written back: %q, want max_age=9223372036", got)
	}
	c, _, _ := offlineClient(t, nil)
	ar, err := c.AuthorizeURL(context.Background(), ch.AuthorizeOptions())
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(ar.URL)
	if err != nil {
		t.Fatal(err)
	}
	if got := u.Query().Get("max_age"); got != "9223372036" {
		t.Errorf("authorize URL max_age=%q, want 9223372036", got)
	}
	for _, tc := range []struct {
		d    time.Duration
		want int64
	}{{0, 0}, {-time.Second, 0}, {1, 1}, {time.Second, 1}, {time.Second + 1, 2}, {math.MaxInt64, math.MaxInt64/int64(time.Second) + 1}} {
		if got := ceilSeconds(tc.d); got != tc.want {
			t.Errorf("ceilSeconds(%d) = %d, want %d", tc.d, got, tc.want)
		}
	}
}
