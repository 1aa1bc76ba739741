#!/usr/bin/env node
// The `egress` command: runs the compiled CLI (build with `npm run build`).
import { main } from '../dist/main/cli.js';

process.exitCode = await main(process.argv.slice(2));
