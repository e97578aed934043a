/**
 * Where a pool's scaling stands: the kinds of node it may add (templates), the demand they would
 * serve, and the scaling actions under way. `planScaling` decides (see `capacity.ts`) and records
 * what it asked for; the scaler reports back through `scaled`, and a node that joins counts
 * against its template's pending ones. Scaling whose outcome never comes is given up after
 * `SCALING_TIMEOUT_MS`.
 */
import type { DemandGroup, NodeTemplate, ScalingAction, ScalingPolicy, ScalingState } from './capacity';
import {
  DEFAULT_SCALING,
  SCALING_TIMEOUT_MS,
  TEMPLATE_LABEL,
  describeTemplate,
  planScaling,
  unmetDemand,
} from './capacity';
import type { NodeRegistry } from './node-registry';
import type { PoolStateData } from './pool-data';
import type { NodeSpec } from './types';

/** Nodes of one template: existing, pending (asked for) and being removed. */
export interface TemplateNodes {
  name: string;
  /** The template's node, in a few words. */
  shape: string;
  max: number;
  nodes: string[];
  pending: number;
  removing: string[];
}

/** A pool's scaling; owns `templates`, `scalingPolicy`, `scaling` and `idleSince`. */
export class PoolScaling {
  constructor(
    private readonly data: PoolStateData,
    private readonly nodes: NodeRegistry,
  ) {}

  /** Node templates in force. */
  get templates(): readonly NodeTemplate[] {
    return this.data.templates ?? [];
  }

  /** Scaling timing in force. */
  get scalingPolicy(): ScalingPolicy {
    return { ...DEFAULT_SCALING, ...this.data.scalingPolicy };
  }

  /** Replaces the node templates (and optionally the scaling timing). */
  setTemplates(templates: NodeTemplate[], scaling?: Partial<ScalingPolicy>): void {
    this.data.templates = templates;
    if (scaling) this.data.scalingPolicy = { ...this.data.scalingPolicy, ...scaling };
  }

  private get scaling(): ScalingState {
    return (this.data.scaling ??= { pending: {}, lastScaleUpAt: {}, removing: [] });
  }

  /** A node joined the pool: one fewer of its template is pending. */
  nodeJoined(spec: NodeSpec): void {
    const template = spec.labels[TEMPLATE_LABEL];
    if (template !== undefined && this.data.scaling?.pending[template]) this.data.scaling.pending[template]--;
  }

  /** Unmet demand, grouped by the template or shape of node that would serve it. */
  demand(now: number): DemandGroup[] {
    return unmetDemand(this.data.queue, this.templates, now);
  }

  /** Nodes per template: existing, pending (asked for) and being removed. */
  templateNodes(): TemplateNodes[] {
    return this.templates.map((t) => ({
      name: t.name,
      shape: describeTemplate(t),
      max: t.max,
      nodes: this.data.nodes.filter((n) => n.spec.labels[TEMPLATE_LABEL] === t.name).map((n) => n.spec.id),
      pending: this.scaling.pending[t.name] ?? 0,
      removing: this.scaling.removing.filter(
        (id) => this.data.nodes.find((n) => n.spec.id === id)?.spec.labels[TEMPLATE_LABEL] === t.name,
      ),
    }));
  }

  /**
   * Decides what to scale now and records it as under way: nodes asked for count as pending,
   * nodes to remove are drained. The caller runs the scaler and reports back with `scaled`.
   */
  planScaling(now: number): ScalingAction[] {
    if (this.templates.length === 0) return [];
    this.expireScaling(now);
    const idleSince = (this.data.idleSince ??= {});
    const busy = new Set(this.data.leases.map((l) => l.nodeId));
    for (const n of this.data.nodes)
      if (busy.has(n.spec.id) || idleSince[n.spec.id] === undefined) idleSince[n.spec.id] = now;
    const actions = planScaling({
      nodes: this.data.nodes,
      leases: this.data.leases,
      queue: this.data.queue,
      templates: this.templates,
      state: this.scaling,
      policy: this.scalingPolicy,
      idleSince,
      now,
    });
    for (const a of actions) {
      if (a.kind === 'up') {
        this.scaling.pending[a.template] = (this.scaling.pending[a.template] ?? 0) + a.count;
        this.scaling.lastScaleUpAt[a.template] = now;
      } else {
        this.scaling.removing.push(a.nodeId);
        (this.scaling.removingSince ??= {})[a.nodeId] = now;
        this.nodes.setDraining(a.nodeId, true);
      }
    }
    return actions;
  }

  /** Records the end of a scaling action: a removed node leaves the pool; a failed one is undone. */
  scaled(action: ScalingAction, ok: boolean): void {
    const s = this.scaling;
    if (action.kind === 'up') {
      if (!ok) s.pending[action.template] = Math.max(0, (s.pending[action.template] ?? 0) - action.count);
      return;
    }
    s.removing = s.removing.filter((id) => id !== action.nodeId);
    if (s.removingSince) delete s.removingSince[action.nodeId];
    if (ok && this.nodes.remove(action.nodeId)) {
      if (this.data.idleSince) delete this.data.idleSince[action.nodeId];
    } else this.nodes.setDraining(action.nodeId, false);
  }

  /**
   * Stops waiting for scaling that took longer than `SCALING_TIMEOUT_MS`: nodes asked for that
   * never registered stop counting as pending (so the template can scale again), and a node whose
   * removal was never reported is undrained (a removed node then goes silent and is lost).
   */
  private expireScaling(now: number): void {
    const s = this.scaling;
    for (const [template, count] of Object.entries(s.pending)) {
      const asked = s.lastScaleUpAt[template];
      if (count > 0 && asked !== undefined && now - asked >= SCALING_TIMEOUT_MS) s.pending[template] = 0;
    }
    const since = (s.removingSince ??= {});
    for (const id of s.removing) since[id] ??= now;
    for (const id of s.removing.filter((id) => now - (since[id] ?? now) >= SCALING_TIMEOUT_MS)) {
      s.removing = s.removing.filter((x) => x !== id);
      this.nodes.setDraining(id, false);
    }
    for (const id of Object.keys(since)) if (!s.removing.includes(id)) delete since[id];
  }
}
