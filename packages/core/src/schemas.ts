/** x402 v1 and v2 wire shapes (zod). Loose where the spec allows growth, explicit where versions differ. */
import { z } from "zod";

const uintString = z.string().regex(/^\d+$/, "must be a non-negative integer in a decimal string");
const extra = z.record(z.string(), z.unknown());

export const RequirementsV1 = z.looseObject({
  scheme: z.string().min(1),
  network: z.string().min(1),
  maxAmountRequired: uintString,
  asset: z.string().min(1),
  payTo: z.string().min(1),
  resource: z.string(),
  description: z.string(),
  mimeType: z.string(),
  outputSchema: z.unknown().optional(),
  maxTimeoutSeconds: z.number().int().nonnegative(),
  extra: extra.nullish(),
});

/** Fields that exist only in v1 requirements: their presence in a v2 body is a version mix-up. */
const V1_ONLY_FIELDS = ["maxAmountRequired", "resource", "description", "mimeType", "outputSchema"] as const;

export const RequirementsV2 = z
  .looseObject({
    scheme: z.string().min(1),
    network: z.string().min(1),
    amount: uintString,
    asset: z.string().min(1),
    payTo: z.string().min(1),
    maxTimeoutSeconds: z.number().int().nonnegative(),
    extra: extra.nullish(),
  })
  .superRefine((r, ctx) => {
    for (const f of V1_ONLY_FIELDS) {
      if (f in r) ctx.addIssue({ code: "custom", path: [f], message: `${f} is a v1 field and has no place in x402 v2` });
    }
  });

export const ResourceInfo = z.looseObject({
  url: z.string(),
  description: z.string().optional(),
  mimeType: z.string().optional(),
});

export const PayloadV1 = z.looseObject({
  x402Version: z.literal(1),
  scheme: z.string().min(1),
  network: z.string().min(1),
  payload: z.record(z.string(), z.unknown()),
});

export const PayloadV2 = z.looseObject({
  x402Version: z.literal(2),
  resource: ResourceInfo.optional(),
  accepted: RequirementsV2,
  payload: z.record(z.string(), z.unknown()),
  extensions: z.record(z.string(), z.unknown()).nullish(),
});

export const FacilitatorBodyV1 = z.looseObject({
  x402Version: z.literal(1),
  paymentPayload: PayloadV1,
  paymentRequirements: RequirementsV1,
});

export const FacilitatorBodyV2 = z.looseObject({
  x402Version: z.literal(2),
  paymentPayload: PayloadV2,
  paymentRequirements: RequirementsV2,
});

export type RequirementsV1 = z.infer<typeof RequirementsV1>;
export type RequirementsV2 = z.infer<typeof RequirementsV2>;
export type PayloadV1 = z.infer<typeof PayloadV1>;
export type PayloadV2 = z.infer<typeof PayloadV2>;

// Scheme payloads: checked by the mechanism that owns the scheme, so a wrong shape is its reason string.
const hex = (bytes?: number) =>
  z.string().regex(bytes ? new RegExp(`^0x[0-9a-fA-F]{${bytes * 2}}$`) : /^0x[0-9a-fA-F]*$/, bytes ? `must be ${bytes}-byte hex` : "must be hex");
const address = hex(20);

export const Eip3009Payload = z.object({
  signature: hex(),
  authorization: z.object({
    from: address,
    to: address,
    value: uintString,
    validAfter: uintString,
    validBefore: uintString,
    nonce: hex(32),
  }),
});
export type Eip3009Payload = z.infer<typeof Eip3009Payload>;

/** Our documented payload for ERC-2612 permit tokens (USDm): the facilitator is the spender. */
export const PermitPayload = z.object({
  signature: hex(),
  permit: z.object({
    owner: address,
    spender: address,
    value: uintString,
    nonce: uintString,
    deadline: uintString,
  }),
});
export type PermitPayload = z.infer<typeof PermitPayload>;

/**
 * What the official clients sign for Permit2 (`exact` through x402ExactPermit2Proxy, `upto` through
 * x402UptoPermit2Proxy, whose witness also names the facilitator that may settle).
 */
export const Permit2Payload = z.object({
  signature: hex(),
  permit2Authorization: z.object({
    from: address,
    permitted: z.object({ token: address, amount: uintString }),
    spender: address,
    nonce: uintString,
    deadline: uintString,
    witness: z.object({ to: address, validAfter: uintString, facilitator: address.optional() }),
  }),
});
export type Permit2Payload = z.infer<typeof Permit2Payload>;

/** The `eip2612GasSponsoring` extension's info: an EIP-2612 permit whose spender is Permit2. */
export const Eip2612SponsoringInfo = z.object({
  from: address,
  asset: address,
  spender: address,
  amount: uintString,
  nonce: uintString,
  deadline: uintString,
  signature: hex(65),
  version: z.string().regex(/^[0-9]+(\.[0-9]+)*$/),
});
export type Eip2612SponsoringInfo = z.infer<typeof Eip2612SponsoringInfo>;

/** The `erc20ApprovalGasSponsoring` extension's info: the payer's signed `approve(Permit2, …)` transaction. */
export const Erc20ApprovalSponsoringInfo = z.object({
  from: address,
  asset: address,
  spender: address,
  amount: uintString,
  signedTransaction: hex(),
  version: z.string().regex(/^[0-9]+(\.[0-9]+)*$/),
});
export type Erc20ApprovalSponsoringInfo = z.infer<typeof Erc20ApprovalSponsoringInfo>;

export const SvmPayload = z.object({ transaction: z.string().min(1) });
export type SvmPayload = z.infer<typeof SvmPayload>;

export const zodMessage = (e: z.ZodError): string =>
  e.issues.map((i) => `${i.path.length ? i.path.join(".") : "body"}: ${i.message}`).join("; ");
