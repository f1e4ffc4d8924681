/**
 * gateway — the front door: HTTP and WebSocket ingestion on uWebSockets.js
 * (or ws + node:http), with limits, CORS, uid cookies, trusted-proxy client
 * ips, health, readiness and Prometheus metrics.
 */
export { createGateway } from './gateway.js';
export type { Gateway } from './gateway.js';
export { PIXEL_GIF } from './http/pixel.js';
