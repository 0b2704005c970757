// Package jsonx writes JSON strings by hand for the hot and the signed
// encoders (the update answer, signed documents): one set of escaping
// rules, so every byte-for-byte encoder in Outpost agrees.
package jsonx

import (
	"errors"
	"unicode/utf8"
)

// ErrInvalidUTF8 is returned by AppendStrict for a string that is not
// valid UTF-8: signed bytes must say exactly what was meant.
var ErrInvalidUTF8 = errors.New("string is not valid UTF-8")

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string. Quotes, backslashes and control
// characters are escaped (\n, \r and \t in short form, the others as
// \u00XX), U+2028 and U+2029 too (JavaScript); invalid UTF-8 becomes
// U+FFFD; HTML characters are left alone.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	dst, _ = appendContent(dst, s, false)
	return append(dst, '"')
}

// AppendStrict is AppendString refusing invalid UTF-8.
func AppendStrict(dst []byte, s string) ([]byte, error) {
	dst = append(dst, '"')
	dst, err := appendContent(dst, s, true)
	return append(dst, '"'), err
}

// AppendContent appends s escaped as inside a JSON string, without quotes.
func AppendContent(dst []byte, s string) []byte {
	dst, _ = appendContent(dst, s, false)
	return dst
}

func appendContent(dst []byte, s string, strict bool) ([]byte, error) {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			if strict {
				return dst, ErrInvalidUTF8
			}
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += n
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += n
			start = i
			continue
		}
		i += n
	}
	return append(dst, s[start:]...), nil
}
