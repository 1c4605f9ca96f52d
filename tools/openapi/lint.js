// SPDX-License-Identifier: PostgreSQL
// lint.js - lint doc/openapi.yaml with the rules of redocly.yaml: @redocly/openapi-core, the library
// @redocly/cli's `lint` runs (the same version), without the CLI's 200 MB of dependencies (its
// `npm ci` took 17.7 CPU s of the suite's openapi-lint). Prints the problems as the CLI does and
// exits 1 when there is any (recommended-strict makes every warning an error).
//   node lint.js SPEC                  lint
//   node lint.js --bundle OUT SPEC     write SPEC with every $ref resolved as JSON to OUT (what
//                                      `redocly bundle --dereferenced --ext json` wrote; t_openapi_contract)
'use strict';
const path = require('path');
const fs = require('fs');
const { loadConfig, lint, bundle, formatProblems, getTotals } = require('@redocly/openapi-core');

async function main() {
  const config = await loadConfig({ configPath: path.join(__dirname, 'redocly.yaml') });
  if (process.argv[2] === '--bundle') {
    const out = process.argv[3];
    const res = await bundle({ ref: process.argv[4], config, dereference: true });
    const errors = res.problems.filter((p) => p.severity === 'error');
    if (errors.length > 0) {
      formatProblems(errors, { format: 'codeframe', totals: getTotals(errors), version: '' });
      process.exit(1);
    }
    fs.writeFileSync(out, JSON.stringify(res.bundle.parsed, null, 2) + '\n');
    return;
  }
  const spec = process.argv[2];
  const problems = await lint({ ref: spec, config });
  const totals = getTotals(problems);
  const version = require('@redocly/openapi-core/package.json').version;
  formatProblems(problems, { format: 'codeframe', totals, version, maxProblems: 100 });
  console.log(`openapi-lint: ${spec}: ${totals.errors} errors, ${totals.warnings} warnings, ${totals.ignored} ignored`);
  process.exit(totals.errors + totals.warnings > 0 ? 1 : 0);
}
main().catch((e) => { console.error(`openapi-lint: ${e.stack || e}`); process.exit(2); });
