// Types of seaweedfs.js, for the tests and the benchmark that start the server it builds.

/** Where the SeaweedFS binary is (or will be, once built) for this machine. */
export function seaweedBinary(): string;
/** Builds the binary if it is not cached; returns its path, or throws with what went wrong. */
export function installSeaweed(log?: (line: string) => void): string;
/** The SeaweedFS module version that is built. */
export const SEAWEEDFS_VERSION: string;
