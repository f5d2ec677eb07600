/**
 * Where the entity workflows (budget books, provider health) run: a task queue of their own,
 * which every Switchyard worker process polls with a second worker beside the request worker.
 * A request settling in a local activity holds one of its worker's workflow-task slots while it
 * waits for the budget entity; were the entity on the same queue, a burst of such requests could
 * hold every slot and keep the entity itself from running (each would wait out a workflow-task
 * heartbeat). On their own queue the entities always have slots. Entities started before this
 * (on the request queue) keep running there (the request worker still registers them) until
 * their next continue-as-new, which moves them (continueOnQueue).
 */
export const ENTITY_QUEUE_SUFFIX = '-entities';

/** The entities' queue of a request queue (a request queue may not end with the suffix: config refuses it). */
export function entityTaskQueue(taskQueue: string): string {
  return `${taskQueue}${ENTITY_QUEUE_SUFFIX}`;
}

/** The request queue an entities queue serves (a request queue is its own). */
export function requestQueueOf(taskQueue: string): string {
  return taskQueue.endsWith(ENTITY_QUEUE_SUFFIX) ? taskQueue.slice(0, -ENTITY_QUEUE_SUFFIX.length) : taskQueue;
}

/**
 * Where an entity continues as new: an entity still on a request queue (started before entities
 * had their own) moves to that queue's entities queue; one already there stays.
 */
export function continueOnQueue(current: string): string | undefined {
  return current.endsWith(ENTITY_QUEUE_SUFFIX) ? undefined : entityTaskQueue(current);
}
