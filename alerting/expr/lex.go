package expr

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

type tokenKind int

const (
	tokEOF tokenKind = iota
	tokIdent
	tokNumber
	tokDuration
	tokString
	tokPunct // ( ) { } [ ] ,
	tokOp    // = != =~ !~ > >= < <= ==
)

func (k tokenKind) String() string {
	switch k {
	case tokEOF:
		return "end of expression"
	case tokIdent:
		return "name"
	case tokNumber:
		return "number"
	case tokDuration:
		return "duration"
	case tokString:
		return "string"
	}
	return "symbol"
}

type token struct {
	kind tokenKind
	text string // the source text; for strings, the unquoted value
	pos  int    // byte offset in the source
}

func (t token) describe() string {
	switch t.kind {
	case tokEOF:
		return "the end of the expression"
	case tokString:
		return fmt.Sprintf("string %q", t.text)
	}
	return fmt.Sprintf("%q", t.text)
}

// isIdentStart and isIdentChar: metric names are OpenTSDB's (letters, digits and
// - _ . /), plus : as in Prometheus.
func isIdentStart(c byte) bool { return c == '_' || (c|0x20 >= 'a' && c|0x20 <= 'z') }

func isIdentChar(c byte) bool {
	return isIdentStart(c) || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '/' || c == ':'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// lex cuts src into tokens; the last is tokEOF.
func lex(src string) ([]token, error) {
	var out []token
	i := 0
	for {
		for i < len(src) {
			c := src[i]
			if c == ' ' || c == '\t' || c == '\n' || c == '\r' {
				i++
				continue
			}
			if c == '#' { // comment to the end of the line
				for i < len(src) && src[i] != '\n' {
					i++
				}
				continue
			}
			break
		}
		if i >= len(src) {
			return append(out, token{kind: tokEOF, pos: len(src)}), nil
		}
		tok, next, err := lexOne(src, i)
		if err != nil {
			return nil, err
		}
		out = append(out, tok)
		i = next
	}
}

func lexOne(src string, i int) (token, int, error) {
	c := src[i]
	switch {
	case strings.IndexByte("(){}[],", c) >= 0:
		return token{kind: tokPunct, text: src[i : i+1], pos: i}, i + 1, nil
	case c == '"' || c == '\'':
		return lexString(src, i)
	case isDigit(c) || (c == '.' && i+1 < len(src) && isDigit(src[i+1])):
		return lexNumber(src, i)
	case c == '-' && i+1 < len(src) && (isDigit(src[i+1]) || src[i+1] == '.'):
		tok, next, err := lexNumber(src, i+1)
		if err != nil {
			return tok, next, err
		}
		if tok.kind != tokNumber {
			return token{}, 0, errorAt(src, i, "a duration cannot be negative")
		}
		tok.text, tok.pos = "-"+tok.text, i
		return tok, next, nil
	case isIdentStart(c):
		j := i + 1
		for j < len(src) && isIdentChar(src[j]) {
			j++
		}
		return token{kind: tokIdent, text: src[i:j], pos: i}, j, nil
	}
	for _, op := range []string{"!=", "=~", "!~", ">=", "<=", "==", "=", ">", "<"} {
		if strings.HasPrefix(src[i:], op) {
			return token{kind: tokOp, text: op, pos: i}, i + len(op), nil
		}
	}
	r, _ := utf8.DecodeRuneInString(src[i:])
	return token{}, 0, errorAt(src, i, fmt.Sprintf("unexpected character %q", r))
}

// lexNumber reads a number (123, 1.5, 2e3) or a duration (5m, 1h30m, 250ms).
func lexNumber(src string, i int) (token, int, error) {
	j := i
	for j < len(src) && isDigit(src[j]) {
		j++
	}
	if j < len(src) && isIdentStart(src[j]) && src[j]|0x20 != 'e' {
		for j < len(src) && (isDigit(src[j]) || isIdentStart(src[j])) {
			j++
		}
		return token{kind: tokDuration, text: src[i:j], pos: i}, j, nil
	}
	if j < len(src) && src[j] == '.' {
		j++
		for j < len(src) && isDigit(src[j]) {
			j++
		}
	}
	if j < len(src) && src[j]|0x20 == 'e' {
		k := j + 1
		if k < len(src) && (src[k] == '+' || src[k] == '-') {
			k++
		}
		if k < len(src) && isDigit(src[k]) {
			for k < len(src) && isDigit(src[k]) {
				k++
			}
			j = k
		}
	}
	if j < len(src) && isIdentChar(src[j]) && src[j] != '-' {
		return token{}, 0, errorAt(src, j, fmt.Sprintf("unexpected %q after the number %s", src[j], src[i:j]))
	}
	text := src[i:j]
	if _, err := strconv.ParseFloat(text, 64); err != nil {
		return token{}, 0, errorAt(src, i, fmt.Sprintf("invalid number %q", text))
	}
	return token{kind: tokNumber, text: text, pos: i}, j, nil
}

func lexString(src string, i int) (token, int, error) {
	quote := src[i]
	j := i + 1
	for j < len(src) && src[j] != quote {
		if src[j] == '\\' {
			j++
		}
		if j < len(src) && src[j] == '\n' {
			return token{}, 0, errorAt(src, i, "string not closed before the end of the line")
		}
		j++
	}
	if j >= len(src) {
		return token{}, 0, errorAt(src, i, "string not closed")
	}
	raw := src[i+1 : j]
	if quote == '\'' {
		raw = strings.ReplaceAll(strings.ReplaceAll(raw, `\'`, `'`), `"`, `\"`)
	}
	val, err := strconv.Unquote(`"` + raw + `"`)
	if err != nil {
		return token{}, 0, errorAt(src, i, "invalid escape in string (use \\\\ for a backslash, as in \"db\\\\..*\")")
	}
	return token{kind: tokString, text: val, pos: i}, j + 1, nil
}
