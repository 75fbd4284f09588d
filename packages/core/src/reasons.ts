/**
 * Reason strings a facilitator answers with. Spec names where the spec has one; the reference
 * implementation's names otherwise; our own only where neither has a name for the case.
 * Internally we always use the v2 spelling; `reasonForVersion` maps to v1 where they differ.
 */
export const Reason = {
  // spec
  insufficientFunds: "insufficient_funds",
  validAfter: "invalid_exact_evm_payload_authorization_valid_after",
  validBefore: "invalid_exact_evm_payload_authorization_valid_before",
  valueMismatch: "invalid_exact_evm_payload_authorization_value_mismatch",
  signature: "invalid_exact_evm_payload_signature",
  recipientMismatch: "invalid_exact_evm_payload_recipient_mismatch",
  invalidNetwork: "invalid_network",
  invalidPayload: "invalid_payload",
  invalidRequirements: "invalid_payment_requirements",
  invalidScheme: "invalid_scheme",
  unsupportedScheme: "unsupported_scheme",
  invalidVersion: "invalid_x402_version",
  invalidTransactionState: "invalid_transaction_state",
  unexpectedVerify: "unexpected_verify_error",
  unexpectedSettle: "unexpected_settle_error",
  // reference implementation
  nonceAlreadyUsed: "invalid_exact_evm_nonce_already_used",
  insufficientBalance: "invalid_exact_evm_insufficient_balance",
  tokenNameMismatch: "invalid_exact_evm_token_name_mismatch",
  tokenVersionMismatch: "invalid_exact_evm_token_version_mismatch",
  evmTransactionFailed: "invalid_exact_evm_transaction_failed",
  transferEventMismatch: "invalid_exact_evm_transfer_event_mismatch",
  evmSimulationFailed: "invalid_exact_evm_transaction_simulation_failed",
  assetNotDeployed: "asset_not_deployed_contract",
  duplicateSettlement: "duplicate_settlement",
  settlementPending: "settlement_pending",
  // ERC-2612 permit payloads (no published names exist; ours follow the EIP-3009 family's pattern)
  permitSpenderMismatch: "invalid_exact_evm_permit_spender_mismatch",
  permitDeadline: "invalid_exact_evm_permit_deadline",
  permitNonce: "invalid_exact_evm_permit_nonce",
  // Permit2 (`exact` and `upto` through the x402 Permit2 proxies): the reference implementation's names
  permit2InvalidSpender: "invalid_permit2_spender",
  permit2RecipientMismatch: "invalid_permit2_recipient_mismatch",
  permit2DeadlineExpired: "permit2_deadline_expired",
  permit2NotYetValid: "permit2_not_yet_valid",
  permit2AmountMismatch: "permit2_amount_mismatch",
  permit2TokenMismatch: "permit2_token_mismatch",
  permit2InvalidSignature: "invalid_permit2_signature",
  permit2AllowanceRequired: "permit2_allowance_required",
  permit2SimulationFailed: "permit2_simulation_failed",
  permit2InsufficientBalance: "permit2_insufficient_balance",
  permit2ProxyNotDeployed: "permit2_proxy_not_deployed",
  permit2InvalidNonce: "permit2_invalid_nonce",
  permit2612AmountMismatch: "permit2_2612_amount_mismatch",
  eip2612ExtensionFormat: "invalid_eip2612_extension_format",
  eip2612FromMismatch: "eip2612_from_mismatch",
  eip2612AssetMismatch: "eip2612_asset_mismatch",
  eip2612SpenderNotPermit2: "eip2612_spender_not_permit2",
  eip2612DeadlineExpired: "eip2612_deadline_expired",
  erc20ApprovalFormat: "invalid_erc20_approval_extension_format",
  erc20ApprovalFromMismatch: "erc20_approval_from_mismatch",
  erc20ApprovalAssetMismatch: "erc20_approval_asset_mismatch",
  erc20ApprovalSpenderNotPermit2: "erc20_approval_spender_not_permit2",
  erc20ApprovalTxWrongTarget: "erc20_approval_tx_wrong_target",
  erc20ApprovalTxWrongSelector: "erc20_approval_tx_wrong_selector",
  erc20ApprovalTxWrongSpender: "erc20_approval_tx_wrong_spender",
  erc20ApprovalTxSignerMismatch: "erc20_approval_tx_signer_mismatch",
  erc20ApprovalTxParseFailed: "erc20_approval_tx_parse_failed",
  erc20ApprovalTxFailed: "erc20_approval_tx_failed",
  // ours: what funding a payer's approval may cost us (no published names exist)
  erc20ApprovalFundingTooHigh: "erc20_approval_funding_exceeds_cap",
  erc20ApprovalFundingCoolingOff: "erc20_approval_funded_recently",
  uptoSettlementExceedsAmount: "invalid_upto_evm_payload_settlement_exceeds_amount",
  uptoFacilitatorMismatch: "upto_facilitator_mismatch",
  unsupportedPayloadType: "unsupported_payload_type",
  // EIP-6492 (the reference implementation's names)
  eip6492FactoryNotAllowed: "eip6492_factory_not_allowed",
  smartWalletDeploymentFailed: "smart_wallet_deployment_failed",
  // Solana
  svmInstructionsLength: "invalid_exact_svm_payload_transaction_instructions_length",
  svmInstructions: "invalid_exact_svm_payload_transaction_instructions",
  svmComputeLimit: "invalid_exact_svm_payload_transaction_instructions_compute_limit_instruction",
  svmComputePrice: "invalid_exact_svm_payload_transaction_instructions_compute_price_instruction_too_high",
  svmFeePayerInInstruction: "invalid_exact_svm_payload_transaction_fee_payer_included_in_instruction_accounts",
  svmFeePayerTransferring: "invalid_exact_svm_payload_transaction_fee_payer_transferring_funds",
  svmFeePayerMismatch: "invalid_exact_svm_payload_transaction_fee_payer_mismatch",
  svmMintMismatch: "invalid_exact_svm_payload_mint_mismatch",
  svmRecipientMismatch: "invalid_exact_svm_payload_recipient_mismatch",
  svmAmountMismatch: "invalid_exact_svm_payload_amount_mismatch",
  svmMemoMismatch: "invalid_exact_svm_payload_memo_mismatch",
  svmSignature: "invalid_exact_svm_payload_transaction_signature",
  svmBlockhashExpired: "invalid_exact_svm_payload_transaction_blockhash_expired",
  svmSimulationFailed: "invalid_exact_svm_payload_transaction_simulation_failed",
  svmTransactionFailed: "invalid_exact_svm_transaction_failed",
  svmCreateAta: "invalid_exact_svm_payload_transaction_create_ata_instruction",
  svmVersion: "invalid_exact_svm_payload_transaction_version",
  // hostile callers: caps and bindings that keep our money and gas safe (no published names exist)
  assetNotAllowed: "asset_not_allowed",
  amountNotPositive: "amount_not_positive",
  paymentRequestMismatch: "payment_request_mismatch",
  invalidPaymentIdentifier: "invalid_payment_identifier",
  evmGasLimitExceeded: "invalid_exact_evm_gas_limit_exceeded",
  evmFeeCapExceeded: "invalid_exact_evm_fee_cap_exceeded",
  evmPayerCoolingOff: "invalid_exact_evm_payer_reverted_recently",
  svmComputeUnitsTooHigh: "invalid_exact_svm_payload_transaction_compute_limit_too_high",
  svmPriorityFeeTooHigh: "invalid_exact_svm_payload_transaction_priority_fee_too_high",
  // server level
  unauthorized: "unauthorized",
  rateLimited: "rate_limited",
  payloadTooLarge: "payload_too_large",
  unavailable: "service_unavailable",
  // inference anchoring (no published names exist)
  invalidInferenceRecord: "invalid_inference_record",
  invalidSettlementType: "invalid_settlement_type",
  invalidTeeSignature: "invalid_tee_signature",
  unknownTee: "unknown_tee",
  teeSignatureRequired: "tee_signature_required",
  inferenceUnauthenticated: "inference_unauthenticated",
  // trusted TEEs (TEERegistry) and the tee-gateway's /settle_data
  teeRevoked: "tee_revoked",
  teeMeasurementRevoked: "tee_measurement_revoked",
  teeHeartbeatStale: "tee_heartbeat_stale",
  invalidSettlementData: "invalid_settlement_data",
  gatewayInputMismatch: "gateway_input_hash_mismatch",
  gatewayOutputMismatch: "gateway_output_hash_mismatch",
  notFound: "not_found",
} as const;

export type ReasonCode = (typeof Reason)[keyof typeof Reason];

/** A rejection: the spec's reason string plus a sentence a human can act on. */
export interface Rejection {
  reason: ReasonCode;
  message: string;
}

export const reject = (reason: ReasonCode, message: string): Rejection => ({ reason, message });

/** What a rule check gives: the value it checked and derived, or the rejection (naming the payer when it is known). */
export type RuleResult<T> = { ok: true; value: T } | { ok: false; rejection: Rejection; payer?: string };

const V1_SPELLING: Partial<Record<ReasonCode, string>> = {
  [Reason.valueMismatch]: "invalid_exact_evm_payload_authorization_value",
};

export function reasonForVersion(reason: ReasonCode, x402Version: 1 | 2): string {
  return x402Version === 1 ? (V1_SPELLING[reason] ?? reason) : reason;
}
