// docs.test.js: opens the API reference page (/docs, Swagger UI) in headless Chromium
// (playwright-core) against a running `visiond serve` (tests/integration/openapi_docs.sh) and
// checks that it renders the contract: the title, an operation of every tag, no page error and
// no Content-Security-Policy violation. Saves a screenshot to DOCS_SHOT. Exits 0 or 1.
'use strict';

const { chromium } = require(process.env.DOCS_PLAYWRIGHT);
const URL_ = process.env.DOCS_URL;

(async () => {
  const browser = await chromium.launch({ executablePath: process.env.DOCS_CHROMIUM, headless: true,
    args: ['--disable-gpu', '--no-sandbox'] });
  const problems = [];
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1600 } });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    // A failed load is reported by its URL below (the browser's own /favicon.ico is no failure).
    page.on('console', (m) => { if (m.type() === 'error' && !/^Failed to load resource/.test(m.text())) problems.push(`console: ${m.text()}`); });
    page.on('response', (r) => { if (r.status() >= 400 && !r.url().endsWith('/favicon.ico')) problems.push(`${r.url()}: ${r.status()}`); });
    const resp = await page.goto(`${URL_}/docs`);
    if (resp.status() !== 200) problems.push(`/docs answered ${resp.status()}`);
    await page.waitForSelector('.swagger-ui .info .title', { timeout: 60000 });
    const title = await page.textContent('.swagger-ui .info .title');
    if (!/visiond HTTP API/.test(title)) problems.push(`title is '${title}'`);
    await page.waitForSelector('.opblock-summary-path', { timeout: 60000 });
    const paths = await page.$$eval('.opblock-summary-path', (els) => els.map((e) => e.getAttribute('data-path')));
    for (const want of ['/jobs', '/jobs/{id}', '/training/sessions', '/embeddings', '/faces', '/healthz', '/openapi.json'])
      if (!paths.includes(want)) problems.push(`no operation for ${want} (saw ${paths.length}: ${paths.slice(0, 5)}...)`);
    await page.screenshot({ path: process.env.DOCS_SHOT });
    console.log(`docs page: ${paths.length} operations shown, title '${title.trim()}'`);
  } finally {
    await browser.close();
  }
  if (problems.length) {
    for (const p of problems) console.error(`FAIL: ${p}`);
    process.exit(1);
  }
})().catch((e) => { console.error(`FAIL: ${e.stack || e}`); process.exit(1); });
