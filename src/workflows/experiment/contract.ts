/** Messages of an experiment entity: one workflow per A/B experiment. */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { ArmReport, ArmStats, ExperimentOutcome, ExperimentSpec, Verdict } from '../../learning/experiments.js';
import type { ActiveExperiment, PolicyChange, RoutingRule } from '../../learning/routingControl.js';

export type ExperimentState = 'running' | 'concluded' | 'stopped' | 'promoted';

export interface ExperimentEntityInput {
  readonly spec: ExperimentSpec;
  /** The task queue whose routing entity the experiment registers with. */
  readonly taskQueue: string;
  readonly createdAt?: number;
  /** Carried over by continue-as-new. */
  readonly carried?: {
    readonly state: ExperimentState;
    readonly arms: Record<string, ArmStats>;
    readonly seen: string[];
    readonly feedbackSeen: string[];
    readonly comments?: Record<string, FeedbackComment[]>;
    readonly endedAt?: number;
    readonly promotion?: PolicyChange;
    readonly lastLook?: number;
    readonly concluded?: Verdict;
  };
}

export interface FeedbackComment {
  readonly workflowId: string;
  readonly score: number;
  readonly comment: string;
}

export interface ExperimentStatus {
  readonly name: string;
  readonly state: ExperimentState;
  readonly arms: Record<string, ArmReport>;
  readonly winner: string | null;
  /**
   * The stopping rule's verdict when it concluded (frozen), else an interim one at the current
   * look's confidence (see learning/experiments.ts, lookAt).
   */
  readonly verdict: Verdict;
  readonly interim: boolean;
  readonly spec: ExperimentSpec;
  readonly createdAt: string;
  readonly endedAt: string | null;
  /** The routing change a promotion made. */
  readonly promotion?: PolicyChange;
  /** The latest feedback comments per arm (20 at most each). */
  readonly comments: Record<string, FeedbackComment[]>;
}

export interface ExperimentFeedback {
  readonly workflowId: string;
  readonly arm: string;
  readonly score: number;
  /** The request's automatic quality (what the outcome counted), which the feedback replaces. */
  readonly automaticQuality: number;
  readonly comment?: string;
}

/** A request's outcome, sent by the request workflow when it ends (once per request). */
export const outcomeSignal = defineSignal<[ExperimentOutcome]>('outcome');
export const feedbackSignal = defineSignal<[ExperimentFeedback]>('feedback');
export const statusQuery = defineQuery<ExperimentStatus>('status');
export const stopUpdate = defineUpdate<ExperimentStatus, []>('stop');
/** Make the winner the routing rule for the experiment's traffic (refused without a winner). */
export const promoteUpdate = defineUpdate<ExperimentStatus, []>('promote');

export function experimentWorkflowId(taskQueue: string, name: string): string {
  return `experiment:${taskQueue}:${name}`;
}

/** The activities the experiment entity calls (implemented in activities/experiment/, which satisfies this). */
export interface ExperimentActivities {
  /** Registers a running experiment with its task queue's routing entity, or takes it off. */
  notifyRouting(input: { taskQueue: string; started?: ActiveExperiment; ended?: { name: string } }): Promise<void>;
  /** Makes an experiment's winner the routing rule for its traffic: the recorded routing change. */
  promoteRoutingRule(input: { taskQueue: string; rule: RoutingRule; evidence: unknown }): Promise<PolicyChange>;
}
