/**
 * Heartbeats relayed on chain so that TEEs need no gas, in the tee-gateway's format:
 *
 *   POST /heartbeat  {teeId, timestamp, signature (base64), contractAddress?}
 *
 * The gateway signs keccak256(teeId ‖ timestamp) with RSA-PSS (a secp256k1 TEE signs the same
 * 32-byte digest with ECDSA, 65 bytes). Anyone may post one, so nothing is spent before the
 * signature is verified off chain against the registered key: then the TEE's slot is taken (at most
 * one relayed heartbeat per TEE per `minIntervalSeconds`), the call is simulated, and gas and fee per
 * gas are capped. Refusals carry reason strings; the contract's own (a timestamp not newer than the
 * last, or from the future) come back as `registry_<error>`.
 */
import { getAddress, isAddress, recoverAddress, toHex, type Address, type Hex } from "viem";
import { decodeBase64, heartbeatMessageHash, verifyHeartbeatSignature } from "@facilitator/tee";
import { registryTee } from "./tee-directory.ts";
import { classifyRegistry, RegistryError, type TeeRegistryClient, type WriteCaps } from "./tee-registry.ts";

export interface HeartbeatRequest {
  teeId: Hex;
  timestamp: bigint;
  signature: Uint8Array;
  contractAddress?: Address;
}

export type HeartbeatRefusal = { ok: false; status: number; reason: string; message: string };
export type HeartbeatRelayed = { ok: true; transactionHash: Hex; blockNumber: bigint; teeId: Hex; timestamp: bigint };

const refuse = (reason: string, message: string, status = 400): HeartbeatRefusal => ({ ok: false, status, reason, message });
const UINT = /^\d{1,78}$/;

/** The gateway's heartbeat body. Pure. */
export function parseHeartbeat(body: unknown): { ok: true; value: HeartbeatRequest } | HeartbeatRefusal {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return refuse("invalid_heartbeat", "the body must be {teeId, timestamp, signature, contractAddress?}");
  const b = body as Record<string, unknown>;
  if (typeof b.teeId !== "string" || !/^0x[0-9a-fA-F]{64}$/.test(b.teeId)) return refuse("invalid_heartbeat", "teeId must be 0x and 64 hex digits");
  const ts = typeof b.timestamp === "number" && Number.isSafeInteger(b.timestamp) ? String(b.timestamp) : b.timestamp;
  if (typeof ts !== "string" || !UINT.test(ts) || BigInt(ts) >= 2n ** 64n) return refuse("invalid_heartbeat", "timestamp must be unix seconds (a non-negative integer)");
  const signature = typeof b.signature === "string" ? decodeBase64(b.signature) : undefined;
  if (!signature?.length) return refuse("invalid_heartbeat", "signature must be standard base64");
  if (b.contractAddress !== undefined && b.contractAddress !== null && !(typeof b.contractAddress === "string" && isAddress(b.contractAddress, { strict: false }))) {
    return refuse("invalid_heartbeat", "contractAddress must be an address");
  }
  return {
    ok: true,
    value: {
      teeId: b.teeId.toLowerCase() as Hex,
      timestamp: BigInt(ts),
      signature,
      ...(typeof b.contractAddress === "string" ? { contractAddress: getAddress(b.contractAddress) } : {}),
    },
  };
}

/**
 * Each TEE's heartbeat slot: at most one relayed heartbeat per TEE per interval, across every process
 * sharing the store (Redis or LMDB, tee-state-*.ts; MemoryHeartbeatSlots for one process).
 */
export interface HeartbeatSlots {
  /** Takes `teeId`'s slot at `now` (ms) unless it was taken less than `intervalMs` ago: undefined when taken, else when it was. */
  take(teeId: Hex, now: number, intervalMs: number): Promise<number | undefined>;
}

/** Whether a slot taken at `takenAt` is still held at `now`. The one rule every store applies, atomically. */
export const slotHeld = (takenAt: number | undefined, now: number, intervalMs: number): takenAt is number => takenAt !== undefined && now - takenAt < intervalMs;

/** Slots in this process's memory: enough for one API process. */
export class MemoryHeartbeatSlots implements HeartbeatSlots {
  /** teeId -> ms the slot was taken. */
  private readonly slots = new Map<string, number>();

  async take(teeId: Hex, now: number, intervalMs: number): Promise<number | undefined> {
    const last = this.slots.get(teeId);
    if (slotHeld(last, now, intervalMs)) return last;
    this.slots.set(teeId, now);
    // Slots older than the interval say nothing any more.
    if (this.slots.size >= 1_000) for (const [id, at] of this.slots) if (!slotHeld(at, now, intervalMs)) this.slots.delete(id);
    return undefined;
  }
}

export interface HeartbeatRelayOptions {
  registry: TeeRegistryClient;
  /** Heartbeats relayed per TEE at most once per this many seconds (default 60; the gateway sends one per 900 s). */
  minIntervalSeconds?: number;
  /** Where each TEE's slot is kept (default: this process's memory). */
  slots?: HeartbeatSlots;
  caps?: WriteCaps;
  /** Told after a heartbeat is on chain (the door's cache forgets the TEE, so its freshness shows at once). */
  onRelayed?: (teeId: Hex) => void;
  now?: () => number;
}

export class HeartbeatRelay {
  private readonly slots: HeartbeatSlots;
  private readonly minIntervalMs: number;
  private readonly now: () => number;

  constructor(private readonly o: HeartbeatRelayOptions) {
    this.minIntervalMs = (o.minIntervalSeconds ?? 60) * 1000;
    this.now = o.now ?? Date.now;
    this.slots = o.slots ?? new MemoryHeartbeatSlots();
  }

  get registryAddress(): Address {
    return this.o.registry.address;
  }

  /** The account that pays for relayed heartbeats. */
  get relayerAddress(): Address | undefined {
    return this.o.registry.writerAddress;
  }

  async relay(h: HeartbeatRequest): Promise<HeartbeatRelayed | HeartbeatRefusal> {
    const { registry } = this.o;
    if (h.contractAddress && h.contractAddress.toLowerCase() !== registry.address.toLowerCase()) {
      return refuse("heartbeat_contract_mismatch", `this facilitator relays heartbeats to the TEE registry ${registry.address}, not ${h.contractAddress}`);
    }
    try {
      const entry = await registry.getTee(h.teeId);
      const tee = entry && registryTee(entry, await registry.measurementStatus(entry.teeType, entry.measurement));
      if (!tee) return refuse("unknown_tee", `TEE ${h.teeId} is not in the TEE registry`, 404);
      if (tee.standing === "revoked") return refuse("tee_revoked", `TEE ${h.teeId} was revoked`, 403);
      if (tee.standing !== "active") return refuse("tee_measurement_revoked", `the measurement TEE ${h.teeId} attested is no longer approved`, 403);
      const problem = await signatureProblem(h, tee.publicKey, tee.address);
      if (problem) return refuse("invalid_heartbeat_signature", problem);

      // Taken only once the TEE's own signature is proven, so nobody else can use up its slot.
      const now = this.now();
      const last = await this.slots.take(h.teeId, now, this.minIntervalMs).catch(() => {
        throw new RegistryError("tee_state_unavailable", "the shared TEE state (Redis or LMDB) cannot be read", true);
      });
      if (last !== undefined) {
        return refuse("heartbeat_rate_limited", `a heartbeat of TEE ${h.teeId} was relayed ${Math.round((now - last) / 1000)} s ago; at most one per ${this.minIntervalMs / 1000} s`, 429);
      }

      const sent = await registry.write({ functionName: "heartbeat", args: [h.teeId, h.timestamp, toHex(h.signature)] }, this.o.caps);
      this.o.onRelayed?.(h.teeId);
      return { ok: true, ...sent, teeId: h.teeId, timestamp: h.timestamp };
    } catch (e) {
      const err = classifyRegistry(e, "relaying a heartbeat");
      // Anyone may call: a transport failure is named, never quoted (RPC errors can carry the node's URL).
      return err.transient ? refuse(err.reason, "the TEE registry cannot be reached or the transaction is not mined yet; retry later", 503) : refuse(err.reason, err.message, 400);
    }
  }
}

/** Why the heartbeat's signature is not the TEE's, if it is not. */
async function signatureProblem(h: HeartbeatRequest, publicKey: Uint8Array | undefined, address: Address | undefined): Promise<string | undefined> {
  if (publicKey) {
    const verdict = verifyHeartbeatSignature({ publicKey, teeId: h.teeId, timestamp: h.timestamp, signature: h.signature });
    return verdict.ok ? undefined : `not TEE ${h.teeId}'s RSA-PSS signature of keccak256(teeId ‖ timestamp): ${verdict.message}`;
  }
  if (h.signature.length !== 65) return `a secp256k1 TEE's heartbeat signature is 65 bytes (r ‖ s ‖ v), not ${h.signature.length}`;
  const signer = await recoverAddress({ hash: heartbeatMessageHash(h.teeId, h.timestamp), signature: toHex(h.signature) }).catch(() => undefined);
  return signer === address ? undefined : `not TEE ${h.teeId}'s secp256k1 signature of keccak256(teeId ‖ timestamp)`;
}
