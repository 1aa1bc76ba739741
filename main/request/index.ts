export * from './plan.js';
export * from './cost.js';
export * from './redact.js';
export * from './filename.js';
export * from './urls.js';
export * from './encoding.js';
export * from './cost-model.js';
