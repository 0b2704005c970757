package snapshot

import "fmt"

// verifyError is a rejection: it wraps ErrVerification and the specific
// sentinel, so errors.Is works for both.
type verifyError struct {
	kind error
	msg  string
}

func (e *verifyError) Error() string   { return e.msg }
func (e *verifyError) Unwrap() []error { return []error{ErrVerification, e.kind} }

// reject builds a verification error; subject names the snapshot
// ("snapshot 7" or "snapshot envelope").
func reject(kind error, subject, format string, args ...any) error {
	return &verifyError{kind: kind, msg: subject + ": " + fmt.Sprintf(format, args...)}
}
