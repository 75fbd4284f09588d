import { defineConfig } from "vitest/config";

/**
 * Two projects, every test file in exactly one:
 * - `unit` (`pnpm test:unit`, seconds): files named `*.unit.test.ts`. A file is a unit test when it
 *   starts nothing: no anvil, litesvm front, redis-server, Walrus service, HTTP server on a socket
 *   or child process (a temporary directory or an LMDB store in it is fine). They share one module
 *   cache per worker (`isolate: false`), so a unit test leaves globals and process.env as it found them.
 * - `integration`: every other `*.test.ts`, against the real components (README, "Tests").
 * `pnpm test` runs both.
 */
const UNIT = ["packages/*/src/**/*.unit.test.ts", "test/**/*.unit.test.ts"];
const ALL = ["packages/*/src/**/*.test.ts", "contracts/test/**/*.test.ts", "test/**/*.test.ts"];

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: "forks",
    // Suites start their own chains and servers on free ports; two cores suffice for a few at once.
    maxWorkers: 2,
    projects: [
      { extends: true, test: { name: "unit", include: UNIT, isolate: false } },
      { extends: true, test: { name: "integration", include: ALL, exclude: UNIT } },
    ],
  },
});
