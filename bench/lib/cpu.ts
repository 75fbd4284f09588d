/** CPU time of processes, from /proc (Linux): how much of each phase each process spent working. */
import { readdirSync, readFileSync } from "node:fs";

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

export interface Probe {
  name: string;
  pid: number;
}

/** User + system CPU milliseconds the process (all its threads) has used so far; NaN if unreadable. */
export function cpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name (which may hold spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return ((utime + stime) * 1000) / TICKS_PER_SECOND;
  } catch {
    return Number.NaN;
  }
}

export function snapshot(probes: readonly Probe[]): Record<string, number> {
  return Object.fromEntries(probes.map((p) => [p.name, cpuMs(p.pid)]));
}

/** CPU ms per process between two snapshots. */
export function delta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.keys(before).map((k) => [k, after[k]! - before[k]!]));
}

/** Busy CPU milliseconds of the whole machine (every process, every core) so far, from /proc/stat. */
export function machineBusyMs(): number {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n")[0]!;
    const [, user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).map(Number);
    return ((user! + nice! + system! + irq! + softirq! + steal!) * 1000) / TICKS_PER_SECOND;
  } catch {
    return Number.NaN;
  }
}

/**
 * User + system CPU milliseconds used so far by every live process `pick` chooses, given its process
 * group and command line (a facilitator's process group; every redis-server), optionally with the
 * children each has already reaped (a redis-server's append-only file rewrites).
 */
export function cpuMsOf(pick: (p: { pgrp: number; cmdline: string }) => boolean, opts: { reapedChildren?: boolean } = {}): number {
  let total = 0;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, "utf8").replace(/\0/g, " ");
      if (!pick({ pgrp: Number(fields[2]), cmdline })) continue;
      // utime + stime, and with reapedChildren cutime + cstime: the children it has waited for.
      const ticks = Number(fields[11]) + Number(fields[12]) + (opts.reapedChildren ? Number(fields[13]) + Number(fields[14]) : 0);
      total += (ticks * 1000) / TICKS_PER_SECOND;
    } catch {
      // the process ended while we looked
    }
  }
  return total;
}
