// `make bench`, as a user sees it: a client that is not ours (grpc-js with
// nothing but proto/*.proto) against a running stack with 8 warm workers.
// Prints one JSON object per scenario on stdout.
//
// Environment (bench/run sets it): BENCH_TARGET host:port, BENCH_STATE the
// stack's state folder (workers/*.pid and *.log, nats.pid), BENCH_BIN the
// release build's bin/, BENCH_PIDS "name:pid ..." of the daemons,
// HODEI_DATABASE_URL, HODEI_PG_DATA; sizes BENCH_IDLE_JOBS, BENCH_SEQ_JOBS,
// BENCH_MANY_JOBS, BENCH_BACKLOG_JOBS.
//
// Scenarios:
//   idle_dispatch   one job at a time after a random 0-1 s pause: the
//                   client's QueueJob call -> the job's process running (the
//                   job stamps its own start), and the QueueJob round trip;
//                   split per hop from the timestamps the system keeps.
//   seq_client      one client submits jobs one after another while they
//                   run: jobs/s end to end, dispatch under that load.
//   clients_16      the same with 16 clients.
//   backlog_drain   N jobs queued while the 8 workers are stopped, then the
//                   workers released: jobs/s until the last one ends.
// Each throughput scenario reports the CPU the control plane spent per job:
// every Hodei process, nats-server and PostgreSQL, from /proc before and
// after, not counting the jobs' own processes (reaped children's time goes to
// cutime, which is not read) nor this client.
'use strict';
const fs = require('fs');
const path = require('path');
const cp = require('child_process');
const { performance } = require('perf_hooks');

const root = path.resolve(__dirname, '..');
const mods = path.join(root, 'tests/clients/node_modules');
const grpc = require(path.join(mods, '@grpc/grpc-js'));
const loader = require(path.join(mods, '@grpc/proto-loader'));

const env = process.env;
const state = env.BENCH_STATE;
const stampProg = path.join(env.BENCH_BIN, 'hodei-bench-stamp');
const stampFile = path.join(state, 'user-stamps');
const num = (v, d) => (v ? Number(v) : d);

const def = loader.loadSync('hodei/v1/services.proto', {
  includeDirs: [path.join(root, 'proto')], keepCase: true, longs: String, enums: String,
  defaults: true,
});
const v1 = grpc.loadPackageDefinition(def).hodei.v1;
const newClient = () => new v1.JobExecutionService(env.BENCH_TARGET,
  grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
// The stack's API key travels as the README says: "authorization: Bearer <key>".
const auth = new grpc.Metadata();
if (env.HODEI_API_KEY) auth.set('authorization', `Bearer ${env.HODEI_API_KEY}`);
const call = (c, m, req) => new Promise((ok, ko) =>
  c[m](req, auth, { deadline: Date.now() + 30000 }, (e, r) => (e ? ko(e) : ok(r))));

const wallUs = () => (performance.timeOrigin + performance.now()) * 1000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pct = (v, p) => {
  if (!v.length) return null;
  const s = [...v].sort((a, b) => a - b);
  return Math.round(s[Math.round(p * (s.length - 1))] * 1000) / 1000;
};
const ms = (us) => us / 1000;
const round = (x, d = 3) => (x == null ? null : Math.round(x * 10 ** d) / 10 ** d);

// One psql for the whole run: a query per line, answers up to a marker.
class Sql {
  constructor(url) {
    this.p = cp.spawn('psql', ['-qtAX', url], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.buf = '';
    this.waiters = [];
    this.p.stdout.on('data', (d) => { this.buf += d; this.drain(); });
  }
  query(q) {
    return new Promise((ok) => {
      this.waiters.push(ok);
      this.p.stdin.write(`${q};\n\\echo __END__\n`);
    });
  }
  drain() {
    let i;
    while (this.waiters.length && (i = this.buf.indexOf('__END__\n')) >= 0) {
      const out = this.buf.slice(0, i);
      this.buf = this.buf.slice(i + 8);
      this.waiters.shift()(out.trim());
    }
  }
  close() { this.p.stdin.end(); }
}

// The stamps the jobs write: "<job id> <wall µs>" per line.
class Stamps {
  constructor(file) {
    this.file = file;
    fs.writeFileSync(file, '');
    fs.chmodSync(file, 0o666); // the jobs run as the stack's job user
    this.off = 0;
    this.at = new Map();
    this.waiters = new Map();
    this.watch = fs.watch(file, () => this.read());
    this.tick = setInterval(() => this.read(), 20);
  }
  read() {
    const fd = fs.openSync(this.file, 'r');
    const size = fs.fstatSync(fd).size;
    if (size > this.off) {
      const b = Buffer.alloc(size - this.off);
      fs.readSync(fd, b, 0, b.length, this.off);
      const text = b.toString();
      const end = text.lastIndexOf('\n') + 1;
      this.off += Buffer.byteLength(text.slice(0, end));
      for (const line of text.slice(0, end).split('\n')) {
        const [id, us] = line.split(' ');
        if (!id) continue;
        this.at.set(id, Number(us));
        const w = this.waiters.get(id);
        if (w) { this.waiters.delete(id); w(Number(us)); }
      }
    }
    fs.closeSync(fd);
  }
  wait(id) {
    this.read();
    if (this.at.has(id)) return Promise.resolve(this.at.get(id));
    return new Promise((ok) => this.waiters.set(id, ok));
  }
  close() { this.watch.close(); clearInterval(this.tick); }
}

// CPU (user + system) of the control plane in seconds, per component.
const HZ = 100;
function cpuOf(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(f[1]), cpu: (Number(f[11]) + Number(f[12])) / HZ };
  } catch { return null; }
}
function cpuSnapshot() {
  const out = {};
  const add = (name, pid) => {
    const c = cpuOf(pid);
    if (c) out[name] = (out[name] || 0) + c.cpu;
  };
  for (const np of (env.BENCH_PIDS || '').split(' ').filter(Boolean)) {
    const [name, pid] = np.split(':');
    add(name, pid);
  }
  for (const f of fs.readdirSync(path.join(state, 'workers'))) {
    if (f.endsWith('.pid')) add('agents', fs.readFileSync(path.join(state, 'workers', f), 'utf8').split(' ')[0]);
  }
  try { add('nats_server', fs.readFileSync(path.join(state, 'nats.pid'), 'utf8').trim()); } catch { /* none */ }
  const pm = Number(fs.readFileSync(path.join(env.HODEI_PG_DATA, 'postmaster.pid'), 'utf8').split('\n')[0]);
  add('postgres', pm);
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const c = cpuOf(d);
    if (c && c.ppid === pm) out.postgres = (out.postgres || 0) + c.cpu;
  }
  return out;
}
function cpuPerJob(before, after, jobs) {
  const per = {};
  let total = 0;
  for (const k of Object.keys(after)) {
    const d = after[k] - (before[k] || 0);
    per[k] = round((d * 1000) / jobs, 3);
    total += d;
  }
  return { cpu_per_job_ms: round((total * 1000) / jobs, 3), cpu_per_job_ms_by_process: per };
}

// The agents' "job accepted" lines (their log level must be info): job -> µs.
function agentAccepted() {
  const at = new Map();
  const dir = path.join(state, 'workers');
  for (const f of fs.readdirSync(dir)) {
    if (!f.endsWith('.log')) continue;
    for (const line of fs.readFileSync(path.join(dir, f), 'utf8').split('\n')) {
      const m = /^ts=(\S+) .*job accepted job=(\S+)/.exec(line);
      if (m) at.set(m[2], Date.parse(m[1]) * 1000);
    }
  }
  return at;
}

const spec = (argv) => ({ spec: { command: { command: argv[0], args: argv.slice(1) } } });
const stampSpec = () => spec([stampProg, stampFile]);

async function waitDone(sql, ids) {
  const list = ids.map((i) => `'${i}'`).join(',');
  for (;;) {
    const open = Number(await sql.query(
      `SELECT count(*) FROM jobs WHERE id IN (${list}) AND state IN ('PENDING','ASSIGNED','RUNNING')`));
    if (open === 0) return;
    await sleep(2);
  }
}

async function waitNoOpen(sql) {
  // Only unfinished jobs are counted (partial indexes), every 25 ms.
  const q = "SELECT (SELECT count(*) FROM jobs WHERE state = 'PENDING')"
    + " + (SELECT count(*) FROM jobs WHERE state IN ('ASSIGNED','RUNNING'))";
  for (;;) {
    if (Number(await sql.query(q)) === 0) return wallUs();
    await sleep(25);
  }
}

async function idleDispatch(sql, stamps, client, n) {
  const rows = [];
  for (let i = -5; i < n; i++) {
    await sleep(Math.random() * 1000);
    const t0 = wallUs();
    const r = await call(client, 'QueueJob', stampSpec());
    const t1 = wallUs();
    const at = await Promise.race([stamps.wait(r.job_id), sleep(30000).then(() => {
      throw new Error(`job ${r.job_id} never stamped its start (can the job user write ${stampFile}?)`);
    })]);
    await waitDone(sql, [r.job_id]);
    if (i >= 0) rows.push({ id: r.job_id, call: t0, answered: t1, stamp: at });
  }
  // Per hop, from what the system keeps: the job's insert (its transaction's
  // start, now()), the outbox rows' insert times (clock_timestamp() in the
  // statement), the relay's publish time of JobQueued (a job assigned at
  // submit has none), and the agent's "job accepted" log line (ms resolution).
  const ids = rows.map((r) => `'${r.id}'`).join(',');
  const out = await sql.query(
    'SELECT j.id,'
    + ' (extract(epoch FROM j.created_at) * 1e6)::bigint,'
    + " (SELECT (extract(epoch FROM o.published_at) * 1e6)::bigint FROM outbox o WHERE o.aggregate_id = j.id::text AND o.event_type = 'JobQueued' LIMIT 1),"
    + " (SELECT (extract(epoch FROM min(o.created_at)) * 1e6)::bigint FROM outbox o WHERE o.aggregate_id = j.id::text AND o.event_type = 'JobAssigned')"
    + ` FROM jobs j WHERE j.id IN (${ids})`);
  const db = new Map(out.split('\n').map((l) => { const f = l.split('|'); return [f[0], f.slice(1).map(Number)]; }));
  const accepted = agentAccepted();
  const h = { dispatch: [], queue_job_rtt: [], to_submit_stmt: [], submit_to_assign_stmt: [],
    assign_to_agent: [], agent_to_running: [], submit_to_answered: [], relay_publish: [] };
  for (const r of rows) {
    h.dispatch.push(ms(r.stamp - r.call));
    h.queue_job_rtt.push(ms(r.answered - r.call));
    const d = db.get(r.id);
    const acc = accepted.get(r.id);
    if (!d) continue;
    const [queued, published, assigned] = d;
    h.to_submit_stmt.push(ms(queued - r.call));
    h.submit_to_answered.push(ms(r.answered - queued));
    h.submit_to_assign_stmt.push(ms(assigned - queued));
    if (published) h.relay_publish.push(ms(published - queued)); // none: assigned at submit
    if (acc) {
      h.assign_to_agent.push(ms(acc - assigned));
      h.agent_to_running.push(ms(r.stamp - acc));
    }
  }
  const res = { scenario: 'idle_dispatch', jobs: rows.length,
    method: "client's QueueJob call -> the job's process running (its own stamp); 0-1 s random pauses" };
  for (const [k, v] of Object.entries(h)) {
    res[`${k}_p50_ms`] = pct(v, 0.5);
    res[`${k}_p99_ms`] = pct(v, 0.99);
  }
  return res;
}

// C clients submit n jobs between them, each one after the other.
async function submitters(clients, n, argv, rec) {
  let next = 0;
  const ids = [];
  await Promise.all(clients.map(async (c) => {
    while (next < n) {
      next++;
      const t0 = wallUs();
      const r = await call(c, 'QueueJob', spec(argv));
      ids.push(r.job_id);
      if (rec) rec.push({ id: r.job_id, call: t0, answered: wallUs() });
    }
  }));
  return ids;
}

async function throughput(sql, stamps, name, clients, n, stamp) {
  const rec = [];
  const before = cpuSnapshot();
  const t0 = wallUs();
  const argv = stamp ? [stampProg, stampFile] : ['true'];
  await submitters(clients, n, argv, rec);
  const t1 = await waitNoOpen(sql);
  const after = cpuSnapshot();
  const res = { scenario: name, jobs: n, clients: clients.length, seconds: round((t1 - t0) / 1e6),
    jobs_per_s: Math.round(n / ((t1 - t0) / 1e6)),
    queue_job_rtt_p50_ms: pct(rec.map((r) => ms(r.answered - r.call)), 0.5),
    queue_job_rtt_p99_ms: pct(rec.map((r) => ms(r.answered - r.call)), 0.99),
    ...cpuPerJob(before, after, n) };
  if (stamp) {
    const lat = [];
    for (const r of rec) if (stamps.at.has(r.id)) lat.push(ms(stamps.at.get(r.id) - r.call));
    res.dispatch_p50_ms = pct(lat, 0.5);
    res.dispatch_p99_ms = pct(lat, 0.99);
  }
  return res;
}

function agentPids() {
  const dir = path.join(state, 'workers');
  return fs.readdirSync(dir).filter((f) => f.endsWith('.pid'))
    .map((f) => Number(fs.readFileSync(path.join(dir, f), 'utf8').split(' ')[0]));
}

// nats-server's messages in and out, in all and per named connection (its
// monitoring port: /connz). Null without one.
function natsCounts() {
  const port = env.HODEI_NATS_MONITOR_PORT;
  if (!port) return Promise.resolve(null);
  return new Promise((ok) => {
    require('http').get(`http://127.0.0.1:${port}/connz?limit=1024`, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => {
        try {
          const c = JSON.parse(body);
          const by = {};
          for (const x of c.connections || []) {
            const name = (x.name || 'unnamed').replace(/[-.]?[0-9a-f]{8,}.*$/, '');
            const e = by[name] || (by[name] = { in: 0, out: 0 });
            e.in += x.in_msgs;
            e.out += x.out_msgs;
          }
          ok(by);
        } catch { ok(null); }
      });
    }).on('error', () => ok(null));
  });
}

// With BENCH_STATEMENTS=1 (bench/run loads pg_stat_statements): the
// statements of the span, per job: calls, execution time, rows.
async function statementsPerJob(sql, jobs) {
  const out = await sql.query('SELECT calls, round(total_exec_time::numeric, 3), rows,'
    + " left(regexp_replace(query, '\\s+', ' ', 'g'), 160) FROM pg_stat_statements"
    + " WHERE query NOT LIKE '%pg_stat_statements%' ORDER BY total_exec_time DESC LIMIT 40");
  const [calls, time] = (await sql.query('SELECT sum(calls), sum(total_exec_time)'
    + " FROM pg_stat_statements WHERE query NOT LIKE '%pg_stat_statements%'")).split('|').map(Number);
  const rows = [];
  for (const line of out.split('\n').filter(Boolean)) {
    const [c, t, r, q] = line.split('|');
    rows.push({ calls_per_job: round(Number(c) / jobs), ms_per_job: round(Number(t) / jobs, 4),
      rows_per_job: round(Number(r) / jobs), query: q });
  }
  return { calls_per_job: round(calls / jobs), exec_ms_per_job: round(time / jobs, 4), top: rows };
}

function natsPerJob(before, after, jobs) {
  if (!before || !after) return null;
  const per = {};
  let inT = 0;
  let outT = 0;
  for (const k of Object.keys(after)) {
    const b = before[k] || { in: 0, out: 0 };
    const i = after[k].in - b.in;
    const o = after[k].out - b.out;
    inT += i;
    outT += o;
    per[k] = { in: round(i / jobs, 2), out: round(o / jobs, 2) };
  }
  // A client's in is the server's out: in_msgs of a connection are what
  // the server received from it.
  return { server_in_per_job: round(inT / jobs, 2), server_out_per_job: round(outT / jobs, 2),
    by_connection: per };
}

// The warm workers READY (alone, this scenario may start before the
// provisioner has brought them all up), then the pids of their agents.
async function readyAgents(sql, want) {
  const q = "SELECT count(*) FROM workers WHERE state = 'READY'";
  for (let i = 0; i < 1200 && Number(await sql.query(q)) < want; i++) await sleep(100);
  return agentPids().filter((p) => { try { process.kill(p, 0); return true; } catch { return false; } });
}

async function backlog(sql, clients, n) {
  const agents = await readyAgents(sql, num(env.BENCH_WORKERS, 8));
  for (const p of agents) process.kill(p, 'SIGSTOP');
  let ids;
  try {
    ids = await submitters(clients, n, ['true']);
  } finally {
    await sleep(200);
  }
  const profile = env.BENCH_STATEMENTS === '1';
  if (profile) await sql.query('SELECT pg_stat_statements_reset()');
  const natsBefore = await natsCounts();
  const before = cpuSnapshot();
  const t0 = wallUs();
  for (const p of agents) process.kill(p, 'SIGCONT');
  const t1 = await waitNoOpen(sql);
  const after = cpuSnapshot();
  const natsAfter = await natsCounts();
  const res = { scenario: 'backlog_drain', jobs: ids.length, workers: agents.length,
    seconds: round((t1 - t0) / 1e6), jobs_per_s: Math.round(ids.length / ((t1 - t0) / 1e6)),
    method: 'N queued while the workers are stopped (SIGSTOP), then released: until the last ends',
    ...cpuPerJob(before, after, ids.length),
    nats_msgs: natsPerJob(natsBefore, natsAfter, ids.length) };
  if (profile) res.statements = await statementsPerJob(sql, ids.length);
  return res;
}

// Each figure against this machine's ceilings of the same run, and the
// issue's targets.
function summary(c, r) {
  const s = { scenario: 'vs_ceilings', spawn_seq_p50_ms: c.spawn_seq_p50_ms,
    spawn_8way_per_s: c.spawn_8way_per_s, pg_commit_p50_ms: c.pg_commit_p50_ms,
    js_publish_p50_ms: c.js_publish_p50_ms, nats_hop_buffered_p50_ms: c.nats_hop_buffered_p50_ms,
    nats_hop_asap_p50_ms: c.nats_hop_asap_p50_ms };
  const i = r.idle_dispatch;
  if (i) {
    s.idle_dispatch_p50_over_spawn_ms = round(i.dispatch_p50_ms - c.spawn_seq_p50_ms);
    s.idle_dispatch_p99_over_spawn_ms = round(i.dispatch_p99_ms - c.spawn_seq_p50_ms);
    s.idle_dispatch_p50_target_met = s.idle_dispatch_p50_over_spawn_ms <= 3;
    s.idle_dispatch_p99_target_met = s.idle_dispatch_p99_over_spawn_ms <= 10;
    s.queue_job_rtt_p50_in_pg_commits = round(i.queue_job_rtt_p50_ms / c.pg_commit_p50_ms, 2);
    s.queue_job_rtt_target_met = i.queue_job_rtt_p50_ms <= 1.5 && i.queue_job_rtt_p99_ms <= 5;
  }
  for (const k of ['seq_client', 'clients_16', 'backlog_drain']) {
    if (!r[k]) continue;
    s[`${k}_of_8way_spawn`] = round(r[k].jobs_per_s / c.spawn_8way_per_s, 3);
    s[`${k}_cpu_per_job_ms`] = r[k].cpu_per_job_ms;
  }
  if (r.backlog_drain) s.backlog_drain_target_met = s.backlog_drain_of_8way_spawn >= 0.8;
  if (r.seq_client && env.BENCH_SEQ_BASELINE) {
    s.seq_client_vs_baseline = round(r.seq_client.jobs_per_s / Number(env.BENCH_SEQ_BASELINE), 2);
  }
  return s;
}

(async () => {
  const sql = new Sql(env.HODEI_DATABASE_URL);
  const stamps = new Stamps(stampFile);
  const one = newClient();
  const many = Array.from({ length: 16 }, newClient);
  const results = {};
  const print = (o) => { results[o.scenario] = o; console.log(JSON.stringify(o)); };
  const only = (env.BENCH_USER_SCENARIOS || 'idle,seq,many,backlog').split(',');
  if (only.includes('idle')) print(await idleDispatch(sql, stamps, one, num(env.BENCH_IDLE_JOBS, 100)));
  if (only.includes('seq')) print(await throughput(sql, stamps, 'seq_client', [one], num(env.BENCH_SEQ_JOBS, 1000), true));
  if (only.includes('many')) print(await throughput(sql, stamps, 'clients_16', many, num(env.BENCH_MANY_JOBS, 2000), false));
  if (only.includes('backlog')) print(await backlog(sql, many, num(env.BENCH_BACKLOG_JOBS, 1000)));
  if (env.BENCH_CEILINGS) print(summary(JSON.parse(env.BENCH_CEILINGS), results));
  stamps.close();
  sql.close();
  process.exit(0);
})().catch((e) => { console.error('bench/user.js:', e); process.exit(1); });
