// Atlassian's own Forge manifest validator (npm @forge/manifest), run on each file named on the
// command line (SPEC §8.2: every manifest `sentry-jira forge manifest` writes must pass it).
//
//   node validate.js manifest.yml [more.yml ...]
//
// Prints one JSON object: {"<path>": {"success": bool, "errors": [...], "warnings": [...]}, ...}
// and exits 1 when any file has an error (2 on a usage mistake). Works offline.
'use strict';

const { FullValidationProcessor } = require('@forge/manifest');

// No runtime is treated as deprecated: the check is about this manifest, not about the date.
// One processor for every file (its validators keep no state between files).
let processor = null;

async function validate(path) {
  processor = processor || new FullValidationProcessor({ deprecatedRuntimes: [] });
  const result = await processor.process(path);
  const entries = (result.errors || []).map((e) => ({
    level: e.level,
    message: e.message,
    line: e.line,
    column: e.column,
  }));
  const errors = entries.filter((e) => e.level === 'error');
  return {
    success: Boolean(result.success) && errors.length === 0,
    errors,
    warnings: entries.filter((e) => e.level !== 'error'),
  };
}

async function main(paths) {
  if (paths.length === 0) {
    process.stderr.write('usage: node validate.js manifest.yml [more.yml ...]\n');
    return 2;
  }
  const report = {};
  for (const path of paths) {
    report[path] = await validate(path);
  }
  process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  return Object.values(report).every((r) => r.success) ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`validate.js: ${err && err.stack ? err.stack : err}\n`);
    process.exit(1);
  },
);
