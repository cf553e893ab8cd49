// Validates rendered Kubernetes manifests (multi-document YAML files given
// as arguments) the way an API server would refuse them, without one:
//  1. the object against the Kubernetes OpenAPI schema of its apiVersion and
//     kind (types, enums, required fields, formats), through the validators
//     that kubernetes-models generates from that schema (prometheus-operator's
//     for ServiceMonitor);
//  2. no field Kubernetes does not know, at any depth (a typo such as
//     `readinesProbe` passes step 1, since the OpenAPI schema allows extra
//     fields): walked with @kubernetes/client-node's model attribute maps;
//  3. names and label values as the API server checks them (DNS-1123/1035).
// Exit 0 when every manifest passes; 1 with one line per problem otherwise.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { parseAllDocuments } from "yaml";

const require = createRequire(import.meta.url);
const k8s = require("@kubernetes/client-node");

const problems = [];
let checked = 0;

function modelPath(apiVersion, kind) {
  if (apiVersion === "monitoring.coreos.com/v1")
    return `@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/${kind}`;
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  return group ? `kubernetes-models/${group}/${version}/${kind}` : `kubernetes-models/${version}/${kind}`;
}

// The client-node class of a kind, e.g. apps/v1 Deployment -> V1Deployment.
function clientClass(apiVersion, kind) {
  const version = apiVersion.split("/").pop();
  const name = version.charAt(0).toUpperCase() + version.slice(1) + kind;
  return k8s[name] && typeof k8s[name].getAttributeTypeMap === "function" ? name : null;
}

function unknownFields(value, type, path, out) {
  if (value === null || value === undefined) return;
  let m;
  if ((m = /^Array<(.+)>$/.exec(type))) {
    if (Array.isArray(value)) value.forEach((v, i) => unknownFields(v, m[1], `${path}[${i}]`, out));
    return;
  }
  if ((m = /^\{ \[key: string\]: (.+); \}$/.exec(type))) {
    if (typeof value === "object") for (const [k, v] of Object.entries(value)) unknownFields(v, m[1], `${path}.${k}`, out);
    return;
  }
  const cls = k8s[type];
  if (!cls || typeof cls.getAttributeTypeMap !== "function" || typeof value !== "object" || Array.isArray(value)) return;
  const attrs = new Map(cls.getAttributeTypeMap().map((a) => [a.baseName, a.type]));
  for (const [k, v] of Object.entries(value)) {
    if (!attrs.has(k)) out.push(`${path}.${k}: unknown field (not in ${type})`);
    else unknownFields(v, attrs.get(k), `${path}.${k}`, out);
  }
}

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

function metaProblems(doc, where, out) {
  const md = doc.metadata || {};
  if (!md.name) out.push(`${where}: metadata.name is missing`);
  else if (md.name.length > 253 || !DNS1123_SUBDOMAIN.test(md.name)) out.push(`${where}: metadata.name is not a DNS-1123 subdomain`);
  else if (doc.kind === "Service" && (md.name.length > 63 || !DNS1035_LABEL.test(md.name)))
    out.push(`${where}: a Service name must be a DNS-1035 label of at most 63 characters`);
  const labelSets = [md.labels, doc.spec?.template?.metadata?.labels, doc.spec?.selector?.matchLabels];
  for (const labels of labelSets)
    for (const [k, v] of Object.entries(labels || {}))
      if (typeof v !== "string" || v.length > 63 || !LABEL_VALUE.test(v)) out.push(`${where}: label ${k}=${v} is not a valid label value`);
}

for (const file of process.argv.slice(2)) {
  const docs = parseAllDocuments(readFileSync(file, "utf8"));
  for (const d of docs) {
    if (d.errors.length) {
      problems.push(`${file}: YAML: ${d.errors[0].message}`);
      continue;
    }
    const doc = d.toJS();
    if (doc === null || doc === undefined) continue;
    const where = `${file}: ${doc.kind}/${doc.metadata?.name}`;
    if (!doc.apiVersion || !doc.kind) {
      problems.push(`${where}: apiVersion and kind are required`);
      continue;
    }
    let Model;
    try {
      Model = (await import(modelPath(doc.apiVersion, doc.kind)))[doc.kind];
    } catch {
      problems.push(`${where}: no schema for ${doc.apiVersion} ${doc.kind} (not a known Kubernetes kind)`);
      continue;
    }
    try {
      new Model(doc).validate();
    } catch (e) {
      problems.push(`${where}: ${e.message}`);
    }
    const cls = clientClass(doc.apiVersion, doc.kind);
    if (cls) unknownFields(doc, cls, doc.kind, problems);
    metaProblems(doc, where, problems);
    checked++;
  }
}
for (const p of problems) console.log(p);
if (problems.length) {
  console.log(`${problems.length} problem(s) in ${checked} manifest(s)`);
  process.exit(1);
}
console.log(`${checked} manifest(s) valid`);
