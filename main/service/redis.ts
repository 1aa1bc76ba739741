/**
 * The original's `redis` config (protocol `redis/redis.go`) as ioredis options: address, username,
 * password, db, TLS (`tls` or deprecated `use_tls`), sentinel (master name, addresses, credentials),
 * dial/read/write timeouts. Cluster mode (`cluster_addresses`) is not supported by the psrpc bus.
 */
import { readFileSync } from 'node:fs';
import type { RedisOptions } from 'ioredis';
import type { ConnectionOptions } from 'node:tls';
import type { ServiceConfig } from '../config/index.js';
import { errConfig } from '../contracts/errors.js';

type RedisConfig = NonNullable<ServiceConfig['redis']>;

function hostPort(addr: string, defaultPort = 6379): { host: string; port: number } {
  const m = /^\[?([^\]]*?)\]?(?::(\d+))?$/.exec(addr.trim());
  const host = m?.[1] || '127.0.0.1';
  const port = m?.[2] ? Number(m[2]) : defaultPort;
  return { host, port };
}

function tlsOptions(r: RedisConfig): ConnectionOptions | undefined {
  const enabled = r.use_tls || (r.tls?.enabled ?? false);
  if (!enabled) return undefined;
  const t = r.tls;
  const read = (f: string | undefined): Buffer | undefined => {
    if (!f) return undefined;
    try {
      return readFileSync(f);
    } catch (err) {
      throw errConfig(`redis tls: could not read ${f}: ${(err as Error).message}`, err);
    }
  };
  const ca = read(t?.ca_cert_file);
  const cert = read(t?.cert_file);
  const key = read(t?.key_file);
  return {
    rejectUnauthorized: !(t?.insecure_skip_verify ?? false),
    ...(ca ? { ca } : {}),
    ...(cert ? { cert } : {}),
    ...(key ? { key } : {}),
  };
}

/** ioredis options for the service's Redis config; throws a config error when it is unusable. */
export function redisOptionsOf(config: ServiceConfig): RedisOptions {
  const r = config.redis;
  if (!r || (r.address === '' && r.sentinel_addresses.length === 0 && r.cluster_addresses.length === 0)) {
    throw errConfig('redis configuration is required');
  }
  if (r.cluster_addresses.length > 0 && r.sentinel_addresses.length === 0 && r.address === '') {
    throw errConfig('redis cluster_addresses is not supported by this egress; use address or sentinel');
  }
  const tls = tlsOptions(r);
  const common: RedisOptions = {
    ...(r.username ? { username: r.username } : {}),
    ...(r.password ? { password: r.password } : {}),
    db: r.db,
    ...(r.dial_timeout > 0 ? { connectTimeout: r.dial_timeout } : {}),
    ...(r.read_timeout > 0 || r.write_timeout > 0 ? { commandTimeout: Math.max(r.read_timeout, r.write_timeout) } : {}),
    ...(tls ? { tls } : {}),
    // Keep retrying forever with a short cap: a Redis restart must not end the worker.
    retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 1000),
  };
  if (r.sentinel_master_name !== '' && r.sentinel_addresses.length > 0) {
    return {
      ...common,
      name: r.sentinel_master_name,
      sentinels: r.sentinel_addresses.map((a) => hostPort(a, 26379)),
      ...(r.sentinel_username ? { sentinelUsername: r.sentinel_username } : {}),
      ...(r.sentinel_password ? { sentinelPassword: r.sentinel_password } : {}),
      ...(tls ? { enableTLSForSentinelMode: true } : {}),
      sentinelRetryStrategy: (times: number) => Math.min(100 * 2 ** Math.min(times, 5), 2000),
    };
  }
  return { ...common, ...hostPort(r.address) };
}
