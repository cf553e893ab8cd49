// Servers the artifact tests and the benchmark move files to and from, all on
// 127.0.0.1, started by the test and stopped with SIGTERM:
//   https (TLS with the test's own certificate):
//     GET  /files/<path>           the file <dir>/files/<path>
//     GET  /redirect/<n>/<path>    n redirects, then /files/<path>
//     GET  /to-http/<path>         a redirect to http:// (a downgrade)
//     GET  /flaky/<path>           503 on the first request for a path, then the file
//     PUT  /upload/<path>          stores the body in <dir>/uploads/<path>
//   http: the same routes without TLS
//   s3: an S3-compatible server (@20minutes/s3rver, which checks SigV4
//       signatures; access key S3RVER, secret S3RVER), path-style, with
//       the buckets named on the command line
// Usage: node artifact_servers.js DIR HTTPS_PORT HTTP_PORT S3_PORT CERT KEY BUCKET...
// Writes DIR/ready once all three listen.
'use strict';
const fs = require('fs');
const path = require('path');
const http = require('http');
const https = require('https');

const [dir, httpsPort, httpPort, s3Port, cert, key, ...buckets] = process.argv.slice(2);
const filesDir = path.join(dir, 'files');
const uploadsDir = path.join(dir, 'uploads');
fs.mkdirSync(filesDir, { recursive: true });
fs.mkdirSync(uploadsDir, { recursive: true });
const flakySeen = new Set();

function safeJoin(base, rel) {
  const p = path.normalize(path.join(base, decodeURIComponent(rel)));
  return p.startsWith(base + path.sep) ? p : null;
}

function serveFile(res, rel) {
  const p = safeJoin(filesDir, rel);
  if (!p || !fs.existsSync(p)) {
    res.writeHead(404);
    return res.end('not found');
  }
  const st = fs.statSync(p);
  res.writeHead(200, { 'Content-Length': st.size });
  fs.createReadStream(p).pipe(res);
}

function handler(scheme, otherPort) {
  return (req, res) => {
    const url = new URL(req.url, `${scheme}://127.0.0.1`);
    const parts = url.pathname.split('/').filter((s) => s.length > 0);
    const route = parts.shift();
    if (req.method === 'PUT' && route === 'upload') {
      const p = safeJoin(uploadsDir, parts.join('/'));
      if (!p) {
        res.writeHead(400);
        return res.end();
      }
      fs.mkdirSync(path.dirname(p), { recursive: true });
      const out = fs.createWriteStream(p);
      req.pipe(out);
      out.on('finish', () => {
        res.writeHead(201);
        res.end();
      });
      return;
    }
    if (req.method !== 'GET') {
      res.writeHead(405);
      return res.end();
    }
    if (route === 'files') return serveFile(res, parts.join('/'));
    if (route === 'redirect') {
      const n = parseInt(parts.shift(), 10);
      const rest = parts.join('/');
      res.writeHead(302, { Location: n > 1 ? `/redirect/${n - 1}/${rest}` : `/files/${rest}` });
      return res.end();
    }
    if (route === 'to-http') {
      res.writeHead(302, { Location: `http://127.0.0.1:${otherPort}/files/${parts.join('/')}` });
      return res.end();
    }
    if (route === 'flaky') {
      const rel = parts.join('/');
      if (!flakySeen.has(rel)) {
        flakySeen.add(rel);
        res.writeHead(503);
        return res.end('try again');
      }
      return serveFile(res, rel);
    }
    res.writeHead(404);
    res.end();
  };
}

async function main() {
  const tls = { cert: fs.readFileSync(cert), key: fs.readFileSync(key) };
  const s1 = https.createServer(tls, handler('https', httpPort));
  const s2 = http.createServer(handler('http', httpsPort));
  await new Promise((r) => s1.listen(Number(httpsPort), '127.0.0.1', r));
  await new Promise((r) => s2.listen(Number(httpPort), '127.0.0.1', r));
  const { default: S3rver } = await import('@20minutes/s3rver');
  const s3 = new S3rver({
    port: Number(s3Port),
    address: '127.0.0.1',
    silent: true,
    directory: path.join(dir, 's3'),
    configureBuckets: buckets.map((name) => ({ name })),
  });
  await s3.run();
  fs.writeFileSync(path.join(dir, 'ready'), 'ready\n');
  const stop = async () => {
    s1.close();
    s2.close();
    await s3.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
