/** Operational building blocks for the HTTP server: metrics, API keys, rate limits, readiness, start-up checks, shutdown. */
export * from "./metrics.ts";
export * from "./auth.ts";
export * from "./rate-limit.ts";
export * from "./readiness.ts";
export * from "./startup-checks.ts";
export * from "./shutdown.ts";
export * from "./rejection.ts";
export * from "./log-scrub.ts";
export * from "./secure-defaults.ts";
export * from "./trust-proxy.ts";
