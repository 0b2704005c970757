package webui

import (
	"errors"
	"io"
	"io/fs"
	"testing"
	"testing/fstest"
)

func TestStatic_OwnFirstThenShared(t *testing.T) {
	own := fstest.MapFS{"page.js": {Data: []byte("own")}, "base.css": {Data: []byte("override")}}
	s := Static(own)
	cases := []struct{ name, want string }{{"page.js", "own"}, {"base.css", "override"}}
	for _, c := range cases {
		f, err := s.Open(c.name)
		if err != nil {
			t.Fatalf("Open(%s): %v", c.name, err)
		}
		b, _ := io.ReadAll(f)
		f.Close()
		if string(b) != c.want {
			t.Errorf("%s = %q, want %q", c.name, b, c.want)
		}
	}
	if _, err := Static(fstest.MapFS{}).Open("times.js"); err != nil {
		t.Errorf("shared times.js not found: %v", err)
	}
	if _, err := s.Open("nope.css"); !errorsIsNotExist(err) {
		t.Errorf("Open(nope.css) = %v, want not exist", err)
	}
}

func errorsIsNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
