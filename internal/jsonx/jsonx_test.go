package jsonx

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestAppendString_DecodesBack(t *testing.T) {
	cases := []string{"", "plain", `q"b\s`, "ctl\x00\x01\x1f\b\f\n\r\t", "<html>&", "line\u2028sep\u2029", "ünïcødé 😀"}
	for _, s := range cases {
		t.Run(s, func(t *testing.T) {
			b := AppendString(nil, s)
			var got string
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("%s does not decode: %v", b, err)
			}
			if got != s {
				t.Errorf("got %q, want %q", got, s)
			}
			strict, err := AppendStrict(nil, s)
			if err != nil || string(strict) != string(b) {
				t.Errorf("AppendStrict = %s, %v; want %s", strict, err, b)
			}
		})
	}
}

func TestAppendStrict_RefusesInvalidUTF8(t *testing.T) {
	if _, err := AppendStrict(nil, "bad\xffbyte"); !errors.Is(err, ErrInvalidUTF8) {
		t.Fatalf("err = %v, want ErrInvalidUTF8", err)
	}
	if got, want := string(AppendString(nil, "bad\xff")), `"bad\ufffd"`; got != want {
		t.Errorf("AppendString = %s, want %s", got, want)
	}
}
