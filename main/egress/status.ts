import { EgressStatus } from '@livekit/protocol';

/**
 * The egress status machine: STARTING → ACTIVE → ENDING → COMPLETE, or FAILED /
 * ABORTED / LIMIT_REACHED from anywhere before a terminal state. Transitions only move forward.
 */

const TERMINAL = new Set<EgressStatus>([EgressStatus.EGRESS_COMPLETE, EgressStatus.EGRESS_FAILED, EgressStatus.EGRESS_ABORTED, EgressStatus.EGRESS_LIMIT_REACHED]);

const ALLOWED: Readonly<Record<number, readonly EgressStatus[]>> = {
  [EgressStatus.EGRESS_STARTING]: [EgressStatus.EGRESS_ACTIVE, EgressStatus.EGRESS_ENDING, EgressStatus.EGRESS_FAILED, EgressStatus.EGRESS_ABORTED, EgressStatus.EGRESS_COMPLETE],
  [EgressStatus.EGRESS_ACTIVE]: [EgressStatus.EGRESS_ENDING, EgressStatus.EGRESS_FAILED, EgressStatus.EGRESS_COMPLETE, EgressStatus.EGRESS_LIMIT_REACHED],
  [EgressStatus.EGRESS_ENDING]: [EgressStatus.EGRESS_COMPLETE, EgressStatus.EGRESS_FAILED, EgressStatus.EGRESS_LIMIT_REACHED],
};

export function isTerminal(s: EgressStatus): boolean {
  return TERMINAL.has(s);
}

export function canTransition(from: EgressStatus, to: EgressStatus): boolean {
  return (ALLOWED[from] ?? []).includes(to);
}

/** Upper-case name as the original prints it, e.g. `EGRESS_COMPLETE`. */
export function statusName(s: EgressStatus): string {
  return EgressStatus[s] ?? String(s);
}
