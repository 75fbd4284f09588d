export { createEvmExactMechanism, type EvmExactMechanism, type EvmExactMechanismOptions } from "./mechanism.ts";
export type { TransferMethodHandler, EvmChainContext, EvmPayment, SettleCall, PlannedCall, OnChainCheck } from "./transfer-method.ts";
export {
  TRANSFER_WITH_AUTHORIZATION_TYPES,
  VALID_BEFORE_MARGIN_SECONDS,
  eip3009TypedData,
  checkEip3009Payment,
  checkEip3009Window,
  tokenDomain,
  type TokenDomain,
  type Eip3009Authorization,
  type Eip3009Payment,
} from "./eip3009.ts";
export { createEip3009Handler, eip3009LedgerKey, transferWithAuthorizationCall, type Eip3009EvmPayment } from "./eip3009-handler.ts";
export { signEip3009Payload, type Eip3009PaymentInput } from "./eip3009-client.ts";
export { recoverTypedDataSigner, recoverDigestSigner, splitSignature, type SplitSignature } from "./signature.ts";
export { SignerPool, EvmSigner, type SignedTx, type TxRequest, type SignerChain } from "./signer-pool.ts";
export { NonceManager } from "./nonce-manager.ts";
export { FeeOracle, type FeeQuote } from "./fees.ts";
export { sendRawTransaction, lacksFunds, type SendResult } from "./send.ts";
export { getReceipt, waitForReceipt, type WaitOptions } from "./receipt.ts";
export { txFeesOf, feeQuoteOf, type RecordedTx, type TxFees, type TxOutcome } from "./recorded-tx.ts";
export { replacementFees, replacementDueAt, signReplacement, ReplacementCallError } from "./replacement.ts";
export { txOutcome } from "./tx-outcome.ts";
export { RecordedTxSender, type RecordedTxSenderOptions } from "./recorded-tx-sender.ts";
export { isTransientRpcError, nodeMessage, revertReason } from "./rpc-errors.ts";
export { batchingHttp, JsonRpcHttpClient, type BatchingHttpOptions, type BatchingHttpTransport } from "./rpc-transport.ts";
export type { NetworkRuntime, SettleConfig } from "./settle.ts";
export {
  PERMIT_TRANSFER_METHOD,
  PERMIT_TYPES,
  PERMIT_DEADLINE_MARGIN_SECONDS,
  ALLOWANCE_GAS,
  permitTypedData,
  checkPermitPayment,
  checkPermitDeadline,
  permitLedgerKey,
  planPermitSettlement,
  type PermitMessage,
  type PermitPayment,
  type PermitChainState,
  type PermitPlan,
} from "./permit.ts";
export { createPermitHandler, permitCall, transferFromCall, type PermitEvmPayment, type PermitHandlerOptions } from "./permit-handler.ts";
export { readPermitState, permitTokenAbi, type PermitReadRequest } from "./permit-reads.ts";
export {
  signPermitPayload,
  PermitExactEvmScheme,
  registerPermitScheme,
  type PermitSigner,
  type PermitPaymentInput,
  type PermitSchemeOptions,
  type RegisterPermitSchemeConfig,
} from "./permit-client.ts";
export { PermitExactServerScheme, type PermitAsset } from "./permit-server.ts";
