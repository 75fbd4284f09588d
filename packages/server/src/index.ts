/**
 * The server as a library: configuration, composition of the running facilitator, the HTTP app and
 * its routes, logging and the operational middleware. The local world (`local-world.ts`) and the
 * command line (`cli.ts`) stay out: they start chains and processes.
 */
export { loadConfig, isProduction, ConfigError, PRODUCTION_VARIABLES, type Config } from "./config.ts";
export { composeServices, StartupError, type Services, type ComposeOptions } from "./compose.ts";
export { createApp, expressServerClasses, type AppOptions, type ExtensionResponder } from "./app.ts";
export { Facilitator, requestedNetwork, type Answer, type SupportedKind, type SupportedResponse, type UnexpectedErrorSink } from "./facilitator.ts";
export { openInferencePipeline, type InferencePipeline } from "./inference-pipeline.ts";
export { INFERENCE_AUTH_HEADER, inferenceCaller, type InferenceCaller } from "./inference-auth.ts";
export { inferenceRoutes, type InferenceRoutesOptions } from "./routes/inference.ts";
export { discoveryRoutes, bazaarExtensionResponses, escapedJson, type DiscoveryRoutesOptions } from "./routes/discovery.ts";
export { paymentsRoutes, type PaymentsRoutesOptions } from "./routes/payments.ts";
export { openPayments, type PaymentsServices } from "./payments/compose-payments.ts";
export { PaymentsRecorder, type SettledPayment } from "./payments/recorder.ts";
export { explorerRoutes, DEFAULT_EXPLORER_LIMITS, type ExplorerLimits, type ExplorerLookup, type ExplorerOptions } from "./routes/explorer.ts";
export { createLogger, REDACTED_PATHS } from "./logger.ts";
export * from "./ops/index.ts";
