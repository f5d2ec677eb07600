/**
 * The learning loop's client, as `SwitchyardClient.learning` and the CLI use it: the experiment
 * part (client/experiment.ts) and the routing part (client/routing.ts) under one name.
 */
import type { Client } from '@temporalio/client';
import type { ControlSettings } from '../learning/routingControl.js';
import { ExperimentClient } from './experiment.js';
import { RoutingClient } from './routing.js';

export { ExperimentNotFoundError, type FeedbackReceipt } from './experiment.js';

export class LearningClient {
  readonly routing: RoutingClient;
  readonly experiments: ExperimentClient;

  constructor(temporal: Client, taskQueue: string, settings: ControlSettings) {
    this.routing = new RoutingClient(temporal, taskQueue, settings);
    this.experiments = new ExperimentClient(temporal, taskQueue, settings, this.routing);
  }

  createExperiment: ExperimentClient['createExperiment'] = (spec) => this.experiments.createExperiment(spec);
  experimentStatus: ExperimentClient['experimentStatus'] = (name) => this.experiments.experimentStatus(name);
  listExperiments: ExperimentClient['listExperiments'] = (limit) => this.experiments.listExperiments(limit);
  stopExperiment: ExperimentClient['stopExperiment'] = (name) => this.experiments.stopExperiment(name);
  promoteExperiment: ExperimentClient['promoteExperiment'] = (name) => this.experiments.promoteExperiment(name);
  feedback: ExperimentClient['feedback'] = (workflowId, score, opts) => this.experiments.feedback(workflowId, score, opts);
  policy: RoutingClient['policy'] = () => this.routing.policy();
  routingHistory: RoutingClient['routingHistory'] = () => this.routing.routingHistory();
  tune: RoutingClient['tune'] = (opts) => this.routing.tune(opts);
  revert: RoutingClient['revert'] = (version) => this.routing.revert(version);
  anomalies: RoutingClient['anomalies'] = () => this.routing.anomalies();
  acknowledge: RoutingClient['acknowledge'] = (id) => this.routing.acknowledge(id);
}
