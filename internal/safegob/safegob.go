// Package safegob decodes encoding/gob data whose writer evident cannot
// vouch for (a checkpoint or log batch read back from disk or from a
// database other instances write to, a record of a Kafka topic) with
// memory bounded by the data.
//
// encoding/gob checks the lengths of slices and strings against its input,
// but makes a map with the number of entries its input declares before it
// reads one (golang/go#79539; Go 1.26.8 still does): a model state of 3 KB
// declaring a map of 545 billion entries took the 24 GB of the machine the
// fuzzer ran on, and the kernel killed the process.
package safegob

import (
	"bytes"
	"encoding/gob"
	"reflect"
)

// Decode decodes one gob value of data into v, as
// gob.NewDecoder(bytes.NewReader(data)).Decode(v) does, after walking the
// value once without storing it. The walk reads every entry each map
// declares, at least two bytes each, and fails where the data ends first;
// so when the value is decoded, no map declares more entries than half
// the length of data.
func Decode(data []byte, v any) error {
	// The zero Value: DecodeValue discards the value, with the ops
	// encoding/gob skips fields with, which read what they skip.
	if err := gob.NewDecoder(bytes.NewReader(data)).DecodeValue(reflect.Value{}); err != nil {
		return err
	}
	return gob.NewDecoder(bytes.NewReader(data)).Decode(v)
}
