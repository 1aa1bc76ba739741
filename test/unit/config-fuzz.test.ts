/**
 * Hostile config files: YAML garbage, wrong types in every field, huge values, deep nesting and alias
 * bombs. Each is either a valid config or refused with an E_CONFIG error that says what is wrong —
 * never a crash (TypeError, RangeError, a hang) — and `egress serve` with such a file exits 1 with
 * one `could not start:` line.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { EgressError } from '../../main/contracts/errors.js';
import { parseConfig } from '../../main/config/index.js';
import { serviceConfigSchema } from '../../main/config/schema.js';
import { CLI_ENTRY } from '../service/worker-harness.js';

const run = promisify(execFile);

/** Deterministic pseudo-random numbers (a failure can be replayed). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const WRONG_VALUES: unknown[] = [[], {}, 'x', '', -1, 0, 1e308, -1e308, 2 ** 53 + 1, 0.5, true, false, [1, 2], { a: 1 }, 'x'.repeat(20_000), '1e999', '-0', '0x10', '1h', 'NaN', '.inf'];

function garbageDocuments(): string[] {
  const r = rng(12);
  const docs: string[] = [
    '{{{',
    ']]]',
    'a: [',
    'a: "unterminated',
    '- a\n- b\n',
    '"just a string"',
    '42',
    '\t\tredis: x',
    'redis:\n  address: [1, 2, {a: b}]',
    '? complex key\n: value',
    '!!binary aGVsbG8=',
    '!!js/function "function(){}"',
    'a: &x [*x]',
    'health_port: 1e999',
    'health_port: -1',
    'health_port: 99999999999999999999999',
    'cpu_cost: {max_cpu_utilization: .nan}',
    'cpu_cost: {max_cpu_utilization: -.inf}',
    'cpu_cost: {max_memory: 1e308, memory_kill_grace_sec: 1e308}',
    'session_limits: {file_output_max_duration: 99999999999999999999h}',
    'session_limits: {file_output_max_duration: -5s}',
    'logging: {level: 7}',
    'template_port: 70000',
    'redis: {address: "\\u0000\\uffff"}',
    `api_key: ${'k'.repeat(1_000_000)}`,
    '\uFEFF\u0000\u0001',
    // Deep nesting (a recursive walker would overflow the stack).
    'a: ' + '['.repeat(5000) + ']'.repeat(5000),
    'a:\n' + Array.from({ length: 200 }, (_, i) => ' '.repeat(i + 2) + 'b:').join('\n'),
    // Billion laughs: aliases multiplying a value.
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]', ...Array.from({ length: 9 }, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(9).fill(`*${String.fromCharCode(97 + i)}`).join(',')}]`)].join('\n'),
  ];
  for (let i = 0; i < 200; i++) docs.push(randomBytesString(r, Math.floor(r() * 400)));
  return docs;
}

function randomBytesString(r: () => number, n: number): string {
  const alphabet = ':-[]{}!&*?|>\'"#%@`,\n\t 0123456789abcxyz\u00e9\u0000';
  let s = '';
  for (let i = 0; i < n; i++) s += alphabet[Math.floor(r() * alphabet.length)];
  return s;
}

function assertRefusedOrValid(text: string, what: string): void {
  try {
    parseConfig(text);
  } catch (err) {
    assert.ok(err instanceof EgressError, `${what}: threw ${String(err)} (${(err as Error)?.constructor?.name})`);
    assert.equal(err.code, 'E_CONFIG', `${what}: ${err.message}`);
    assert.match(err.message, /^(config: |could not parse config)/, `${what}: ${err.message}`);
    assert.ok(err.message.length < 2000, `${what}: a message of ${err.message.length} characters`);
  }
}

test('config fuzz: garbage YAML, deep nesting, alias bombs, random bytes → valid or E_CONFIG with a clear message', () => {
  const docs = garbageDocuments();
  for (const [i, d] of docs.entries()) assertRefusedOrValid(d, `doc ${i} ${JSON.stringify(d.slice(0, 60))}`);
  // Random binary too.
  for (let i = 0; i < 100; i++) assertRefusedOrValid(randomBytes(64 + i * 8).toString('latin1'), `binary ${i}`);
});

test('config fuzz: every field with every wrong type or extreme value → valid or E_CONFIG naming the field', () => {
  const fields = Object.keys(serviceConfigSchema.shape);
  assert.ok(fields.length > 20);
  let refused = 0;
  for (const field of fields) {
    for (const value of WRONG_VALUES) {
      const text = stringify({ [field]: value });
      try {
        parseConfig(text);
      } catch (err) {
        assert.ok(err instanceof EgressError && err.code === 'E_CONFIG', `${field} = ${JSON.stringify(value).slice(0, 40)}: ${String(err)}`);
        assert.ok(err.message.includes(field), `${field} = ${JSON.stringify(value).slice(0, 40)}: the message names the field: ${err.message}`);
        refused++;
      }
      // Nested: the same values one level down (redis.address, cpu_cost.*, session_limits.* …).
      if (typeof value === 'string' && value.length > 100) continue; // one level is enough for the huge one
      for (const inner of ['address', 'max_memory', 'file_output_max_duration', 'level', 's3', 'x']) {
        assertRefusedOrValid(stringify({ [field]: { [inner]: value } }), `${field}.${inner}`);
      }
    }
  }
  assert.ok(refused > fields.length, `${refused} refusals`);
});

test('egress serve with a hostile config file: exit 1 and one `could not start:` line, no stack trace', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'egress-config-fuzz-'));
  try {
    const cases = ['{{{', 'a: &x [*x]', 'a: ' + '['.repeat(5000) + ']'.repeat(5000)];
    for (const [i, c] of cases.entries()) {
      const file = join(dir, `c${i}.yaml`);
      writeFileSync(file, c, 'latin1');
      const r = await run(process.execPath, [CLI_ENTRY, 'serve', '--config', file], { timeout: 30_000 }).then(
        () => ({ code: 0, out: '' }),
        (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: e.code ?? -1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` }),
      );
      assert.equal(r.code, 1, `case ${i}: exit ${r.code}: ${r.out.slice(0, 500)}`);
      assert.match(r.out, /could not start: \S/, `case ${i}`);
      assert.doesNotMatch(r.out, /\n\s+at /, `case ${i}: no stack trace`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
