package auth0test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"
)

// CA is a certificate authority that a caller keeps across runs (Config.CA):
// the tenant then serves a certificate issued by it instead of one from a CA
// made at start, so a browser that trusts this CA once trusts every run's
// tenant. The stepup demo keeps one under the user's configuration directory.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer // the key of Cert
}

// caLeafLifetime bounds the tenant's serving certificate when issued by a
// caller's CA: it lives as long as one run, so a short life costs nothing.
const caLeafLifetime = 30 * 24 * time.Hour

// issue makes the tenant's serving certificate for ip (and localhost) from
// ca, in the shape newCertificates returns.
func (ca *CA) issue(ip net.IP) (tls.Certificate, []byte, *x509.CertPool, error) {
	fail := func(err error) (tls.Certificate, []byte, *x509.CertPool, error) {
		return tls.Certificate{}, nil, nil, fmt.Errorf("auth0test: certificate from Config.CA: %w", err)
	}
	if ca.Cert == nil || ca.Key == nil || !ca.Cert.IsCA {
		return fail(errors.New("CA needs a CA certificate and its key"))
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fail(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return fail(err)
	}
	ips := []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	if ip != nil && !ip.IsUnspecified() && !ip.Equal(ips[0]) && !ip.Equal(ips[1]) {
		ips = append(ips, ip)
	}
	now := time.Now()
	notAfter := now.Add(caLeafLifetime)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "auth0test dev tenant"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  ips,
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca.Cert, &leafKey.PublicKey, ca.Key)
	if err != nil {
		return fail(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})
	return tls.Certificate{Certificate: [][]byte{leafDER, ca.Cert.Raw}, PrivateKey: leafKey}, caPEM, pool, nil
}
