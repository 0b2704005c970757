package snapshot

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// lexer is a small strict JSON reader over a string. encoding/json is too
// slow for a 50 MB manifest (see the benchmarks), so the envelope and the
// manifest are read by hand: every value is type-checked, unknown and
// repeated keys are errors, and strings without escapes are substrings of
// the input (no copy). Errors are raised with panic(*lexError) and turned
// back into errors by catch at the entry points; nothing else is recovered.
type lexer struct {
	s     string
	i     int
	where string // what is being read, for error messages
	idx   int    // index in the list being read, or -1
	field string // the last key read
}

// lexError is a decoding failure at a byte offset.
type lexError struct {
	msg string
}

func (e *lexError) Error() string { return e.msg }

// maxDepth bounds nesting in free-form values (metadata, conditions,
// policy) so hostile input cannot exhaust the stack.
const maxDepth = 64

func (l *lexer) fail(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if l.field != "" {
		msg = l.field + ": " + msg
	}
	if l.where != "" {
		if l.idx >= 0 {
			msg = fmt.Sprintf("%s[%d]: %s", l.where, l.idx, msg)
		} else {
			msg = l.where + ": " + msg
		}
	}
	panic(&lexError{msg: fmt.Sprintf("%s (at byte %d)", msg, l.i)})
}

// catch turns a lexer panic into *err; other panics propagate.
func catch(err *error) {
	if r := recover(); r != nil {
		le, ok := r.(*lexError)
		if !ok {
			panic(r)
		}
		*err = le
	}
}

func (l *lexer) ws() {
	for l.i < len(l.s) {
		switch l.s[l.i] {
		case ' ', '\t', '\n', '\r':
			l.i++
		default:
			return
		}
	}
}

func (l *lexer) peek() byte {
	l.ws()
	if l.i >= len(l.s) {
		l.fail("unexpected end of input")
	}
	return l.s[l.i]
}

func (l *lexer) expect(c byte) {
	if got := l.peek(); got != c {
		l.fail("expected %q, found %q", c, got)
	}
	l.i++
}

// end checks that only whitespace is left.
func (l *lexer) end() {
	l.field = ""
	l.ws()
	if l.i != len(l.s) {
		l.fail("trailing data after the JSON value")
	}
}

// key returns the next key of an object, or false at its end. first must
// start true for each object.
func (l *lexer) key(first *bool) (string, bool) {
	c := l.peek()
	if c == '}' && *first {
		l.i++
		return "", false
	}
	if !*first {
		if c == '}' {
			l.i++
			return "", false
		}
		if c != ',' {
			l.fail("expected ',' or '}', found %q", c)
		}
		l.i++
	}
	*first = false
	l.field = ""
	k := l.str()
	l.expect(':')
	l.field = k
	return k, true
}

// elem reports whether another array element follows. first must start
// true for each array.
func (l *lexer) elem(first *bool) bool {
	c := l.peek()
	if c == ']' {
		l.i++
		return false
	}
	if !*first {
		if c != ',' {
			l.fail("expected ',' or ']', found %q", c)
		}
		l.i++ // a value must follow: "[1,]" fails in the value's reader
	}
	*first = false
	return true
}

// seen marks bit as read and fails on a repeated key: two readers of one
// document must never disagree about which value counts.
func (l *lexer) seen(mask *uint32, bit uint, k string) {
	if *mask&(1<<bit) != 0 {
		l.fail("repeated field %q", k)
	}
	*mask |= 1 << bit
}

// missing fails when a field of names was not present.
func (l *lexer) missing(mask uint32, names []string) {
	l.field = ""
	for i, n := range names {
		if mask&(1<<uint(i)) == 0 {
			l.fail("missing field %q", n)
		}
	}
}

// plain marks the bytes a string may hold without the slow path.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func (l *lexer) str() string {
	if c := l.peek(); c != '"' {
		l.fail("expected a string, found %q", c)
	}
	l.i++
	start := l.i
	s := l.s
	i := start
	for i < len(s) && plain[s[i]] {
		i++
	}
	if i < len(s) && s[i] == '"' {
		l.i = i + 1
		return s[start:i]
	}
	l.i = i
	if i == len(s) {
		l.fail("unterminated string")
	}
	if s[i] != '\\' {
		l.fail("control character in string")
	}
	return l.strSlow(start)
}

// longStr reads a string that is expected to be long and escape-free
// (the base64 payload) with the vectorised byte search. It does not look
// for control characters: its caller's decoding rejects them.
func (l *lexer) longStr() string {
	if c := l.peek(); c != '"' {
		l.fail("expected a string, found %q", c)
	}
	l.i++
	start := l.i
	end := strings.IndexByte(l.s[start:], '"')
	if end < 0 {
		l.i = len(l.s)
		l.fail("unterminated string")
	}
	if strings.IndexByte(l.s[start:start+end], '\\') < 0 {
		l.i = start + end + 1
		return l.s[start : start+end]
	}
	return l.str2(start)
}

// str2 restarts str at start (just after the opening quote).
func (l *lexer) str2(start int) string {
	l.i = start - 1
	return l.str()
}

// strSlow decodes a string with escapes; l.i is at the first backslash.
func (l *lexer) strSlow(start int) string {
	var b strings.Builder
	b.WriteString(l.s[start:l.i])
	for l.i < len(l.s) {
		c := l.s[l.i]
		switch {
		case c == '"':
			l.i++
			return b.String()
		case c < 0x20:
			l.fail("control character in string")
		case c != '\\':
			b.WriteByte(c)
			l.i++
			continue
		}
		if l.i+1 >= len(l.s) {
			break
		}
		e := l.s[l.i+1]
		l.i += 2
		switch e {
		case '"', '\\', '/':
			b.WriteByte(e)
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			r := l.hex4()
			if utf16.IsSurrogate(r) {
				if !strings.HasPrefix(l.s[l.i:], `\u`) {
					l.fail("lone surrogate in string")
				}
				l.i += 2
				r = utf16.DecodeRune(r, l.hex4())
				if r == utf8.RuneError {
					l.fail("invalid surrogate pair in string")
				}
			}
			b.WriteRune(r)
		default:
			l.fail("invalid escape \\%c", e)
		}
	}
	l.fail("unterminated string")
	return ""
}

func (l *lexer) hex4() rune {
	if l.i+4 > len(l.s) {
		l.fail("short \\u escape")
	}
	v, err := strconv.ParseUint(l.s[l.i:l.i+4], 16, 16)
	if err != nil {
		l.fail("invalid \\u escape")
	}
	l.i += 4
	return rune(v)
}

// number returns the literal of a JSON number.
func (l *lexer) number() string {
	l.ws()
	s, start, i := l.s, l.i, l.i
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	default:
		l.fail("expected a number")
	}
	if i < len(s) && s[i] == '.' {
		i++
		d := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == d {
			l.i = i
			l.fail("malformed number")
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		d := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == d {
			l.i = i
			l.fail("malformed number")
		}
	}
	l.i = i
	return s[start:i]
}

// int reads an integer (no fraction or exponent) in [min, max].
func (l *lexer) int(min, max int64) int64 {
	tok := l.number()
	v, err := strconv.ParseInt(tok, 10, 64)
	if err != nil {
		l.fail("%s is not an integer", tok)
	}
	if v < min || v > max {
		l.fail("%d is out of range [%d, %d]", v, min, max)
	}
	return v
}

func (l *lexer) float() float64 {
	tok := l.number()
	v, err := strconv.ParseFloat(tok, 64)
	if err != nil {
		l.fail("%s is out of range", tok)
	}
	return v
}

func (l *lexer) lit(word string) bool {
	l.ws()
	if strings.HasPrefix(l.s[l.i:], word) {
		l.i += len(word)
		return true
	}
	return false
}

func (l *lexer) bool() bool {
	if l.lit("true") {
		return true
	}
	if l.lit("false") {
		return false
	}
	l.fail("expected true or false")
	return false
}

func (l *lexer) null() bool { return l.lit("null") }

func (l *lexer) time() time.Time {
	s := l.str()
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		l.fail("%q is not an RFC 3339 time", s)
	}
	return t
}

// timePtr reads a time or null.
func (l *lexer) timePtr() *time.Time {
	if l.null() {
		return nil
	}
	t := l.time()
	return &t
}

// object reads a JSON object verbatim (validated, not interpreted).
func (l *lexer) object() string {
	if c := l.peek(); c != '{' {
		l.fail("expected a JSON object, found %q", c)
	}
	start := l.i
	l.skip(0)
	return l.s[start:l.i]
}

// skip reads and validates any JSON value.
func (l *lexer) skip(depth int) {
	if depth > maxDepth {
		l.fail("nested too deeply")
	}
	switch c := l.peek(); {
	case c == '{':
		l.i++
		for first := true; ; {
			if _, ok := l.key(&first); !ok {
				return
			}
			l.skip(depth + 1)
		}
	case c == '[':
		l.i++
		for first := true; l.elem(&first); {
			l.skip(depth + 1)
		}
	case c == '"':
		l.str()
	case c == 't' || c == 'f':
		l.bool()
	case c == 'n':
		if !l.null() {
			l.fail("expected null")
		}
	default:
		l.number()
	}
}
