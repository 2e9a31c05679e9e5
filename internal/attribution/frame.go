// Package attribution maps stack frames seen in profiles to the language,
// package and function they belong to.
package attribution

// Frame is one stack frame as a profile reports it: the function name as
// the runtime spells it and the source file, which is empty when the
// profiler does not record file names (async-profiler, some JFR exports).
//
// The Attributor that resolves frames lives beside this type.
type Frame struct {
	Function string
	File     string
}
