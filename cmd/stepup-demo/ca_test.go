package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stepupauth/stepup/auth0test"
)

// TestDemoCAPersists: the first run creates the CA (key 0600, directory
// 0700), later runs reuse it, so trusting it once lasts; the tenant's
// certificate chains to it.
func TestDemoCAPersists(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "stepup-demo")
	now := time.Now()
	first, err := loadOrCreateCA(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	if !first.created || first.certPath != filepath.Join(dir, "ca.pem") {
		t.Errorf("first run: created %v, path %s", first.created, first.certPath)
	}
	if runtime.GOOS != "windows" {
		for path, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, "ca-key.pem"): 0o600} {
			if st, err := os.Stat(path); err != nil || st.Mode().Perm() != want {
				t.Errorf("%s: mode %v (%v), want %v", path, st.Mode().Perm(), err, want)
			}
		}
	}
	second, err := loadOrCreateCA(dir, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if second.created || !second.ca.Cert.Equal(first.ca.Cert) {
		t.Errorf("second run: created %v, same CA %v; want the first run's CA", second.created, second.ca.Cert.Equal(first.ca.Cert))
	}

	// Close to its end, the CA is replaced (and the banner says to trust it).
	late, err := loadOrCreateCA(dir, first.ca.Cert.NotAfter.Add(-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !late.created || late.ca.Cert.Equal(first.ca.Cert) {
		t.Error("a CA a day from its end was kept")
	}

	// The tenant serves a certificate from it.
	tn, err := auth0test.Start(auth0test.Config{CA: second.ca})
	if err != nil {
		t.Fatal(err)
	}
	defer tn.Close()
	pool := x509.NewCertPool()
	pool.AddCert(second.ca.Cert)
	conn, err := tls.Dial("tcp", tn.Domain(), &tls.Config{RootCAs: pool})
	if err != nil {
		t.Fatalf("TLS to the tenant with only the demo CA trusted: %v", err)
	}
	conn.Close()
}

// TestDemoCALoopbackOnly: the CA's name constraint keeps it from vouching
// for any other name, so trusting it weakens nothing.
func TestDemoCALoopbackOnly(t *testing.T) {
	ca, _, _, err := newCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	for _, tc := range []struct {
		name string
		dns  []string
		ips  []net.IP
		ok   bool
	}{
		{"loopback", []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, true},
		{"another site", []string{"bank.example"}, nil, false},
		{"another address", nil, []net.IP{net.IPv4(10, 0, 0, 1)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leaf, _ := issueLeaf(t, ca, tc.dns, tc.ips)
			_, err := leaf.Verify(x509.VerifyOptions{Roots: pool})
			if (err == nil) != tc.ok {
				t.Errorf("verify: %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// issueLeaf issues a server certificate for dns and ips from ca, in the
// shape a TLS server serves it (leaf, then ca).
func issueLeaf(t *testing.T, ca *auth0test.CA, dns []string, ips []net.IP) (*x509.Certificate, tls.Certificate) {
	t.Helper()
	tmpl, _, _, err := newCA(time.Now()) // a key and serial to borrow
	if err != nil {
		t.Fatal(err)
	}
	c := *tmpl.Cert
	c.IsCA, c.BasicConstraintsValid = false, false
	c.PermittedDNSDomains, c.PermittedIPRanges, c.PermittedDNSDomainsCritical = nil, nil, false
	c.KeyUsage, c.ExtKeyUsage = x509.KeyUsageDigitalSignature, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	c.DNSNames, c.IPAddresses = dns, ips
	der, err := x509.CreateCertificate(nil, &c, ca.Cert, tmpl.Key.Public(), ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return leaf, tls.Certificate{Certificate: [][]byte{der, ca.Cert.Raw}, PrivateKey: tmpl.Key}
}

// TestDemoCAUnusable: a CA that is there but cannot be used is an error that
// says what to do, never silently replaced (that would break the trust a
// person gave it).
func TestDemoCAUnusable(t *testing.T) {
	tests := []struct {
		name  string
		spoil func(t *testing.T, dir string)
		want  string
	}{
		{"key readable by others", func(t *testing.T, dir string) {
			if runtime.GOOS == "windows" {
				t.Skip("no POSIX modes")
			}
			if err := os.Chmod(filepath.Join(dir, "ca-key.pem"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "readable by others"},
		{"key of another CA", func(t *testing.T, dir string) {
			other := t.TempDir()
			if _, err := loadOrCreateCA(other, time.Now()); err != nil {
				t.Fatal(err)
			}
			b, _ := os.ReadFile(filepath.Join(other, "ca-key.pem"))
			if err := os.WriteFile(filepath.Join(dir, "ca-key.pem"), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "is not the key of"},
		{"certificate not PEM", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, "ca.pem"), []byte("hello"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "holds no PEM certificate"},
		{"key missing", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, "ca-key.pem")); err != nil {
				t.Fatal(err)
			}
		}, "ca-key.pem"},
		{"huge file", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, "ca.pem"), make([]byte, maxCAFile+1), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "is over"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := loadOrCreateCA(dir, time.Now()); err != nil {
				t.Fatal(err)
			}
			tc.spoil(t, dir)
			_, err := loadOrCreateCA(dir, time.Now())
			var ce *configError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "delete the directory") {
				t.Errorf("got %v, want a configuration error naming %q and the way out", err, tc.want)
			}
		})
	}
}

// TestTrustCommand: the banner's one-step command for each system names the
// CA file, quoted for its shell.
func TestTrustCommand(t *testing.T) {
	for goos, want := range map[string]string{
		"linux":   `mkdir -p "$HOME/.pki/nssdb" && certutil -d "sql:$HOME/.pki/nssdb" -A -t C,, -n "stepup demo CA" -i '/home/o'\''neil/.config/stepup-demo/ca.pem'`,
		"darwin":  `security add-trusted-cert -r trustRoot -k "$HOME/Library/Keychains/login.keychain-db" '/home/o'\''neil/.config/stepup-demo/ca.pem'`,
		"windows": `certutil -user -addstore Root "/home/o'neil/.config/stepup-demo/ca.pem"`,
	} {
		if got := trustCommand(goos, "/home/o'neil/.config/stepup-demo/ca.pem"); got != want {
			t.Errorf("%s:\n got %s\nwant %s", goos, got, want)
		}
	}
}

// TestDemoDataAgrees: the salary table names the tenant's users as the
// header does.
func TestDemoDataAgrees(t *testing.T) {
	names := map[string]bool{}
	for _, e := range employees {
		names[e.Name] = true
	}
	for _, u := range auth0test.DefaultUsers() {
		if u.Connection == auth0test.DatabaseConnection && !names[u.Name] {
			t.Errorf("user %s (%s) is not in the salary table %v", u.Name, u.Email, employees)
		}
	}
}
