/**
 * The `erc20ApprovalGasSponsoring` extension: a payer who never approved Permit2 signs an ordinary
 * `approve(Permit2, max)` transaction from its own account; we give that account exactly the gas money
 * the transaction can spend (when it holds less), broadcast it, and settle once it is mined. The payer
 * chooses the gas limit and the fee, so both are capped, the funding is capped, and a payer is funded
 * at most once per cool-off. Pure: no I/O.
 */
import { Erc20ApprovalSponsoringInfo, Reason, reject, zodMessage, type Rejection, type RuleResult } from "@facilitator/core";
import { decodeFunctionData, getAddress, keccak256, parseAbi, parseTransaction, type Address, type Hex } from "viem";
import { carriesAny, PERMIT2_ADDRESS } from "./permit2.ts";

export const ERC20_APPROVAL_GAS_SPONSORING = "erc20ApprovalGasSponsoring";
/** An `approve` needs 25,000 to 50,000 gas; the official client signs 70,000. */
export const APPROVAL_MAX_GAS = 100_000n;

const approveAbi = parseAbi(["function approve(address spender, uint256 value) returns (bool)"]);

/** The payer's signed approval, as broadcast. */
export interface SponsoredApproval {
  raw: Hex;
  hash: Hex;
  nonce: number;
  gas: bigint;
  /** The most wei per gas it can pay (EIP-1559 `maxFeePerGas`, or a legacy `gasPrice`). */
  maxFeePerGas: bigint;
}

/**
 * The approval the client added, if any: for this token, Permit2 as spender in the extension and in
 * the transaction's calldata, on this chain, moving no ETH, within the gas cap. Its signer is checked
 * where signatures are recovered (the handler's on-chain check).
 */
export function sponsoredApproval(extensions: Record<string, unknown> | undefined, owner: Address, asset: Address, chainId: number): RuleResult<SponsoredApproval | undefined> {
  const info = (extensions?.[ERC20_APPROVAL_GAS_SPONSORING] as { info?: unknown } | undefined)?.info;
  if (!carriesAny(info, ["from", "signedTransaction"])) return { ok: true, value: undefined }; // the route's declaration, echoed
  const parsed = Erc20ApprovalSponsoringInfo.safeParse(info);
  if (!parsed.success) return fail(reject(Reason.erc20ApprovalFormat, `erc20ApprovalGasSponsoring.info: ${zodMessage(parsed.error)}`));
  const i = parsed.data;
  const head: [boolean, Rejection][] = [
    [getAddress(i.from) !== owner, reject(Reason.erc20ApprovalFromMismatch, `the approval is from ${i.from}, the payment from ${owner}`)],
    [getAddress(i.asset) !== asset, reject(Reason.erc20ApprovalAssetMismatch, `the approval is for ${i.asset}, the payment in ${asset}`)],
    [getAddress(i.spender) !== PERMIT2_ADDRESS, reject(Reason.erc20ApprovalSpenderNotPermit2, `the approval's spender is ${i.spender}, not Permit2`)],
  ];
  const broken = head.find(([failed]) => failed);
  if (broken) return fail(broken[1]);

  const raw = i.signedTransaction as Hex;
  let tx: ReturnType<typeof parseTransaction>;
  try {
    tx = parseTransaction(raw);
  } catch {
    return fail(reject(Reason.erc20ApprovalTxParseFailed, "the signed approval transaction does not parse"));
  }
  const spender = approvedSpender(tx.data);
  const maxFeePerGas = tx.maxFeePerGas ?? tx.gasPrice;
  const rules: [boolean, Rejection][] = [
    [!tx.to || getAddress(tx.to) !== asset, reject(Reason.erc20ApprovalTxWrongTarget, `the approval transaction calls ${tx.to ?? "nothing"}, not the token ${asset}`)],
    [spender === "not approve", reject(Reason.erc20ApprovalTxWrongSelector, "the approval transaction does not call approve(address,uint256)")],
    [spender !== "not approve" && spender !== PERMIT2_ADDRESS, reject(Reason.erc20ApprovalTxWrongSpender, `the approval transaction approves ${spender}, not Permit2`)],
    [tx.chainId !== chainId, reject(Reason.erc20ApprovalTxParseFailed, `the approval transaction is for chain ${tx.chainId ?? "(none)"}, not ${chainId}`)],
    [(tx.value ?? 0n) !== 0n, reject(Reason.erc20ApprovalTxParseFailed, "the approval transaction moves ETH")],
    [tx.nonce === undefined || tx.gas === undefined || maxFeePerGas === undefined || !tx.r, reject(Reason.erc20ApprovalTxParseFailed, "the approval transaction lacks its nonce, gas, fee or signature")],
    [(tx.gas ?? 0n) > APPROVAL_MAX_GAS, reject(Reason.erc20ApprovalTxParseFailed, `the approval transaction may use ${tx.gas} gas, more than the ${APPROVAL_MAX_GAS} an approve needs`)],
  ];
  const wrong = rules.find(([failed]) => failed);
  if (wrong) return fail(wrong[1]);
  return { ok: true, value: { raw, hash: keccak256(raw), nonce: tx.nonce!, gas: tx.gas!, maxFeePerGas: maxFeePerGas! } };
}

function approvedSpender(data: Hex | undefined): Address | "not approve" {
  try {
    const call = decodeFunctionData({ abi: approveAbi, data: data ?? "0x" });
    return getAddress(call.args[0]);
  } catch {
    return "not approve";
  }
}

/** What the payer's account shows before its approval goes out. */
export interface ApprovalAccountState {
  /** Transactions mined from the payer's account (its next nonce). */
  nonce: number;
  balance: bigint;
  /** The payer was funded for an approval within the cool-off. */
  fundedRecently: boolean;
}

/**
 * The wei to send the payer so its approval can pay for its own gas (0 when it holds enough), or why
 * not: its nonce is not the account's next one (it could never be mined, or was already), the
 * funding is above the cap, or the payer was funded lately.
 */
export function approvalFunding(a: SponsoredApproval, s: ApprovalAccountState, maxFundingWei: bigint): RuleResult<bigint> {
  if (a.nonce !== s.nonce) {
    return fail(reject(Reason.erc20ApprovalTxFailed, `the approval transaction has nonce ${a.nonce}; the payer's account is at ${s.nonce}`));
  }
  const needed = a.gas * a.maxFeePerGas;
  const funding = needed > s.balance ? needed - s.balance : 0n;
  if (funding > maxFundingWei) {
    return fail(reject(Reason.erc20ApprovalFundingTooHigh, `the approval may spend ${needed} wei of gas; funding ${funding} is above this facilitator's cap of ${maxFundingWei}`));
  }
  if (funding > 0n && s.fundedRecently) {
    return fail(reject(Reason.erc20ApprovalFundingCoolingOff, "this payer's approval was funded lately and did not give Permit2 the allowance; approve Permit2 yourself or use eip2612GasSponsoring"));
  }
  return { ok: true, value: funding };
}

function fail(rejection: Rejection): { ok: false; rejection: Rejection } {
  return { ok: false, rejection };
}
