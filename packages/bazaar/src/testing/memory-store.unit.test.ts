import { describeBazaarStoreContract } from "./store-contract-suite.ts";
import { MemoryBazaarStore } from "./memory-store.ts";

// The fake the catalogue's unit tests use keeps the same contract as the real stores.
describeBazaarStoreContract("MemoryBazaarStore", {
  create: async () => new MemoryBazaarStore(),
  another: async (store) => store,
  cleanup: async () => undefined,
});
