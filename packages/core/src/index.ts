export * from "./reasons.ts";
export * from "./networks.ts";
export * from "./schemas.ts";
export * from "./request.ts";
export * from "./responses.ts";
export * from "./mechanism.ts";
export * from "./lease.ts";
export * from "./binding.ts";
