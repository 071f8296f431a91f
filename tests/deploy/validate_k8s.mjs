// Validates Kubernetes objects against the OpenAPI schemas of the kubernetes-models packages
// (core and apps objects; the Prometheus Operator and KEDA CRDs from their own packages), offline.
// Usage: node validate_k8s.mjs OBJECTS.json   (a JSON array of objects, e.g. helm template's)
// Prints one line per object; exits 1 if any object is invalid or of a kind it cannot check.
// Run from a folder whose node_modules holds the packages (scripts/install-deploy-tools.sh).
import { readFileSync } from "node:fs";

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
    console.log(`OK ${id}`);
  } catch (e) {
    console.log(`INVALID ${id}: ${e.message}`);
    bad++;
  }
}
console.log(`${objects.length - bad} valid, ${bad} invalid`);
process.exit(bad ? 1 : 0);
