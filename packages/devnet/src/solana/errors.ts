/**
 * litesvm's transaction errors in the JSON shapes a real Solana RPC node answers with
 * (`"BlockhashNotFound"`, `{"InstructionError":[2,{"Custom":1}]}`), and the messages it prints.
 */

/** A TransactionError as Solana's RPC serialises it. */
export type TransactionErrorJson = string | Record<string, unknown>;

// Variant order of solana_transaction_error::TransactionError / InstructionError (litesvm passes indices).
const TRANSACTION_ERRORS = [
  "AccountInUse", "AccountLoadedTwice", "AccountNotFound", "ProgramAccountNotFound", "InsufficientFundsForFee",
  "InvalidAccountForFee", "AlreadyProcessed", "BlockhashNotFound", "CallChainTooDeep", "MissingSignatureForFee",
  "InvalidAccountIndex", "SignatureFailure", "InvalidProgramForExecution", "SanitizeFailure", "ClusterMaintenance",
  "AccountBorrowOutstanding", "WouldExceedMaxBlockCostLimit", "UnsupportedVersion", "InvalidWritableAccount",
  "WouldExceedMaxAccountCostLimit", "WouldExceedAccountDataBlockLimit", "TooManyAccountLocks",
  "AddressLookupTableNotFound", "InvalidAddressLookupTableOwner", "InvalidAddressLookupTableData",
  "InvalidAddressLookupTableIndex", "InvalidRentPayingAccount", "WouldExceedMaxVoteCostLimit",
  "WouldExceedAccountDataTotalLimit", "MaxLoadedAccountsDataSizeExceeded", "ResanitizationNeeded",
  "InvalidLoadedAccountsDataSizeLimit", "UnbalancedTransaction", "ProgramCacheHitMaxLimit", "CommitCancelled",
] as const;

const INSTRUCTION_ERRORS = [
  "GenericError", "InvalidArgument", "InvalidInstructionData", "InvalidAccountData", "AccountDataTooSmall",
  "InsufficientFunds", "IncorrectProgramId", "MissingRequiredSignature", "AccountAlreadyInitialized",
  "UninitializedAccount", "UnbalancedInstruction", "ModifiedProgramId", "ExternalAccountLamportSpend",
  "ExternalAccountDataModified", "ReadonlyLamportChange", "ReadonlyDataModified", "DuplicateAccountIndex",
  "ExecutableModified", "RentEpochModified", "NotEnoughAccountKeys", "AccountDataSizeChanged", "AccountNotExecutable",
  "AccountBorrowFailed", "AccountBorrowOutstanding", "DuplicateAccountOutOfSync", "InvalidError",
  "ExecutableDataModified", "ExecutableLamportChange", "ExecutableAccountNotRentExempt", "UnsupportedProgramId",
  "CallDepth", "MissingAccount", "ReentrancyNotAllowed", "MaxSeedLengthExceeded", "InvalidSeeds", "InvalidRealloc",
  "ComputationalBudgetExceeded", "PrivilegeEscalation", "ProgramEnvironmentSetupFailure", "ProgramFailedToComplete",
  "ProgramFailedToCompile", "Immutable", "IncorrectAuthority", "AccountNotRentExempt", "InvalidAccountOwner",
  "ArithmeticOverflow", "UnsupportedSysvar", "IllegalOwner", "MaxAccountsDataAllocationsExceeded",
  "MaxAccountsExceeded", "MaxInstructionTraceLengthExceeded", "BuiltinProgramsMustConsumeComputeUnits", "BorshIoError",
] as const;

/** What litesvm's `FailedTransactionMetadata.err()` returns: an index for fieldless variants, else a napi object. */
type LiteSvmError = number | { constructor: { name: string }; [k: string]: unknown };

export function transactionErrorToJson(err: unknown): TransactionErrorJson {
  const e = err as LiteSvmError;
  if (typeof e === "number") return TRANSACTION_ERRORS[e] ?? `UnknownTransactionError(${e})`;
  switch (e.constructor.name) {
    case "TransactionErrorInstructionError":
      return { InstructionError: [e.index, instructionErrorToJson((e.err as () => unknown)())] };
    case "TransactionErrorDuplicateInstruction":
      return { DuplicateInstruction: e.index };
    case "TransactionErrorInsufficientFundsForRent":
      return { InsufficientFundsForRent: { account_index: e.accountIndex } };
    case "TransactionErrorProgramExecutionTemporarilyRestricted":
      return { ProgramExecutionTemporarilyRestricted: { account_index: e.accountIndex } };
    default:
      return String(e);
  }
}

function instructionErrorToJson(err: unknown): unknown {
  const e = err as LiteSvmError;
  if (typeof e === "number") return INSTRUCTION_ERRORS[e] ?? `UnknownInstructionError(${e})`;
  if ("code" in e) return { Custom: e.code };
  if ("msg" in e) return { BorshIoError: e.msg };
  return String(e);
}

const TRANSACTION_ERROR_MESSAGES: Record<string, string> = {
  AccountNotFound: "Attempt to debit an account but found no record of a prior credit.",
  AlreadyProcessed: "This transaction has already been processed",
  BlockhashNotFound: "Blockhash not found",
  InsufficientFundsForFee: "Insufficient funds for fee",
  SignatureFailure: "Transaction did not pass signature verification",
  SanitizeFailure: "Transaction failed to sanitize accounts offsets correctly",
};

/** The sentence a Solana node prints for a TransactionError (used in `-32002` preflight messages). */
export function describeTransactionError(err: TransactionErrorJson): string {
  if (typeof err === "string") return TRANSACTION_ERROR_MESSAGES[err] ?? err;
  if ("InstructionError" in err) {
    const [index, inner] = err.InstructionError as [number, unknown];
    const what =
      typeof inner === "object" && inner !== null && "Custom" in inner
        ? `custom program error: 0x${(inner as { Custom: number }).Custom.toString(16)}`
        : JSON.stringify(inner);
    return `Error processing Instruction ${index}: ${what}`;
  }
  return JSON.stringify(err);
}
