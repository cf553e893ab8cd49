// A fake Kubernetes API server for the Kubernetes provider's tests (no real
// API server can run on the test machines). It serves the real API's paths
// and response shapes for what the provider uses:
//   GET  /readyz
//   GET|POST /api/v1/namespaces/NS/pods|secrets   (labelSelector; watch=1)
//   GET|DELETE|PATCH /api/v1/namespaces/NS/pods|secrets/NAME
// with Status objects on errors, resourceVersion on every object and list,
// and watches as newline-delimited {"type","object"} events (ERROR 410 when
// the asked-for version is older than the history kept, BOOKMARKs).
//
// Every Pod posted is checked against io.k8s.api.core.v1.Pod: the
// kubernetes-models package's JSON-schema validator (types, enums, formats
// such as resource quantities, required fields), plus unknown fields
// (what the API server refuses with fieldValidation=Strict), found by
// walking the package's own type declarations. A Pod failing either is
// refused 422 (or 400) like the real server would, and recorded.
//
// It also plays the kubelet when --worker-bin is given: a Pod is started as
// a local process of that program with the container's env (secretKeyRef
// resolved from the stored Secrets; a missing Secret keeps the Pod Pending,
// as CreateContainerConfigError does), Pending -> Running -> Succeeded or
// Failed, and a graceful delete sends SIGTERM, then SIGKILL after the grace
// period, before the Pod goes.
//
// A control port (plain HTTP, loopback) lets the test look and steer:
//   GET  /state            pods, secrets, schema failures, requests seen
//   POST /inject           {method, path, code, times, retryAfter, reason, message}
//   POST /phase            {namespace, name, phase}
//   POST /compact          forget the event history (next watch from an old version gets 410)
//   POST /drop-watches     end every open watch (as an API server restart does)
//
// Usage: node kube-apiserver.mjs --cert C --key K [--client-ca CA] [--token T]
//        [--worker-bin PATH] [--log FILE]
// Prints one line {"port":N,"control":M} when listening on 127.0.0.1.
import { spawn } from "node:child_process";
import { readFileSync, readdirSync, existsSync, createWriteStream } from "node:fs";
import http from "node:http";
import https from "node:https";
import { dirname, join } from "node:path";
import { createRequire } from "node:module";
import { randomUUID } from "node:crypto";
import { Pod } from "kubernetes-models/v1";

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, "")] = process.argv[i + 1];

const log = args.log ? createWriteStream(args.log, { flags: "a" }) : null;
function note(msg) {
  if (log) log.write(`${new Date().toISOString()} ${msg}\n`);
}

// ------------------------------------------------------------ strict fields
// Field names of each type, read from kubernetes-models' declarations.
const require = createRequire(import.meta.url);
const modelsDir = dirname(require.resolve("kubernetes-models/package.json"));
const apimDir = dirname(require.resolve("@kubernetes-models/apimachinery/package.json"));
const typeCache = new Map();
function declFile(fromFile, spec) {
  const base = spec.startsWith("@kubernetes-models/apimachinery/")
    ? join(apimDir, spec.slice("@kubernetes-models/apimachinery/".length))
    : join(dirname(fromFile), spec);
  return base.replace(/\.js$/, "") + ".d.ts";
}
// {fields: Map(name -> {ref: {file,iface}|null, array: bool, map: bool})}
function loadType(file, iface) {
  const key = file + "#" + iface;
  if (typeCache.has(key)) return typeCache.get(key);
  const text = readFileSync(file, "utf8");
  const imports = new Map();
  for (const m of text.matchAll(/import \{ ([^}]+) \} from "([^"]+)";/g))
    for (const name of m[1].split(",").map((s) => s.trim())) imports.set(name, declFile(file, m[2]));
  const start = text.indexOf(`export interface ${iface} `);
  if (start < 0) {
    // a type alias re-exported: follow "export { IX as IY }" or "export interface IY extends IX"
    typeCache.set(key, null);
    return null;
  }
  const body = text.slice(text.indexOf("{", start) + 1, text.indexOf("\n}", start));
  const fields = new Map();
  for (const m of body.matchAll(/^\s{4}"([^"]+)"\??: (.+?);?$/gm)) {
    const t = m[2];
    const map = t.startsWith("{");
    const arr = t.startsWith("Array<");
    const refName = (t.match(/\b(I[A-Z]\w+)\b/) || [])[1];
    let ref = null;
    if (refName && imports.has(refName)) ref = { file: imports.get(refName), iface: refName };
    fields.set(m[1], { ref, array: arr, map });
  }
  const info = { fields };
  typeCache.set(key, info);
  return info;
}
// The interface name a file declares for an imported IIoK8s... alias.
function resolveRef(ref) {
  const text = readFileSync(ref.file, "utf8");
  if (text.includes(`export interface ${ref.iface} `)) return loadType(ref.file, ref.iface);
  const m = text.match(/export interface (I\w+) /);
  return m ? loadType(ref.file, m[1]) : null;
}
function unknownFields(obj, info, path, out) {
  if (!info || obj === null || typeof obj !== "object") return;
  for (const [k, v] of Object.entries(obj)) {
    const f = info.fields.get(k);
    if (!f) {
      out.push(`${path}.${k}`);
      continue;
    }
    if (!f.ref || f.map) continue;
    const sub = resolveRef(f.ref);
    if (f.array && Array.isArray(v)) v.forEach((e, i) => unknownFields(e, sub, `${path}.${k}[${i}]`, out));
    else if (!f.array) unknownFields(v, sub, `${path}.${k}`, out);
  }
}
const podType = loadType(join(modelsDir, "v1/Pod.d.ts"), "IPod");

function checkPod(pod) {
  const problems = [];
  try {
    new Pod(pod).validate();
  } catch (e) {
    problems.push(String(e.message || e));
  }
  const unknown = [];
  unknownFields(pod, podType, "", unknown);
  for (const u of unknown) problems.push(`unknown field "${u.slice(1)}"`);
  return problems;
}

// ------------------------------------------------------------ store
let rv = 1000;
const store = { pods: new Map(), secrets: new Map() }; // key ns/name -> object
const history = []; // {rv, kind, type, object}
const HISTORY_MAX = 500;
let compactedRv = 0; // versions before this are gone
const watchers = new Set();
const watchStreams = new Set(); // open watch responses, for /drop-watches
const requests = [];
const schemaFailures = [];
const injections = [];
const procs = new Map(); // pod key -> child process

function nextRv() {
  return String(++rv);
}
function emit(kind, type, obj) {
  const ev = { rv: Number(obj.metadata.resourceVersion), kind, type, object: structuredClone(obj) };
  history.push(ev);
  if (history.length > HISTORY_MAX) history.shift();
  for (const w of watchers) w(ev);
}
function status(code, reason, message, details) {
  const s = { kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message, reason, code };
  if (details) s.details = details;
  return s;
}
function send(res, code, obj, headers = {}) {
  res.writeHead(code, { "Content-Type": "application/json", ...headers });
  res.end(JSON.stringify(obj));
}
function matches(obj, selector) {
  if (!selector) return true;
  const labels = obj.metadata.labels || {};
  return selector.split(",").every((term) => {
    const [k, v] = term.split(/==?/);
    return labels[k] === v;
  });
}

// ------------------------------------------------------------ kubelet
function podKey(ns, name) {
  return `${ns}/${name}`;
}
function setPhase(key, phase, extra = {}) {
  const pod = store.pods.get(key);
  if (!pod) return;
  pod.status = { ...(pod.status || {}), phase, ...extra };
  pod.metadata.resourceVersion = nextRv();
  emit("pods", "MODIFIED", pod);
}
function resolveEnv(ns, container) {
  const env = { PATH: process.env.PATH };
  for (const k of ["ASAN_OPTIONS", "LSAN_OPTIONS", "UBSAN_OPTIONS"]) if (process.env[k]) env[k] = process.env[k];
  for (const e of container.env || []) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom && e.valueFrom.secretKeyRef) {
      const ref = e.valueFrom.secretKeyRef;
      const s = store.secrets.get(podKey(ns, ref.name));
      if (!s || !s.data || s.data[ref.key] === undefined) return { missing: `secret "${ref.name}" not found` };
      env[e.name] = Buffer.from(s.data[ref.key], "base64").toString();
    }
  }
  return { env };
}
function startPod(key, tries = 0) {
  const pod = store.pods.get(key);
  if (!pod || pod.metadata.deletionTimestamp || !args["worker-bin"]) return;
  const ns = pod.metadata.namespace;
  const c = pod.spec.containers[0];
  const r = resolveEnv(ns, c);
  if (r.missing) {
    // kubelet: CreateContainerConfigError, retried
    if (tries === 0) setPhase(key, "Pending", { reason: "CreateContainerConfigError", message: r.missing });
    if (tries < 100) setTimeout(() => startPod(key, tries + 1), 200);
    return;
  }
  const logFile = args.log ? createWriteStream(args.log + "." + pod.metadata.name, { flags: "a" }) : "ignore";
  const child = spawn(args["worker-bin"], [], { env: r.env, stdio: ["ignore", "pipe", "pipe"] });
  if (logFile !== "ignore") {
    child.stdout.pipe(logFile);
    child.stderr.pipe(logFile);
  } else {
    child.stdout.resume();
    child.stderr.resume();
  }
  procs.set(key, child);
  note(`started ${key} pid ${child.pid} image ${c.image}`);
  setPhase(key, "Running", { startTime: new Date().toISOString() });
  child.on("exit", (code, sig) => {
    procs.delete(key);
    note(`exited ${key} code ${code} signal ${sig}`);
    const p = store.pods.get(key);
    if (!p) return;
    if (p.metadata.deletionTimestamp) return removePod(key);
    setPhase(key, code === 0 ? "Succeeded" : "Failed");
  });
}
function removePod(key) {
  const pod = store.pods.get(key);
  if (!pod) return;
  store.pods.delete(key);
  pod.metadata.resourceVersion = nextRv();
  emit("pods", "DELETED", pod);
  // the garbage collector: secrets owned by this pod go with it
  for (const [skey, s] of store.secrets) {
    if ((s.metadata.ownerReferences || []).some((o) => o.uid === pod.metadata.uid)) {
      store.secrets.delete(skey);
      s.metadata.resourceVersion = nextRv();
      emit("secrets", "DELETED", s);
      note(`garbage-collected secret ${skey}`);
    }
  }
}
function deletePod(key, graceSeconds) {
  const pod = store.pods.get(key);
  const child = procs.get(key);
  if (!child) {
    removePod(key);
    return pod;
  }
  pod.metadata.deletionTimestamp = new Date().toISOString();
  pod.metadata.deletionGracePeriodSeconds = graceSeconds;
  pod.metadata.resourceVersion = nextRv();
  emit("pods", "MODIFIED", pod);
  child.kill("SIGTERM");
  setTimeout(() => {
    if (procs.get(key) === child) child.kill("SIGKILL");
  }, graceSeconds * 1000);
  return pod;
}

// ------------------------------------------------------------ API
function readBody(req) {
  return new Promise((resolve) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString()));
  });
}
function authorized(req) {
  if (args["client-ca"] && req.socket.authorized) return true;
  if (args.token && req.headers.authorization === `Bearer ${args.token}`) return true;
  return !args.token && !args["client-ca"];
}
function injected(method, path) {
  for (const inj of injections) {
    if (inj.times > 0 && inj.method === method && path.startsWith(inj.path)) {
      inj.times--;
      return inj;
    }
  }
  return null;
}

function watch(req, res, kind, ns, q) {
  const from = Number(q.get("resourceVersion") || "0");
  const selector = q.get("labelSelector");
  const timeout = Number(q.get("timeoutSeconds") || "1800");
  res.writeHead(200, { "Content-Type": "application/json", "Transfer-Encoding": "chunked" });
  const write = (type, object) => res.write(JSON.stringify({ type, object }) + "\n");
  const oldest = history.length ? history[0].rv - 1 : compactedRv;
  if (from && from < Math.max(oldest, compactedRv)) {
    write("ERROR", status(410, "Expired", `too old resource version: ${from} (${Math.max(oldest, compactedRv)})`));
    return res.end();
  }
  const fits = (ev) => ev.kind === kind && ev.object.metadata.namespace === ns && matches(ev.object, selector);
  for (const ev of history) if (ev.rv > from && fits(ev)) write(ev.type, ev.object);
  const w = (ev) => {
    if (fits(ev)) write(ev.type, ev.object);
  };
  watchers.add(w);
  const bookmark = q.get("allowWatchBookmarks") === "true"
    ? setInterval(() => write("BOOKMARK", { kind: "Pod", apiVersion: "v1", metadata: { resourceVersion: String(rv) } }), 2000)
    : null;
  watchStreams.add(res);
  const end = () => {
    watchStreams.delete(res);
    watchers.delete(w);
    if (bookmark) clearInterval(bookmark);
  };
  const timer = setTimeout(() => {
    end();
    res.end();
  }, timeout * 1000);
  req.on("close", () => {
    clearTimeout(timer);
    end();
  });
}

async function api(req, res) {
  const url = new URL(req.url, "https://x");
  const body = await readBody(req);
  const path = url.pathname;
  requests.push({ method: req.method, path, query: url.search, contentType: req.headers["content-type"] || "", body, auth: !!req.headers.authorization, clientCert: !!req.socket.authorized });
  if (path === "/readyz") {
    res.writeHead(200, { "Content-Type": "text/plain" });
    return res.end("ok");
  }
  if (!authorized(req)) return send(res, 401, status(401, "Unauthorized", "Unauthorized"));
  const inj = injected(req.method, path);
  if (inj) {
    const headers = inj.retryAfter !== undefined ? { "Retry-After": String(inj.retryAfter) } : {};
    return send(res, inj.code, status(inj.code, inj.reason || "InternalError", inj.message || "injected"), headers);
  }
  const m = path.match(/^\/api\/v1\/namespaces\/([a-z0-9-]+)\/(pods|secrets)(?:\/([a-z0-9.-]+))?$/);
  if (!m) return send(res, 404, status(404, "NotFound", "the server could not find the requested resource"));
  const [, ns, kind, name] = m;
  const map = store[kind];
  const single = kind === "pods" ? "pod" : "secret";
  if (!name && req.method === "GET") {
    if (url.searchParams.get("watch") === "1" || url.searchParams.get("watch") === "true") return watch(req, res, kind, ns, url.searchParams);
    const sel = url.searchParams.get("labelSelector");
    const items = [...map.values()].filter((o) => o.metadata.namespace === ns && matches(o, sel));
    return send(res, 200, { kind: kind === "pods" ? "PodList" : "SecretList", apiVersion: "v1", metadata: { resourceVersion: String(rv) }, items });
  }
  if (!name && req.method === "POST") {
    let obj;
    try {
      obj = JSON.parse(body);
    } catch (e) {
      return send(res, 400, status(400, "BadRequest", `json: ${e.message}`));
    }
    const oname = obj.metadata && obj.metadata.name;
    if (!oname) return send(res, 422, status(422, "Invalid", `${single} name is required`, { causes: [{ field: "metadata.name", message: "Required value" }] }));
    if (kind === "pods") {
      const problems = checkPod(obj);
      if (problems.length) {
        schemaFailures.push({ name: oname, problems });
        note(`schema: pod ${oname}: ${problems.join("; ")}`);
        const strict = url.searchParams.get("fieldValidation") === "Strict";
        const unknownOnly = problems.every((p) => p.startsWith("unknown field"));
        if (unknownOnly && strict) return send(res, 400, status(400, "BadRequest", `Pod in version "v1" cannot be handled as a Pod: strict decoding error: ${problems.join(", ")}`));
        if (!unknownOnly) return send(res, 422, status(422, "Invalid", `Pod "${oname}" is invalid: ${problems.join("; ")}`, { name: oname, kind: "Pod", causes: problems.map((p) => ({ field: "spec", message: p })) }));
      }
    }
    const key = podKey(ns, oname);
    if (map.has(key)) return send(res, 409, status(409, "AlreadyExists", `${kind} "${oname}" already exists`, { name: oname, kind }));
    obj.metadata.namespace = ns;
    obj.metadata.uid = randomUUID();
    obj.metadata.resourceVersion = nextRv();
    obj.metadata.creationTimestamp = new Date().toISOString();
    if (kind === "pods") obj.status = { phase: "Pending" };
    map.set(key, obj);
    emit(kind, "ADDED", obj);
    if (kind === "pods") setTimeout(() => startPod(key), 50);
    return send(res, 201, obj);
  }
  const key = podKey(ns, name || "");
  const obj = map.get(key);
  if (!obj) return send(res, 404, status(404, "NotFound", `${kind} "${name}" not found`, { name, kind }));
  if (req.method === "GET") return send(res, 200, obj);
  if (req.method === "PATCH") {
    if (!(req.headers["content-type"] || "").startsWith("application/merge-patch+json")) return send(res, 415, status(415, "UnsupportedMediaType", "the body of the request was in an unknown format"));
    const patch = JSON.parse(body);
    if (patch.metadata && patch.metadata.ownerReferences) obj.metadata.ownerReferences = patch.metadata.ownerReferences;
    obj.metadata.resourceVersion = nextRv();
    emit(kind, "MODIFIED", obj);
    return send(res, 200, obj);
  }
  if (req.method === "DELETE") {
    let grace = 30;
    if (body) {
      const opts = JSON.parse(body);
      if (opts.gracePeriodSeconds !== undefined) grace = opts.gracePeriodSeconds;
    }
    if (kind === "pods") return send(res, 200, deletePod(key, grace));
    map.delete(key);
    obj.metadata.resourceVersion = nextRv();
    emit(kind, "DELETED", obj);
    return send(res, 200, { kind: "Status", apiVersion: "v1", metadata: {}, status: "Success", details: { name, kind } });
  }
  return send(res, 405, status(405, "MethodNotAllowed", `the server does not allow this method on the requested resource`));
}

// ------------------------------------------------------------ control
async function control(req, res) {
  const body = await readBody(req);
  const url = new URL(req.url, "http://x");
  if (req.method === "GET" && url.pathname === "/state")
    return send(res, 200, { pods: [...store.pods.values()], secrets: [...store.secrets.values()], schemaFailures, requests, running: [...procs.keys()] });
  if (req.method === "POST" && url.pathname === "/inject") {
    injections.push(JSON.parse(body));
    return send(res, 200, { ok: true });
  }
  if (req.method === "POST" && url.pathname === "/phase") {
    const p = JSON.parse(body);
    setPhase(podKey(p.namespace, p.name), p.phase);
    return send(res, 200, { ok: true });
  }
  if (req.method === "POST" && url.pathname === "/drop-watches") {
    for (const w of [...watchStreams]) w.end();
    return send(res, 200, { ok: true });
  }
  if (req.method === "POST" && url.pathname === "/compact") {
    history.length = 0;
    rv += 100;
    compactedRv = rv;
    return send(res, 200, { ok: true });
  }
  send(res, 404, { error: "no such control path" });
}

const tls = { cert: readFileSync(args.cert), key: readFileSync(args.key) };
if (args["client-ca"]) Object.assign(tls, { ca: readFileSync(args["client-ca"]), requestCert: true, rejectUnauthorized: false });
const server = https.createServer(tls, (req, res) => api(req, res).catch((e) => send(res, 500, status(500, "InternalError", String(e)))));
const ctl = http.createServer((req, res) => control(req, res).catch((e) => send(res, 500, { error: String(e) })));
server.listen(0, "127.0.0.1", () => {
  ctl.listen(0, "127.0.0.1", () => {
    process.stdout.write(JSON.stringify({ port: server.address().port, control: ctl.address().port }) + "\n");
  });
});
function shutdown() {
  for (const c of procs.values()) c.kill("SIGKILL");
  process.exit(0);
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
