#!/usr/bin/env node
'use strict';
// The CLI runs from the compiled output; `npm run setup` (or `npm run build`) produces it.
try {
  require.resolve('../dist/cli/main.js');
} catch {
  process.stderr.write(
    'allot: the compiled CLI is missing (dist/cli/main.js). Run `npm run setup` or `npm run build` first.\n',
  );
  process.exit(1);
}
require('../dist/cli/main.js').main(process.argv);
