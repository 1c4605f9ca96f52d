#!/usr/bin/env node
// SPDX-License-Identifier: PostgreSQL
// contract.js - check recorded answers of neonpoold against doc/openapi.yaml (t_openapi_contract).
//
// Usage: node contract.js SPEC.json CASES
//   SPEC.json  the document bundled with its $refs resolved (`redocly bundle --dereferenced`)
//   CASES      one answer a line, tab-separated: METHOD  PATH-TEMPLATE  STATUS  BODY-FILE  HEADERS-FILE
// For each answer: the operation must be documented, and so must its status (or its class, 4XX);
// the body must validate against the documented schema (JSON Schema 2020-12, ajv) with every
// object closed (a member the document does not name fails: the document describes every field);
// a 204 or a response documented without content has an empty body; every documented response
// header (Retry-After) is present. An operation marked x-neonpool-pending (not in the router
// yet) is skipped. Prints "ok - ..." / "not ok - ..." lines; exit 1 when one failed.
'use strict';
const fs = require('fs');
const Ajv2020 = require('ajv/dist/2020');
const addFormats = require('ajv-formats');

const [specFile, casesFile] = process.argv.slice(2);
if (!specFile || !casesFile) {
  console.error('usage: node contract.js SPEC.json CASES');
  process.exit(2);
}
const spec = JSON.parse(fs.readFileSync(specFile, 'utf8'));
const ajv = new Ajv2020({ allErrors: true, strict: true, strictTypes: false });
addFormats(ajv);
ajv.addFormat('int64', { type: 'number', validate: (n) => Number.isInteger(n) });
ajv.addFormat('int32', { type: 'number', validate: (n) => Number.isInteger(n) && n >= -2147483648 && n <= 2147483647 });

// Close every object schema that names its properties: unevaluatedProperties false (which sees
// through allOf), except in the branches of an allOf, which the parent closes.
function close(node, inAllOf) {
  if (Array.isArray(node)) return node.map((n) => close(n, inAllOf));
  if (node === null || typeof node !== 'object') return node;
  const out = {};
  for (const [k, v] of Object.entries(node)) {
    // OpenAPI annotations and extensions (x-...), not JSON Schema keywords
    if (k === 'example' || k === 'examples' || k.startsWith('x-')) continue;
    out[k] = k === 'properties' ? Object.fromEntries(Object.entries(v).map(([p, s]) => [p, close(s, false)]))
      : close(v, k === 'allOf');
  }
  if (!inAllOf && (out.properties || out.allOf) && out.additionalProperties === undefined &&
      out.unevaluatedProperties === undefined)
    out.unevaluatedProperties = false;
  return out;
}

function header(file, name) {
  const want = name.toLowerCase();
  for (const line of fs.readFileSync(file, 'utf8').split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0 && line.slice(0, i).trim().toLowerCase() === want) return line.slice(i + 1).trim();
  }
  return null;
}

let failed = 0, passed = 0, skipped = 0;
const seen = new Set();
for (const line of fs.readFileSync(casesFile, 'utf8').split('\n')) {
  if (!line.trim()) continue;
  const [method, path, status, bodyFile, headersFile] = line.split('\t');
  const what = `${method} ${path} ${status}`;
  const problems = [];
  const op = (spec.paths[path] || {})[method.toLowerCase()];
  if (!op) {
    console.log(`not ok - ${what}: operation not in the document`);
    failed++;
    continue;
  }
  if (op['x-neonpool-pending']) {
    console.log(`ok - ${what} # SKIP x-neonpool-pending: ${op['x-neonpool-pending']}`);
    skipped++;
    continue;
  }
  const resp = op.responses[status] || op.responses[status[0] + 'XX'] || op.responses.default;
  const body = fs.readFileSync(bodyFile, 'utf8');
  if (!resp) {
    problems.push(`status ${status} not documented (body ${body.slice(0, 200)})`);
  } else {
    const media = resp.content && resp.content['application/json'];
    if (!media) {
      if (body.length) problems.push(`documented without a body, got ${body.length} bytes`);
    } else {
      let doc;
      try {
        doc = JSON.parse(body);
      } catch (e) {
        problems.push(`body is not JSON: ${e.message}`);
      }
      if (doc !== undefined) {
        const validate = ajv.compile(close(media.schema, false));
        if (!validate(doc))
          for (const e of validate.errors)
            problems.push(`${e.instancePath || '/'} ${e.message}${e.params && e.params.unevaluatedProperty ? ` (${e.params.unevaluatedProperty})` : ''}${e.params && e.params.allowedValues ? ` (${e.params.allowedValues.join(', ')})` : ''}`);
      }
    }
    for (const name of Object.keys(resp.headers || {}))
      if (headersFile && header(headersFile, name) === null) problems.push(`documented header ${name} missing`);
  }
  if (problems.length) {
    console.log(`not ok - ${what}: ${problems.join('; ')}`);
    failed++;
  } else {
    console.log(`ok - ${what}`);
    passed++;
  }
  seen.add(`${method} ${path}`);
}
console.log(`contract: ${passed} answers match the document, ${failed} do not, ${skipped} skipped (pending); ${seen.size} operations exercised`);
process.exit(failed ? 1 : 0);
