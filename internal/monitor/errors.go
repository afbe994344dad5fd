package monitor

import (
	"errors"
	"fmt"
)

// Errors returned by this package. Check them with errors.Is.
var (
	// ErrUnknownColumn: a requested column is not in the file.
	ErrUnknownColumn = errors.New("unknown column")
	// ErrEmptyColumn: a column has no usable (non-missing, finite) value,
	// so no statistic can be computed on it.
	ErrEmptyColumn = errors.New("column has no usable values")
	// ErrNotNumeric: a column that must hold numbers holds something else.
	ErrNotNumeric = errors.New("column is not numeric")
	// ErrInvalidInput: values outside their domain (a probability outside
	// [0, 1], more than two labels for a binary metric, ...).
	ErrInvalidInput = errors.New("invalid input")
	// ErrUnsupportedFormat: the file extension names no format we read.
	ErrUnsupportedFormat = errors.New("unsupported file format")
)

// FormatError is a malformed input file.
type FormatError struct {
	Format string // "csv", "jsonl"
	Line   int    // 1-based line where the problem was found
	Err    error
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("malformed %s at line %d: %v", e.Format, e.Line, e.Err)
}

func (e *FormatError) Unwrap() error { return e.Err }
