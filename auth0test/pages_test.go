package auth0test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
)

// TestHostedPagesLookLikeATenant: the pages name the application, the
// connection (by its display name) and, on the code page, the user; every
// value is escaped; Browser still drives them (its form fields are unchanged).
func TestHostedPagesLookLikeATenant(t *testing.T) {
	app := DefaultApplication()
	app.Name = `Fabrikam <Payroll> & "HR"`
	conns := DefaultConnections()
	conns = append(conns, Connection{Name: "github", Strategy: "github", DisplayName: "GitHub <Enterprise>"})
	tn := NewTenant(t, Config{Applications: []Application{app}, Connections: conns})
	jar, _ := cookiejar.New(nil)
	c := tn.Client()
	c.Jar = jar
	get := func(u string) string {
		resp, err := c.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	login := get(authorizeURL(tn, map[string]string{"acr_values": MFAACR}))
	for _, want := range []string{
		`<body data-page="login"`, `<style>`, `to continue to Fabrikam &lt;Payroll&gt; &amp; &#34;HR&#34;`,
		`>Continue with Google</a>`, `>Continue with GitHub &lt;Enterprise&gt;</a>`,
		`name="username"`, `name="password"`, `name="state"`,
	} {
		if !strings.Contains(login, want) {
			t.Errorf("login page lacks %q:\n%s", want, login)
		}
	}
	if strings.Contains(login, "<Payroll>") {
		t.Error("application name not escaped")
	}
	page := parsePage(login)
	form := page.form.values
	form.Set("username", AliceEmail)
	form.Set("password", AlicePassword)
	resp, err := c.PostForm(tn.URL()+page.form.action, form)
	if err != nil {
		t.Fatal(err)
	}
	otp, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`<body data-page="otp"`, `<strong id="email">` + AliceEmail + `</strong>`, `name="code"`} {
		if !strings.Contains(string(otp), want) {
			t.Errorf("code page lacks %q:\n%s", want, otp)
		}
	}
	other := parsePage(get(authorizeURL(tn, nil))).form.values.Get("state")
	social := get(tn.URL() + "/u/social?" + url.Values{"state": {other}, "connection": {"google-oauth2"}}.Encode())
	if !strings.Contains(social, "Sign in with Google") || !strings.Contains(social, "to continue to Fabrikam") {
		t.Errorf("social page:\n%s", social)
	}
	// Browser still goes through all of it.
	b := tn.NewBrowser()
	if _, err := b.Login(t.Context(), authorizeURL(tn, map[string]string{"acr_values": MFAACR}), alice); err != nil || len(b.Pages) != 2 {
		t.Errorf("Browser: %v %v", b.Pages, err)
	}
	if resp, err := c.Get(tn.URL() + "/u/guardian/enroll?ticket=nope"); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown ticket: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
}
