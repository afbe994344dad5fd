package main

import (
	"fmt"
	"io"

	"github.com/custody-ml/custody/internal/fileutil"
)

// writeOutput is how verbs with --out deliver a document: to stdout when
// out is empty, otherwise atomically and durably to the file out, followed
// by the one-line confirmation on stdout.
func writeOutput(stdout io.Writer, out string, data []byte, confirm string) error {
	if out == "" {
		_, err := stdout.Write(data)
		return err
	}
	if err := fileutil.WriteFileAtomic(out, data, 0o644); err != nil {
		return err
	}
	_, err := fmt.Fprintln(stdout, confirm)
	return err
}
