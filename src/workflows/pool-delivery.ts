/**
 * How the pool tells a request's owner what it decided: a grant, a rejection, a preemption or a
 * revocation, each as a signal to the owner's workflow. Owners outside a workflow poll instead.
 */
import { getExternalWorkflowHandle } from '@temporalio/workflow';
import type { Effect } from '../core';
import { grantSignal, preemptSignal, rejectSignal, revokeSignal } from './messages';

/** The workflow that owns the request an effect is about, if a workflow owns it. */
export function ownerWorkflow(effect: Effect): string | undefined {
  const owner =
    effect.kind === 'reject' ? effect.rejection.owner : effect.kind === 'gone' ? effect.owner : effect.lease.owner;
  return owner.kind === 'workflow' ? owner.workflowId : undefined;
}

/** Signals an effect to the workflow `workflowId`; fails when that workflow is gone. */
export async function signalOwner(workflowId: string, effect: Effect): Promise<void> {
  const handle = getExternalWorkflowHandle(workflowId);
  if (effect.kind === 'grant') await handle.signal(grantSignal, effect.lease);
  else if (effect.kind === 'reject') await handle.signal(rejectSignal, effect.rejection);
  else if (effect.kind === 'gone') {
    const { requestId, reason, message } = effect;
    await handle.signal(revokeSignal, { requestId, leaseId: '', reason, message });
  } else if (effect.kind === 'preempt') {
    const { lease, message } = effect;
    await handle.signal(preemptSignal, { requestId: lease.requestId, leaseId: lease.leaseId, message });
  } else {
    const { lease, reason, message } = effect;
    await handle.signal(revokeSignal, { requestId: lease.requestId, leaseId: lease.leaseId, reason, message });
  }
}
