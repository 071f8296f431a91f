// Validates Kubernetes objects against the OpenAPI schemas of the kubernetes-models packages
// (core and apps objects; the Prometheus Operator and KEDA CRDs from their own packages), offline:
// types, required fields and enums by the packages' validators, and unknown fields (a misspelt
// key, which the schemas alone let through) by walking the packages' type declarations, as the
// API server's strict field validation would.
// Usage: node validate_k8s.mjs OBJECTS.json   (a JSON array of objects, e.g. helm template's)
// Prints one line per object; exits 1 if any object is invalid or of a kind it cannot check.
// Lives beside node_modules holding the packages (scripts/install-deploy-tools.sh).
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const MODULES = join(dirname(fileURLToPath(import.meta.url)), "node_modules");

// The .d.ts file of an import specifier, from the file importing it.
function declarationFile(spec, from) {
  const bare = spec.replace(/\.js$/, "");
  if (bare.startsWith(".")) return resolve(dirname(from), bare + ".d.ts");
  return join(MODULES, bare + ".d.ts");
}

// {props: name -> type text, imports: local name -> file} of the interface a declaration file
// exports under `name` (or its first interface).
const parsed = new Map();
function declaration(file, name) {
  const key = `${file}#${name}`;
  if (parsed.has(key)) return parsed.get(key);
  const text = readFileSync(file, "utf8");
  const imports = {};
  for (const m of text.matchAll(/import \{ ([^}]+) \} from "([^"]+)"/g)) {
    for (const local of m[1].split(",").map((x) => x.trim())) imports[local] = declarationFile(m[2], file);
  }
  let iface = null;
  for (const m of text.matchAll(/export type \{ (\w+) as (\w+)/g)) if (m[2] === name) iface = m[1];
  const start = iface ? text.indexOf(`export interface ${iface} `) : text.indexOf("export interface ");
  const props = {};
  if (start >= 0) {
    const body = text.slice(text.indexOf("{", start) + 1, text.indexOf("\n}", start));
    // Properties sit at four spaces of indentation; deeper lines belong to inline types.
    for (const m of body.matchAll(/^ {4}"([^"]+)"\??: (.*)$/gm)) props[m[1]] = m[2].replace(/;$/, "");
  }
  // An interface that extends others (the Prometheus Operator's Endpoint extends its HTTP client
  // config, where tlsConfig lives) has their properties too.
  if (start >= 0) {
    const header = text.slice(start, text.indexOf("{", start));
    const ext = header.match(/ extends ([\w, ]+)/);
    for (const base of ext ? ext[1].split(",").map((x) => x.trim()) : []) {
      if (!imports[base]) continue;
      let b;
      try {
        b = declaration(imports[base], base);
      } catch {
        continue;
      }
      for (const [k, v] of Object.entries(b.props)) if (!(k in props)) props[k] = v;
      for (const [k, v] of Object.entries(b.imports)) if (!(k in imports)) imports[k] = v;
    }
  }
  const result = { props, imports, exact: start >= 0 };
  parsed.set(key, result);
  return result;
}

// Unknown fields of `value` against the interface `name` of `file`, as "path: field" strings.
function unknownFields(value, file, name, path, out) {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return;
  const d = declaration(file, name);
  if (!d.exact || Object.keys(d.props).length === 0) return;
  for (const [k, v] of Object.entries(value)) {
    const type = d.props[k];
    if (type === undefined) {
      out.push(`${path}.${k}: unknown field`);
      continue;
    }
    const array = type.match(/^Array<(\w+)>$/);
    const ref = array ? array[1] : type;
    if (!d.imports[ref]) continue;  // a scalar, a map or an inline type: not walked
    const items = array ? (Array.isArray(v) ? v : []) : [v];
    items.forEach((item, i) =>
      unknownFields(item, d.imports[ref], ref, array ? `${path}.${k}[${i}]` : `${path}.${k}`, out));
  }
}

const packages = {
  "monitoring.coreos.com": "@kubernetes-models/prometheus-operator",
  "keda.sh": "@kubernetes-models/keda",
};

function modulePath(apiVersion, kind) {
  const slash = apiVersion.indexOf("/");
  if (slash < 0) return `kubernetes-models/${apiVersion}/${kind}`;  // core: v1
  const group = apiVersion.slice(0, slash);
  const pkg = packages[group] ?? "kubernetes-models";
  return `${pkg}/${apiVersion}/${kind}`;
}

const objects = JSON.parse(readFileSync(process.argv[2], "utf8"));
let bad = 0;
for (const obj of objects) {
  const id = `${obj.apiVersion} ${obj.kind} ${obj.metadata?.name}`;
  let Model;
  try {
    Model = (await import(modulePath(obj.apiVersion, obj.kind)))[obj.kind];
  } catch (e) {
    console.log(`UNKNOWN ${id}: no schema (${e.code ?? e.message})`);
    bad++;
    continue;
  }
  try {
    new Model(obj).validate();
  } catch (e) {
    console.log(`INVALID ${id}: ${e.message}`);
    bad++;
    continue;
  }
  const unknown = [];
  const file = declarationFile(modulePath(obj.apiVersion, obj.kind), join(MODULES, "x"));
  unknownFields(obj, file, `I${obj.kind}`, obj.kind, unknown);
  if (unknown.length) {
    console.log(`INVALID ${id}: ${unknown.join("; ")}`);
    bad++;
    continue;
  }
  console.log(`OK ${id}`);
}
console.log(`${objects.length - bad} valid, ${bad} invalid`);
process.exit(bad ? 1 : 0);
