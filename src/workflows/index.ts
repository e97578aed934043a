/**
 * allot's workflows, as the control worker registers them.
 */
export { allotPool } from './pool';
export { allotStep } from './step';
