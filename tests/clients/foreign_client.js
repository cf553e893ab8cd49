// A client that is not ours: grpc-js with nothing but proto/*.proto.
// Usage: HODEI_API_KEY=KEY node foreign_client.js HOST:PORT PROTO_DIR
// Exits 0 when every check passes; prints what failed otherwise. The key
// travels as the README says: "authorization: Bearer <key>" metadata.
'use strict';
const grpc = require('@grpc/grpc-js');
const loader = require('@grpc/proto-loader');
const assert = require('assert');

const [target, protoDir] = process.argv.slice(2);
const def = loader.loadSync('hodei/v1/services.proto', {
  includeDirs: [protoDir], keepCase: true, longs: String, enums: String, defaults: true,
});
const v1 = grpc.loadPackageDefinition(def).hodei.v1;
const jobs = new v1.JobExecutionService(target, grpc.credentials.createInsecure());
const keys = new v1.KeyService(target, grpc.credentials.createInsecure());
const bearer = (key) => {
  const md = new grpc.Metadata();
  if (key) md.set('authorization', `Bearer ${key}`);
  return md;
};
const callAs = (svc, key, m, req) => new Promise((ok, ko) =>
  svc[m](req, bearer(key), { deadline: Date.now() + 10000 }, (e, r) => (e ? ko(e) : ok(r))));
const call = (m, req) => callAs(jobs, process.env.HODEI_API_KEY, m, req);

(async () => {
  const q = await call('QueueJob', {
    spec: { name: 'from-grpc-js', command: { command: 'echo', args: ['hi'] },
            env: { A: '1' }, labels: { team: 'web' }, priority: 5 },
    idempotency_key: 'js-1',
  });
  assert.match(q.job_id, /^[0-9a-f-]{36}$/);
  assert.strictEqual(q.state, 'JOB_STATE_PENDING');

  const again = await call('QueueJob', { spec: { command: { command: 'true' } }, idempotency_key: 'js-1' });
  assert.strictEqual(again.job_id, q.job_id);
  assert.strictEqual(again.duplicate, true);

  const st = await call('GetJobStatus', { job_id: q.job_id });
  assert.strictEqual(st.job.spec.name, 'from-grpc-js');
  assert.strictEqual(st.job.spec.env.A, '1');
  assert.strictEqual(st.job.spec.command.args[0], 'hi');

  const list = await call('ListJobs', { states: ['JOB_STATE_PENDING'], page_size: 10 });
  assert.ok(list.jobs.some((j) => j.id === q.job_id));

  const c = await call('CancelJob', { job_id: q.job_id, reason: 'test' });
  assert.strictEqual(c.job.state, 'JOB_STATE_CANCELLED');

  await assert.rejects(call('QueueJob', { spec: { command: { command: 'x' }, priority: 99999 } }),
    (e) => e.code === grpc.status.INVALID_ARGUMENT && /spec\.priority/.test(e.details));
  await assert.rejects(call('GetJobStatus', { job_id: '0190b1c2-0000-7000-8000-000000000000' }),
    (e) => e.code === grpc.status.NOT_FOUND);

  // Keys: none, a garbage one, and one without the scope.
  await assert.rejects(callAs(jobs, '', 'ListJobs', {}),
    (e) => e.code === grpc.status.UNAUTHENTICATED);
  await assert.rejects(callAs(jobs, 'hodei_' + '0'.repeat(64), 'ListJobs', {}),
    (e) => e.code === grpc.status.UNAUTHENTICATED);
  const made = await callAs(keys, process.env.HODEI_API_KEY, 'CreateKey',
    { name: 'js-reader', scopes: ['jobs:read'] });
  assert.match(made.secret, /^hodei_[0-9a-f]{64}$/);
  await callAs(jobs, made.secret, 'ListJobs', {});
  await assert.rejects(callAs(jobs, made.secret, 'CancelJob', { job_id: q.job_id }),
    (e) => e.code === grpc.status.PERMISSION_DENIED && /jobs:cancel/.test(e.details));
  const me = await callAs(keys, made.secret, 'WhoAmI', {});
  assert.strictEqual(me.key.name, 'js-reader');
  console.log('foreign client: all checks passed');
  process.exit(0);
})().catch((e) => { console.error('foreign client failed:', e); process.exit(1); });
