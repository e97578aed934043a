/**
 * A workflow interceptor for strict replay: it reports every signal a workflow sends to another
 * (target and name) through a sink that is called during replay too, so a test can compare them
 * with the signals the recorded history sent.
 */
import type { Sinks, WorkflowInterceptorsFactory } from '@temporalio/workflow';
import { proxySinks } from '@temporalio/workflow';

/** The sink that receives each signal sent. */
export interface SignalRecorderSinks extends Sinks {
  signalRecorder: { sent(target: string, signalName: string): void };
}

const recorder = proxySinks<SignalRecorderSinks>().signalRecorder;

export const interceptors: WorkflowInterceptorsFactory = () => ({
  outbound: [
    {
      async signalWorkflow(input, next) {
        const target =
          input.target.type === 'external' ? input.target.workflowExecution.workflowId : input.target.childWorkflowId;
        recorder.sent(target ?? '', input.signalName);
        return next(input);
      },
    },
  ],
});
