package stepup

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
)

// errUnseal: a sealed value could not be opened. It is deliberately vague:
// unknown key, tampered blob, or a blob moved to another record all look the
// same to the caller.
var errUnseal = errors.New("stepup: sealed value cannot be opened (unknown key, tampered, or bound to another record)")

// Sealed blob layout:
//
//	version (1 byte, sealVersion) | key id (4 bytes) | nonce (12 bytes) | AES-256-GCM ciphertext and tag
//
// The key id lets a key ring with several keys find the key without trying
// each; it is a hash of the key, so it reveals nothing about it.
const (
	sealVersion  = 1
	sealKeyIDLen = 4
	sealHeader   = 1 + sealKeyIDLen + 12
	sealKeyLen   = 32
)

// keyRing seals with its first key and opens with any of them, so keys can be
// rotated: add the new key first, keep the old ones until the records they
// sealed have expired.
type keyRing struct {
	keys []ringKey // immutable after newKeyRing; safe for concurrent use
}

type ringKey struct {
	id   [sealKeyIDLen]byte
	aead cipher.AEAD
}

// newKeyRing builds a ring from 32-byte AES-256 keys, the sealing key first.
func newKeyRing(keys [][]byte) (*keyRing, error) {
	if len(keys) == 0 {
		return nil, errors.New("no sealing key")
	}
	r := &keyRing{}
	seen := make(map[[sealKeyIDLen]byte]bool)
	for i, k := range keys {
		if len(k) != sealKeyLen {
			return nil, fmt.Errorf("SealingKeys[%d] is %d bytes; each key must be exactly 32 random bytes (AES-256)", i, len(k))
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("SealingKeys[%d]: %w", i, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("SealingKeys[%d]: %w", i, err)
		}
		id := sealKeyID(k)
		if seen[id] {
			return nil, fmt.Errorf("SealingKeys[%d] is listed twice (or its key id collides with another key): remove the duplicate", i)
		}
		seen[id] = true
		r.keys = append(r.keys, ringKey{id: id, aead: aead})
	}
	return r, nil
}

func sealKeyID(k []byte) [sealKeyIDLen]byte {
	h := sha256.New()
	h.Write([]byte("stepup seal key id\x00"))
	h.Write(k)
	var id [sealKeyIDLen]byte
	copy(id[:], h.Sum(nil))
	return id
}

// seal encrypts plaintext with the ring's first key. aad is authenticated but
// not stored: open must be given the same aad, which binds the blob to the
// record (and field) it was sealed for.
func (r *keyRing) seal(plaintext, aad []byte) []byte {
	k := &r.keys[0]
	out := make([]byte, sealHeader, sealHeader+len(plaintext)+k.aead.Overhead())
	out[0] = sealVersion
	copy(out[1:], k.id[:])
	// 96-bit random nonces: safe for far more than the 2^32 messages per key
	// that NIST allows; rotate keys long before.
	if _, err := rand.Read(out[1+sealKeyIDLen : sealHeader]); err != nil {
		panic("stepup: crypto/rand failed: " + err.Error())
	}
	return k.aead.Seal(out, out[1+sealKeyIDLen:sealHeader], plaintext, aad)
}

// open decrypts a blob made by seal with any key of the ring.
func (r *keyRing) open(blob, aad []byte) ([]byte, error) { return r.openInto(blob, aad, false) }

// openInto is open, decrypting over blob's ciphertext when inPlace.
func (r *keyRing) openInto(blob, aad []byte, inPlace bool) ([]byte, error) {
	if len(blob) < sealHeader || blob[0] != sealVersion {
		return nil, errUnseal
	}
	var id [sealKeyIDLen]byte
	copy(id[:], blob[1:])
	nonce := blob[1+sealKeyIDLen : sealHeader]
	for i := range r.keys {
		k := &r.keys[i]
		if k.id != id {
			continue
		}
		if len(blob)-sealHeader < k.aead.Overhead() {
			return nil, errUnseal
		}
		var dst []byte
		if inPlace {
			dst = blob[sealHeader:sealHeader]
		}
		pt, err := k.aead.Open(dst, nonce, blob[sealHeader:], aad)
		if err == nil {
			return pt, nil
		}
	}
	return nil, errUnseal
}

// recordAAD binds a stored record to its store key, so that a record copied
// to another key (another session, another audience) does not open.
func recordAAD(key string) []byte { return []byte("stepup/record/v2\x00" + key) }

// sealRecord seals an encoded record for the store key it is written under:
// every record the Client writes is encrypted and authenticated with the key
// ring, so a writer without the Client's keys cannot forge or move one.
func (r *keyRing) sealRecord(key string, plaintext []byte) []byte {
	return r.seal(plaintext, recordAAD(key))
}

// openRecordInPlace opens a record sealed by sealRecord for key, decrypting
// into blob's own memory: the caller owns blob (a Store returns a copy) and
// the page load saves an allocation; blob must not be used afterwards except
// through the result. errUnseal when the record was not sealed for key (a
// record written without the key, tampered, moved, or of the previous
// version, which had no seal: all are treated as absent).
func (r *keyRing) openRecordInPlace(key string, blob []byte) ([]byte, error) {
	return r.openInto(blob, recordAAD(key), true)
}
