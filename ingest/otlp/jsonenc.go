package otlp

import (
	"encoding/base64"
	"math"
	"strconv"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// The span columns are jsonb. These encoders write pdata values straight to JSON
// text that PostgreSQL accepts: valid UTF-8, no \u0000 (which jsonb refuses), and
// NaN or infinite doubles as strings.

// appendAttributes writes m as a JSON object; duplicate keys keep the last value.
func appendAttributes(b []byte, m pcommon.Map) []byte {
	b = append(b, '{')
	first := true
	m.Range(func(k string, v pcommon.Value) bool {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendString(b, k)
		b = append(b, ':')
		b = appendValue(b, v)
		return true
	})
	return append(b, '}')
}

func appendValue(b []byte, v pcommon.Value) []byte {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return appendString(b, v.Str())
	case pcommon.ValueTypeInt:
		return strconv.AppendInt(b, v.Int(), 10)
	case pcommon.ValueTypeDouble:
		f := v.Double()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return appendString(b, strconv.FormatFloat(f, 'g', -1, 64))
		}
		return strconv.AppendFloat(b, f, 'g', -1, 64)
	case pcommon.ValueTypeBool:
		return strconv.AppendBool(b, v.Bool())
	case pcommon.ValueTypeBytes:
		return appendString(b, base64.StdEncoding.EncodeToString(v.Bytes().AsRaw()))
	case pcommon.ValueTypeSlice:
		s := v.Slice()
		b = append(b, '[')
		for i := 0; i < s.Len(); i++ {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendValue(b, s.At(i))
		}
		return append(b, ']')
	case pcommon.ValueTypeMap:
		return appendAttributes(b, v.Map())
	default:
		return append(b, "null"...)
	}
}

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string; invalid UTF-8 and NUL become U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			b = append(b, c)
			i++
			continue
		}
		if c < utf8.RuneSelf {
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case 0:
				b = append(b, "\uFFFD"...)
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, "\uFFFD"...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// appendMember adds "key":"value" to the JSON object that b ends with; jsonb
// keeps the last of duplicate keys, so it overrides an attribute of that name.
func appendMember(b []byte, key, value string) []byte {
	obj := b[:len(b)-1] // without the closing brace
	if len(obj) > 0 && obj[len(obj)-1] != '{' {
		obj = append(obj, ',')
	}
	obj = appendString(obj, key)
	obj = append(obj, ':')
	obj = appendString(obj, value)
	return append(obj, '}')
}
