package attribution

// Frame is one stack frame as a profile reports it: pprof's Function.name
// (Function.system_name when name is empty; Go's runtime/pprof puts the full
// linker symbol there) and Function.filename, which is empty when the
// profiler does not record file names (async-profiler and JFR through
// Pyroscope). Frame is comparable and is the Attributor's cache key.
type Frame struct {
	Function string
	File     string
}
