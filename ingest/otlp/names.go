package otlp

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// sanitize maps s onto the OpenTSDB name charset (letters, digits, '-', '_',
// '.', '/'): every other character becomes '_'.
func sanitize(s string) string {
	ok := true
	for _, r := range s {
		if !nameRune(r) {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		if nameRune(r) {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

func nameRune(r rune) bool {
	return r == '-' || r == '_' || r == '.' || r == '/' || (r != utf8.RuneError && (unicode.IsLetter(r) || unicode.IsDigit(r)))
}

// cleanText makes s storable in a PostgreSQL text column: valid UTF-8 without
// NUL characters.
func cleanText(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}
