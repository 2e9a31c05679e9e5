// load.js is the bounded traffic generator: node load.js BASE_URL N RATE
// sends N requests one at a time, at most RATE a second, as public clients
// (X-Forwarded-For in 198.51.100.0/24): 45% GET /products/:id/reviews, 35%
// GET /products/:id/summary, 20% POST /reviews. It never calls GET /login.
// It exits 1 if any request failed.
'use strict';

const [base, n, rate] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];

async function main() {
  let failed = 0;
  const start = Date.now();
  for (let k = 0; k < n; k++) {
    const due = start + (k * 1000) / rate;
    if (due > Date.now()) {
      await new Promise((r) => setTimeout(r, due - Date.now()));
    }
    const headers = { 'X-Forwarded-For': `198.51.100.${1 + ((k * 37) % 254)}` };
    const product = `p${(k * 13) % 50}`;
    let url = `${base}/products/${product}/reviews`;
    let init = { headers };
    if (k % 20 >= 9 && k % 20 < 16) {
      url = `${base}/products/${product}/summary`;
    } else if (k % 20 >= 16) {
      url = `${base}/reviews`;
      init = { method: 'POST', headers: { ...headers, 'Content-Type': 'application/json' }, body: JSON.stringify({ product, stars: 1 + (k % 5), author: { name: `client ${k}` }, text: 'fine' }) };
    }
    try {
      const res = await fetch(url, init);
      await res.arrayBuffer();
      if (res.status >= 400) {
        failed++;
        console.error(`load: ${init.method || 'GET'} ${url}: status ${res.status}`);
      }
    } catch (e) {
      failed++;
      console.error(`load: ${e}`);
    }
  }
  console.error(`load: ${n} requests, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
}
main();
