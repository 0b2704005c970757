package controlplane

import (
	"bytes"
	"encoding/json"
	"io"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/outpost/outpost/internal/catalog"
)

// Unchanged holds the members of an update body that the update does not
// write: the read-only fields a client echoed back from a GET of the same
// resource. The update succeeds when each equals the stored value and is
// refused with EINVALID naming the first one that does not, so a client
// can GET a resource, change one field and PUT or PATCH the body back.
type Unchanged map[string]json.RawMessage

var unchangedType = reflect.TypeFor[Unchanged]()

// DecodeUpdate decodes an update body into v, a pointer to a struct with
// a field of type Unchanged: members named by v's json tags are decoded
// strictly into v, every other member is kept in that field for the
// service to compare with the stored resource.
func DecodeUpdate(r io.Reader, v any) error {
	var members map[string]json.RawMessage
	if err := catalog.DecodeStrict(r, &members); err != nil {
		return err
	}
	if members == nil {
		return catalog.Invalid("body", "must be a JSON object")
	}
	rv := reflect.ValueOf(v).Elem()
	known := map[string]bool{}
	var extra reflect.Value
	for i := 0; i < rv.NumField(); i++ {
		f := rv.Type().Field(i)
		if f.Type == unchangedType {
			extra = rv.Field(i)
			continue
		}
		if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != "" && name != "-" {
			known[name] = true
		}
	}
	writable := map[string]json.RawMessage{}
	rest := Unchanged{}
	for k, m := range members {
		if known[k] {
			writable[k] = m
		} else {
			rest[k] = m
		}
	}
	b, err := json.Marshal(writable)
	if err != nil {
		return err
	}
	if err := catalog.DecodeStrict(bytes.NewReader(b), v); err != nil {
		return err
	}
	if len(rest) > 0 {
		if !extra.IsValid() {
			for k := range rest {
				return catalog.Invalid(k, "unknown field")
			}
		}
		extra.Set(reflect.ValueOf(rest))
	}
	return nil
}

// check compares u with the stored resource cur: every member must be a
// field of cur with the same value (times compared as instants).
func (u Unchanged) check(cur any) error {
	if len(u) == 0 {
		return nil
	}
	b, err := json.Marshal(cur)
	if err != nil {
		return err
	}
	var stored map[string]json.RawMessage
	if err := json.Unmarshal(b, &stored); err != nil {
		return err
	}
	names := make([]string, 0, len(u))
	for k := range u {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		s, ok := stored[k]
		if !ok {
			return catalog.Invalid(k, "unknown field")
		}
		if !sameJSON(u[k], s) {
			return catalog.Invalid(k, "is read-only: it can be sent back unchanged but not changed (stored value %s)", clip(s))
		}
	}
	return nil
}

func sameJSON(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	if xs, ok := x.(string); ok {
		if ys, ok := y.(string); ok {
			tx, errx := time.Parse(time.RFC3339Nano, xs)
			ty, erry := time.Parse(time.RFC3339Nano, ys)
			if errx == nil && erry == nil {
				return tx.Equal(ty)
			}
		}
	}
	return reflect.DeepEqual(x, y)
}

func clip(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "…"
	}
	return string(b)
}
