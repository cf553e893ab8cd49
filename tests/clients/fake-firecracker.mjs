// A fake Firecracker for the Firecracker provider's tests (no firecracker
// binary and no usable KVM on the test machines). It is started the way
// the provider starts the real one:
//   fake-firecracker.mjs [--log-dir D] [--worker-bin B] --api-sock PATH --id ID
// or as the jailer (--jailer first):
//   ... --jailer --id ID --exec-file F --uid U --gid G --chroot-base-dir C -- --api-sock /run/firecracker.socket
// and serves the API on the unix socket, checking every request's method,
// path and body against Firecracker's published API (the swagger
// definitions, transcribed below for the endpoints a provider uses:
// required fields, types, enums, bounds, no unknown fields, as Firecracker's
// own deserializer refuses them) and its rules: configuration only before
// InstanceStart, files and tap devices that exist, MMDS interfaces that were
// configured. A refused request gets 400 {"fault_message"} like the real one.
//
// Each request is appended to D/fc-<id>.jsonl as {method, path, body,
// status, fault}. On InstanceStart with --worker-bin, the "guest" is that
// program, started with HODEI_* from the MMDS data store; SendCtrlAltDel
// stops it and the process exits, as Firecracker does when the guest reboots
// with reboot=k.
import { spawn } from "node:child_process";
import { appendFileSync, existsSync, mkdirSync, unlinkSync } from "node:fs";
import http from "node:http";
import { dirname, join } from "node:path";

const argv = process.argv.slice(2);
const opt = {};
let jailer = false;
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === "--jailer") jailer = true;
  else if (a === "--") continue;
  else if (a.startsWith("--")) opt[a.slice(2)] = argv[++i];
}
let root = ""; // the jail's root, prepended to every path the API is given
let sock = opt["api-sock"];
if (jailer) {
  for (const k of ["id", "exec-file", "uid", "gid", "chroot-base-dir"])
    if (opt[k] === undefined) {
      console.error(`jailer: missing --${k}`);
      process.exit(2);
    }
  root = join(opt["chroot-base-dir"], opt["exec-file"].split("/").pop(), opt.id, "root");
  mkdirSync(join(root, "run"), { recursive: true });
  sock = join(root, sock || "/run/firecracker.socket");
}
if (!sock || !opt.id || !/^[a-zA-Z0-9-]{1,64}$/.test(opt.id)) {
  console.error("firecracker: --api-sock and a valid --id are required");
  process.exit(2);
}
const logFile = join(opt["log-dir"] || dirname(sock), `fc-${opt.id}.jsonl`);

// ------------------------------------------------------------ the published API
// definitions (swagger 2.0, firecracker.yaml): what a provider sends.
const T = {
  MachineConfiguration: {
    required: ["mem_size_mib", "vcpu_count"],
    props: {
      cpu_template: { type: "string", enum: ["C3", "T2", "T2S", "T2CL", "T2A", "V1N1", "None"] },
      smt: { type: "boolean" },
      mem_size_mib: { type: "integer" },
      track_dirty_pages: { type: "boolean" },
      vcpu_count: { type: "integer", minimum: 1, maximum: 32 },
      huge_pages: { type: "string", enum: ["None", "Transparent", "2M"] },
    },
  },
  BootSource: {
    required: ["kernel_image_path"],
    props: { boot_args: { type: "string" }, initrd_path: { type: "string" }, kernel_image_path: { type: "string" } },
  },
  Drive: {
    required: ["drive_id", "is_root_device"],
    props: {
      drive_id: { type: "string" },
      partuuid: { type: "string" },
      is_root_device: { type: "boolean" },
      cache_type: { type: "string", enum: ["Unsafe", "Writeback"] },
      is_read_only: { type: "boolean" },
      path_on_host: { type: "string" },
      rate_limiter: { type: "object" },
      io_engine: { type: "string", enum: ["Sync", "Async"] },
      socket: { type: "string" },
    },
  },
  NetworkInterface: {
    required: ["host_dev_name", "iface_id"],
    props: {
      guest_mac: { type: "string" },
      host_dev_name: { type: "string" },
      iface_id: { type: "string" },
      mtu: { type: "integer", minimum: 68, maximum: 65535 },
      rx_rate_limiter: { type: "object" },
      tx_rate_limiter: { type: "object" },
    },
  },
  MmdsConfig: {
    required: ["network_interfaces"],
    props: {
      version: { type: "string", enum: ["V1", "V2"] },
      network_interfaces: { type: "array", items: "string" },
      ipv4_address: { type: "string" },
      imds_compat: { type: "boolean" },
    },
  },
  InstanceActionInfo: {
    required: ["action_type"],
    props: { action_type: { type: "string", enum: ["FlushMetrics", "InstanceStart", "SendCtrlAltDel"] } },
  },
};

function typeOk(v, t) {
  if (t === "integer") return Number.isInteger(v);
  if (t === "array") return Array.isArray(v);
  if (t === "object") return v !== null && typeof v === "object" && !Array.isArray(v);
  return typeof v === t;
}
function checkBody(def, body) {
  const d = T[def];
  if (!typeOk(body, "object")) return `${def}: the body must be a JSON object`;
  for (const r of d.required) if (body[r] === undefined) return `${def}: missing field \`${r}\``;
  for (const [k, v] of Object.entries(body)) {
    const p = d.props[k];
    if (!p) return `${def}: unknown field \`${k}\`, expected one of ${Object.keys(d.props).join(", ")}`;
    if (!typeOk(v, p.type)) return `${def}: field \`${k}\` must be ${p.type}`;
    if (p.enum && !p.enum.includes(v)) return `${def}: field \`${k}\`: unknown variant \`${v}\``;
    if (p.minimum !== undefined && v < p.minimum) return `${def}: field \`${k}\` below ${p.minimum}`;
    if (p.maximum !== undefined && v > p.maximum) return `${def}: field \`${k}\` above ${p.maximum}`;
    if (p.items && !v.every((e) => typeof e === p.items)) return `${def}: field \`${k}\` items must be ${p.items}`;
  }
  return null;
}

// ------------------------------------------------------------ the VM
const vm = { started: false, boot: null, machine: null, drives: {}, ifaces: {}, mmdsConfig: null, mmds: null };
let guest = null;

function hostPath(p) {
  return root ? join(root, p) : p;
}
function apply(method, path, body) {
  const pre = () => (vm.started ? "The requested operation is not supported after starting the microVM." : null);
  let m;
  if (method === "GET" && path === "/") return { code: 200, body: { app_name: "Firecracker", id: opt.id, state: vm.started ? "Running" : "Not started", vmm_version: "1.7.0-fake" } };
  if (method !== "PUT") return { code: 400, fault: `Invalid request method and/or path: ${method} ${path}.` };
  if (path === "/machine-config") {
    const e = pre() || checkBody("MachineConfiguration", body);
    if (e) return { code: 400, fault: e };
    if (body.smt && body.vcpu_count > 1 && body.vcpu_count % 2) return { code: 400, fault: "The number of vCPUs must be 1 or even when SMT is on." };
    vm.machine = body;
  } else if (path === "/boot-source") {
    const e = pre() || checkBody("BootSource", body);
    if (e) return { code: 400, fault: e };
    if (!existsSync(hostPath(body.kernel_image_path))) return { code: 400, fault: `The kernel file cannot be opened: No such file or directory (os error 2)` };
    if (/HODEI_OTP|otp=/i.test(body.boot_args || "")) return { code: 400, fault: "test: a secret in the kernel command line" };
    vm.boot = body;
  } else if ((m = path.match(/^\/drives\/([^/]+)$/))) {
    const e = pre() || checkBody("Drive", body);
    if (e) return { code: 400, fault: e };
    if (body.drive_id !== m[1]) return { code: 400, fault: "The id from the path does not match the id from the body!" };
    if (body.path_on_host === undefined) return { code: 400, fault: "Unable to create the block device: path_on_host is required for virtio-block" };
    if (!existsSync(hostPath(body.path_on_host))) return { code: 400, fault: `Unable to create the block device: No such file or directory (os error 2)` };
    vm.drives[m[1]] = body;
  } else if ((m = path.match(/^\/network-interfaces\/([^/]+)$/))) {
    const e = pre() || checkBody("NetworkInterface", body);
    if (e) return { code: 400, fault: e };
    if (body.iface_id !== m[1]) return { code: 400, fault: "The id from the path does not match the id from the body!" };
    if (!existsSync(`/sys/class/net/${body.host_dev_name}`)) return { code: 400, fault: `Open tap device failed: Error while creating ifreq structure: No such device (os error 19). Invalid TUN/TAP Backend provided by ${body.host_dev_name}.` };
    if (body.guest_mac !== undefined && !/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(body.guest_mac)) return { code: 400, fault: "Invalid MAC address" };
    vm.ifaces[m[1]] = body;
  } else if (path === "/mmds/config") {
    const e = pre() || checkBody("MmdsConfig", body);
    if (e) return { code: 400, fault: e };
    for (const i of body.network_interfaces) if (!vm.ifaces[i]) return { code: 400, fault: `The list of network interface IDs that allow forwarding MMDS requests is empty or contains an invalid ID: ${i}` };
    vm.mmdsConfig = body;
  } else if (path === "/mmds") {
    if (!typeOk(body, "object")) return { code: 400, fault: "The MMDS data store must be a JSON object" };
    vm.mmds = body;
  } else if (path === "/actions") {
    const e = checkBody("InstanceActionInfo", body);
    if (e) return { code: 400, fault: e };
    if (body.action_type === "InstanceStart") {
      if (vm.started) return { code: 400, fault: "The microVM is already running." };
      if (!vm.boot) return { code: 400, fault: "Cannot start microvm that was not configured with a kernel." };
      if (!Object.values(vm.drives).some((d) => d.is_root_device)) return { code: 400, fault: "test: no root device" };
      vm.started = true;
      startGuest();
    } else if (body.action_type === "SendCtrlAltDel") {
      if (!vm.started) return { code: 400, fault: "The microVM is not running." };
      setTimeout(reboot, 100);
    }
  } else return { code: 400, fault: `Invalid request method and/or path: ${method} ${path}.` };
  return { code: 204 };
}

function startGuest() {
  if (!opt["worker-bin"] || !vm.mmds || !vm.mmds.hodei) return;
  const h = vm.mmds.hodei;
  const env = { PATH: process.env.PATH, HODEI_SERVER: h.server, HODEI_WORKER_ID: h.worker_id, HODEI_OTP: h.otp, HODEI_LOG_LEVEL: h.log_level };
  for (const k of ["ASAN_OPTIONS", "LSAN_OPTIONS", "UBSAN_OPTIONS"]) if (process.env[k]) env[k] = process.env[k];
  guest = spawn(opt["worker-bin"], [], { env, stdio: "inherit" });
  guest.on("exit", () => {
    guest = null;
    reboot(); // the guest's init ended: reboot=k, Firecracker exits
  });
}
function reboot() {
  if (guest) guest.kill("SIGTERM");
  cleanupAndExit(0);
}
function cleanupAndExit(code) {
  try {
    unlinkSync(sock);
  } catch {}
  process.exit(code);
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const text = Buffer.concat(chunks).toString();
    let body;
    let out;
    try {
      body = text ? JSON.parse(text) : undefined;
      if (req.method === "PUT" && (req.headers["content-type"] || "") !== "application/json") out = { code: 400, fault: "test: Content-Type must be application/json" };
      else out = apply(req.method, req.url, body);
    } catch (e) {
      out = { code: 400, fault: `SerdeJson(Error("${e.message}"))` };
    }
    appendFileSync(logFile, JSON.stringify({ method: req.method, path: req.url, body: body === undefined ? null : body, status: out.code, fault: out.fault || null }) + "\n");
    if (out.code === 204) {
      res.writeHead(204);
      return res.end();
    }
    res.writeHead(out.code, { "Content-Type": "application/json" });
    res.end(JSON.stringify(out.body || { fault_message: out.fault }));
  });
});
server.listen(sock);
process.on("SIGTERM", () => cleanupAndExit(0));
process.on("SIGINT", () => cleanupAndExit(0));
