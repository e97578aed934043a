/**
 * Step 3 of a scheduling cycle: requests that can never be granted. One that no node could hold
 * even when empty, or that its team's quota can never admit, is rejected (`Unschedulable`); if a
 * node template would hold it, it waits for a new node instead (`WaitingForCapacity`). With no
 * node and no template at all, requests wait for a node to register (`NoNodes`).
 */
import { describeTemplate, templateFor } from './capacity';
import type { Cycle } from './cycle';
import { wait } from './cycle';
import { unschedulableReason } from './fit';
import { requestVector } from './quota';
import { gangKey, replicaPlacement } from './shape';
import type { PendingRequest } from './types';

/** Settles a request that cannot be granted whatever else happens; true when it did. */
export function settleUnsatisfiable(cycle: Cycle, request: PendingRequest): boolean {
  const templates = cycle.snapshot.templates ?? [];
  if (cycle.specs.length === 0 && templates.length === 0) {
    wait(cycle, request, 'NoNodes', 'no node has registered with the pool yet; start an agent with `allot agent`');
    return true;
  }
  const why =
    cycle.specs.length === 0
      ? 'no node has registered with the pool, and no node template fits'
      : whyNever(cycle, request);
  if (why === undefined) return false;
  const template = templates.length > 0 ? templateFor(templates, request.resources) : undefined;
  const vector = requestVector(request.resources, request.replicas ?? 1);
  if (template && cycle.views.nowLedger.neverFits(request.team, vector) === undefined) {
    wait(
      cycle,
      request,
      'WaitingForCapacity',
      `no node fits it now; waiting for a new ${template.name} node (${describeTemplate(template)})`,
    );
    return true;
  }
  cycle.decisions.rejections.push({ requestId: request.requestId, reason: 'Unschedulable', message: why });
  return true;
}

/**
 * Why no node, or the team's quota, could ever admit the request (`undefined`: they could), once
 * per gang key and team in a cycle.
 */
function whyNever(cycle: Cycle, request: PendingRequest): string | undefined {
  const shape = gangKey(request);
  let byTeam = cycle.never.get(shape);
  if (!byTeam) cycle.never.set(shape, (byTeam = new Map()));
  if (byTeam.has(request.team)) return byTeam.get(request.team);
  const replicas = request.replicas ?? 1;
  let why = unschedulableReason(cycle.specs, request.resources);
  if (why === undefined && replicas > 1) {
    const placement = replicaPlacement(request);
    const most = cycle.placer.copiesWhenEmpty(request.resources, placement);
    if (most < replicas)
      why =
        placement === 'spread'
          ? `asks for ${replicas} replicas on separate nodes, but at most ${most} ${most === 1 ? 'node' : 'nodes'} can hold one`
          : `asks for ${replicas} replicas, but all nodes together hold at most ${most} at once`;
  }
  why ??= cycle.views.nowLedger.neverFits(request.team, requestVector(request.resources, replicas));
  byTeam.set(request.team, why);
  return why;
}
