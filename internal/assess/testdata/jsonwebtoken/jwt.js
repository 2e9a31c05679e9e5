'use strict';
// node jwt.js ROLE SECONDS OUT profiles jsonwebtoken 8.5.1 for SECONDS with
// @datadog/pprof's wall profiler and writes the gzipped pprof to OUT. ROLE
// "issuer" signs tokens and decodes them (jwt.sign, jwt.decode) and never
// verifies one; "gate" verifies tokens signed before the profiler starts
// (jwt.verify). V8 names the function each of sign.js, verify.js and
// decode.js exports "module.exports".
const fs = require('fs');
const pprof = require('@datadog/pprof');
const jwt = require('jsonwebtoken');

const [role, seconds, out] = [process.argv[2], Number(process.argv[3] || 2), process.argv[4]];
const key = 'the shared secret of the test';
const tokens = [];
for (let i = 0; i < 50; i++) {
  tokens.push(jwt.sign({ sub: `user${i}`, scope: 'read' }, key, { algorithm: 'HS256', expiresIn: 3600 }));
}

async function main() {
  pprof.time.start({ intervalMicros: 1000, lineNumbers: false });
  const until = Date.now() + seconds * 1000;
  let n = 0;
  while (Date.now() < until) {
    if (role === 'issuer') {
      const token = jwt.sign({ sub: `user${n}`, scope: 'read' }, key, { algorithm: 'HS256', expiresIn: 60 });
      n += jwt.decode(token).sub.length;
    } else if (role === 'gate') {
      n += jwt.verify(tokens[n % tokens.length], key, { algorithms: ['HS256'] }).scope.length;
    } else {
      throw new Error(`role ${role}: want issuer or gate`);
    }
  }
  fs.writeFileSync(out, await pprof.encode(pprof.time.stop()));
  console.log(role, n);
}

main();
