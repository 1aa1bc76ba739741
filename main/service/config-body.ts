/**
 * The loaded service config as YAML for a handler process (the original passes its handlers a YAML
 * config body too). Loaded durations are milliseconds while a bare YAML number means seconds, so
 * every duration field (found by walking the zod schema) is written as a Go duration `<n>ms`:
 * `parseConfig(configBodyOf(c))` gives back `c`.
 */
import YAML from 'yaml';
import { z } from 'zod';
import type { ServiceConfig } from '../config/index.js';
import { serviceConfigSchema } from '../config/schema.js';
import { goDurationMs } from '../contracts/storage.js';

function unwrap(s: z.ZodTypeAny): z.ZodTypeAny {
  for (;;) {
    if (s instanceof z.ZodDefault) s = s._def.innerType as z.ZodTypeAny;
    else if (s instanceof z.ZodOptional || s instanceof z.ZodNullable) s = s._def.innerType as z.ZodTypeAny;
    else return s;
  }
}

function convert(value: unknown, schema: z.ZodTypeAny): unknown {
  const s = unwrap(schema);
  if (s === goDurationMs) return typeof value === 'number' ? `${value}ms` : value;
  if (value === null || typeof value !== 'object') return value;
  if (s instanceof z.ZodObject) {
    const shape = s.shape as Record<string, z.ZodTypeAny>;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) out[k] = shape[k] ? convert(v, shape[k]) : v;
    return out;
  }
  if (s instanceof z.ZodRecord) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) out[k] = convert(v, s._def.valueType as z.ZodTypeAny);
    return out;
  }
  if (s instanceof z.ZodArray && Array.isArray(value)) return value.map((v) => convert(v, s._def.type as z.ZodTypeAny));
  return value;
}

export function configBodyOf(config: ServiceConfig): string {
  return YAML.stringify(convert(config, serviceConfigSchema));
}
