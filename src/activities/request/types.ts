/** The shapes activities exchange with the request workflow: its activity contract (workflows/request/activities.ts). */
export type { CallModelInput, CallModelOutput, RouteLearning, RouteSelection, SelectInput, SelectOutput } from '../../workflows/request/activities.js';
