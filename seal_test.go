package stepup

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func sealTestKey(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func TestKeyRingSealOpen(t *testing.T) {
	ring, err := newKeyRing([][]byte{sealTestKey(1)})
	if err != nil {
		t.Fatal(err)
	}
	aad := sealAAD("handle-a", "https://api", "refresh")
	blob := ring.seal([]byte("v1.refresh-token"), aad)
	if bytes.Contains(blob, []byte("refresh-token")) {
		t.Fatal("sealed blob contains the plaintext")
	}
	got, err := ring.open(blob, aad)
	if err != nil || string(got) != "v1.refresh-token" {
		t.Fatalf("open: got %q, %v; want the plaintext", got, err)
	}
	if again := ring.seal([]byte("v1.refresh-token"), aad); bytes.Equal(again, blob) {
		t.Error("two seals of the same plaintext are equal: nonce reused")
	}

	tests := []struct {
		name string
		blob []byte
		aad  []byte
	}{
		{"moved to another session", blob, sealAAD("handle-b", "https://api", "refresh")},
		{"moved to another audience", blob, sealAAD("handle-a", "https://other", "refresh")},
		{"moved to another field", blob, sealAAD("handle-a", "https://api", "access")},
		{"bit flipped in ciphertext", flip(blob, len(blob)-20), aad},
		{"bit flipped in tag", flip(blob, len(blob)-1), aad},
		{"bit flipped in nonce", flip(blob, 6), aad},
		{"unknown key id", flip(blob, 1), aad},
		{"unknown version", flip(blob, 0), aad},
		{"truncated", blob[:sealHeader+3], aad},
		{"empty", nil, aad},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ring.open(tc.blob, tc.aad); !errors.Is(err, errUnseal) {
				t.Fatalf("open: got %v, want errUnseal", err)
			}
		})
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x01
	return c
}

func TestKeyRingRotation(t *testing.T) {
	old, _ := newKeyRing([][]byte{sealTestKey(1)})
	aad := []byte("ctx")
	sealedOld := old.seal([]byte("secret"), aad)

	rotated, err := newKeyRing([][]byte{sealTestKey(2), sealTestKey(1)})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := rotated.open(sealedOld, aad); err != nil || string(got) != "secret" {
		t.Fatalf("rotated ring opening an old blob: got %q, %v", got, err)
	}
	sealedNew := rotated.seal([]byte("secret"), aad)
	if _, err := old.open(sealedNew, aad); !errors.Is(err, errUnseal) {
		t.Fatalf("old ring opened a blob sealed with the new key: %v", err)
	}
	retired, _ := newKeyRing([][]byte{sealTestKey(2)})
	if _, err := retired.open(sealedOld, aad); !errors.Is(err, errUnseal) {
		t.Fatalf("a ring without the old key opened its blob: %v", err)
	}
}

func TestNewKeyRingErrors(t *testing.T) {
	tests := []struct {
		name string
		keys [][]byte
		want string
	}{
		{"none", nil, "no sealing key"},
		{"short", [][]byte{make([]byte, 16)}, "exactly 32"},
		{"duplicate", [][]byte{sealTestKey(3), sealTestKey(3)}, "twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newKeyRing(tc.keys)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// sealAAD names a record key for the seal tests: sessions, audiences and
// fields are bound through the store key since records are sealed whole.
func sealAAD(handle, audience, kind string) []byte {
	return recordAAD("tok:" + handle + ":" + audience + ":" + kind)
}
