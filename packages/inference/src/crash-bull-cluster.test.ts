import { crashSuite } from "./testing/crash-suite.ts";

crashSuite("bull-cluster");
