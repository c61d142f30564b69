package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/stepupauth/stepup/auth0test"
)

// The demo CA: the embedded tenant is served over https, as Auth0 is, with a
// certificate issued at each start by a CA that the demo creates once and
// keeps, so that a person trusts it once (the banner prints the command) and
// every later run opens without a certificate warning. The CA can vouch only
// for loopback names (a critical name constraint: localhost, 127.0.0.0/8,
// ::1), so trusting it lets no one impersonate another site, even with its
// key; the key is readable by its owner alone.
const (
	caCertFile = "ca.pem"
	caKeyFile  = "ca-key.pem"
	// caNickname names the CA in the trust stores (certutil -n).
	caNickname = "stepup demo CA"
	// caLifetime: a CA past its end is replaced, and must be trusted again.
	caLifetime = 2 * 365 * 24 * time.Hour
	// caRenewBefore replaces a CA this close to its end, so that a run's
	// serving certificate never outlives it.
	caRenewBefore = 31 * 24 * time.Hour
	// maxCAFile bounds what is read from the CA directory.
	maxCAFile = 64 << 10
)

// demoCA is the persistent CA of the embedded tenant.
type demoCA struct {
	ca       *auth0test.CA
	certPath string // the PEM certificate a person trusts
	created  bool   // made by this run: the banner says to trust it
}

// defaultCADir is STEPUP_DEMO_CA_DIR's default: stepup-demo under the user's
// configuration directory (~/.config on Linux, ~/Library/Application Support
// on macOS, %AppData% on Windows).
func defaultCADir() (string, error) {
	d, err := os.UserConfigDir()
	if err != nil {
		return "", badConfig("no user configuration directory for the demo CA (%v); set STEPUP_DEMO_CA_DIR", err)
	}
	return filepath.Join(d, "stepup-demo"), nil
}

// loadOrCreateCA reads the CA kept in dir, or creates it there (the
// directory 0700, the key 0600) when there is none or it is about to expire.
// A CA that is there but unusable (unreadable, key readable by others, key
// and certificate that do not match) is a configuration error that says what
// to do: replacing it silently would break the trust a person gave it.
func loadOrCreateCA(dir string, now time.Time) (*demoCA, error) {
	certPath, keyPath := filepath.Join(dir, caCertFile), filepath.Join(dir, caKeyFile)
	ca, err := readCA(certPath, keyPath, now)
	switch {
	case err == nil:
		return &demoCA{ca: ca, certPath: certPath}, nil
	case !errors.Is(err, errNoCA):
		return nil, badConfig("the demo CA in %s (STEPUP_DEMO_CA_DIR): %v (delete the directory to make a new CA, then trust the new one)", dir, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, badConfig("creating the demo CA directory (STEPUP_DEMO_CA_DIR): %v", err)
	}
	ca, certPEM, keyPEM, err := newCA(now)
	if err != nil {
		return nil, fmt.Errorf("stepup-demo: creating the demo CA: %w", err)
	}
	// The key first, each file written whole under a temporary name then
	// renamed, so a reader never sees half a file.
	if err := writeFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return nil, badConfig("writing the demo CA key: %v", err)
	}
	if err := writeFileAtomic(certPath, certPEM, 0o644); err != nil {
		return nil, badConfig("writing the demo CA certificate: %v", err)
	}
	return &demoCA{ca: ca, certPath: certPath, created: true}, nil
}

// errNoCA: no CA (or one about to expire) in the directory: make one.
var errNoCA = errors.New("no CA")

func readCA(certPath, keyPath string, now time.Time) (*auth0test.CA, error) {
	certPEM, err := readSmallFile(certPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errNoCA
	}
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(keyPath)
	if err != nil {
		return nil, err
	}
	if runtime.GOOS != "windows" && st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s is readable by others (mode %v); chmod 600 it", keyPath, st.Mode().Perm())
	}
	keyPEM, err := readSmallFile(keyPath)
	if err != nil {
		return nil, err
	}
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s holds no PEM certificate", certPath)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", certPath, err)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("%s is not a CA certificate", certPath)
	}
	if now.Add(caRenewBefore).After(cert.NotAfter) {
		return nil, errNoCA
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil || kb.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%s holds no PEM private key", keyPath)
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyPath, err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok || !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("%s is not the key of %s", keyPath, certPath)
	}
	return &auth0test.CA{Cert: cert, Key: key}, nil
}

func readSmallFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var b bytes.Buffer
	if n, err := b.ReadFrom(io.LimitReader(f, maxCAFile+1)); err != nil {
		return nil, err
	} else if n > maxCAFile {
		return nil, fmt.Errorf("%s is over %d bytes", path, maxCAFile)
	}
	return b.Bytes(), nil
}

// newCA makes the demo CA: ECDSA P-256, constrained to loopback names.
func newCA(now time.Time) (*auth0test.CA, []byte, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return nil, nil, nil, err
	}
	host, _ := os.Hostname()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: caNickname + " (loopback only)", Organization: []string{"stepup demo"}, OrganizationalUnit: []string{host}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		// Loopback only, and critical: a verifier that does not understand
		// the constraint must refuse the CA rather than ignore it.
		PermittedDNSDomainsCritical: true,
		PermittedDNSDomains:         []string{"localhost"},
		PermittedIPRanges: []*net.IPNet{
			{IP: net.IPv4(127, 0, 0, 0).To4(), Mask: net.CIDRMask(8, 32)},
			{IP: net.IPv6loopback, Mask: net.CIDRMask(128, 128)},
		},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, nil, err
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, nil, err
	}
	return &auth0test.CA{Cert: cert, Key: key},
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}), nil
}

func writeFileAtomic(path string, b []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename, nothing to remove
	if err := f.Chmod(mode); err != nil && runtime.GOOS != "windows" {
		f.Close()
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// trustCommand is the one command that makes this system's browsers trust
// the CA at path: Chrome and Chromium on Linux read the user's NSS database
// (Firefox keeps its own, see the README); macOS and Windows browsers read
// the user's keychain or certificate store.
func trustCommand(goos, path string) string {
	switch goos {
	case "darwin":
		return `security add-trusted-cert -r trustRoot -k "$HOME/Library/Keychains/login.keychain-db" ` + shellQuote(path)
	case "windows":
		return `certutil -user -addstore Root "` + path + `"`
	}
	return `mkdir -p "$HOME/.pki/nssdb" && certutil -d "sql:$HOME/.pki/nssdb" -A -t C,, -n "` + caNickname + `" -i ` + shellQuote(path)
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
