#!/usr/bin/env node
// The gateway has an entry of its own that loads only what it serves with (src/cli/gatewayMain.ts).
if (process.argv[2] === 'gateway') await import('../dist/src/cli/gatewayMain.js');
else await import('../dist/src/cli/main.js');
