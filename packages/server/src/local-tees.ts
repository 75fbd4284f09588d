/**
 * The local world's trusted TEEs: a TEERegistry beside the relay, a TestAuthority standing in for
 * AWS's Nitro PKI, one approved enclave measurement, and two TEEs registered through the registrar
 * (the code behind POST /tees: nonce, a Nitro-format document binding the key, full verification,
 * Walrus, the registry):
 *
 *   gateway   an RSA-2048 key signing as OpenGradient's tee-gateway does (RSA-PSS), teeId = keccak256(DER)
 *   secp      the secp256k1 key signing TEE attestation v2 (EIP-712), teeId = keccak256(65-byte point)
 *
 * Everything here is a local test fixture: the root's private key lives and dies with this process.
 */
import { createPublicClient, createWalletClient, hexToBytes, http, type Address, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { deployContract, localChain } from "@facilitator/devnet";
import { TeeRegistrar, TeeRegistryClient, WalrusClient } from "@facilitator/inference";
import { encodeBase64, generateGatewayKey, measurementOf, TEE_REGISTRY_ABI, TeeType, TestAuthority, testPcrs, type SigningKey } from "@facilitator/tee";

export interface LocalTees {
  registry: { address: Address; attestationRootPem: string; measurement: Hex };
  /** The stand-in for AWS's PKI, for documents of further TEEs (tests); never written anywhere. */
  authority: TestAuthority;
  gateway: { teeId: Hex; privateKeyPem: string };
  secp: { teeId: Hex; privateKey: Hex; address: Address };
}

export interface LocalTeesOptions {
  rpcUrl: string;
  chainId: number;
  /** Deploys the registry and approves the measurement (its admin). */
  deployerKey: Hex;
  /** Registers TEEs and relays heartbeats (the facilitator's relayer). */
  relayerKey: Hex;
  walrus: { publisherUrl: string; aggregatorUrl: string };
  /** The secp256k1 TEE's private key. */
  secpKey: Hex;
}

/** The image the local TEEs run: its PCRs are fixed, so its measurement is the same on every start. */
export const LOCAL_IMAGE = "local-world-enclave";

export async function startLocalTees(o: LocalTeesOptions): Promise<LocalTees> {
  const admin = privateKeyToAccount(o.deployerKey);
  const relayer = privateKeyToAccount(o.relayerKey).address;
  const [address, authority] = await Promise.all([
    deployContract({ rpcUrl: o.rpcUrl, chainId: o.chainId, deployerKey: o.deployerKey, artifact: "TEERegistry", args: [admin.address, [relayer], [relayer]] }),
    TestAuthority.create({ name: "local-world-nitro" }),
  ]);
  const pcrs = testPcrs(LOCAL_IMAGE);
  const measurement = measurementOf(pcrs[0], pcrs[1], pcrs[2]).hash;
  const chain = localChain(o.chainId, o.rpcUrl);
  const wallet = createWalletClient({ account: admin, chain, transport: http(o.rpcUrl) });
  const client = createPublicClient({ chain, transport: http(o.rpcUrl), pollingInterval: 50 });
  const approval = await wallet.writeContract({ address, abi: TEE_REGISTRY_ABI, functionName: "approveMeasurement", args: [TeeType.AwsNitro, measurement, LOCAL_IMAGE] });
  await client.waitForTransactionReceipt({ hash: approval, pollingInterval: 50 });

  const registrar = new TeeRegistrar({
    registry: new TeeRegistryClient({ rpcUrl: o.rpcUrl, chainId: o.chainId, address, writerKey: o.relayerKey, pollingIntervalMs: 50 }),
    blobs: new WalrusClient(o.walrus),
    roots: [authority.rootPem],
  });
  const register = async (key: SigningKey): Promise<Hex> => {
    const { nonce } = await registrar.issueNonce();
    const document = await authority.attest({ signingKey: key.bytes, nonce, pcrs });
    const outcome = await registrar.register({ document: encodeBase64(document), key, teeType: TeeType.AwsNitro });
    if (!outcome.ok) throw new Error(`the local world could not register its TEE: ${outcome.reason}: ${outcome.message}`);
    return outcome.teeId;
  };
  const gw = generateGatewayKey();
  const secp = privateKeyToAccount(o.secpKey);
  // One after the other: both are sent from the relayer's key.
  const gatewayId = await register({ scheme: "rsa-pss-sha256", bytes: gw.publicKey });
  const secpId = await register({ scheme: "secp256k1-eip712", bytes: hexToBytes(secp.publicKey) });
  return {
    registry: { address, attestationRootPem: authority.rootPem, measurement },
    authority,
    gateway: { teeId: gatewayId, privateKeyPem: gw.privateKeyPem },
    secp: { teeId: secpId, privateKey: o.secpKey, address: secp.address },
  };
}
