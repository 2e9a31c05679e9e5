// profiling.js runs @datadog/pprof's wall-clock profiler when
// REVIEWS_PROFILE names a file, with contexts: enter() makes a SERVER span
// the context of what runs next, and the profile labels each sample with
// the span_id and trace_id of its context (the pprof labels evident joins
// with the traces). The service handles one request at a time in the
// recording (the load runs one at a time), so the context of a sample is the
// request it belongs to. stop() writes the gzipped profile.
'use strict';

const fs = require('fs');
const pprof = require('@datadog/pprof');

const file = process.env.REVIEWS_PROFILE;
if (file) {
  pprof.time.start({ intervalMicros: 1000, withContexts: true, lineNumbers: false });
}

function enter(sc) {
  if (file) {
    pprof.time.setContext({ span_id: sc.spanId, trace_id: sc.traceId });
  }
}

function leave() {
  if (file) {
    pprof.time.setContext(undefined);
  }
}

async function stop() {
  if (!file) {
    return;
  }
  const profile = pprof.time.stop(false, ({ context }) => {
    const c = context && context.context;
    return c ? { span_id: c.span_id, trace_id: c.trace_id } : {};
  });
  fs.writeFileSync(file, await pprof.encode(profile));
}

module.exports = { enter, leave, stop };
