package digest

import (
	"errors"
	"fmt"
)

// Sentinel errors. Check them with [errors.Is]; the errors returned carry the
// offending path as well.
var (
	// ErrRefused means the model contains something custody will not hash:
	// a symbolic link (without AllowSymlinks), a link leaving the model root
	// or forming a cycle, a FIFO, device or socket, or a name that cannot be
	// represented. A model that is refused does not hold as a pinned model.
	ErrRefused = errors.New("refused")
	// ErrChanged means a file changed (size, modification time or identity)
	// between enumeration and the end of its hashing.
	ErrChanged = errors.New("file changed while being hashed")
	// ErrEmptyModel means no regular file is left after exclusions; OMS
	// requires at least one.
	ErrEmptyModel = errors.New("model has no files")
	// ErrBadOptions means the options are invalid (shard size, ignore path).
	ErrBadOptions = errors.New("invalid options")
)

// PathError records an error and the model-relative path it concerns.
type PathError struct {
	Path string // model-relative path, "/"-separated; "." is the root
	Err  error
}

func (e *PathError) Error() string { return fmt.Sprintf("%s: %v", e.Path, e.Err) }
func (e *PathError) Unwrap() error { return e.Err }

// refused builds a PathError wrapping ErrRefused with a reason.
func refused(path, format string, args ...any) error {
	return &PathError{Path: path, Err: fmt.Errorf("%w: %s", ErrRefused, fmt.Sprintf(format, args...))}
}

func changed(path, format string, args ...any) error {
	return &PathError{Path: path, Err: fmt.Errorf("%w: %s", ErrChanged, fmt.Sprintf(format, args...))}
}
