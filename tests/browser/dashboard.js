// Drives the dashboard as a user would, in Debian's chromium (headless),
// through puppeteer-core: enters the API key, loads the jobs list, queues a
// job through the form and sees it reach SUCCEEDED with its output (ANSI
// colours as classes, never markup), queues a long job and cancels it from
// its page, opens workers, providers and metrics (jobs by state must count
// the jobs that ran). Screenshots go to OUT. Any script error in the page
// fails the test.
// Usage: node dashboard.js URL KEY OUT
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const puppeteer = require('puppeteer-core');

const [url, key, out] = process.argv.slice(2);
if (!url || !key || !out) {
  console.error('usage: node dashboard.js URL KEY OUT');
  process.exit(2);
}
const WAIT_MS = Number(process.env.HODEI_BROWSER_WAIT_MS || 90000);
const step = (s) => console.log('--- ' + s);

async function main() {
  fs.mkdirSync(out, { recursive: true });
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'hodei-chromium-'));
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: false, // the flags below say --headless
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run',
      '--user-data-dir=' + profile],
  });
  const errors = [];
  try {
    const page = await browser.newPage();
    page.setDefaultTimeout(WAIT_MS);
    page.on('console', (m) => { if (m.type() === 'error') errors.push('console: ' + m.text()); });
    page.on('pageerror', (e) => errors.push('pageerror: ' + e.message));
    page.on('response', (r) => { if (r.status() >= 400) errors.push(`HTTP ${r.status()}: ${r.url()}`); });
    await page.setViewport({ width: 1280, height: 800 });
    const mainText = () => page.$eval('#main', (m) => m.innerText);
    // Waits until fn(arg) is true in the page; on timeout says what was shown.
    async function until(what, fn, arg) {
      try {
        await page.waitForFunction(fn, { timeout: WAIT_MS, polling: 200 }, arg);
      } catch (e) {
        throw new Error(what + ': not seen within ' + WAIT_MS + ' ms; the page shows:\n' +
          (await mainText().catch(() => '?')).slice(0, 1500));
      }
    }

    step('the key is asked once');
    await page.goto(url + '#/jobs', { waitUntil: 'load' });
    await until('the key dialog', () => document.getElementById('keydlg').open);
    await page.type('#keyinput', key);
    await page.click('#keyform button[type=submit]');
    await until('the jobs list', () => document.querySelector('#jobs tbody') !== null &&
      !document.getElementById('keydlg').open);

    step('a job queued through the form runs and its output shows');
    const marker = 'hello from the browser ' + Date.now();
    await page.$eval('#jobname', (e) => { e.value = 'browser-hello'; });
    await page.$eval('#jobcmd', (e) => { e.value = 'sh'; });
    await page.$eval('#jobargs', (e, m) => {
      e.value = `-c "echo ${m}; printf '\\033[31mred text\\033[0m\\n'"`;
    }, marker);
    await page.click('#queueform button[type=submit]');
    await until('the job page', () => /^#\/jobs\/[0-9a-f-]{36}$/.test(location.hash) &&
      document.getElementById('jobstate') !== null);
    const jobId = await page.evaluate(() => location.hash.slice('#/jobs/'.length));
    await until('SUCCEEDED', () => document.getElementById('jobstate').textContent === 'SUCCEEDED');
    await until('its output', (m) => document.getElementById('log').textContent.includes(m), marker);
    await until('the red line', () => [...document.querySelectorAll('#log span.ansi-31')]
      .some((s) => s.textContent === 'red text'));
    const logText = await page.$eval('#log', (e) => e.textContent);
    if (logText.includes('\x1b') || logText.includes('[31m'))
      throw new Error('escape codes shown raw in the output: ' + JSON.stringify(logText));
    if (await page.$eval('#cancel', (b) => !b.hidden))
      throw new Error('a finished job still offers Cancel');
    await page.screenshot({ path: path.join(out, 'job.png') });

    step('the jobs list shows it');
    await page.goto(url + '#/jobs', { waitUntil: 'load' });
    await until('the job in the list as SUCCEEDED', (id) => {
      const row = document.querySelector(`#jobs tr[data-id="${id}"]`);
      return row !== null && row.querySelector('td.state').textContent === 'SUCCEEDED';
    }, jobId);
    await page.screenshot({ path: path.join(out, 'jobs.png') });

    step('a long job is cancelled from its page');
    await page.$eval('#jobname', (e) => { e.value = 'browser-sleep'; });
    await page.$eval('#jobcmd', (e) => { e.value = 'sleep'; });
    await page.$eval('#jobargs', (e) => { e.value = '300'; });
    await page.click('#queueform button[type=submit]');
    await until('the long job RUNNING', (id) => location.hash !== '#/jobs/' + id &&
      document.getElementById('jobstate') !== null &&
      document.getElementById('jobstate').textContent === 'RUNNING', jobId);
    const longId = await page.evaluate(() => location.hash.slice('#/jobs/'.length));
    await page.click('#cancel');
    await until('CANCELLED', () => document.getElementById('jobstate').textContent === 'CANCELLED');

    step('workers');
    await page.goto(url + '#/workers', { waitUntil: 'load' });
    await until('a process worker with its usage', () => [...document.querySelectorAll('#workers tbody tr')]
      .some((r) => r.children[1].textContent === 'process' &&
        / of \d+(\.\d+)? cores$/.test(r.querySelector('td.cpu').textContent) &&
        / GiB of [\d.]+ GiB$/.test(r.querySelector('td.mem').textContent)));
    await page.screenshot({ path: path.join(out, 'workers.png') });

    step('providers');
    await page.goto(url + '#/providers', { waitUntil: 'load' });
    await until('the process provider, healthy', () => [...document.querySelectorAll('#providers tbody tr')]
      .some((r) => r.children[0].textContent === 'process' && r.children[5].textContent.startsWith('healthy')));
    await page.screenshot({ path: path.join(out, 'providers.png') });

    step('metrics count the jobs that ran');
    await page.goto(url + '#/metrics', { waitUntil: 'load' });
    await until('jobs by state', () => {
      const n = (s) => { const dt = [...document.querySelectorAll('#bystate dt')].find((d) => d.textContent === s);
        return dt ? Number(dt.nextElementSibling.textContent) : 0; };
      return n('SUCCEEDED') >= 1 && n('CANCELLED') >= 1;
    });
    await until('two charts', () => document.querySelectorAll('svg.chart polyline').length === 2);
    await page.screenshot({ path: path.join(out, 'metrics.png') });

    if (errors.length) throw new Error('script errors in the page:\n' + errors.join('\n'));
    console.log(`dashboard: all passed (job ${jobId}, cancelled ${longId}); screenshots in ${out}`);
  } finally {
    await browser.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

main().catch((e) => { console.error('FAIL: ' + (e && e.stack ? e.stack : e)); process.exit(1); });
