/**
 * allot's search attributes: registered by `allot dev` and the test harness, kept current by the
 * step workflow, and used as Temporal UI filters (`AllotPool="default" AND AllotState="queued"`).
 */

/** Name and type of every search attribute allot uses. */
export const SEARCH_ATTRIBUTES = {
  AllotPool: { name: 'AllotPool', type: 'KEYWORD' },
  AllotState: { name: 'AllotState', type: 'KEYWORD' },
  AllotTeam: { name: 'AllotTeam', type: 'KEYWORD' },
  AllotPriority: { name: 'AllotPriority', type: 'INT' },
  AllotGpus: { name: 'AllotGpus', type: 'KEYWORD' },
  AllotNode: { name: 'AllotNode', type: 'KEYWORD' },
  AllotStep: { name: 'AllotStep', type: 'KEYWORD' },
} as const;

/** The search attributes as a list, for registration. */
export const SEARCH_ATTRIBUTE_LIST = Object.values(SEARCH_ATTRIBUTES);
