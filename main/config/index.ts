export * from './defaults.js';
export * from './load.js';
export {
  serviceConfigSchema,
  REQUEST_TYPES,
  type RawServiceConfig,
  type RedisConfig,
  type LoggingConfig,
  type SessionLimits,
} from './schema.js';
