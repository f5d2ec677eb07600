/** How the shipped difficulty model is fitted (the trainer and the test that re-derives it share these). */
export const ROUTER_TRAINING = {
  /** Ridge penalty: by-subject CV is flat from 10 to 300; 100 is its middle. */
  lambda: 100,
  excludeSubjects: ['high_school_mathematics'],
} as const;
