package registry

import (
	"errors"
	"fmt"
	"strings"

	"github.com/custody-ml/custody/internal/digest"
	"github.com/custody-ml/custody/internal/store"
)

// Sentinel errors. Every error the Service returns wraps at most one of
// them; check with errors.Is. Transports map them to status codes.
var (
	// ErrInvalid: the request is malformed or breaks a limit (bad name,
	// too many tags, inconsistent manifest, unknown dataset input, ...).
	ErrInvalid = errors.New("invalid request")
	// ErrNotFound: the model, version, alias, dataset or run does not
	// exist. It is store.ErrNotFound, so store errors match it too.
	ErrNotFound = store.ErrNotFound
	// ErrConflict: the request contradicts immutable state, e.g. a version
	// re-registered with different bytes ([ConflictError]).
	ErrConflict = errors.New("conflict")
	// ErrUnverified: a signature bundle does not verify against the
	// server's trust, or no signature was given.
	ErrUnverified = errors.New("signature not verified")
	// ErrUnauthenticated: the token is malformed, unknown or wrong.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrForbidden: the actor's role does not allow the action.
	ErrForbidden = errors.New("forbidden")
	// ErrPolicyDenied: a policy gate denied the action ([DeniedError]
	// carries the reasons).
	ErrPolicyDenied = errors.New("denied by policy")
	// ErrPolicyFailed: a policy gate could not decide (no gate, an
	// evaluation error, a timeout); the action is refused (fail closed).
	ErrPolicyFailed = errors.New("policy evaluation failed")
)

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// ConflictError reports an attempt to register different content under an
// existing immutable version (of a model or a dataset). It wraps
// [ErrConflict].
type ConflictError struct {
	Kind     string // "model version" or "dataset"
	Name     string
	Version  string
	Existing digest.Digest
	Got      digest.Digest
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("%s %s@%s is already registered with digest %s; refusing different content %s (versions are immutable: register a new version)",
		e.Kind, e.Name, e.Version, e.Existing, e.Got)
}

// Unwrap returns [ErrConflict].
func (e *ConflictError) Unwrap() error { return ErrConflict }

// VerificationError reports which signature bundle failed and why. It wraps
// [ErrUnverified] and the verifier's error.
type VerificationError struct {
	Index int // position of the bundle in the request
	Err   error
}

func (e *VerificationError) Error() string {
	return fmt.Sprintf("signature %d: %v", e.Index, e.Err)
}

// Unwrap returns [ErrUnverified] and the cause.
func (e *VerificationError) Unwrap() []error { return []error{ErrUnverified, e.Err} }

// DeniedError reports a policy denial with the policy's reasons, verbatim.
// It wraps [ErrPolicyDenied].
type DeniedError struct {
	Decision string   // register, approve, promote or rollback
	Subject  string   // e.g. "m@2" or "m@2 -> production"
	Reasons  []string // the policy's deny reasons, sorted
}

func (e *DeniedError) Error() string {
	return fmt.Sprintf("policy denies %s of %s: %s", e.Decision, e.Subject, strings.Join(e.Reasons, "; "))
}

// Unwrap returns [ErrPolicyDenied].
func (e *DeniedError) Unwrap() error { return ErrPolicyDenied }
