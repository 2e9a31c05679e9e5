// Package attribution maps profile stack frames to the code they belong to:
// language, package, distribution (module) and function, in the form that
// vulnerability records name them.
//
// A Frame is what a profile says about one function (pprof Function.name and
// Function.filename). The Attributor recognises the language from the frame
// itself, parses it into a Func and caches the result, because the same few
// thousand frames recur in every sample of a service: attribution runs for
// every frame of every sample, and a cache hit costs one hash, a lock-free
// probe and no allocation.
//
// The frame forms understood are those of the profilers evident reads
// (reference/protocols.md §8):
//
//   - Go, runtime/pprof: "<import path>.<symbol>" with receivers "(*T).M",
//     instantiated generics "F[go.shape.int]", closures ".func1", ".func1.2",
//     range-over-func bodies "-range1", method values "-fm", goroutine and
//     defer wrappers ".gowrap1" / ".deferwrap1", and dots in the last path
//     element escaped as "%2e"; files with "module@version" in the module
//     cache or in -trimpath builds.
//   - Java, async-profiler/JFR through Pyroscope: "org/apache/x/Cls.method"
//     (internal names), "$" inner classes, "$$Lambda" hidden classes,
//     "lambda$enclosing$0" lambda bodies and reflection accessors; also the
//     dotted form "org.apache.x.Cls.method".
//   - Python, py-spy through pyroscope-rs: a function name (or qualified
//     name) with py-spy's short file name ("requests/sessions.py") or an
//     absolute path under site-packages.
//   - Node.js, @datadog/pprof: a function name with the script's path or
//     file:// URL, attributed through its last node_modules/<pkg> segment.
//
// Func.Matches compares an attributed frame with the package and symbol a
// vulnerability record or the knowledge base lists, and Func.InPackage
// tells whether it is code of the package that holds them. A Python name
// is also compared whole, as a dotted name, since where GitHub's
// "PIL.ImageMath.eval" splits into module and function only the frame's
// module tells.
//
// Frames no rule recognises (native code, bare addresses, "[unknown]") are
// not attributed; callers count their samples, so that the share of
// unattributed samples can qualify a "not observed" verdict.
package attribution
