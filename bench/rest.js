// `make bench`: the REST door and the dashboard, measured with clients that
// are not ours. Prints one JSON object per scenario on stdout.
//
//   rest_queue_job       QueueJob over REST (Node's http, keep-alive, C
//                        connections) beside QueueJob over gRPC, by grpc-js
//                        (C channels) and by our C client (hodei-bench
//                        queue, C threads), against the same edge in the
//                        same run, alternating rounds; jobs/s of each one's
//                        best round and the ratios REST / gRPC (target >= 0.5).
//   dashboard_first_load the dashboard opened cold (a new incognito context:
//                        empty cache) in Debian's chromium, headless, the key
//                        already in the tab: bytes transferred (every
//                        response, headers included) and the time from
//                        navigation start to the jobs list shown (the page's
//                        "ready" mark), the median of N loads; beside the
//                        same browser's load of a blank page (its floor) and
//                        the targets (300 KB, 1 s).
//
// Environment (bench/run sets it): BENCH_TARGET host:port (gRPC),
// BENCH_HTTP http://host:port (REST and dashboard), HODEI_API_KEY, BENCH_BIN
// (hodei-bench) and BENCH_NATS (its NATS URL; without them, no C client);
// BENCH_REST_JOBS (2000), BENCH_REST_CLIENTS (16), BENCH_DASH_LOADS (5).
'use strict';
const fs = require('fs');
const http = require('http');
const os = require('os');
const path = require('path');
const { performance } = require('perf_hooks');
const { execFileSync } = require('child_process');

const root = path.resolve(__dirname, '..');
const env = process.env;
const num = (v, d) => (v ? Number(v) : d);
const JOBS = num(env.BENCH_REST_JOBS, 2000);
const CLIENTS = num(env.BENCH_REST_CLIENTS, 16);
const LOADS = num(env.BENCH_DASH_LOADS, 5);
const key = env.HODEI_API_KEY || '';
const median = (v) => { const s = [...v].sort((a, b) => a - b); return s[Math.floor((s.length - 1) / 2)]; };
const round = (x, d = 1) => Math.round(x * 10 ** d) / 10 ** d;
const spec = (i, door) => ({ name: `bench-${door}-${i}`, command: { command: 'true' } });

// ------------------------------------------------------------------ QueueJob
async function runPool(n, clients, one) {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: clients }, async () => {
    while (next < n) await one(next++);
  }));
  return n / ((performance.now() - t0) / 1000);
}

function restQueue(agent, url) {
  const u = new URL('/v1/jobs', url);
  return (i) => new Promise((ok, ko) => {
    const body = JSON.stringify({ spec: spec(i, 'rest') });
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', agent,
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body),
        Authorization: `Bearer ${key}` } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { text += c; });
      res.on('end', () => (res.statusCode === 200 && text.includes('"jobId"') ? ok()
        : ko(new Error(`REST QueueJob: HTTP ${res.statusCode} ${text.slice(0, 200)}`))));
    });
    req.on('error', ko);
    req.end(body);
  });
}

function grpcQueue(clients) {
  const mods = path.join(root, 'tests/clients/node_modules');
  const grpc = require(path.join(mods, '@grpc/grpc-js'));
  const loader = require(path.join(mods, '@grpc/proto-loader'));
  const def = loader.loadSync('hodei/v1/services.proto', {
    includeDirs: [path.join(root, 'proto')], keepCase: true, longs: String, enums: String,
  });
  const v1 = grpc.loadPackageDefinition(def).hodei.v1;
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${key}`);
  const chans = Array.from({ length: clients }, () => new v1.JobExecutionService(env.BENCH_TARGET,
    grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }));
  let k = 0;
  const one = (i) => new Promise((ok, ko) => chans[k++ % clients].QueueJob({ spec: spec(i, 'grpc') }, md,
    { deadline: Date.now() + 30000 }, (e) => (e ? ko(e) : ok())));
  return { one, close: () => chans.forEach((c) => c.close()) };
}

// Our C gRPC client (hodei-bench queue): its jobs/s, or null without it.
function grpcC() {
  if (!env.BENCH_BIN || !env.BENCH_NATS) return null;
  const out = execFileSync(path.join(env.BENCH_BIN, 'hodei-bench'), ['queue', '--target', env.BENCH_TARGET,
    '--nats', env.BENCH_NATS, '--clients', String(CLIENTS), '--jobs', String(JOBS)], { encoding: 'utf8' });
  const line = out.split('\n').find((l) => l.includes('"scenario":"queue_job"'));
  return line ? JSON.parse(line).jobs_per_s : null;
}

async function queueJob() {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CLIENTS });
  const rest = restQueue(agent, env.BENCH_HTTP);
  const g = grpcQueue(CLIENTS);
  await runPool(200, CLIENTS, rest); // warm-up: connections, caches
  await runPool(200, CLIENTS, g.one);
  const r = [], q = [], c = [];
  for (let round_ = 0; round_ < 2; round_++) {
    q.push(await runPool(JOBS, CLIENTS, g.one));
    const cc = grpcC();
    if (cc !== null) c.push(cc);
    r.push(await runPool(JOBS, CLIENTS, rest));
  }
  g.close();
  agent.destroy();
  const rest_ = Math.max(...r), grpc_ = Math.max(...q), cbest = c.length ? Math.max(...c) : null;
  console.log(JSON.stringify({ scenario: 'rest_queue_job', jobs: JOBS, clients: CLIENTS,
    rest_jobs_per_s: round(rest_), grpc_js_jobs_per_s: round(grpc_), rest_to_grpc_js: round(rest_ / grpc_, 2),
    grpc_c_jobs_per_s: cbest, rest_to_grpc_c: cbest ? round(rest_ / cbest, 2) : null,
    target_ratio: 0.5, rounds_rest: r.map((x) => round(x)), rounds_grpc_js: q.map((x) => round(x)),
    rounds_grpc_c: c, method: 'REST: Node http keep-alive; gRPC: grpc-js and hodei-bench (C); ' +
      'same edge, alternating rounds, best of 2' }));
}

// ------------------------------------------------------------------ dashboard
async function dashboard() {
  const puppeteer = require(path.join(root, 'tests/browser/node_modules/puppeteer-core'));
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'hodei-bench-chromium-'));
  const browser = await puppeteer.launch({ executablePath: env.CHROMIUM || '/usr/bin/chromium',
    headless: false, args: ['--headless', '--no-sandbox', '--disable-gpu',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--no-first-run', '--user-data-dir=' + profile] });
  try {
    const loads = [], floor = [];
    for (let i = 0; i < LOADS + 1; i++) {
      const ctx = await browser.createIncognitoBrowserContext();
      const page = await ctx.newPage();
      await page.setViewport({ width: 1280, height: 800 });
      const cdp = await page.target().createCDPSession();
      await cdp.send('Network.enable');
      await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
      let bytes = 0, requests = 0;
      cdp.on('Network.loadingFinished', (e) => { bytes += e.encodedDataLength; requests++; });
      await page.evaluateOnNewDocument((k) => {
        sessionStorage.setItem('hodei.key', k);
        new MutationObserver((m, o) => {
          const el = document.getElementById('main');
          if (el && el.hasAttribute('data-ready') && document.querySelector('#jobs tbody tr')) {
            window.__ready = performance.now();
            o.disconnect();
          }
        }).observe(document, { subtree: true, childList: true, attributes: true });
      }, key);
      await page.goto(env.BENCH_HTTP + '/#/jobs', { waitUntil: 'load' });
      await page.waitForFunction(() => window.__ready !== undefined, { timeout: 30000, polling: 50 });
      const ms = await page.evaluate(() => window.__ready);
      await new Promise((r) => setTimeout(r, 300)); // the last responses' loadingFinished
      if (i > 0) loads.push({ ms, bytes, requests }); // the first: the browser's own warm-up
      const blank = await ctx.newPage();
      const t0 = performance.now();
      await blank.goto('data:text/html,<p>x</p>', { waitUntil: 'load' });
      if (i > 0) floor.push(performance.now() - t0);
      await ctx.close();
    }
    const ms = median(loads.map((l) => l.ms)), bytes = median(loads.map((l) => l.bytes));
    console.log(JSON.stringify({ scenario: 'dashboard_first_load', loads: loads.length,
      time_to_interactive_ms: round(ms), bytes, requests: median(loads.map((l) => l.requests)),
      target_ms: 1000, target_bytes: 300 * 1024, ms_to_target: round(ms / 1000, 3),
      bytes_to_target: round(bytes / (300 * 1024), 3), blank_page_ms: round(median(floor)),
      all_ms: loads.map((l) => round(l.ms)),
      method: 'cold incognito context per load, cache off; ready = the jobs table shown (100 jobs)' }));
  } finally {
    await browser.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

(async () => {
  const only = process.argv[2] || 'all';
  if (only === 'all' || only === 'queue') await queueJob();
  if (only === 'all' || only === 'dashboard') await dashboard();
})().catch((e) => { console.error('bench/rest.js: ' + (e && e.stack ? e.stack : e)); process.exit(1); });
