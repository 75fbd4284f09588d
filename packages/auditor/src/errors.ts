/** Errors of the auditor's command line. */
import { FacilitatorError } from "@facilitator/core";

/** The command line asks for something the auditor cannot do: the CLI prints the message, then its usage (exit 2). */
export class UsageError extends FacilitatorError {}
