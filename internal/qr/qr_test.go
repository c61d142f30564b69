package qr

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDecodesWithZbar encodes strings of every version's size and decodes
// the PNG with zbarimg (Debian's zbar-tools, installed by scripts/test.sh).
func TestDecodesWithZbar(t *testing.T) {
	zbar, err := exec.LookPath("zbarimg")
	if err != nil {
		if os.Getenv("STEPUP_TEST_REQUIRE") != "" {
			t.Fatal("zbarimg not found (apt-get install zbar-tools)")
		}
		t.Skip("zbarimg not found (apt-get install zbar-tools; scripts/test.sh installs it)")
	}
	uri := "otpauth://totp/127.0.0.1:53127:alice@fabrikam.example?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=127.0.0.1%3A53127&algorithm=SHA1&digits=6&period=30"
	cases := []string{"A", "hello, world", strings.Repeat("0123456789", 5), uri, uri + "&x=" + strings.Repeat("y", 60)}
	for n := 10; n <= 230; n += 22 {
		cases = append(cases, strings.Repeat("Zq7", n)[:n])
	}
	dir := t.TempDir()
	versionsSeen := map[int]bool{}
	for i, s := range cases {
		c, err := Encode([]byte(s))
		if err != nil {
			t.Fatalf("Encode(%d bytes): %v", len(s), err)
		}
		versionsSeen[(c.Size-17)/4] = true
		img, err := c.PNG(4)
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, "qr"+string(rune('a'+i))+".png")
		if err := os.WriteFile(f, img, 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(zbar, "--raw", "-q", "-Sdisable", "-Sqrcode.enable", f).Output()
		if got := strings.TrimSuffix(string(out), "\n"); err != nil || got != s {
			t.Errorf("version %d, %d bytes: zbarimg read %q (%v), want %q", (c.Size-17)/4, len(s), got, err, s)
		}
	}
	for v := 1; v <= 9; v++ {
		if !versionsSeen[v] {
			t.Errorf("version %d not exercised", v)
		}
	}
}

func TestTooLong(t *testing.T) {
	if _, err := Encode(make([]byte, 231)); !errors.Is(err, ErrTooLong) {
		t.Fatalf("231 bytes: %v, want ErrTooLong", err)
	}
	if _, err := Encode(make([]byte, 230)); err != nil {
		t.Fatalf("230 bytes: %v", err)
	}
	c, _ := Encode([]byte("x"))
	if _, err := c.PNG(0); err == nil {
		t.Error("scale 0 accepted")
	}
}

// FuzzEncode: any input up to the limit encodes to a code of the right
// size, never panics.
func FuzzEncode(f *testing.F) {
	f.Add([]byte("otpauth://totp/x?secret=ABC"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Encode(data)
		if len(data) > 230 {
			if err == nil {
				t.Fatal("accepted too much")
			}
			return
		}
		if err != nil || (c.Size-17)%4 != 0 || c.Size < 21 || c.Size > 53 {
			t.Fatalf("Encode(%d bytes): %v", len(data), err)
		}
	})
}
