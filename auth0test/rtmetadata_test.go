package auth0test

import (
	"maps"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Auth0's refresh-token metadata (secure/tokens/refresh-tokens/
// refresh-token-metadata and .../configure-refresh-token-metadata): set by
// api.refreshToken.setMetadata at the login, read on refresh-token exchanges
// in event.refresh_token.metadata (never at the login: event.refresh_token
// does not exist there), kept by the tokens rotated from it, changed by a
// refresh's Action once the new refresh token is issued; Enterprise plans only.
func TestFidelityRefreshTokenMetadata(t *testing.T) {
	var events []ActionEvent
	var has []bool
	step := 0
	action := func(ev *ActionEvent, api *ActionAPI) {
		e := *ev
		if ev.RefreshToken != nil {
			r := *ev.RefreshToken
			r.Metadata = maps.Clone(r.Metadata)
			e.RefreshToken = &r
		}
		events, has = append(events, e), append(has, api.HasRefreshToken())
		switch ev.Protocol {
		case ProtocolOIDC:
			api.SetRefreshTokenMetadata("device", "alice-phone")
			api.SetRefreshTokenMetadata("gone", "x")
			api.DeleteRefreshTokenMetadata("gone")
		case ProtocolRefreshToken:
			step++
			switch step {
			case 1:
				api.SetRefreshTokenMetadata("seen", "1")
				if ev.RefreshToken.Metadata != nil {
					ev.RefreshToken.Metadata["device"] = "changed by the event only"
				}
			case 2:
				api.SetRefreshTokenMetadata("seen", "2")
				api.RequireMFA() // mfa_required: no refresh token issued, nothing applied
			case 3:
				api.EvictRefreshTokenMetadata()
			}
		}
	}

	t.Run("off by default", func(t *testing.T) {
		events, has, step = nil, nil, 0
		tn := NewTenant(t, Config{RefreshTokenRotation: true, Action: action})
		tok := exchange(t, tn, login(t, tn.NewBrowser(), authorizeURL(tn, nil), alice))
		if st, m := post(t, tn, "/oauth/token", refreshForm(tok["refresh_token"].(string))); st != http.StatusOK {
			t.Fatalf("refresh: %d %v", st, m)
		}
		if has[0] || has[1] || events[1].RefreshToken == nil || events[1].RefreshToken.Metadata != nil {
			t.Errorf("without RefreshTokenMetadata: api.refreshToken %v, metadata %v; want neither", has, events[1].RefreshToken)
		}
	})

	events, has, step = nil, nil, 0
	tn := NewTenant(t, Config{RefreshTokenRotation: true, RefreshTokenMetadata: true, Action: action})
	tok := exchange(t, tn, login(t, tn.NewBrowser(), authorizeURL(tn, nil), alice))
	if !has[0] || events[0].RefreshToken != nil {
		t.Fatalf("login: api.refreshToken %v, event.refresh_token %v; want it settable, not readable", has[0], events[0].RefreshToken)
	}
	refresh := func(rt string) (int, map[string]any) {
		t.Helper()
		return post(t, tn, "/oauth/token", refreshForm(rt))
	}
	st, m := refresh(tok["refresh_token"].(string))
	if st != http.StatusOK {
		t.Fatalf("refresh 1: %d %v", st, m)
	}
	if got, want := events[1].RefreshToken.Metadata, map[string]string{"device": "alice-phone"}; !cmp.Equal(got, want) {
		t.Errorf("refresh 1 metadata %v, want %v", got, want)
	}
	rt2 := m["refresh_token"].(string) // rotated: the family keeps the metadata
	if st, m := refresh(rt2); st != http.StatusForbidden || m["error"] != "mfa_required" {
		t.Fatalf("refresh 2: %d %v, want mfa_required", st, m)
	}
	if got, want := events[2].RefreshToken.Metadata, map[string]string{"device": "alice-phone", "seen": "1"}; !cmp.Equal(got, want) {
		t.Errorf("refresh 2 metadata %v, want %v (the event's own change discarded)", got, want)
	}
	st, m = refresh(rt2)
	if st != http.StatusOK {
		t.Fatalf("refresh 3: %d %v", st, m)
	}
	if got, want := events[3].RefreshToken.Metadata, map[string]string{"device": "alice-phone", "seen": "1"}; !cmp.Equal(got, want) {
		t.Errorf("refresh 3 metadata %v, want %v (nothing applied at mfa_required)", got, want)
	}
	if st, m := refresh(m["refresh_token"].(string)); st != http.StatusOK {
		t.Fatalf("refresh 4: %d %v", st, m)
	}
	if got := events[4].RefreshToken.Metadata; len(got) != 0 {
		t.Errorf("after evictMetadata: %v, want none", got)
	}
}

// Auth0's limits: at most 25 entries, keys and values of at most 255
// characters, keys of letters, digits, "_" and "-". What Auth0 does beyond
// them is not documented: auth0test refuses the call (nothing set).
func TestRefreshTokenMetadataLimits(t *testing.T) {
	api := &ActionAPI{rtMetaOK: true}
	api.SetRefreshTokenMetadata("bad key", "v")
	api.SetRefreshTokenMetadata("", "v")
	api.SetRefreshTokenMetadata("dot.key", "v")
	api.SetRefreshTokenMetadata(strings.Repeat("k", 256), "v")
	api.SetRefreshTokenMetadata("long", strings.Repeat("v", 256))
	if len(api.rtMeta) != 0 || len(api.rtMetaRefused) != 5 {
		t.Fatalf("invalid calls: metadata %v, refused %v", api.rtMeta, api.rtMetaRefused)
	}
	api.SetRefreshTokenMetadata(strings.Repeat("k", 255), strings.Repeat("v", 255))
	for i := range MaxRefreshTokenMetadataEntries - 1 {
		api.SetRefreshTokenMetadata("k_-"+string(rune('A'+i)), "v")
	}
	api.SetRefreshTokenMetadata("one-too-many", "v")
	api.SetRefreshTokenMetadata("k_-A", "replaced") // an existing key may change
	if len(api.rtMeta) != MaxRefreshTokenMetadataEntries || api.rtMeta["one-too-many"] != "" || api.rtMeta["k_-A"] != "replaced" {
		t.Errorf("25 entries: got %d, %v", len(api.rtMeta), api.rtMetaRefused)
	}
	off := &ActionAPI{}
	off.SetRefreshTokenMetadata("k", "v")
	if off.HasRefreshToken() || off.rtMeta != nil {
		t.Error("metadata set without api.refreshToken")
	}
}

// ClaimsAction keeps the step-up in the refresh token's metadata, so a
// refreshed access token carries the login's step-up (with the class and the
// original time); without the feature it carries none.
func TestClaimsActionRefreshCarriesStepUp(t *testing.T) {
	const ns = "https://stepup.example/"
	for _, on := range []bool{false, true} {
		clock := newClock()
		api := API{Identifier: "https://api.example/", Scopes: []string{"read"}}
		tn := NewTenant(t, Config{Now: clock.Now, RefreshTokenMetadata: on, APIs: []API{api}, Action: ClaimsAction(ns, clock.Now)})
		at := clock.Now()
		tok := exchange(t, tn, login(t, tn.NewBrowser(), authorizeURL(tn, map[string]string{"acr_values": MFAACR, "audience": api.Identifier}), alice))
		clock.Advance(3 * time.Minute)
		st, m := post(t, tn, "/oauth/token", refreshForm(tok["refresh_token"].(string)))
		if st != http.StatusOK {
			t.Fatalf("refresh: %d %v", st, m)
		}
		claims := claimsOf(t, m["access_token"].(string))
		if on {
			if claims[ns+"acr"] != MFAACR || claims[ns+"auth_time"] != float64(at.Unix()) {
				t.Errorf("with metadata: refreshed token claims %v, want the login's step-up", claims)
			}
		} else if _, ok := claims[ns+"auth_time"]; ok {
			t.Errorf("without metadata: refreshed token claims %v, want no step-up", claims)
		}
	}
}

// CIBA is one of the flows Auth0 lists for setting refresh-token metadata:
// the refresh token the approval issues keeps what its Action set, and
// ClaimsAction's refresh branch copies the approval's step-up from it.
func TestRefreshTokenMetadataFromCIBA(t *testing.T) {
	const ns = "https://stepup.example/"
	clk := newClock()
	var seen map[string]string
	claims := ClaimsAction(ns, clk.Now)
	tn := NewTenant(t, Config{Now: clk.Now, RefreshTokenMetadata: true, Action: func(ev *ActionEvent, api *ActionAPI) {
		if ev.RefreshToken != nil {
			seen = maps.Clone(ev.RefreshToken.Metadata)
		}
		claims(ev, api)
	}})
	st, m := post(t, tn, "/bc-authorize", cibaForm(tn))
	if st != http.StatusOK {
		t.Fatalf("bc-authorize: %d %v", st, m)
	}
	approvedAt := clk.Now()
	tn.ApproveCIBA(m["auth_req_id"].(string))
	st, tok := post(t, tn, "/oauth/token", pollForm(m["auth_req_id"].(string)))
	if st != http.StatusOK || tok["refresh_token"] == nil {
		t.Fatalf("CIBA poll: %d %v", st, tok)
	}
	clk.Advance(time.Minute)
	if st, m := post(t, tn, "/oauth/token", refreshForm(tok["refresh_token"].(string))); st != http.StatusOK {
		t.Fatalf("refresh: %d %v", st, m)
	}
	want := map[string]string{MetadataMFAAt: strconv.FormatInt(approvedAt.Unix(), 10), MetadataACR: "1"}
	if !cmp.Equal(seen, want) {
		t.Errorf("metadata on the CIBA token's refresh: %v, want %v", seen, want)
	}
}
