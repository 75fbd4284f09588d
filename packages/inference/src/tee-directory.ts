/**
 * Which TEEs the door knows, and in what standing: the operator's TEE_KEYS (secp256k1 addresses,
 * always active) and, when a TEERegistry is configured, its entries (either scheme, with their
 * revocation and liveness). Validation stays pure: the service looks the records' teeIds up here
 * first (`lookup`, I/O), then validates against the answer.
 *
 * Registry answers are cached for `ttlMs` (a revocation reaches the door at most that late), misses
 * too, so a flood of made-up teeIds costs one read each per ttl; the cache holds at most `capacity`
 * entries, oldest first out.
 */
import { getAddress, hexToBytes, type Address, type Hex } from "viem";
import { keySchemeName, MeasurementStatus, secp256k1Address, type SigningKeyScheme } from "@facilitator/tee";
import type { RegistryMeasurement, RegistryTee } from "./tee-registry.ts";

/** Where a known TEE stands: only `active` ones may have records anchored. */
export type TeeStanding = "active" | "revoked" | "measurement_revoked" | "measurement_not_approved";

export interface KnownTee {
  scheme: SigningKeyScheme;
  /** secp256k1: the address its EIP-712 signatures recover to. */
  address?: Address;
  /** RSA-PSS: the DER SubjectPublicKeyInfo. */
  publicKey?: Uint8Array;
  /** TEE_KEYS (the operator's word) or the TEERegistry (an attested enclave). */
  source: "config" | "registry";
  standing: TeeStanding;
  /** Registry only: unix seconds of the last relayed heartbeat, or of the registration before any. */
  aliveAt?: bigint;
}

/** A TEE_KEYS entry: a secp256k1 key the operator vouches for, with no standing to lose. */
export const configuredTee = (address: Address): KnownTee => ({ scheme: "secp256k1-eip712", address: getAddress(address), source: "config", standing: "active" });

/** The door's view of a registry entry and its measurement's status. Pure. */
export function registryTee(tee: RegistryTee, measurement: RegistryMeasurement): KnownTee | undefined {
  const scheme = keySchemeName(tee.scheme);
  if (!scheme) return undefined;
  const standing: TeeStanding =
    tee.revokedBlock !== 0n
      ? "revoked"
      : measurement.status === MeasurementStatus.Revoked
        ? "measurement_revoked"
        : measurement.status === MeasurementStatus.Approved
          ? "active"
          : "measurement_not_approved";
  const key = hexToBytes(tee.signingKey);
  const aliveAt = tee.lastHeartbeat > tee.registeredAt ? tee.lastHeartbeat : tee.registeredAt;
  return scheme === "secp256k1-eip712"
    ? { scheme, address: secp256k1Address(key), source: "registry", standing, aliveAt }
    : { scheme, publicKey: key, source: "registry", standing, aliveAt };
}

/** Looks teeIds (lower-case 32-byte hex) up; unknown ones are absent from the answer. */
export interface TeeLookup {
  lookup(teeIds: readonly string[]): Promise<ReadonlyMap<string, KnownTee>>;
}

/** What the directory reads: the registry client's two views. */
export interface RegistryReader {
  getTee(teeId: Hex): Promise<RegistryTee | undefined>;
  measurementStatus(teeType: number, measurement: Hex): Promise<RegistryMeasurement>;
}

export interface TeeDirectoryOptions {
  /** How long a registry answer (or miss) is used (default 5,000 ms). */
  ttlMs?: number;
  capacity?: number;
  now?: () => number;
}

/** The registry behind a short cache; a teeId the registry does not know falls back to TEE_KEYS. */
export class RegistryTeeDirectory implements TeeLookup {
  private readonly cache = new Map<string, { tee: KnownTee | undefined; expiresAt: number }>();
  private readonly inFlight = new Map<string, Promise<KnownTee | undefined>>();
  private readonly ttlMs: number;
  private readonly capacity: number;
  private readonly now: () => number;

  constructor(
    private readonly registry: RegistryReader,
    private readonly configured: ReadonlyMap<string, Address> = new Map(),
    opts: TeeDirectoryOptions = {},
  ) {
    this.ttlMs = opts.ttlMs ?? 5_000;
    this.capacity = opts.capacity ?? 10_000;
    this.now = opts.now ?? Date.now;
  }

  async lookup(teeIds: readonly string[]): Promise<ReadonlyMap<string, KnownTee>> {
    const ids = [...new Set(teeIds.map((id) => id.toLowerCase()))];
    const found = await Promise.all(ids.map((id) => this.one(id)));
    const answer = new Map<string, KnownTee>();
    ids.forEach((id, i) => {
      const tee = found[i] ?? (this.configured.has(id) ? configuredTee(this.configured.get(id)!) : undefined);
      if (tee) answer.set(id, tee);
    });
    return answer;
  }

  /** Forgets cached answers (all, or one TEE's): after a registration, so the door sees it at once. */
  forget(teeId?: string): void {
    if (teeId) this.cache.delete(teeId.toLowerCase());
    else this.cache.clear();
  }

  private one(id: string): Promise<KnownTee | undefined> {
    const cached = this.cache.get(id);
    if (cached && cached.expiresAt > this.now()) return Promise.resolve(cached.tee);
    let pending = this.inFlight.get(id);
    if (!pending) {
      pending = this.read(id).finally(() => this.inFlight.delete(id));
      this.inFlight.set(id, pending);
    }
    return pending;
  }

  private async read(id: string): Promise<KnownTee | undefined> {
    const entry = await this.registry.getTee(id as Hex);
    const tee = entry && registryTee(entry, await this.registry.measurementStatus(entry.teeType, entry.measurement));
    this.cache.delete(id);
    while (this.cache.size >= this.capacity) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(id, { tee, expiresAt: this.now() + this.ttlMs });
    return tee;
  }
}

/** TEE_KEYS alone (no registry configured): answered from memory. */
export class ConfiguredTeeDirectory implements TeeLookup {
  constructor(private readonly configured: ReadonlyMap<string, Address>) {}

  async lookup(teeIds: readonly string[]): Promise<ReadonlyMap<string, KnownTee>> {
    const answer = new Map<string, KnownTee>();
    for (const id of teeIds.map((t) => t.toLowerCase())) {
      const address = this.configured.get(id);
      if (address) answer.set(id, configuredTee(address));
    }
    return answer;
  }
}
