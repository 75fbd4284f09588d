import pino, { type Logger } from "pino";

/** Paths pino blanks wherever they appear, so a key passed by mistake never reaches a log line. */
export const REDACTED_PATHS = [
  "privateKey", "*.privateKey", "*.*.privateKey", "secretKey", "*.secretKey", "*.*.secretKey",
  "evmKeys", "svmKeys", "relayerKey", "*.evmKeys", "*.svmKeys", "*.relayerKey",
  "apiKeys", "inferenceApiKeys", "authorization", "*.authorization", "headers.authorization", 'headers["x-api-key"]',
  'headers["x-inference-authorization"]',
];

export function createLogger(level = "info", destination?: pino.DestinationStream): Logger {
  return pino({ level, redact: { paths: REDACTED_PATHS, censor: "[redacted]" }, base: { service: "x402-facilitator" } }, destination);
}
