// Package secretkey seals the secrets Amas keeps in its database (notification
// channels' passwords, webhook URLs with keys, signing secrets) with a key the
// database does not hold, so that a dump or a backup of it does not give them
// away. AES-256-GCM; the key is derived from the text of --secret-key-file.
package secretkey

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
)

// MinLength is the shortest key text accepted: `openssl rand -base64 32`
// prints 44 characters.
const MinLength = 16

const (
	version = 1
	idLen   = 4 // the key's fingerprint, so a wrong key is told apart from damage
)

// ErrWrongKey is returned by Open for a value sealed with another key.
var ErrWrongKey = errors.New("sealed with another secret key")

// Key seals and opens values.
type Key struct {
	aead cipher.AEAD
	id   [idLen]byte
}

// New derives a key from its text (surrounding white space ignored).
func New(text []byte) (*Key, error) {
	text = bytes.TrimSpace(text)
	if len(text) < MinLength {
		return nil, fmt.Errorf("secret key: %d characters, want at least %d (e.g. the output of `openssl rand -base64 32`)", len(text), MinLength)
	}
	aesKey := sha256.Sum256(append([]byte("amas secret key v1\x00"), text...))
	block, err := aes.NewCipher(aesKey[:])
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	k := &Key{aead: aead}
	id := sha256.Sum256(append([]byte("amas secret key id\x00"), text...))
	copy(k.id[:], id[:])
	return k, nil
}

// Load reads the key from a file (a Docker or Kubernetes secret, say).
func Load(path string) (*Key, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	k, err := New(text)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// ID is the key's fingerprint, safe to log.
func (k *Key) ID() string { return hex.EncodeToString(k.id[:]) }

// Seal encrypts plain: version, key fingerprint, nonce, ciphertext and tag.
func (k *Key) Seal(plain []byte) []byte {
	out := make([]byte, 1+idLen+k.aead.NonceSize(), 1+idLen+k.aead.NonceSize()+len(plain)+k.aead.Overhead())
	out[0] = version
	copy(out[1:], k.id[:])
	nonce := out[1+idLen:]
	if _, err := rand.Read(nonce); err != nil {
		panic(fmt.Sprintf("secret key: no randomness: %v", err)) // crypto/rand does not fail on Linux
	}
	return k.aead.Seal(out, nonce, plain, out[:1+idLen])
}

// Open decrypts what Seal returned; ErrWrongKey when another key sealed it.
func (k *Key) Open(sealed []byte) ([]byte, error) {
	head := 1 + idLen + k.aead.NonceSize()
	if len(sealed) < head+k.aead.Overhead() || sealed[0] != version {
		return nil, fmt.Errorf("open sealed value: not a version-%d sealed value", version)
	}
	if !bytes.Equal(sealed[1:1+idLen], k.id[:]) {
		return nil, fmt.Errorf("%w (fingerprint %x; this server's key is %s)", ErrWrongKey, sealed[1:1+idLen], k.ID())
	}
	plain, err := k.aead.Open(nil, sealed[1+idLen:head], sealed[head:], sealed[:1+idLen])
	if err != nil {
		return nil, fmt.Errorf("open sealed value: damaged (%w)", err)
	}
	return plain, nil
}

// Fingerprint is the fingerprint (ID) of the key that sealed a value, or ""
// when it is not a sealed value.
func Fingerprint(sealed []byte) string {
	if len(sealed) < 1+idLen || sealed[0] != version {
		return ""
	}
	return hex.EncodeToString(sealed[1 : 1+idLen])
}

// Ring is the current key, which seals, and the previous ones, which still
// open what they sealed until it is sealed again with the current one.
type Ring struct {
	Current  *Key
	Previous []*Key
}

// Open opens a value sealed with any key of the ring.
func (r Ring) Open(sealed []byte) ([]byte, error) {
	id := Fingerprint(sealed)
	for _, k := range r.Previous {
		if k.ID() == id {
			return k.Open(sealed)
		}
	}
	return r.Current.Open(sealed)
}
