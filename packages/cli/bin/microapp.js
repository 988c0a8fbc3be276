#!/usr/bin/env node
// The microapp command: the bundled CLI (dist/, made by `npm run build:cli`) while it is newer than every
// source it was built from; otherwise the TypeScript sources, through tsx's loader.
// MICROAPP_CLI_SOURCES=1 always runs the sources.
import { currentBundle } from './current-bundle.js';

const bundle =
  process.env.MICROAPP_CLI_SOURCES === '1'
    ? null
    : currentBundle(new URL('../dist/', import.meta.url), new URL('../../../', import.meta.url));
if (bundle) await import(bundle);
else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/main.ts');
}
