/**
 * The routing entity: one per task queue, the policy workers route by. It learns from the
 * workers' outcome reports (batched, every few seconds) and explicit feedback: on its own timer the
 * tuner moves each category's thresholds (every change recorded with its evidence, revertible),
 * and each closed spend bucket is checked for anomalies (an alert, and the configured action until
 * acknowledged). Experiments register here while they run; a promoted winner becomes a rule.
 * Every message is handled by RoutingControl (pure); this shell adds timers and delivery.
 */
import { ApplicationFailure, condition, log, patched, setHandler, upsertMemo, workflowInfo } from '@temporalio/workflow';
import {
  type AnomalyAlert,
  type ControlSettings,
  MESSAGE_MAX_BYTES,
  newControlState,
  type OutcomeReport,
  RoutingControl,
  wellFormedExperiment,
  wellFormedRule,
} from '../../learning/routingControl.js';
import { jsonBytes } from '../../util/bytes.js';
import { continueAsNewWhenDrained } from '../entity.js';
import { alertActivities } from '../alerts.js';
import { isMessage, isRecord, objectArgument, onSignal, refusePlaintext, refuseUnless } from '../messages.js';
import {
  acknowledgeUpdate,
  anomaliesQuery,
  configureSignal,
  experimentEndedSignal,
  experimentStartedSignal,
  experimentUpdate,
  feedbackSignal,
  historyQuery,
  POLICY_EPOCH_MEMO,
  policyQuery,
  promoteUpdate,
  proposalQuery,
  reportSignal,
  revertUpdate,
  type RoutingEntityInput,
  settingsQuery,
  tuneUpdate,
} from './contract.js';
import type { RoutingEntityActivities, RoutingEntityWorkflow } from './contract.js';

const alerts = alertActivities<RoutingEntityActivities>();

const MESSAGES_PER_RUN = 1_500;

/** An update the state refuses (a RangeError naming what is wrong) fails for its caller, not the entity. */
function refusing<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof RangeError) throw ApplicationFailure.create({ type: 'InvalidRoutingMessage', nonRetryable: true, message: e.message });
    throw e;
  }
}

const isObject = isRecord;

function validReport(r: unknown): r is OutcomeReport {
  return (
    isObject(r) &&
    isObject(r.counts) &&
    Array.isArray(r.spend) &&
    Object.values(r.counts).every((c) => isObject(c) && typeof c.n === 'number' && typeof c.good === 'number') &&
    r.spend.every((x: unknown) => isObject(x) && typeof x.key === 'string' && typeof x.at === 'number' && typeof x.nanos === 'number')
  );
}

function validSettings(s: unknown): s is ControlSettings {
  return (
    isObject(s) &&
    isObject(s.base) &&
    isObject(s.tuner) &&
    isObject(s.anomaly) &&
    typeof s.tuner.intervalMs === 'number' &&
    s.tuner.intervalMs >= 1_000 &&
    typeof s.anomaly.bucketMs === 'number' &&
    s.anomaly.bucketMs >= 1_000
  );
}

export async function routingEntity(input: RoutingEntityInput): Promise<void> {
  refusePlaintext([input], 'routingEntity');
  const control = new RoutingControl(input.state ?? newControlState(), input.settings);
  let messages = 0;
  // A change to what workers route by bumps the epoch and publishes it in the memo, in the same
  // workflow task as the change (so it is visible once an update returns). Patched: runs recorded
  // before it have no memo commands.
  let epochPublished = false;
  const publish = <T>(result: T): T => {
    if (!patched('routing-policy-epoch')) return result;
    const { epoch, changed } = control.publish();
    if (changed || !epochPublished) upsertMemo({ [POLICY_EPOCH_MEMO]: epoch });
    epochPublished = true;
    return result;
  };
  const pending: AnomalyAlert[] = [];
  const raised = (found: AnomalyAlert[]): void => {
    for (const a of found) {
      log.warn('spend anomaly', {
        id: a.id,
        scope: a.scope,
        category: a.category,
        model: a.model,
        feature: a.feature,
        spendNanos: a.spendNanos,
        baselineNanos: a.baselineNanos,
        action: a.action,
      });
      pending.push(a);
    }
  };
  // Signals cannot be refused: a malformed one (a worker of another release) is dropped and logged,
  // never allowed to fail the workflow task (which would stop the queue's routing entity).
  onSignal(reportSignal, (r) => {
    messages += 1;
    if (!validReport(r)) return void log.warn('outcome report ignored: malformed', {});
    raised(control.report(r, Date.now()));
    publish(undefined);
  });
  onSignal(feedbackSignal, (f) => {
    messages += 1;
    if (typeof f?.workflowId !== 'string' || typeof f.key !== 'string' || typeof f.score !== 'number' || !Number.isFinite(f.score))
      return void log.warn('feedback ignored: malformed', {});
    control.feedback(f);
  });
  onSignal(configureSignal, (s) => {
    messages += 1;
    if (!validSettings(s) || jsonBytes(s) > MESSAGE_MAX_BYTES) return void log.warn('configure signal ignored: not a ControlSettings, or too large', {});
    if (s.tuner.intervalMs !== control.settings.tuner.intervalMs) control.state.nextTuneAt = Date.now() + s.tuner.intervalMs;
    control.settings = s;
    publish(undefined);
  });
  onSignal(experimentStartedSignal, (e) => {
    messages += 1;
    if (!wellFormedExperiment(e)) return void log.warn('experimentStarted ignored: malformed or too large', {});
    control.registerExperiment(e);
    publish(undefined);
  });
  onSignal(experimentEndedSignal, (e) => {
    messages += 1;
    if (!isMessage(e) || typeof e.name !== 'string') return void log.warn('experimentEnded ignored: malformed', {});
    control.endExperiment(e.name);
    publish(undefined);
  });
  setHandler(policyQuery, () => control.policy());
  setHandler(historyQuery, () => [...control.state.history]);
  setHandler(proposalQuery, () => control.proposal());
  setHandler(anomaliesQuery, () => [...control.state.alerts]);
  setHandler(settingsQuery, () => control.settings);
  setHandler(tuneUpdate, () => {
    messages += 1;
    return publish(control.tune(Date.now(), 'operator') ?? null);
  });
  setHandler(
    revertUpdate,
    ({ version }) => {
      messages += 1;
      return publish(refusing(() => control.revert(version, Date.now())));
    },
    { validator: (a: { version: number }) => refuseUnless('revert', isRecord(a) && Number.isSafeInteger(a.version), '{"version": N}') },
  );
  setHandler(
    promoteUpdate,
    ({ rule, evidence }) => {
      messages += 1;
      return publish(control.promote(rule, evidence, Date.now()));
    },
    {
      validator: (a: { rule: unknown; evidence?: unknown }) =>
        refuseUnless(
          'promote',
          isRecord(a) && wellFormedRule(a.rule) && jsonBytes(a.evidence ?? null) <= MESSAGE_MAX_BYTES,
          `{"rule": {"filter": {...}, "arm": {"name", "weight", and one of model, minTier, thresholds}, "experiment"}, "evidence": ...}, at most ${MESSAGE_MAX_BYTES} bytes`,
        ),
    },
  );
  setHandler(
    acknowledgeUpdate,
    ({ id }) => {
      messages += 1;
      return publish(refusing(() => control.acknowledge(id, Date.now())));
    },
    { validator: objectArgument('acknowledge') },
  );
  setHandler(
    experimentUpdate,
    ({ started, ended }) => {
      messages += 1;
      if (started) refusing(() => control.registerExperiment(started));
      if (ended) control.endExperiment(ended.name);
      publish(undefined);
      return { epoch: control.policy().epoch ?? 0 };
    },
    {
      validator: (a: { started?: unknown; ended?: unknown }) =>
        refuseUnless(
          'experiment',
          isRecord(a) &&
            (a.started === undefined || wellFormedExperiment(a.started)) &&
            (a.ended === undefined || (isRecord(a.ended) && typeof a.ended.name === 'string' && a.ended.name.length <= 200)),
          `{"started": {"name", "arms": [two or more, each {"name", "weight" > 0, and one of model, minTier, thresholds}], "filter"}} or {"ended": {"name"}}, at most ${MESSAGE_MAX_BYTES} bytes`,
        ),
    },
  );

  control.state.nextTuneAt ??= Date.now() + control.settings.tuner.intervalMs;
  const due = (): boolean => workflowInfo().continueAsNewSuggested || messages >= MESSAGES_PER_RUN;
  for (;;) {
    const now = Date.now();
    if (control.settings.tuner.enabled && now >= (control.state.nextTuneAt ?? 0)) {
      const change = control.tune(now, 'tuner');
      if (change) log.info('routing tuned', { version: change.version, summary: change.summary });
      control.state.nextTuneAt = now + control.settings.tuner.intervalMs;
    }
    raised(control.tick(now));
    publish(undefined);
    while (pending.length > 0) {
      const alert = pending.shift()!;
      void alerts
        .sendAnomalyAlert({ alert, webhookUrl: control.settings.anomaly.webhookUrl })
        .catch((e: unknown) => log.warn('anomaly alert not delivered', { id: alert.id, error: e instanceof Error ? e.message : String(e) }));
    }
    if (due()) {
      // The next run starts with the epoch in its memo: a describe between runs never reads an older one.
      await continueAsNewWhenDrained<typeof routingEntity>(() => [{ settings: control.settings, state: control.carry() }], {
        memo: () => (epochPublished ? { [POLICY_EPOCH_MEMO]: control.policy().epoch ?? 0 } : undefined),
      });
    }
    const wakeAt = Math.min(control.settings.tuner.enabled ? (control.state.nextTuneAt ?? Infinity) : Infinity, control.nextBucketAt() ?? Infinity);
    const wait = Number.isFinite(wakeAt) ? Math.max(1, wakeAt - Date.now()) : undefined;
    await condition(() => pending.length > 0 || due(), wait ?? '1 day');
  }
}

// The signature its contract publishes for callers that start it by name.
routingEntity satisfies RoutingEntityWorkflow;
