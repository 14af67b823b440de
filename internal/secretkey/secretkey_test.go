package secretkey

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func mustKey(t *testing.T, text string) *Key {
	t.Helper()
	k, err := New([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealOpen(t *testing.T) {
	k := mustKey(t, "correct horse battery staple")
	plain := []byte(`{"password":"s3cret"}`)
	a, b := k.Seal(plain), k.Seal(plain)
	if bytes.Equal(a, b) {
		t.Error("two seals of one value are equal: the nonce is not fresh")
	}
	if bytes.Contains(a, []byte("s3cret")) {
		t.Error("the sealed value holds the plain text")
	}
	got, err := k.Open(a)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("Open = %q, %v; want %q", got, err, plain)
	}
	if Fingerprint(a) != k.ID() {
		t.Errorf("Fingerprint = %s, want the key's %s", Fingerprint(a), k.ID())
	}
	// The same text with surrounding white space (a file's newline) is the same key.
	if got, err := mustKey(t, "  correct horse battery staple\n").Open(a); err != nil || !bytes.Equal(got, plain) {
		t.Errorf("the key read with a trailing newline opens to %q, %v", got, err)
	}
}

func TestOpenRefuses(t *testing.T) {
	k := mustKey(t, "correct horse battery staple")
	sealed := k.Seal([]byte("value"))
	flipped := bytes.Clone(sealed)
	flipped[len(flipped)-1] ^= 1
	header := bytes.Clone(sealed)
	header[0] = 9
	for _, tc := range []struct {
		name   string
		key    *Key
		sealed []byte
		want   string
	}{
		{"another key", mustKey(t, "another sixteen+ chars"), sealed, "sealed with another secret key"},
		{"damaged", k, flipped, "damaged"},
		{"unknown version", k, header, "not a version-1 sealed value"},
		{"too short", k, sealed[:10], "not a version-1 sealed value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.key.Open(tc.sealed)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open: %v, want an error saying %q", err, tc.want)
			}
			if tc.name == "another key" && !errors.Is(err, ErrWrongKey) {
				t.Errorf("Open: %v is not ErrWrongKey", err)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	short := filepath.Join(dir, "short")
	good := filepath.Join(dir, "good")
	if err := os.WriteFile(short, []byte("tooshort\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(good, []byte("0123456789abcdef0123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, path, wantErr string }{
		{"missing", filepath.Join(dir, "none"), "no such file"},
		{"short", short, "8 characters, want at least 16"},
		{"good", good, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := Load(tc.path)
			if tc.wantErr == "" {
				if err != nil || k == nil {
					t.Fatalf("Load = %v, %v", k, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Load: %v, want an error saying %q", err, tc.wantErr)
			}
		})
	}
}

// TestRingOpensWithPreviousKeys: a ring opens what its current key or one of
// its previous keys sealed, and names the fingerprint of any other.
func TestRingOpensWithPreviousKeys(t *testing.T) {
	old, cur := mustKey(t, "the key before rotation"), mustKey(t, "the key after rotation")
	ring := Ring{Current: cur, Previous: []*Key{old}}
	for _, k := range []*Key{old, cur} {
		if got, err := ring.Open(k.Seal([]byte("v"))); err != nil || string(got) != "v" {
			t.Errorf("ring.Open of a value sealed with %s = %q, %v", k.ID(), got, err)
		}
	}
	other := mustKey(t, "a key of another installation")
	_, err := ring.Open(other.Seal([]byte("v")))
	if !errors.Is(err, ErrWrongKey) || !strings.Contains(err.Error(), other.ID()) {
		t.Errorf("ring.Open of another key's value: %v, want ErrWrongKey naming %s", err, other.ID())
	}
}
