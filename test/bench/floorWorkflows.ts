/** The floor of any Temporal design, for the `floor` bench: a workflow with no activity, and one with one. */
import { proxyActivities } from '@temporalio/workflow';

const { echo } = proxyActivities<{ echo(x: number): Promise<number> }>({ startToCloseTimeout: '30 seconds' });

export async function floorZero(x: number): Promise<number> {
  return x;
}

export async function floorOne(x: number): Promise<number> {
  return await echo(x);
}
