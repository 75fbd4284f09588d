export { createSvmExactMechanism, settlementKey, simulationRejection, type SvmExactMechanismOptions } from "./mechanism.ts";
export * from "./rules.ts";
export { decodePaymentTransaction, type PaymentTransaction, type PaymentInstruction } from "./transaction.ts";
export { loadFeePayerKey, type FeePayerKey, type SecretKeyInput } from "./signing.ts";
export * from "./constants.ts";
