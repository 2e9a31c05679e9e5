// server.js is the reviews service: express 4.18.2 with lodash 4.17.20, on
// REVIEWS_ADDR (default 127.0.0.1:8070). Run it with
// node --require ./tracing.js server.js. It stops on SIGTERM or SIGINT,
// writing its profile and flushing its spans first.
'use strict';

const tracing = require('./tracing');
const profiling = require('./profiling');
const express = require('express');
const _ = require('lodash');

const reviews = [];
for (let i = 0; i < 2000; i++) {
  reviews.push({
    id: i,
    product: `p${i % 50}`,
    stars: 1 + (i * 7) % 5,
    author: { name: `reviewer ${i % 97}`, city: ['Lyon', 'Porto', 'Oslo', 'Quito'][i % 4] },
    text: `Review ${i}: ` + 'solid product, would buy again. '.repeat(1 + (i % 5)),
  });
}

// The summary page is a lodash template, compiled for each request with
// the product's own layout settings (the shape CVE-2021-23337 abuses: the
// template's options come from data).
const layout = {
  source: '<h1><%- product %></h1><p><%= stars %> stars from <%= count %> reviews</p>' +
    '<ul><% _.forEach(top, function(r) { %><li><%- r.author %>: <%- r.text %></li><% }); %></ul>',
  variable: '',
};

const app = express();
app.use(express.json({ limit: '64kb' }));
app.use((req, res, next) => {
  res.on('finish', profiling.leave);
  next();
});

// GET /products/:id/reviews: the reviews of a product, newest first,
// grouped by stars (lodash's collection functions).
app.get('/products/:id/reviews', (req, res) => {
  const mine = _.filter(reviews, (r) => r.product === req.params.id);
  const sorted = _.orderBy(mine, ['id'], ['desc']);
  const byStars = _.groupBy(sorted, 'stars');
  res.json({
    product: req.params.id,
    cities: _.uniq(_.map(sorted, (r) => _.get(r, 'author.city'))),
    stars: _.mapValues(byStars, (rs) => rs.length),
    reviews: sorted.slice(0, 20),
  });
});

// GET /products/:id/summary: an HTML summary rendered with _.template.
app.get('/products/:id/summary', (req, res) => {
  const mine = _.filter(reviews, (r) => r.product === req.params.id);
  const render = _.template(layout.source, layout.variable ? { variable: layout.variable } : {});
  res.type('html').send(render({
    product: req.params.id,
    stars: Math.round(_.meanBy(mine, 'stars') * 10) / 10,
    count: mine.length,
    top: _.map(_.orderBy(mine, ['stars'], ['desc']).slice(0, 5), (r) => ({ author: r.author.name, text: r.text })),
  }));
});

// POST /reviews: a new review as JSON (body-parser's json parser).
app.post('/reviews', (req, res) => {
  const r = req.body || {};
  if (!_.isString(r.product) || !Number.isInteger(r.stars) || r.stars < 1 || r.stars > 5) {
    res.status(400).json({ error: 'product (string) and stars (1-5) are required' });
    return;
  }
  const review = { id: reviews.length, product: r.product, stars: r.stars, author: { name: String(_.get(r, 'author.name', 'anonymous')), city: '' }, text: String(r.text || '') };
  reviews.push(review);
  res.status(201).json({ id: review.id });
});

// POST /admin/reindex: reindexes with options given as command-line
// style arguments ({"args": ["--product", "p1"]}), parsed by minimist;
// needs X-Admin-Token = REVIEWS_ADMIN_TOKEN. The load never calls it.
app.post('/admin/reindex', (req, res) => {
  const token = process.env.REVIEWS_ADMIN_TOKEN || '';
  if (token === '' || req.get('X-Admin-Token') !== token) {
    res.status(403).json({ error: 'forbidden' });
    return;
  }
  // Loaded here, on the first call, not at start: loading it runs its
  // code, which a profile sample can catch (minimist then shows as loaded,
  // where the recording says its code never runs).
  const minimist = require('minimist');
  const opts = minimist(_.castArray(_.get(req.body, 'args', [])).map(String));
  const mine = opts.product ? _.filter(reviews, (r) => r.product === opts.product) : reviews;
  res.json({ reindexed: mine.length });
});

// GET /login: sends the browser back where it came from (res.redirect);
// the load never calls it.
app.get('/login', (req, res) => {
  res.redirect(String(req.query.next || '/'));
});

const [host, port] = (process.env.REVIEWS_ADDR || '127.0.0.1:8070').split(':');
const server = app.listen(Number(port), host, () => console.error(`reviews: listening on ${host}:${port}`));

let stopping = false;
async function stop() {
  if (stopping) {
    return;
  }
  stopping = true;
  server.close();
  await profiling.stop();
  await tracing.shutdown();
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
