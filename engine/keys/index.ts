/**
 * engine/keys — routing keys (`direction.channel.service.name`), their builders
 * from URL paths and payloads, and compiled subscription matching whose cost
 * does not grow with the number of subscriptions.
 */
export * from './grammar.js';
export * from './build.js';
export * from './matcher.js';
