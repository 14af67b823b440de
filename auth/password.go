package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
)

const (
	minPasswordChars = 8
	// bcrypt reads only the first 72 bytes; a longer password is refused
	// rather than silently truncated.
	maxPasswordBytes = 72
	maxNameLen       = 64
)

// validatePassword checks the length rules with messages a user can act on.
func validatePassword(password string) error {
	if utf8.RuneCountInString(password) < minPasswordChars {
		return refuse(ErrInvalid, "the password is too short: use at least %d characters", minPasswordChars)
	}
	if len(password) > maxPasswordBytes {
		return refuse(ErrInvalid, "the password is too long: use at most %d bytes", maxPasswordBytes)
	}
	return nil
}

// validName reports whether s is 1–64 ASCII letters, digits, '.', '_' or '-':
// safe in logs, URLs and shell commands without quoting.
func validName(s string) bool {
	if s == "" || len(s) > maxNameLen {
		return false
	}
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-'
		if !ok {
			return false
		}
	}
	return true
}

func validateName(kind, s string) error {
	if !validName(s) {
		return refuse(ErrInvalid, "invalid %s %q: use 1 to %d letters, digits, '.', '_' or '-'", kind, s, maxNameLen)
	}
	return nil
}

// hashPassword validates and hashes a password; bcrypt salts each hash itself.
func hashPassword(password string, cost int) (string, error) {
	if err := validatePassword(password); err != nil {
		return "", err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(hash), nil
}

// passwordMatches compares in constant time (bcrypt does); a malformed stored
// hash is an error rather than a silent mismatch.
func passwordMatches(hash, password string) (bool, error) {
	err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(password))
	if errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("compare password: %w", err)
	}
	return true, nil
}

// randomSecret returns n random bytes as unpadded base64url, safe in cookies,
// headers and shell commands.
func randomSecret(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return base64.RawURLEncoding.EncodeToString(b)
}

// hashSecret is how session ids and API tokens are stored: SHA-256 suffices,
// unlike for passwords, because the secrets are 256 random bits.
func hashSecret(secret string) [sha256.Size]byte {
	return sha256.Sum256([]byte(secret))
}
