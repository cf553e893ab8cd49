#!/usr/bin/env bash
# The Helm chart charts/hodei, checked with a real helm (scripts/get-helm):
# lint (strict, values.schema.json) and template for the default values and
# a multi-replica values file; every rendered manifest validated against the
# Kubernetes schemas (validate.mjs); a values file with a mistake refused,
# naming the field; and what the chart promises, read from the rendered
# manifests (replicas, probes, least RBAC, no secret in clear).
set -euo pipefail
root="${HODEI_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}"
here="$root/tests/chart"
chart="$root/charts/hodei"
tools=$("$root/scripts/get-helm")
helm="$tools/helm"
cd "$here" # node resolves the packages from here (the inline script below too)
[ -d node_modules/kubernetes-models ] || npm install --no-audit --no-fund --silent
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
fails=0
pass() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

for v in default multi-replica; do
  f="$chart/ci/$v-values.yaml"
  "$helm" lint "$chart" --strict -f "$f" >"$out/lint-$v.txt" 2>&1 && pass "helm lint --strict ($v values)" ||
    { cat "$out/lint-$v.txt"; fail "helm lint ($v values)"; }
  "$helm" template hodei "$chart" -n hodei -f "$f" >"$out/$v.yaml" 2>"$out/template-$v.err" &&
    pass "helm template ($v values)" || { cat "$out/template-$v.err"; fail "helm template ($v values)"; }
  node "$here/validate.mjs" "$out/$v.yaml" && pass "every manifest valid ($v values)" ||
    fail "manifests ($v values)"
done

# A mistake in the values is refused by the schema, naming the field.
printf 'postgresql: {url: "postgresql://h/d"}\nnats: {url: "nats://n:4222"}\nscheduler: {replica: 3}\nedge: {replicas: -1}\n' >"$out/bad.yaml"
if "$helm" lint "$chart" --strict -f "$out/bad.yaml" >"$out/bad.txt" 2>&1; then
  fail "a values file with mistakes passed helm lint"
elif grep -q "scheduler: Additional property replica is not allowed" "$out/bad.txt" &&
     grep -q "edge.replicas: Must be greater than or equal to 0" "$out/bad.txt"; then
  pass "bad values refused, naming scheduler.replica and edge.replicas"
else
  cat "$out/bad.txt"; fail "bad values refused without naming the fields"
fi
# Without a database the chart refuses to render.
if "$helm" template hodei "$chart" >"$out/none.txt" 2>&1; then
  fail "rendered without postgresql.url"
else
  grep -q "postgresql.url or postgresql.existingSecret is required" "$out/none.txt" &&
    pass "no database: refused with a clear message" || { cat "$out/none.txt"; fail "no database message"; }
fi

# What the chart promises, read from what it renders.
node --input-type=module - "$out/default.yaml" "$out/multi-replica.yaml" <<'JS' || fails=$((fails + 1))
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";
const load = (f) => parseAllDocuments(readFileSync(f, "utf8")).map((d) => d.toJS()).filter(Boolean);
const [def, multi] = process.argv.slice(2).map(load);
let bad = 0;
const check = (ok, what) => { console.log(`${ok ? "ok" : "FAIL"}: ${what}`); if (!ok) bad++; };
const of = (docs, kind) => docs.filter((d) => d.kind === kind);
const comp = (d) => d.metadata.labels["app.kubernetes.io/component"];
const replicas = (docs) => Object.fromEntries(of(docs, "Deployment").map((d) => [comp(d), d.spec.replicas]));
check(JSON.stringify(replicas(def)) === JSON.stringify({ edge: 2, provisioner: 2, relay: 2, scheduler: 2, supervisor: 2 }),
  `default replicas ${JSON.stringify(replicas(def))}`);
check(JSON.stringify(replicas(multi)) === JSON.stringify({ edge: 4, provisioner: 3, relay: 3, scheduler: 3, supervisor: 2 }),
  `multi-replica values scale each daemon on its own ${JSON.stringify(replicas(multi))}`);
for (const docs of [def, multi]) {
  for (const d of of(docs, "Deployment")) {
    const c = d.spec.template.spec.containers[0];
    check(c.livenessProbe?.httpGet?.path === "/healthz" && c.readinessProbe?.httpGet?.path === "/readyz",
      `${d.metadata.name}: liveness /healthz, readiness /readyz`);
    check(!!c.resources?.requests?.cpu && !!c.resources?.limits?.memory, `${d.metadata.name}: resources`);
    const env = Object.fromEntries((c.env || []).map((e) => [e.name, e]));
    check(!!env.HODEI_DATABASE_URL?.valueFrom?.secretKeyRef && !!env.HODEI_NATS_URL?.valueFrom?.secretKeyRef,
      `${d.metadata.name}: database and NATS URLs from a Secret, never in clear`);
    check(env.HODEI_HEALTH_LISTEN?.value === "0.0.0.0:9090", `${d.metadata.name}: health.listen set`);
    if (docs === multi)
      check(env.HODEI_NATS_USER?.value === "hodei" &&
            env.HODEI_NATS_PASSWORD?.valueFrom?.secretKeyRef?.name === "hodei-nats" &&
            env.HODEI_NATS_PASSWORD?.valueFrom?.secretKeyRef?.key === "nats-password",
        `${d.metadata.name}: NATS user, and its password from the Secret hodei-nats`);
    const sa = d.spec.template.spec;
    check(comp(d) === "provisioner" ? sa.automountServiceAccountToken === true : sa.automountServiceAccountToken === false,
      `${d.metadata.name}: a service account token only for the provisioner`);
  }
  check(!JSON.stringify(of(docs, "Deployment")).includes("secret@"), "no password in any Deployment");
  const pdbs = of(docs, "PodDisruptionBudget").map(comp).sort();
  check(pdbs.join() === "edge,provisioner,relay,scheduler,supervisor", `a PodDisruptionBudget per daemon (${pdbs})`);
  check(of(docs, "ClusterRole").length === 0 && of(docs, "ClusterRoleBinding").length === 0, "no cluster-wide RBAC");
  const role = of(docs, "Role")[0];
  const rules = JSON.stringify(role.rules);
  check(rules === JSON.stringify([{ apiGroups: [""], resources: ["pods"], verbs: ["create", "get", "list", "watch", "delete"] },
    { apiGroups: [""], resources: ["secrets"], verbs: ["create", "patch", "delete"] }]), `least RBAC: pods and secrets only ${rules}`);
  const job = of(docs, "Job")[0];
  check(job.metadata.annotations["helm.sh/hook"] === "pre-install,pre-upgrade", "migration Job is a pre-install/pre-upgrade hook");
  check(job.spec.template.spec.containers[0].command[0] === "hodei-migrate", "migration Job runs hodei-migrate");
  const edge = of(docs, "Service").find((s) => s.metadata.name.endsWith("-edge"));
  check(edge.spec.ports[0].port === 50051 && edge.spec.ports[0].appProtocol === "grpc", "edge Service on gRPC 50051");
  check(of(docs, "Service").filter((s) => s.metadata.labels["hodei.dev/metrics"] === "true").length === 5, "a metrics Service per daemon");
}
check(of(def, "ServiceMonitor").length === 0 && of(multi, "ServiceMonitor").length === 1, "ServiceMonitor only when enabled");
check(of(multi, "Role")[0].metadata.namespace === "hodei-workers" && of(multi, "RoleBinding")[0].subjects[0].namespace === "hodei",
  "worker pods' namespace: Role there, bound to the provisioner's account in the release's namespace");
check(of(multi, "Secret").every((s) => !s.data?.["database-url"]), "an existing database Secret is used, not copied");
const edgeEnv = of(multi, "Deployment").find((d) => comp(d) === "edge").spec.template.spec.containers[0].env.map((e) => e.name);
check(["HODEI_GRPC_TLS_CERT", "HODEI_GRPC_TLS_CLIENT_CA", "HODEI_SECRETS_MASTER_KEY", "HODEI_SUBMIT_QUEUE_MAX"].every((n) => edgeEnv.includes(n)),
  "edge: TLS, mutual TLS, master key and config map to HODEI_* variables");
process.exit(bad ? 1 : 0);
JS

echo
if [ "$fails" -ne 0 ]; then
  echo "chart: $fails check(s) failed"
  exit 1
fi
echo "chart: every check passed (helm $("$helm" version --short))"
