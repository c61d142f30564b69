package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"strconv"
	"time"
)

// Back-channel logout for the embedded tenant. Auth0 delivers logout tokens
// only to an https URL, and auth0test is as strict; the demo's pages are
// served on http loopback. So, with the embedded tenant, the demo also
// listens on a loopback TLS port of its own for POST /backchannel-logout
// only, with a certificate it makes at start-up, and gives the tenant that
// certificate as the one to trust (auth0test.Config.BackChannelLogoutCAs).
// Nothing is weakened: the tenant still refuses http and checks the
// certificate. Against a real tenant, POST /backchannel-logout is served on
// the demo's own address: put it behind your https front end and enter
// https://<your host>/backchannel-logout in the application's settings.

// backChannelPath is the demo's back-channel logout route.
const backChannelPath = "/backchannel-logout"

// backChannelListener is the embedded tenant's way in: a loopback TLS
// listener with its own certificate.
type backChannelListener struct {
	ln   net.Listener
	url  string // https://127.0.0.1:PORT/backchannel-logout
	pool *x509.CertPool
	cert tls.Certificate
	srv  *http.Server
}

// listenBackChannel opens the loopback TLS listener (not yet serving).
func listenBackChannel() (*backChannelListener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("stepup-demo: back-channel listener: %w", err)
	}
	cert, pool, err := loopbackCertificate()
	if err != nil {
		ln.Close()
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	return &backChannelListener{ln: ln, url: "https://127.0.0.1:" + strconv.Itoa(port) + backChannelPath,
		pool: pool, cert: cert}, nil
}

// serve starts serving h on the listener; close stops it.
func (b *backChannelListener) serve(h http.Handler, log *slog.Logger) {
	b.srv = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{b.cert}, MinVersion: tls.VersionTLS12},
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	go b.srv.ServeTLS(b.ln, "", "")
}

func (b *backChannelListener) close() error {
	if b.srv != nil {
		return b.srv.Close()
	}
	return b.ln.Close()
}

// loopbackCertificate makes a self-signed certificate for 127.0.0.1, valid
// for a day (the demo's run), and a pool holding it.
func loopbackCertificate() (tls.Certificate, *x509.CertPool, error) {
	fail := func(err error) (tls.Certificate, *x509.CertPool, error) {
		return tls.Certificate{}, nil, fmt.Errorf("stepup-demo: back-channel certificate: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fail(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return fail(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "stepup-demo back-channel logout"},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fail(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return fail(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool, nil
}

// backChannelRoutes is the back-channel listener's only route.
func (d *demo) backChannelRoutes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST "+backChannelPath, d.client.BackChannelLogoutHandler())
	return d.logRequests(mux)
}
