package auth0test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Organization is an Auth0 organization (Config.Organizations).
type Organization struct {
	// ID is "org_" followed by letters and digits, e.g. "org_fabrikam01".
	ID string
	// Name is the organization's lower-case identifier, e.g. "fabrikam".
	Name        string
	DisplayName string
	// Members are the user ids of its members.
	Members []string
	// AssignMembershipOnLogin is the connections' "auto-membership": a user who
	// logs in to the organization becomes a member. Default false: only
	// members may log in (a non-member gets access_denied), as on Auth0.
	AssignMembershipOnLogin bool
}

// Application.OrganizationUsage values (Auth0's organization_usage).
const (
	OrganizationDeny    = "deny"
	OrganizationAllow   = "allow"
	OrganizationRequire = "require"
)

// invitationLifetime is Auth0's default invitation ttl_sec (604800 s).
const invitationLifetime = 7 * 24 * time.Hour

type invitation struct {
	orgID   string
	email   string
	expires time.Time
}

// Invitation is an organization invitation, as Auth0's invitation link carries
// it: the app's login route gets invitation, organization and
// organization_name, and sends invitation and organization on to /authorize.
type Invitation struct {
	ID               string // the invitation parameter (Auth0's ticket id)
	OrganizationID   string
	OrganizationName string
	Email            string // the invitee
}

// ActionOrganization is event.organization.
type ActionOrganization struct {
	ID, Name, DisplayName string
}

func (t *Tenant) addOrganizations(orgs []Organization) error {
	for i := range orgs {
		o := orgs[i]
		if !strings.HasPrefix(o.ID, "org_") || len(o.ID) < 5 || o.Name == "" || o.Name != strings.ToLower(o.Name) {
			return fmt.Errorf("auth0test: organization %d: ID must start with org_ and Name be lower case (got %q, %q)", i, o.ID, o.Name)
		}
		for _, p := range t.orgs {
			if p.ID == o.ID || p.Name == o.Name {
				return fmt.Errorf("auth0test: duplicate organization %q", o.ID)
			}
		}
		o.Members = slices.Clone(o.Members)
		t.orgs = append(t.orgs, &o)
	}
	return nil
}

// orgLocked finds an organization by id, or by name when names are allowed.
func (t *Tenant) orgLocked(idOrName string) *Organization {
	for _, o := range t.orgs {
		if o.ID == idOrName || (t.cfg.OrganizationNames && !strings.HasPrefix(idOrName, "org_") && o.Name == strings.ToLower(idOrName)) {
			return o
		}
	}
	return nil
}

// ErrNoOrganization is returned by the organization helpers for an unknown organization.
var ErrNoOrganization = errors.New("auth0test: no such organization")

// Invite creates an invitation to the organization (id or name) for email,
// valid 7 days (Auth0's default) and accepted once: the invitee's login with
// it makes them a member.
func (t *Tenant) Invite(org, email string) (Invitation, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	o := t.orgByIDOrNameLocked(org)
	if o == nil {
		return Invitation{}, ErrNoOrganization
	}
	id := randomToken(24)
	t.invitations[id] = &invitation{orgID: o.ID, email: email, expires: t.cfg.Now().Add(invitationLifetime)}
	return Invitation{ID: id, OrganizationID: o.ID, OrganizationName: o.Name, Email: email}, nil
}

// orgByIDOrNameLocked finds an organization for the helpers (names always allowed).
func (t *Tenant) orgByIDOrNameLocked(org string) *Organization {
	for _, o := range t.orgs {
		if o.ID == org || o.Name == org {
			return o
		}
	}
	return nil
}

// AddMember makes the user a member of the organization (id or name).
func (t *Tenant) AddMember(org, userID string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	o := t.orgByIDOrNameLocked(org)
	if o == nil {
		return ErrNoOrganization
	}
	if !slices.Contains(o.Members, userID) {
		o.Members = append(o.Members, userID)
	}
	return nil
}

// Members returns the user ids of the organization's members.
func (t *Tenant) Members(org string) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if o := t.orgByIDOrNameLocked(org); o != nil {
		return slices.Clone(o.Members)
	}
	return nil
}

// authorizeOrg checks the organization and invitation parameters of an
// /authorize request against the application's organization usage. It returns
// the organization (nil for none) or Auth0's error description.
func (t *Tenant) authorizeOrg(app *Application, org, inv string) (*ActionOrganization, string) {
	if inv != "" && org == "" {
		return nil, "parameter organization is required when invitation is present"
	}
	switch {
	case org == "" && app.OrganizationUsage == OrganizationRequire:
		return nil, "parameter organization is required for this client"
	case org == "":
		return nil, ""
	case app.OrganizationUsage == OrganizationDeny:
		return nil, "parameter organization is not allowed for this client"
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	o := t.orgLocked(org)
	if o == nil {
		return nil, "parameter organization is invalid: " + org
	}
	if inv != "" {
		i, ok := t.invitations[inv]
		if !ok || i.orgID != o.ID || t.cfg.Now().After(i.expires) {
			return nil, "invitation not found or expired"
		}
	}
	return &ActionOrganization{ID: o.ID, Name: o.Name, DisplayName: o.DisplayName}, ""
}

// joinOrg runs once the user is known: a member goes on; an invitee with a
// valid invitation for their email, or anyone under AssignMembershipOnLogin,
// becomes a member. It returns Auth0's access_denied description otherwise.
func (t *Tenant) joinOrg(org *ActionOrganization, inv string, user User) string {
	if org == nil {
		return ""
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	o := t.orgByIDOrNameLocked(org.ID)
	if o == nil {
		return "organization not found"
	}
	if inv != "" {
		i, ok := t.invitations[inv]
		if !ok || i.orgID != o.ID || t.cfg.Now().After(i.expires) {
			return "invitation not found or expired"
		}
		if !strings.EqualFold(i.email, user.Email) {
			return "the invitation was issued for another user"
		}
		delete(t.invitations, inv) // accepted once
		if !slices.Contains(o.Members, user.ID) {
			o.Members = append(o.Members, user.ID)
		}
		return ""
	}
	if slices.Contains(o.Members, user.ID) {
		return ""
	}
	if o.AssignMembershipOnLogin {
		o.Members = append(o.Members, user.ID)
		return ""
	}
	return "user " + user.ID + " is not part of the " + o.ID + " organization"
}
