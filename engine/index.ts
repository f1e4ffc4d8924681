/**
 * engine — the actor system, routing keys, envelope, config, registry, errors,
 * clock, logging and the shutdown order. Everything else builds on this.
 */
export { createEngine } from './engine.js';
export type { Engine, EngineOptions } from './engine.js';
export * from './errors/index.js';
export * from './keys/index.js';
export * from './envelope/index.js';
export * from './clock/index.js';
export * from './config/index.js';
export * from './registry/index.js';
export * from './system/index.js';
export * from './lifecycle/index.js';
export * from './logger/index.js';
export * from './ingest/index.js';
