package auth0test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// parseJSONMember returns a string member of a JSON object.
func parseJSONMember(body, name string) (string, bool) {
	var m map[string]any
	if json.Unmarshal([]byte(body), &m) != nil {
		return "", false
	}
	s, ok := m[name].(string)
	return s, ok
}

var slicesContains = slices.Contains[[]string, string]

// The fuzz targets drive the tenant in-process (ServeHTTP) with arbitrary input:
// every answer must be a 2xx, 3xx or 4xx; a 5xx means a handler panicked (the
// tenant recovers and answers 500) or failed on input it should have refused.

func fuzzTenant(f *testing.F) *Tenant {
	return NewTenant(f, Config{APIs: []API{{Identifier: "https://api", Scopes: []string{"read"}, MFAScopes: []string{"read"}}}})
}

func checkAnswer(t *testing.T, rec *httptest.ResponseRecorder, input string) {
	t.Helper()
	if rec.Code >= 500 {
		t.Fatalf("status %d for %q: %s", rec.Code, input, rec.Body.String())
	}
	if rec.Code >= 400 && rec.Header().Get("Content-Type") == "application/json; charset=utf-8" &&
		!strings.Contains(rec.Body.String(), `"error"`) {
		t.Fatalf("status %d without an error member for %q: %s", rec.Code, input, rec.Body.String())
	}
}

func FuzzAuthorizeQuery(f *testing.F) {
	tn := fuzzTenant(f)
	app := DefaultApplication()
	f.Add("response_type=code&client_id=" + app.ClientID + "&redirect_uri=" + app.CallbackURLs[0] + "&scope=openid&state=x")
	f.Add("client_id=" + app.ClientID + "&response_type=code&prompt=none&max_age=0&acr_values=" + MFAACR)
	f.Add("client_id=" + app.ClientID + "&request_uri=urn:ietf:params:oauth:request_uri:x")
	f.Add("client_id=" + app.ClientID + "&code_challenge=abc&code_challenge_method=S256&audience=https://api&scope=read")
	f.Add("%zz&client_id=%")
	f.Add("client_id=" + app.ClientID + "&client_id=x")
	f.Fuzz(func(t *testing.T, query string) {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			req := httptest.NewRequest(method, "/authorize", strings.NewReader(query))
			req.URL.RawQuery = query
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			rec := httptest.NewRecorder()
			tn.ServeHTTP(rec, req)
			checkAnswer(t, rec, query)
		}
	})
}

func FuzzTokenBody(f *testing.F) {
	tn := fuzzTenant(f)
	app := DefaultApplication()
	auth := "&client_id=" + app.ClientID + "&client_secret=" + app.ClientSecret
	for _, g := range []string{"authorization_code&code=x&code_verifier=y&redirect_uri=z", "refresh_token&refresh_token=x&scope=openid",
		"client_credentials&audience=https://api&scope=read", GrantCIBA + "&auth_req_id=x", GrantMFAOTP + "&mfa_token=x&otp=1",
		GrantMFAOOB + "&mfa_token=x&oob_code=y", GrantMFARecoveryCode + "&mfa_token=x&recovery_code=y", "password"} {
		f.Add("grant_type="+g+auth, false)
	}
	f.Add(`{"grant_type":"refresh_token","refresh_token":"x","client_id":"`+app.ClientID+`","client_secret":{"a":1}}`, true)
	f.Add("grant_type=client_credentials&audience=https://api&client_id="+app.ClientID+
		"&client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer&client_assertion="+
		tn.Sign(nil, map[string]any{"iss": app.ClientID, "sub": app.ClientID, "aud": tn.Issuer(), "exp": 1e10, "jti": "j"}), false)
	f.Add(`[]`, true)
	f.Add(`null`, true)
	f.Add("%", false)
	f.Fuzz(func(t *testing.T, body string, asJSON bool) {
		for _, path := range []string{"/oauth/token", "/oauth/revoke", "/oauth/par", "/mfa/challenge"} {
			req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
			if asJSON {
				req.Header.Set("Content-Type", "application/json")
			} else {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			rec := httptest.NewRecorder()
			tn.ServeHTTP(rec, req)
			checkAnswer(t, rec, body)
		}
	})
}

func FuzzBCAuthorize(f *testing.F) {
	tn := fuzzTenant(f)
	app := DefaultApplication()
	base := "client_id=" + app.ClientID + "&client_secret=" + app.ClientSecret + "&scope=openid&binding_message=hi"
	f.Add(base+`&login_hint={"format":"iss_sub","iss":"`+tn.Issuer()+`","sub":"auth0|alice"}`, "Basic eDp5")
	f.Add(base+"&login_hint=%7B%7D&requested_expiry=99999999999999999999", "")
	f.Add(base+`&login_hint={"format":"iss_sub","sub":["x"]}&audience=https://api`, "Bearer x")
	f.Fuzz(func(t *testing.T, body, authorization string) {
		req := httptest.NewRequest(http.MethodPost, "/bc-authorize", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if authorization != "" {
			req.Header["Authorization"] = []string{authorization}
		}
		rec := httptest.NewRecorder()
		tn.ServeHTTP(rec, req)
		checkAnswer(t, rec, body)
	})
}

func FuzzHostedPages(f *testing.F) {
	tn := fuzzTenant(f)
	f.Add("/u/login", "state=x&username=alice@fabrikam.example&password=p")
	f.Add("/u/mfa-otp-challenge", "state=&code=123456")
	f.Add("/u/social", "state=x&connection=google-oauth2&email=carol@gmail.example")
	f.Add("/auth0test/ciba", "auth_req_id=x&decision=approve")
	f.Add("/oidc/logout", "id_token_hint=a.b.c&post_logout_redirect_uri=http://x")
	f.Add("/userinfo", "access_token=x")
	f.Add("/u/consent", "state=x&action=accept")
	f.Add("/u/logout", "state=x&action=deny")
	f.Add("/oidc/logout", "logout_hint=x&client_id=stepup-demo-client")
	f.Add("/u/mfa-recovery-code-challenge", "state=x&recovery_code=ABC&action=continue")
	f.Add("/u/guardian/enroll", "ticket=x&code=000000")
	f.Fuzz(func(t *testing.T, path, body string) {
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \t\r\n?#") {
			return
		}
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		req.URL.Path = path
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		tn.ServeHTTP(rec, req)
		checkAnswer(t, rec, path+" "+body)
	})
}

// FuzzMFAAPI sends hostile bodies and authenticator ids to the MFA API's
// enrollment endpoints, with a live mfa_token for a user without a factor.
func FuzzMFAAPI(f *testing.F) {
	tn := fuzzTenant(f)
	app := DefaultApplication()
	auth := `"client_id":"` + app.ClientID + `","client_secret":"` + app.ClientSecret + `"`
	f.Add(`{`+auth+`,"authenticator_types":["otp"]}`, true, "totp|dev_0")
	f.Add(`{`+auth+`,"authenticator_types":"[\"otp\",1]"}`, true, "")
	f.Add(`{`+auth+`,"authenticator_types":["oob"],"oob_channels":["sms"]}`, true, "../x")
	f.Add("client_id="+app.ClientID+"&client_secret="+app.ClientSecret+"&authenticator_types=otp", false, "push|dev_%zz")
	f.Add("authenticator_types=[", false, "recovery-code|dev_1")
	f.Fuzz(func(t *testing.T, body string, asJSON bool, id string) {
		tok, err := tn.NewMFAToken(app.ClientID, BobEmail, "openid", "")
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest(http.MethodPost, "/mfa/associate", strings.NewReader(body))
		if asJSON {
			req.Header.Set("Content-Type", "application/json")
		} else {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		tn.ServeHTTP(rec, req)
		checkAnswer(t, rec, body)
		req = httptest.NewRequest(http.MethodDelete, "/", nil)
		req.URL.Path = "/mfa/authenticators/" + id
		req.Header.Set("Authorization", "Bearer "+tok)
		rec = httptest.NewRecorder()
		tn.ServeHTTP(rec, req)
		checkAnswer(t, rec, id)
	})
}

// FuzzParsePage checks that the Browser's page reader never panics.
func FuzzParsePage(f *testing.F) {
	f.Add(`<body data-page="login" data-error="x"><p class="error" id="error">m</p><form method="post" action="/u/login"><input name="a" value="&amp;"></form>`)
	f.Add(`<form method="post" action="`)
	f.Fuzz(func(t *testing.T, s string) {
		_ = parsePage(s)
	})
}

// FuzzManagementAPI sends arbitrary methods, paths and JSON bodies to the
// Management API (with a token holding every scope) and to the enrollment
// ticket page: PATCH /api/v2/users/{id} and ticket bodies are parsed here.
func FuzzManagementAPI(f *testing.F) {
	app := DefaultApplication()
	app.ManagementScopes = ManagementScopes
	tn := NewTenant(f, Config{Applications: []Application{app}})
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader("grant_type=client_credentials&client_id="+
		app.ClientID+"&client_secret="+app.ClientSecret+"&audience="+tn.Issuer()+"api/v2/"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	tn.ServeHTTP(rec, req)
	tok, _ := parseJSONMember(rec.Body.String(), "access_token")
	if tok == "" {
		f.Fatalf("management token: %s", rec.Body.String())
	}
	f.Add("PATCH", "/api/v2/users/auth0%7Calice", `{"user_metadata":{"a":1,"b":null},"app_metadata":null}`)
	f.Add("PATCH", "/api/v2/users/auth0%7Calice", `{"name":"x","email":"y"}`)
	f.Add("POST", "/api/v2/guardian/enrollments/ticket", `{"user_id":"auth0|bob","factor":"otp","send_mail":false}`)
	f.Add("GET", "/api/v2/users/auth0%7Calice/authentication-methods?page=1&per_page=1&include_totals=true", "")
	f.Add("DELETE", "/api/v2/users/auth0%7Calice/authentication-methods/totp%7Cdev_0", "")
	f.Add("POST", "/u/guardian/enroll", "ticket=x&code=123456")
	f.Fuzz(func(t *testing.T, method, path, body string) {
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \r\n\t#") || len(method) == 0 || strings.ContainsAny(method, " \r\n\t/") {
			return // not an HTTP request line
		}
		req, err := http.NewRequest(method, "https://tenant"+path, strings.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		if strings.HasPrefix(path, "/u/") {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		} else {
			req.Header.Set("Content-Type", "application/json")
		}
		rec := httptest.NewRecorder()
		tn.ServeHTTP(rec, req)
		checkAnswer(t, rec, method+" "+path+" "+body)
	})
}

// FuzzManagementBodies feeds the two body parsers directly.
func FuzzManagementBodies(f *testing.F) {
	f.Add(`{"user_metadata":{"always_mfa":true,"x":null}}`)
	f.Add(`{"user_metadata":null,"app_metadata":{"a":[1,{"b":2}]},"name":"Alice"}`)
	f.Add(`{"user_id":"auth0|alice","allow_multiple_enrollments":true,"email":"a@b"}`)
	f.Add(`{"user_id":"auth0|alice"} {}`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, body string) {
		if patch, err := parseUserPatch([]byte(body)); err == nil {
			for k, v := range patch {
				if !slicesContains(patchableUserFields, k) {
					t.Fatalf("accepted member %q", k)
				}
				if k != "name" {
					_ = mergeMetadata(map[string]any{"k": 1}, v)
				}
			}
		}
		if tr, err := parseTicketRequest([]byte(body)); err == nil && (tr.UserID == "" || len(tr.UserID) > maxPathSegment) {
			t.Fatalf("accepted ticket %+v", tr)
		}
	})
}
