// Package auth0test is an Auth0-compatible dev tenant for tests and demos: a real
// HTTPS server on loopback that speaks Auth0's Authentication API, with hosted
// login pages, MFA (OTP), step-up through acr_values, refresh-token rotation and
// CIBA. It is to Auth0 what net/http/httptest is to a web server.
//
// See the full documentation in this file's later revisions.
package auth0test
