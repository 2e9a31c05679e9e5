'use strict';
// A small order service: it reads options with minimist, renders receipts
// with lodash's template, reads nested fields with _.get, merges defaults
// with @hapi/hoek, and (through mkdirp's own copy) parses argv with the old
// minimist 0.0.8 that mkdirp pins. It runs for argv[2] seconds under the
// @datadog/pprof wall profiler and writes the profile to argv[3].
const fs = require('fs');
const pprof = require('@datadog/pprof');
const _ = require('lodash');
const minimist = require('minimist');
const path = require('path');
// mkdirp's own minimist, wherever the package manager put it.
const oldMinimist = require(require.resolve('minimist', { paths: [path.dirname(require.resolve('mkdirp'))] }));
const Hoek = require('@hapi/hoek');

function receipt(order) {
  const render = _.template('Order <%= id %>: <% _.forEach(items, function(i) { %><%- i.sku %> x<%= i.qty %>; <% }); %>');
  return render(order);
}

function handle(argv) {
  const opts = minimist(argv, { default: { currency: 'EUR' } });
  const legacy = oldMinimist(argv);
  const order = Hoek.merge({ id: 0, items: [] }, { id: opts.id, items: [{ sku: 'a-1', qty: 2 }, { sku: legacy.sku, qty: 1 }] });
  return receipt(order).length + String(_.get(order, 'items[1].sku', '')).length;
}

async function main() {
  const seconds = Number(process.argv[2] || 2);
  pprof.time.start({ intervalMicros: 1000, durationMillis: seconds * 1000 + 1000 });
  const until = Date.now() + seconds * 1000;
  let n = 0;
  while (Date.now() < until) {
    n += handle(['--id', '42', '--sku', 'b-7', '--currency', 'USD']);
  }
  const profile = pprof.time.stop();
  fs.writeFileSync(process.argv[3] || 'node-wall.pb.gz', await pprof.encode(profile));
  console.log(n);
}

main();
