package telemetry

import (
	"errors"
	"fmt"
)

// Sentinel errors; every decode error wraps one of them.
var (
	// ErrMalformed marks input that is not valid in its format: truncated
	// data, bad protobuf, out-of-range indexes, unparsable JSON.
	ErrMalformed = errors.New("malformed telemetry")
	// ErrUnknownFormat marks input whose format could not be recognised.
	ErrUnknownFormat = errors.New("unrecognised telemetry format")
	// ErrTooLarge marks input beyond the size limits of this package.
	ErrTooLarge = errors.New("telemetry input too large")
	// ErrNewerVersion marks input in a version of an encoding of evident's
	// own that is newer than this evident knows: a newer evident wrote
	// it, so it is not damaged and must not be dropped as if it were.
	ErrNewerVersion = errors.New("telemetry encoded by a newer evident")
)

// RecordError reports one record (a sample, a span, a line) that was
// dropped because it is malformed; the records around it were kept.
// It matches ErrMalformed with errors.Is.
type RecordError struct {
	Source string // file or receiver
	Record string // which record: "line 3", "sample 17", "resource_spans[2]"
	Err    error  // what is wrong with it
}

// Error implements error.
func (e *RecordError) Error() string {
	return e.Source + ": " + e.Record + ": " + e.Err.Error()
}

// Unwrap lets errors.Is match both ErrMalformed and the cause.
func (e *RecordError) Unwrap() []error { return []error{ErrMalformed, e.Err} }

// maxRecordErrors bounds how many dropped records are reported one by one,
// so that a file full of bad records yields a readable error and bounded
// memory; the rest are counted.
const maxRecordErrors = 20

// recordErrors collects the errors of dropped records of one source.
type recordErrors struct {
	source string
	errs   []error
	more   int
}

func (r *recordErrors) add(record string, err error) {
	if len(r.errs) >= maxRecordErrors {
		r.more++
		return
	}
	r.errs = append(r.errs, &RecordError{Source: r.source, Record: record, Err: err})
}

// addf is add with the record named by a format, formatted only when the
// error is kept.
func (r *recordErrors) addf(err error, format string, args ...any) {
	if len(r.errs) >= maxRecordErrors {
		r.more++
		return
	}
	r.add(fmt.Sprintf(format, args...), err)
}

// renameRecords puts the errors r.errs[from:to], reported as those of the
// input's only document, under record: the document turned out to be
// one of several ("line 1"). A record within the document ("resource_spans[0]:
// ...") keeps its name after record's.
func (r *recordErrors) renameRecords(from, to int, record string) {
	for _, e := range r.errs[from:to] {
		if re, ok := e.(*RecordError); ok {
			if re.Record == "document" {
				re.Record = record
			} else {
				re.Record = record + ": " + re.Record
			}
		}
	}
}

// err returns the joined errors, or nil when no record was dropped.
func (r *recordErrors) err() error {
	if r.more > 0 {
		return errors.Join(append(r.errs, fmt.Errorf("%s: %d more malformed records dropped: %w", r.source, r.more, ErrMalformed))...)
	}
	return errors.Join(r.errs...)
}
