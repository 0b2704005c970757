package tuf

import (
	"crypto/sha256"
	"fmt"
	"strings"
)

// compactTarget is a target of a hashed bin as the client keeps it once
// the bin is verified. go-tuf's form costs about 930 B per target (a
// TargetFiles, a one-entry Hashes map, the custom bytes behind a
// pointer); this one about half, and bins hold nearly all of a large
// tenant's targets.
type compactTarget struct {
	length int64
	sum    [sha256.Size]byte
	custom string // canonical JSON of the custom field; "" when none
}

// compactRole is a bin's targets by path.
type compactRole map[string]compactTarget

// compactTargets returns t's targets in compact form, or false when a
// target has something the compact form would lose (another hash, no
// sha256, unrecognised fields): the role then stays in go-tuf's form.
func compactTargets(t *Targets) (compactRole, bool) {
	if t.Signed.Delegations != nil {
		return nil, false
	}
	c := make(compactRole, len(t.Signed.Targets))
	for p, tf := range t.Signed.Targets {
		sum := tf.Hashes["sha256"]
		if len(tf.Hashes) != 1 || len(sum) != sha256.Size || len(tf.UnrecognizedFields) > 0 || tf.Path != p {
			return nil, false
		}
		ct := compactTarget{length: tf.Length}
		copy(ct.sum[:], sum)
		if tf.Custom != nil {
			if len(*tf.Custom) == 0 {
				return nil, false
			}
			ct.custom = string(*tf.Custom)
		}
		c[p] = ct
	}
	return c, true
}

// isBinName says whether a stored role's name is one the builder gives
// hashed bins (BinPrefix): such a role is kept compact when loaded.
func isBinName(role string) bool { return strings.HasPrefix(role, "b-") }

// heldTarget is an artifact target as the iteration helpers report
// it, whichever form its role is held in.
type heldTarget struct {
	path   string
	length int64
	sum    [sha256.Size]byte
	custom string
}

// eachArtifact calls fn for every target of role that has custom fields
// and is not a delta (DeltaTarget)
// (the artifact targets), from the compact form when the role has one.
func eachArtifact(roles map[string]*Targets, compact map[string]compactRole, role string, fn func(e heldTarget) error) error {
	if c, ok := compact[role]; ok {
		for p, ct := range c {
			if ct.custom == "" || IsDeltaTarget(p) {
				continue
			}
			if err := fn(heldTarget{path: p, length: ct.length, sum: ct.sum, custom: ct.custom}); err != nil {
				return err
			}
		}
		return nil
	}
	t := roles[role]
	if t == nil {
		return nil
	}
	for p, tf := range t.Signed.Targets {
		if tf.Custom == nil || IsDeltaTarget(p) {
			continue
		}
		sum := tf.Hashes["sha256"]
		if len(sum) != sha256.Size {
			return fmt.Errorf("target %s: no sha256", p)
		}
		e := heldTarget{path: p, length: tf.Length, custom: string(*tf.Custom)}
		copy(e.sum[:], sum)
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// artifact returns the artifact target at path listed by role.
func artifact(roles map[string]*Targets, compact map[string]compactRole, role, path string) (heldTarget, bool) {
	if IsDeltaTarget(path) {
		return heldTarget{}, false
	}
	if c, ok := compact[role]; ok {
		ct, ok := c[path]
		if !ok || ct.custom == "" {
			return heldTarget{}, false
		}
		return heldTarget{path: path, length: ct.length, sum: ct.sum, custom: ct.custom}, true
	}
	t := roles[role]
	if t == nil {
		return heldTarget{}, false
	}
	tf := t.Signed.Targets[path]
	if tf == nil || tf.Custom == nil {
		return heldTarget{}, false
	}
	e := heldTarget{path: path, length: tf.Length, custom: string(*tf.Custom)}
	copy(e.sum[:], tf.Hashes["sha256"])
	return e, len(tf.Hashes["sha256"]) == sha256.Size
}

// productRoles returns the roles holding a product's artifact targets:
// its role and its bins (those present).
func productRoles(roles map[string]*Targets, productRole string) []string {
	pr := roles[productRole]
	if pr == nil {
		return nil
	}
	out := []string{productRole}
	if d := pr.Signed.Delegations; d != nil && d.SuccinctRoles != nil {
		for _, name := range d.SuccinctRoles.GetRoles() {
			if roles[name] != nil {
				out = append(out, name)
			}
		}
	}
	return out
}

// interner shares the strings that repeat across targets (channel,
// platform, arch, …) so that 100,000 parsed targets do not hold 100,000
// copies of each.
type interner map[string]string

// maxInterned bounds an interner (hostile metadata with a distinct value
// per target gains nothing).
const maxInterned = 4096

func (in interner) str(s *string) {
	if v, ok := in[*s]; ok {
		*s = v
	} else if len(in) < maxInterned {
		in[*s] = *s
	}
}

// custom shares c's repeated fields.
func (in interner) custom(c *Custom) {
	for _, f := range []*string{&c.Arch, &c.Channel, &c.InstallerType, &c.Platform, &c.Product, &c.SourceType, &c.Status, &c.ReleaseMetadata} {
		in.str(f)
	}
}
