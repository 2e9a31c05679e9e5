// location.js serves, with the express found by require (node_modules of
// NODE_PATH), GET /location: it answers, as JSON, where a redirect to the
// target would send a browser. The target is the query's "next", or, for
// "back", the Referer, as res.redirect takes it. "intended" is the host of
// the target itself (WHATWG URL, what an allow-list checks), "actual" the
// host of the Location header express writes, resolved as a browser does.
// It listens on 127.0.0.1, port 0, and prints the port on its first line.
// TestRedirectVariantsInExpress (exploitknowledge_test.go) runs it.
'use strict';

const express = require('express');

const base = 'https://shop.example/login';
const host = (u) => {
  try {
    return new URL(u, base).host;
  } catch (e) {
    return 'invalid: ' + e.message;
  }
};

const app = express();
app.get('/location', (req, res) => {
  const target = req.query.next === 'back' ? req.get('Referrer') || '/' : String(req.query.next || '/');
  res.location(req.query.next === 'back' ? 'back' : target);
  const location = res.get('Location');
  res.removeHeader('Location');
  res.json({ version: require('express/package.json').version, target, location, intended: host(target), actual: host(location) });
});

const server = app.listen(0, '127.0.0.1', () => console.log(server.address().port));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
