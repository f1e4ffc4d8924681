/**
 * engine/registry — components (enrichers, handlers, sinks) registered by type
 * name, and the start-time topology check of the config's components and
 * their key subscriptions.
 */
export { createRegistry } from './registry.js';
export type { ComponentDefinition, ResolvedComponent, Topology, Registry } from './registry.js';
