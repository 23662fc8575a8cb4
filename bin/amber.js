#!/usr/bin/env node
// The package entry point stays plain JavaScript so any Node can start it; the CLI itself is
// TypeScript that Node 24 runs directly (type stripping).
import { main } from '../src/cli/main.ts';

process.exitCode = await main(process.argv.slice(2));
